//! Writing a frame whose large records were left out of its buffer (see
//! `strata_proto::codec::wire::with_deferred_records`): the buffer and the
//! records go out interleaved with vectored writes, so records are not copied.

use std::io::IoSlice;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Most slices handed to one vectored write (below every system's IOV_MAX).
const MAX_IOV: usize = 64;

/// Where a run of vectored writes of `parts` stands: the next piece, and how
/// much of it is written. Shared by socket writes and object file writes.
pub struct Pieces<'a, P> {
    parts: &'a [P],
    i: usize,
    off: usize,
}

impl<'a, P: AsRef<[u8]>> Pieces<'a, P> {
    /// Nothing of `parts` written yet.
    pub fn new(parts: &'a [P]) -> Self {
        let mut p = Pieces { parts, i: 0, off: 0 };
        p.advance(0);
        p
    }

    /// Whether every byte is written.
    pub fn done(&self) -> bool {
        self.i >= self.parts.len()
    }

    /// What to hand to the next vectored write: the rest of the current
    /// piece (never empty unless done) and the pieces after it.
    pub fn slices(&self) -> Vec<IoSlice<'a>> {
        let Some(first) = self.parts.get(self.i) else { return Vec::new() };
        std::iter::once(IoSlice::new(&first.as_ref()[self.off..]))
            .chain(self.parts[self.i + 1..].iter().take(MAX_IOV - 1).map(|p| IoSlice::new(p.as_ref())))
            .collect()
    }

    /// Steps past `n` more bytes written (and past empty pieces).
    pub fn advance(&mut self, mut n: usize) {
        while let Some(part) = self.parts.get(self.i) {
            let left = part.as_ref().len() - self.off;
            if n < left {
                self.off += n;
                return;
            }
            n -= left;
            self.i += 1;
            self.off = 0;
        }
    }
}

/// Writes `buf` with `records[i].1` inserted at position `records[i].0`
/// (positions in order), with vectored writes: the records are not copied.
pub async fn write_all_parts<W: AsyncWrite + Unpin>(wr: &mut W, buf: &[u8], records: &[(usize, Bytes)]) -> std::io::Result<()> {
    if records.is_empty() {
        return wr.write_all(buf).await;
    }
    let mut parts: Vec<&[u8]> = Vec::with_capacity(2 * records.len() + 1);
    let mut at = 0;
    for (pos, bytes) in records {
        parts.push(&buf[at..*pos]);
        parts.push(bytes);
        at = *pos;
    }
    parts.push(&buf[at..]);
    let mut pieces = Pieces::new(&parts);
    while !pieces.done() {
        let n = wr.write_vectored(&pieces.slices()).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        pieces.advance(n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_hand_out_every_byte_once_whatever_each_write_takes() {
        let parts: Vec<Vec<u8>> = (0..200u32).map(|i| vec![(i % 251) as u8; (i as usize * 53) % 300]).collect();
        let want: Vec<u8> = parts.concat();
        // Writes that take 1 byte, a few, or far more than one piece.
        for take in [1usize, 7, 299, 4096, usize::MAX] {
            let mut got = Vec::new();
            let mut pieces = Pieces::new(&parts);
            while !pieces.done() {
                let slices = pieces.slices();
                assert!(slices.len() <= MAX_IOV);
                assert!(!slices[0].is_empty(), "the first slice is never empty");
                let mut n = 0;
                for s in &slices {
                    let k = s.len().min(take - n.min(take));
                    got.extend_from_slice(&s[..k]);
                    n += k;
                }
                pieces.advance(n);
            }
            assert_eq!(got, want, "writes of {take}");
        }
        assert!(Pieces::new(&[Vec::<u8>::new(), Vec::new()]).done());
    }
}
