//! The object layout: each partition's batches contiguous, then a footer with
//! one row per partition and a trailer (row count, format version, magic, CRC),
//! so an object can be read and checked without the sequencer.
//!
//! ```text
//! [batches of partition A][batches of partition B]...
//! footer rows: topic id (16) | partition (4) | position (8) | length (8)
//!              | record count (8) | batch count (4) | max timestamp (8)
//! trailer:     row count (4) | version (2) | magic "STRO" (4) | crc32c of footer rows + row count + version (4)
//! ```

use bytes::{Buf, BufMut, BytesMut};
use strata_proto::Uuid;

/// Magic at the very end of every object.
pub const MAGIC: &[u8; 4] = b"STRO";
/// The footer format version.
pub const VERSION: u16 = 1;
const ROW: usize = 16 + 4 + 8 + 8 + 8 + 4 + 8;
const TRAILER: usize = 4 + 2 + 4 + 4;

/// One footer row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FooterRow {
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// Byte position of the partition's first batch.
    pub position: u64,
    /// Bytes of the partition's batches.
    pub length: u64,
    /// Records in them.
    pub record_count: u64,
    /// Batches in them.
    pub batch_count: u32,
    /// Largest max-timestamp among them.
    pub max_timestamp: i64,
}

/// Appends the footer for `rows` to `w` (the batches already written).
pub fn write_footer(w: &mut BytesMut, rows: &[FooterRow]) {
    let start = w.len();
    for r in rows {
        w.put_slice(&r.topic_id.0);
        w.put_i32(r.partition);
        w.put_u64(r.position);
        w.put_u64(r.length);
        w.put_u64(r.record_count);
        w.put_u32(r.batch_count);
        w.put_i64(r.max_timestamp);
    }
    w.put_u32(rows.len() as u32);
    w.put_u16(VERSION);
    let crc = crc32c::crc32c(&w[start..]);
    w.put_slice(MAGIC);
    w.put_u32(crc);
}

/// Why an object's footer could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FooterError {
    #[error("object of {0} bytes is too small for a footer")]
    TooSmall(usize),
    #[error("bad magic: not a Strata object")]
    BadMagic,
    #[error("footer version {0} is not supported")]
    Version(u16),
    #[error("footer CRC mismatch")]
    Crc,
    #[error("footer rows do not fit the object")]
    Rows,
}

/// Reads the footer rows of a whole object.
pub fn read_footer(object: &[u8]) -> Result<Vec<FooterRow>, FooterError> {
    if object.len() < TRAILER {
        return Err(FooterError::TooSmall(object.len()));
    }
    let t = &object[object.len() - TRAILER..];
    let rows = u32::from_be_bytes([t[0], t[1], t[2], t[3]]) as usize;
    let version = u16::from_be_bytes([t[4], t[5]]);
    if &t[6..10] != MAGIC {
        return Err(FooterError::BadMagic);
    }
    if version != VERSION {
        return Err(FooterError::Version(version));
    }
    let crc = u32::from_be_bytes([t[10], t[11], t[12], t[13]]);
    let rows_len = rows.checked_mul(ROW).ok_or(FooterError::Rows)?;
    let footer_start = (object.len() - TRAILER).checked_sub(rows_len).ok_or(FooterError::Rows)?;
    if crc32c::crc32c(&object[footer_start..object.len() - 8]) != crc {
        return Err(FooterError::Crc);
    }
    let mut r = &object[footer_start..object.len() - TRAILER];
    let mut out = Vec::with_capacity(rows);
    for _ in 0..rows {
        let mut id = [0u8; 16];
        r.copy_to_slice(&mut id);
        let row = FooterRow {
            topic_id: Uuid(id),
            partition: r.get_i32(),
            position: r.get_u64(),
            length: r.get_u64(),
            record_count: r.get_u64(),
            batch_count: r.get_u32(),
            max_timestamp: r.get_i64(),
        };
        if row.position.checked_add(row.length).is_none_or(|end| end > footer_start as u64) {
            return Err(FooterError::Rows);
        }
        out.push(row);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_round_trips_and_detects_damage() {
        let mut w = BytesMut::new();
        w.put_slice(&[7u8; 100]);
        let rows = vec![
            FooterRow { topic_id: Uuid::from_u64_pair(1, 2), partition: 0, position: 0, length: 60, record_count: 3, batch_count: 1, max_timestamp: 5 },
            FooterRow { topic_id: Uuid::from_u64_pair(3, 4), partition: 9, position: 60, length: 40, record_count: 1, batch_count: 1, max_timestamp: -1 },
        ];
        write_footer(&mut w, &rows);
        assert_eq!(read_footer(&w).unwrap(), rows);
        let mut bad = w.clone();
        bad[105] ^= 1;
        assert_eq!(read_footer(&bad), Err(FooterError::Crc));
        let n = w.len();
        bad = w.clone();
        bad[n - 6] = b'X';
        assert_eq!(read_footer(&bad), Err(FooterError::BadMagic));
        for cut in 0..w.len() {
            let _ = read_footer(&w[..cut]);
        }
    }
}
