//! Control records: the key (version, type) every control record carries, and
//! the end-transaction marker batch that commits or aborts a transaction.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::builder::BatchBuilder;
use super::compression::Compression;
use super::error::{RecordsError, Result};

/// The type in a control record's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlRecordType {
    /// The transaction was aborted.
    Abort,
    /// The transaction was committed.
    Commit,
    /// A type this broker does not know (KRaft's leader-change and snapshot types, or newer).
    Unknown(i16),
}

impl ControlRecordType {
    /// The type's wire id.
    pub fn id(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
            ControlRecordType::Unknown(id) => id,
        }
    }

    /// Parses a control record key: int16 version (≥ 0), int16 type.
    pub fn parse_key(key: &[u8]) -> Result<ControlRecordType> {
        let mut k = key;
        if k.len() < 4 {
            return Err(RecordsError::BadControlRecord("key shorter than 4 bytes"));
        }
        let version = k.get_i16();
        if version < 0 {
            return Err(RecordsError::BadControlRecord("negative key version"));
        }
        Ok(match k.get_i16() {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            other => ControlRecordType::Unknown(other),
        })
    }
}

/// The value of an end-transaction marker: version 0 and the coordinator epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndTxnMarker {
    /// Commit or abort.
    pub commit: bool,
    /// The transaction coordinator's epoch when it wrote the marker.
    pub coordinator_epoch: i32,
}

impl EndTxnMarker {
    /// The marker's record key.
    pub fn key(&self) -> Bytes {
        let mut k = BytesMut::with_capacity(4);
        k.put_i16(0);
        k.put_i16(if self.commit { ControlRecordType::Commit.id() } else { ControlRecordType::Abort.id() });
        k.freeze()
    }

    /// The marker's record value.
    pub fn value(&self) -> Bytes {
        let mut v = BytesMut::with_capacity(6);
        v.put_i16(0);
        v.put_i32(self.coordinator_epoch);
        v.freeze()
    }

    /// Parses a marker from a control record's key and value.
    pub fn parse(key: &[u8], value: Option<&[u8]>) -> Result<EndTxnMarker> {
        let commit = match ControlRecordType::parse_key(key)? {
            ControlRecordType::Commit => true,
            ControlRecordType::Abort => false,
            ControlRecordType::Unknown(_) => {
                return Err(RecordsError::BadControlRecord("not an end-transaction marker"))
            }
        };
        let mut v = value.ok_or(RecordsError::BadControlRecord("null marker value"))?;
        if v.len() < 6 {
            return Err(RecordsError::BadControlRecord("marker value shorter than 6 bytes"));
        }
        if v.get_i16() < 0 {
            return Err(RecordsError::BadControlRecord("negative marker version"));
        }
        Ok(EndTxnMarker { commit, coordinator_epoch: v.get_i32() })
    }

    /// A whole control batch holding this marker for a producer, as the
    /// transaction coordinator writes into each partition of a transaction.
    pub fn batch(&self, producer_id: i64, producer_epoch: i16, timestamp: i64) -> Result<Bytes> {
        let mut b = BatchBuilder::new(Compression::None)
            .producer(producer_id, producer_epoch, -1)
            .transactional(true)
            .control(true);
        b.push(timestamp, Some(&self.key()), Some(&self.value()), &[])?;
        b.build()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::super::batch::RecordBatch;
    use super::*;

    #[test]
    fn markers_round_trip_through_a_control_batch() {
        for commit in [true, false] {
            let m = EndTxnMarker { commit, coordinator_epoch: 12 };
            let batch = RecordBatch::parse(m.batch(77, 3, 1234).unwrap()).unwrap();
            batch.validate(1 << 20).unwrap();
            let h = batch.header();
            assert!(h.attributes.is_control() && h.attributes.is_transactional());
            assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), (77, 3, -1));
            let r = batch.records(1 << 20).unwrap().next().unwrap().unwrap();
            let key = r.key.unwrap();
            assert_eq!(
                ControlRecordType::parse_key(&key).unwrap(),
                if commit { ControlRecordType::Commit } else { ControlRecordType::Abort }
            );
            assert_eq!(EndTxnMarker::parse(&key, r.value.as_deref()).unwrap(), m);
        }
    }

    #[test]
    fn bad_control_records_are_errors() {
        assert!(ControlRecordType::parse_key(&[0, 0, 0]).is_err());
        assert!(ControlRecordType::parse_key(&[0xff, 0xff, 0, 1]).is_err());
        assert_eq!(ControlRecordType::parse_key(&[0, 0, 0, 2]).unwrap(), ControlRecordType::Unknown(2));
        assert!(EndTxnMarker::parse(&[0, 0, 0, 1], None).is_err());
        assert!(EndTxnMarker::parse(&[0, 0, 0, 1], Some(&[0, 0, 0])).is_err());
        assert!(EndTxnMarker::parse(&[0, 0, 0, 5], Some(&[0, 0, 0, 0, 0, 0])).is_err());
    }
}
