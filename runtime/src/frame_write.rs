//! Writing a frame whose large records were left out of its buffer (see
//! `strata_proto::codec::wire::with_deferred_records`): the buffer and the
//! records go out interleaved with vectored writes, so records are not copied.

use std::io::IoSlice;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Most slices handed to one vectored write (below every system's IOV_MAX).
const MAX_IOV: usize = 64;

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
    parts.retain(|p| !p.is_empty());
    let (mut i, mut off) = (0usize, 0usize);
    while i < parts.len() {
        let slices: Vec<IoSlice<'_>> = std::iter::once(IoSlice::new(&parts[i][off..]))
            .chain(parts[i + 1..].iter().take(MAX_IOV - 1).map(|p| IoSlice::new(p)))
            .collect();
        let mut n = wr.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 && i < parts.len() {
            let left = parts[i].len() - off;
            if n >= left {
                n -= left;
                i += 1;
                off = 0;
            } else {
                off += n;
                n = 0;
            }
        }
    }
    Ok(())
}
