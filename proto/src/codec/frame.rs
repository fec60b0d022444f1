//! 4-byte size-prefixed framing. The size is checked against the maximum before
//! a single byte of the frame is buffered, so an oversized frame costs nothing.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Why a frame could not be taken from the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The declared size is negative.
    #[error("frame size {0} is negative")]
    NegativeSize(i32),
    /// The declared size is over the configured maximum.
    #[error("frame size {size} exceeds the maximum of {max} bytes")]
    TooLarge {
        /// Declared size.
        size: usize,
        /// Configured maximum.
        max: usize,
    },
}

/// Splits a byte stream into frames of at most `max_frame` bytes.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    max_frame: usize,
}

impl FrameDecoder {
    /// A decoder refusing frames larger than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder { max_frame }
    }

    /// The configured maximum frame size.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Checks a 4-byte size prefix and returns the frame length it announces.
    pub fn frame_len(&self, prefix: [u8; 4]) -> Result<usize, FrameError> {
        let size = i32::from_be_bytes(prefix);
        if size < 0 {
            return Err(FrameError::NegativeSize(size));
        }
        let size = size as usize;
        if size > self.max_frame {
            return Err(FrameError::TooLarge { size, max: self.max_frame });
        }
        Ok(size)
    }

    /// Takes one whole frame (without its prefix) from `buf` if it is all there.
    /// `Ok(None)` means more bytes are needed; `min_needed` says how many in total.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let len = self.frame_len([buf[0], buf[1], buf[2], buf[3]])?;
        if buf.len() < 4 + len {
            // Reserve only what the (already bounded) frame needs.
            buf.reserve(4 + len - buf.len());
            return Ok(None);
        }
        buf.advance(4);
        Ok(Some(buf.split_to(len).freeze()))
    }
}

/// Starts a frame in `w`: returns the position of the size prefix to finish later.
pub fn begin_frame(w: &mut BytesMut) -> usize {
    let at = w.len();
    w.put_i32(0);
    at
}

/// Writes the size of the frame begun at `at` into its prefix.
pub fn end_frame(w: &mut BytesMut, at: usize) -> Result<(), crate::codec::error::EncodeError> {
    end_frame_with(w, at, 0)
}

/// Like [`end_frame`], for a frame of which `outside` bytes were left out of
/// `w` (deferred records, sent from their own buffers).
pub fn end_frame_with(w: &mut BytesMut, at: usize, outside: usize) -> Result<(), crate::codec::error::EncodeError> {
    let len = w.len() - at - 4 + outside;
    let size = i32::try_from(len).map_err(|_| crate::codec::error::EncodeErrorKind::TooLong(len))?;
    w[at..at + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_split_and_bounded() {
        let d = FrameDecoder::new(8);
        let mut buf = BytesMut::from(&[0, 0, 0, 3, 1, 2][..]);
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(&[3, 0, 0, 0, 1, 9]);
        assert_eq!(&d.decode(&mut buf).unwrap().unwrap()[..], &[1, 2, 3]);
        assert_eq!(&d.decode(&mut buf).unwrap().unwrap()[..], &[9]);
        assert_eq!(d.decode(&mut buf).unwrap(), None);
    }

    #[test]
    fn oversized_and_negative_sizes_are_refused_from_the_prefix_alone() {
        let d = FrameDecoder::new(100);
        let mut buf = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff][..]);
        assert_eq!(d.decode(&mut buf), Err(FrameError::TooLarge { size: i32::MAX as usize, max: 100 }));
        assert!(buf.capacity() < 1024, "nothing was reserved for the oversized frame");
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xfe][..]);
        assert_eq!(d.decode(&mut buf), Err(FrameError::NegativeSize(-2)));
    }
}
