//! Objects: immutable blobs of record batches of many partitions, laid out
//! partition by partition, with a footer that indexes them.

pub mod format;
pub mod key;
pub mod parts;
