//! An object's bytes as the pieces it is laid out from: each batch as it
//! arrived in its produce request, then the footer. The object is written
//! (vectored) and kept for tail reads without copying the pieces together,
//! so a record's bytes are not copied between the socket and the store.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

/// The bytes of an object, in pieces. Cheap to clone.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ObjectParts {
    inner: Arc<Inner>,
}

#[derive(Default, PartialEq, Eq)]
struct Inner {
    /// The pieces, none empty.
    parts: Vec<Bytes>,
    /// Where each piece ends in the object (ascending; the last is the length).
    ends: Vec<usize>,
}

impl ObjectParts {
    /// The object made of `parts`, in order (empty pieces are dropped).
    pub fn new(parts: Vec<Bytes>) -> ObjectParts {
        let parts: Vec<Bytes> = parts.into_iter().filter(|p| !p.is_empty()).collect();
        let mut ends = Vec::with_capacity(parts.len());
        let mut end = 0usize;
        for p in &parts {
            end += p.len();
            ends.push(end);
        }
        ObjectParts { inner: Arc::new(Inner { parts, ends }) }
    }

    /// The object's length in bytes.
    pub fn len(&self) -> usize {
        self.inner.ends.last().copied().unwrap_or(0)
    }

    /// True for an object of no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pieces, in order (none empty).
    pub fn parts(&self) -> &[Bytes] {
        &self.inner.parts
    }

    /// The bytes of `range` as slices of the pieces (nothing copied), or
    /// `None` if it is not inside the object. An empty range has no slices.
    pub fn pieces_of(&self, range: Range<u64>) -> Option<Vec<Bytes>> {
        let range = usize::try_from(range.start).ok()?..usize::try_from(range.end).ok()?;
        if range.start > range.end || range.end > self.len() {
            return None;
        }
        let Inner { parts, ends } = &*self.inner;
        // The piece holding the range's first byte: the first that ends after it.
        let first = ends.partition_point(|&end| end <= range.start);
        let mut out = Vec::new();
        for (i, part) in parts.iter().enumerate().skip(first) {
            let at = if i == 0 { 0 } else { ends[i - 1] };
            if at >= range.end {
                break;
            }
            let from = range.start.saturating_sub(at);
            let to = (range.end - at).min(part.len());
            out.push(part.slice(from..to));
        }
        Some(out)
    }

    /// The bytes of `range`, or `None` if it is not inside the object. A range
    /// within one piece is shared with it, not copied; one across pieces is
    /// copied together.
    pub fn slice(&self, range: Range<u64>) -> Option<Bytes> {
        let mut pieces = self.pieces_of(range)?;
        if pieces.len() <= 1 {
            return Some(pieces.pop().unwrap_or_default());
        }
        let mut out = BytesMut::with_capacity(pieces.iter().map(Bytes::len).sum());
        for p in &pieces {
            out.extend_from_slice(p);
        }
        Some(out.freeze())
    }

    /// The whole object in one buffer (copied unless it is one piece).
    pub fn to_bytes(&self) -> Bytes {
        self.slice(0..self.len() as u64).unwrap_or_default()
    }
}

impl From<Bytes> for ObjectParts {
    fn from(bytes: Bytes) -> Self {
        ObjectParts::new(vec![bytes])
    }
}

impl fmt::Debug for ObjectParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectParts({} bytes in {} parts)", self.len(), self.inner.parts.len())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn slices_within_a_piece_are_shared_and_across_pieces_copied() {
        let a = Bytes::from_static(b"hello ");
        let o = ObjectParts::new(vec![a.clone(), Bytes::new(), Bytes::from_static(b"big "), Bytes::from_static(b"world")]);
        assert_eq!(o.len(), 15);
        assert_eq!(o.parts().len(), 3, "the empty piece is dropped");
        let whole = b"hello big world";
        for start in 0..=15usize {
            for end in start..=15 {
                assert_eq!(&o.slice(start as u64..end as u64).unwrap()[..], &whole[start..end], "{start}..{end}");
            }
        }
        let shared = o.slice(1..5).unwrap();
        assert_eq!(shared.as_ptr(), a[1..].as_ptr(), "a range inside one piece points into it");
        assert_eq!(o.slice(3..16), None);
        let pieces = o.pieces_of(4..12).unwrap();
        assert_eq!(pieces.iter().map(|p| &p[..]).collect::<Vec<_>>(), [&b"o "[..], b"big ", b"wo"]);
        assert_eq!(pieces[0].as_ptr(), a[4..].as_ptr(), "pieces point into the object's own buffers");
        assert_eq!(o.pieces_of(6..6), Some(vec![]));
        #[allow(clippy::reversed_empty_ranges)]
        let inverted = o.slice(5..4);
        assert_eq!(inverted, None);
        assert_eq!(&o.to_bytes()[..], whole);
        assert_eq!(ObjectParts::default().slice(0..0), Some(Bytes::new()));
        assert!(ObjectParts::default().is_empty());
    }
}
