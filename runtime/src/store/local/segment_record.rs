//! How one object is laid out in a local segment file (see `segments.rs`):
//! a fixed header, the key, then the object's bytes.
//!
//! ```text
//! 0..4    magic "SSG1"
//! 4       state: 1 live, 0 deleted (rewritten in place by a delete; not checksummed)
//! 5..8    zero
//! 8..16   data length, u64 LE
//! 16..24  written at, ms since the Unix epoch, u64 LE
//! 24..26  key length, u16 LE
//! 26..28  zero
//! 28..32  CRC-32C of bytes 8..28 and the key
//! 32..    key, then data
//! ```
//!
//! The checksum covers what a reader needs to find the next record, so a
//! torn or never-written tail is told apart from a record: scanning stops
//! there. The data carries its own checksums (record batches' CRCs).

/// Bytes before the key.
pub const HEADER_LEN: usize = 32;
/// The longest key a segment record holds (object keys are ~60 bytes).
pub const MAX_KEY_LEN: usize = 1024;
/// Where the state byte is, from the start of a record.
pub const STATE_OFFSET: u64 = 4;
/// The state byte of a live object.
pub const LIVE: u8 = 1;
/// The state byte of a deleted object.
pub const DELETED: u8 = 0;

const MAGIC: &[u8; 4] = b"SSG1";

/// A record's header, as read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Whether the object was deleted.
    pub live: bool,
    /// Length of the object's bytes.
    pub data_len: u64,
    /// When it was written, ms since the Unix epoch.
    pub written_ms: u64,
    /// Length of the key that follows the header.
    pub key_len: usize,
    /// The checksum the key must match (with the header's fields).
    crc: u32,
}

/// Why bytes are not a record: where a scan stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotARecord {
    /// Fewer bytes than a header.
    #[error("short header")]
    Short,
    /// The magic, a zero field, the state byte or the key length is wrong.
    #[error("bad header")]
    BadHeader,
    /// The checksum does not match the header and key.
    #[error("checksum mismatch")]
    Checksum,
}

impl RecordHeader {
    /// The total length of the record: header, key and data.
    pub fn record_len(&self) -> u64 {
        HEADER_LEN as u64 + self.key_len as u64 + self.data_len
    }

    /// Reads a header from the start of `buf` (the key is checked by [`Self::check_key`]).
    pub fn decode(buf: &[u8]) -> Result<RecordHeader, NotARecord> {
        let h: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN).and_then(|b| b.try_into().ok()).ok_or(NotARecord::Short)?;
        let u64_at = |at: usize| u64::from_le_bytes(h[at..at + 8].try_into().unwrap_or_default());
        let key_len = usize::from(u16::from_le_bytes([h[24], h[25]]));
        let zeros_ok = h[5..8] == [0; 3] && h[26..28] == [0; 2];
        if &h[..4] != MAGIC || !zeros_ok || (h[4] != LIVE && h[4] != DELETED) || key_len == 0 || key_len > MAX_KEY_LEN {
            return Err(NotARecord::BadHeader);
        }
        Ok(RecordHeader {
            live: h[4] == LIVE,
            data_len: u64_at(8),
            written_ms: u64_at(16),
            key_len,
            crc: u32::from_le_bytes([h[28], h[29], h[30], h[31]]),
        })
    }

    /// The key that followed this header, if it matches the checksum.
    pub fn check_key<'a>(&self, header: &[u8], key: &'a [u8]) -> Result<&'a str, NotARecord> {
        let fields = header.get(8..28).ok_or(NotARecord::Short)?;
        if key.len() != self.key_len || crc32c::crc32c_append(crc32c::crc32c(fields), key) != self.crc {
            return Err(NotARecord::Checksum);
        }
        std::str::from_utf8(key).map_err(|_| NotARecord::BadHeader)
    }
}

/// The header and key of a live record for `key`, `data_len` bytes long.
/// `key` must be 1..=[`MAX_KEY_LEN`] bytes (the caller checks).
pub fn encode(key: &str, data_len: u64, written_ms: u64) -> Vec<u8> {
    assert!(!key.is_empty() && key.len() <= MAX_KEY_LEN, "segment record key length {}", key.len());
    let mut out = Vec::with_capacity(HEADER_LEN + key.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[LIVE, 0, 0, 0]);
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(&written_ms.to_le_bytes());
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&out[8..28]), key.as_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_and_its_state_byte_is_outside_the_checksum() {
        let mut rec = encode("objects/ab/1-00-r7", 12345, 1_700_000_000_000);
        let h = RecordHeader::decode(&rec).unwrap();
        assert_eq!((h.live, h.data_len, h.written_ms, h.key_len), (true, 12345, 1_700_000_000_000, 18));
        assert_eq!(h.check_key(&rec, &rec[HEADER_LEN..]).unwrap(), "objects/ab/1-00-r7");
        assert_eq!(h.record_len(), 32 + 18 + 12345);
        rec[STATE_OFFSET as usize] = DELETED;
        let h = RecordHeader::decode(&rec).unwrap();
        assert!(!h.live);
        assert!(h.check_key(&rec, &rec[HEADER_LEN..]).is_ok());
    }

    #[test]
    fn any_damage_to_a_header_or_key_is_caught() {
        let rec = encode("snapshots/42", 99, 5);
        for i in 0..rec.len() {
            if i == STATE_OFFSET as usize {
                continue;
            }
            for bit in 0..8 {
                let mut bad = rec.clone();
                bad[i] ^= 1 << bit;
                let caught = match RecordHeader::decode(&bad) {
                    Err(_) => true,
                    Ok(h) => bad.get(HEADER_LEN..HEADER_LEN + h.key_len).is_none_or(|k| h.check_key(&bad, k).is_err()),
                };
                assert!(caught, "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn zeros_short_input_and_garbage_are_not_records() {
        assert_eq!(RecordHeader::decode(&[0; 64]), Err(NotARecord::BadHeader));
        assert_eq!(RecordHeader::decode(&encode("k", 1, 1)[..31]), Err(NotARecord::Short));
        for seed in 0..2000u32 {
            let junk: Vec<u8> = (0..64u32).map(|i| (seed.wrapping_mul(2_654_435_761).wrapping_add(i * 97) >> 7) as u8).collect();
            if let Ok(h) = RecordHeader::decode(&junk) {
                let key = &junk[HEADER_LEN..(HEADER_LEN + h.key_len).min(64)];
                assert!(h.check_key(&junk, key).is_err());
            }
        }
    }
}
