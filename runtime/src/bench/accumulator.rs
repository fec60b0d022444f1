//! The producer's record accumulator, after Kafka's Java `RecordAccumulator`:
//! records are appended to a per-partition queue of batches; the last batch of
//! a queue is open for appends until it reaches `batch.size`. A partition is
//! *ready* when its first batch is full, when more than one batch is queued,
//! when the first batch has waited `linger.ms`, or when the producer is
//! flushing. A broker's sender drains when any of its partitions is ready, and
//! then takes the first batch of *each* of its partitions (ready or not) up to
//! `max.request.size`, one batch per partition per request, as Java does.
//!
//! Batches of compressed records are sized by an estimate of the compression
//! ratio learnt from the batches already built (Java's
//! `CompressionRatioEstimator`), so that a compressed batch, too, comes out
//! near `batch.size`.
//!
//! Pure logic, no clock of its own (every call is given `now`) and no locks:
//! the producer wraps it in a mutex.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_proto::records::{BatchBuilder, BatchHeader, Compression, RecordsError, HEADER_SIZE};

/// Java's COMPRESSION_RATE_ESTIMATION_FACTOR.
const ESTIMATION_FACTOR: f64 = 1.05;
/// Java's COMPRESSION_RATIO_IMPROVING_STEP.
const RATIO_IMPROVING_STEP: f64 = 0.005;
/// Java's COMPRESSION_RATIO_DETERIORATE_STEP.
const RATIO_DETERIORATE_STEP: f64 = 0.05;
/// A record's framing around its value: length, attributes, deltas, key and
/// header counts (varints); an upper estimate for small offsets.
const RECORD_OVERHEAD: usize = 21;

/// The accumulator's settings.
#[derive(Debug, Clone, Copy)]
pub struct AccumulatorConfig {
    /// batch.size in bytes.
    pub batch_size: usize,
    /// linger.ms.
    pub linger: Duration,
    /// compression.type.
    pub compression: Compression,
    /// max.request.size: drain stops adding batches past it (the first batch always goes).
    pub max_request_size: usize,
    /// retry.backoff.ms: how long a batch put back after an error waits.
    pub retry_backoff: Duration,
    /// Idempotent producer id and epoch: batches get sequence numbers when drained.
    pub producer: Option<(i64, i16)>,
}

/// A batch being filled or waiting to be sent.
#[derive(Debug)]
enum Body {
    Open(BatchBuilder),
    /// Built earlier and put back for a retry.
    Built(Bytes),
}

#[derive(Debug)]
struct QueuedBatch {
    body: Body,
    created: Instant,
    /// Not sendable before this (retry backoff).
    not_before: Option<Instant>,
    records: u32,
    payload_bytes: u64,
    /// Times this batch was sent already.
    attempts: u32,
    /// Closed for appends (full, or a retry).
    closed: bool,
}

impl QueuedBatch {
    fn uncompressed_size(&self) -> usize {
        match &self.body {
            Body::Open(b) => HEADER_SIZE + b.encoded_size(),
            Body::Built(bytes) => bytes.len(),
        }
    }
}

/// A batch taken out of the accumulator to be sent, not yet built.
#[derive(Debug)]
pub struct DrainedBatch {
    /// Partition index.
    pub partition: i32,
    body: Body,
    /// Records in it.
    pub records: u32,
    /// Sum of the records' value sizes.
    pub payload_bytes: u64,
    /// Times it was sent before.
    pub attempts: u32,
    /// When its first record was appended.
    pub created: Instant,
    /// Its size before compression (what the buffer accounting charged).
    pub buffered_bytes: usize,
}

/// A batch ready for the wire.
#[derive(Debug, Clone)]
pub struct BuiltBatch {
    /// Partition index.
    pub partition: i32,
    /// The encoded record batch.
    pub bytes: Bytes,
    /// Records in it.
    pub records: u32,
    /// Sum of the records' value sizes.
    pub payload_bytes: u64,
    /// Times it was sent before this one.
    pub attempts: u32,
    /// When its first record was appended.
    pub created: Instant,
    /// Bytes charged to buffer.memory; given back when the batch is done.
    pub buffered_bytes: usize,
    /// Size before compression (for the ratio estimate), 0 if it was built earlier.
    pub uncompressed: usize,
}

impl DrainedBatch {
    /// Compresses and encodes the batch (outside the accumulator's lock).
    pub fn build(self) -> Result<BuiltBatch, RecordsError> {
        let (bytes, uncompressed) = match self.body {
            Body::Open(b) => {
                let uncompressed = HEADER_SIZE + b.encoded_size();
                (b.build()?, uncompressed)
            }
            Body::Built(bytes) => (bytes, 0),
        };
        Ok(BuiltBatch {
            partition: self.partition,
            bytes,
            records: self.records,
            payload_bytes: self.payload_bytes,
            attempts: self.attempts,
            created: self.created,
            buffered_bytes: self.buffered_bytes,
            uncompressed,
        })
    }
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The partition became ready because of this append (a batch filled up,
    /// or linger is zero): its broker's sender should be woken.
    pub ready: bool,
    /// A new batch was opened: its linger deadline is new to the sender,
    /// which should be woken to learn it (as Java's producer does).
    pub new_batch: bool,
    /// Size of the partition's open batch after the append (estimated wire bytes).
    pub batch_bytes: usize,
}

/// Per-partition queues of batches.
#[derive(Debug)]
pub struct Accumulator {
    cfg: AccumulatorConfig,
    queues: BTreeMap<i32, VecDeque<QueuedBatch>>,
    /// Bytes appended and not yet released (Java's buffer.memory accounting).
    buffered: usize,
    /// Estimated compressed/uncompressed ratio.
    ratio: f64,
    flushing: bool,
    /// Where each node's next drain starts, for fairness among its partitions.
    drain_start: BTreeMap<i32, usize>,
    /// Idempotence: the next sequence number per partition.
    next_sequence: BTreeMap<i32, i32>,
}

impl Accumulator {
    /// An empty accumulator.
    pub fn new(cfg: AccumulatorConfig) -> Accumulator {
        Accumulator {
            cfg,
            queues: BTreeMap::new(),
            buffered: 0,
            ratio: 1.0,
            flushing: false,
            drain_start: BTreeMap::new(),
            next_sequence: BTreeMap::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &AccumulatorConfig {
        &self.cfg
    }

    /// Bytes held for batches not yet acknowledged.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// The current compression ratio estimate.
    pub fn compression_ratio(&self) -> f64 {
        self.ratio
    }

    fn estimate(&self, uncompressed_records: usize) -> usize {
        if self.cfg.compression == Compression::None {
            HEADER_SIZE + uncompressed_records
        } else {
            HEADER_SIZE + (uncompressed_records as f64 * self.ratio * ESTIMATION_FACTOR) as usize
        }
    }

    fn is_full(&self, b: &QueuedBatch) -> bool {
        match &b.body {
            Body::Open(builder) => self.estimate(builder.encoded_size()) >= self.cfg.batch_size,
            Body::Built(_) => true,
        }
    }

    /// Appends one record (no key) to `partition`'s open batch, opening a new
    /// batch when the record does not fit in the current one.
    pub fn append(&mut self, partition: i32, now: Instant, timestamp_ms: i64, value: &[u8]) -> Result<Appended, RecordsError> {
        let record_estimate = value.len() + RECORD_OVERHEAD;
        let linger_zero = self.cfg.linger.is_zero();
        let compression = self.cfg.compression;
        let batch_size = self.cfg.batch_size;
        let estimate_with = {
            let q = self.queues.get(&partition);
            q.and_then(|q| q.back()).and_then(|b| match (&b.body, b.closed) {
                (Body::Open(builder), false) => Some(self.estimate(builder.encoded_size() + record_estimate)),
                _ => None,
            })
        };
        let q = self.queues.entry(partition).or_default();
        let fits = matches!(estimate_with, Some(size) if size <= batch_size);
        let mut new_batch = false;
        if !fits {
            if let Some(last) = q.back_mut() {
                // An open, non-empty batch that cannot take this record is full.
                last.closed = true;
            }
            q.push_back(QueuedBatch {
                // A whole batch.size up front, as Java's buffer pool hands out.
                body: Body::Open(BatchBuilder::with_capacity(compression, batch_size.max(HEADER_SIZE + record_estimate))),
                created: now,
                not_before: None,
                records: 0,
                payload_bytes: 0,
                attempts: 0,
                closed: false,
            });
            new_batch = true;
        }
        let last = q.back_mut().expect("a batch was just ensured");
        let Body::Open(builder) = &mut last.body else { unreachable!("the last batch is open") };
        let before = builder.encoded_size();
        builder.push(timestamp_ms, None, Some(value), &[])?;
        let added = builder.encoded_size() - before + if new_batch { HEADER_SIZE } else { 0 };
        last.records += 1;
        last.payload_bytes += value.len() as u64;
        self.buffered += added;
        let q = &self.queues[&partition];
        let last = q.back().expect("non-empty");
        let full = self.is_full(last);
        let batch_bytes = match &last.body {
            Body::Open(b) => self.estimate(b.encoded_size()),
            Body::Built(bytes) => bytes.len(),
        };
        // Ready now if this append filled a batch, if an older batch was closed
        // (more than one queued), or if linger is zero and this is a new batch.
        let ready = full || (new_batch && q.len() > 1) || (linger_zero && new_batch);
        Ok(Appended { ready, new_batch, batch_bytes })
    }

    fn partition_ready(&self, q: &VecDeque<QueuedBatch>, now: Instant) -> Result<bool, Instant> {
        let Some(first) = q.front() else { return Err(far_future(now)) };
        if let Some(t) = first.not_before {
            if now < t {
                return Err(t);
            }
        }
        if self.flushing || q.len() > 1 || first.closed || self.is_full(first) || first.attempts > 0 {
            return Ok(true);
        }
        let due = first.created + self.cfg.linger;
        if now >= due {
            Ok(true)
        } else {
            Err(due)
        }
    }

    /// Whether any of `partitions` is ready; if not, when the first one will
    /// be (None: nothing is queued for them).
    pub fn ready(&self, partitions: &[i32], now: Instant) -> Result<(), Option<Instant>> {
        let mut next: Option<Instant> = None;
        for p in partitions {
            let Some(q) = self.queues.get(p) else { continue };
            if q.is_empty() {
                continue;
            }
            match self.partition_ready(q, now) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(t) => next = Some(next.map_or(t, |n| n.min(t))),
            }
        }
        Err(next)
    }

    /// Takes the first batch of each of `partitions` (`node` names the group,
    /// for a fair starting point) while the request stays within
    /// max.request.size. Batches in retry backoff stay. Call after `ready`.
    pub fn drain(&mut self, node: i32, partitions: &[i32], now: Instant) -> Vec<DrainedBatch> {
        let mut out = Vec::new();
        if partitions.is_empty() {
            return out;
        }
        let start = self.drain_start.get(&node).copied().unwrap_or(0) % partitions.len();
        let mut size = 0usize;
        for i in 0..partitions.len() {
            let p = partitions[(start + i) % partitions.len()];
            let Some(q) = self.queues.get(&p) else { continue };
            let Some(first) = q.front() else { continue };
            if first.not_before.is_some_and(|t| now < t) {
                continue;
            }
            if first.records == 0 {
                continue;
            }
            let est = match &first.body {
                Body::Open(b) => self.estimate(b.encoded_size()),
                Body::Built(bytes) => bytes.len(),
            };
            if !out.is_empty() && size + est > self.cfg.max_request_size {
                break;
            }
            size += est;
            let q = self.queues.get_mut(&p).expect("checked above");
            let b = q.pop_front().expect("checked above");
            let buffered_bytes = b.uncompressed_size();
            let body = match (b.body, self.cfg.producer) {
                // A first send: the batch takes the partition's next sequence numbers.
                (Body::Open(builder), Some((id, epoch))) => {
                    let seq = self.next_sequence.entry(p).or_insert(0);
                    let base = *seq;
                    // Sequences wrap to 0 after i32::MAX, as Kafka's do.
                    *seq = ((i64::from(base) + i64::from(b.records)) % (i64::from(i32::MAX) + 1)) as i32;
                    Body::Open(builder.producer(id, epoch, base))
                }
                (body, _) => body,
            };
            out.push(DrainedBatch {
                partition: p,
                body,
                records: b.records,
                payload_bytes: b.payload_bytes,
                attempts: b.attempts,
                created: b.created,
                buffered_bytes,
            });
        }
        self.drain_start.insert(node, start + 1);
        out
    }

    /// Learns from a built batch's real size (Java's ratio estimator).
    pub fn observe(&mut self, batch: &BuiltBatch) {
        if self.cfg.compression == Compression::None || batch.uncompressed <= HEADER_SIZE {
            return;
        }
        let observed = (batch.bytes.len().saturating_sub(HEADER_SIZE)) as f64 / (batch.uncompressed - HEADER_SIZE) as f64;
        if observed > self.ratio {
            self.ratio = (self.ratio + RATIO_DETERIORATE_STEP).max(observed);
        } else if observed < self.ratio {
            self.ratio = (self.ratio - RATIO_IMPROVING_STEP).max(observed);
        }
    }

    /// Puts a sent batch back at the front of its queue for a retry (for an
    /// idempotent producer, among the other retries in sequence order, as
    /// the broker accepts them only in order).
    pub fn reenqueue(&mut self, batch: BuiltBatch, now: Instant) {
        let q = self.queues.entry(batch.partition).or_default();
        let seq = |bytes: &Bytes| BatchHeader::parse(bytes).map_or(-1, |h| h.base_sequence);
        let at = if self.cfg.producer.is_some() {
            let mine = seq(&batch.bytes);
            q.iter()
                .position(|b| match &b.body {
                    Body::Built(bytes) => seq(bytes) > mine,
                    Body::Open(_) => true,
                })
                .unwrap_or(q.len())
        } else {
            0
        };
        q.insert(
            at,
            QueuedBatch {
                body: Body::Built(batch.bytes),
                created: batch.created,
                not_before: Some(now + self.cfg.retry_backoff),
                records: batch.records,
                payload_bytes: batch.payload_bytes,
                attempts: batch.attempts + 1,
                closed: true,
            },
        );
    }

    /// Gives back buffer.memory held by a finished batch.
    pub fn release(&mut self, bytes: usize) {
        self.buffered = self.buffered.saturating_sub(bytes);
    }

    /// From now on every queued batch is ready (the producer is stopping).
    pub fn flush(&mut self) {
        self.flushing = true;
    }

    /// True while flushing.
    pub fn is_flushing(&self) -> bool {
        self.flushing
    }

    /// True when nothing is queued for `partitions`.
    pub fn is_empty_for(&self, partitions: &[i32]) -> bool {
        partitions.iter().all(|p| self.queues.get(p).is_none_or(|q| q.iter().all(|b| b.records == 0)))
    }
}

fn far_future(now: Instant) -> Instant {
    now + Duration::from_secs(3600)
}

/// Spreads unkeyed records over partitions.
#[derive(Debug, Clone)]
pub struct PartitionChooser {
    partitions: Vec<i32>,
    current: usize,
    sticky_bytes: Option<usize>,
    bytes_on_current: usize,
}

impl PartitionChooser {
    /// Sticky (switch after `batch_size` bytes, KIP-794 style) or, with `None`, round-robin per record.
    pub fn new(partitions: Vec<i32>, sticky_bytes: Option<usize>) -> PartitionChooser {
        assert!(!partitions.is_empty(), "at least one partition");
        PartitionChooser { partitions, current: 0, sticky_bytes, bytes_on_current: 0 }
    }

    /// The partition for the next record of `size` bytes.
    pub fn next(&mut self, size: usize) -> i32 {
        match self.sticky_bytes {
            None => {
                let p = self.partitions[self.current];
                self.current = (self.current + 1) % self.partitions.len();
                p
            }
            Some(limit) => {
                if self.bytes_on_current >= limit {
                    self.current = (self.current + 1) % self.partitions.len();
                    self.bytes_on_current = 0;
                }
                self.bytes_on_current += size;
                self.partitions[self.current]
            }
        }
    }
}

/// Paces records to a target rate: record `n` is due at `start + n / rate`.
#[derive(Debug, Clone, Copy)]
pub struct Pacer {
    start: Instant,
    rate: f64,
}

impl Pacer {
    /// `rate` records/s; 0 or less means unlimited.
    pub fn new(start: Instant, rate: f64) -> Pacer {
        Pacer { start, rate }
    }

    /// When record number `n` (from 0) may be produced, None when unlimited.
    pub fn due(&self, n: u64) -> Option<Instant> {
        if self.rate > 0.0 {
            Some(self.start + Duration::from_secs_f64(n as f64 / self.rate))
        } else {
            None
        }
    }
}

/// Record values: the produce time in the first 8 bytes, then random
/// uppercase letters (as Kafka's producer-perf-test), taken from a 1 MiB pool
/// at moving offsets so that neighbouring records differ.
#[derive(Debug, Clone)]
pub struct Payloads {
    pool: Vec<u8>,
    size: usize,
    at: usize,
    buf: Vec<u8>,
}

/// The bytes of each value that carry the produce time.
pub const TIMESTAMP_BYTES: usize = 8;

impl Payloads {
    /// Values of `size` bytes, from a pool seeded with `seed`.
    pub fn new(size: usize, seed: u64) -> Payloads {
        let pool_len = (1 << 20) + size;
        let mut x = seed | 1;
        let pool = (0..pool_len)
            .map(|_| {
                // xorshift64*
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                b'A' + (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 59) as u8 % 26
            })
            .collect();
        Payloads { pool, size, at: 0, buf: vec![0; size] }
    }

    /// The next value, stamped with `nanos` (when it has room for it).
    pub fn next(&mut self, nanos: u64) -> &[u8] {
        let n = self.size;
        self.buf.copy_from_slice(&self.pool[self.at..self.at + n]);
        // A prime step, so consecutive values start at unrelated offsets.
        self.at = (self.at + 7919) % (self.pool.len() - n + 1);
        if n >= TIMESTAMP_BYTES {
            self.buf[..TIMESTAMP_BYTES].copy_from_slice(&nanos.to_be_bytes());
        }
        &self.buf
    }
}

/// Reads the produce time from a value written by [`Payloads`].
pub fn value_timestamp(value: &[u8]) -> Option<u64> {
    value.get(..TIMESTAMP_BYTES).map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_proto::records::RecordBatch;

    fn cfg(batch_size: usize, linger_ms: u64) -> AccumulatorConfig {
        AccumulatorConfig {
            batch_size,
            linger: Duration::from_millis(linger_ms),
            compression: Compression::None,
            max_request_size: 1 << 20,
            retry_backoff: Duration::from_millis(100),
            producer: None,
        }
    }

    #[test]
    fn a_batch_waits_for_linger_then_is_ready() {
        let t0 = Instant::now();
        let mut acc = Accumulator::new(cfg(16_384, 5));
        let a = acc.append(0, t0, 1, &[7; 100]).unwrap();
        assert!(!a.ready);
        assert_eq!(acc.ready(&[0], t0), Err(Some(t0 + Duration::from_millis(5))));
        assert_eq!(acc.ready(&[0], t0 + Duration::from_millis(4)), Err(Some(t0 + Duration::from_millis(5))));
        assert_eq!(acc.ready(&[0], t0 + Duration::from_millis(5)), Ok(()));
        // Another partition's sender sees nothing.
        assert_eq!(acc.ready(&[1], t0 + Duration::from_millis(5)), Err(None));
        let d = acc.drain(0, &[0], t0 + Duration::from_millis(5));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].records, 1);
        let b = d.into_iter().next().unwrap().build().unwrap();
        let batch = RecordBatch::parse(b.bytes.clone()).unwrap();
        batch.validate(1 << 20).unwrap();
        assert_eq!(batch.header().record_count, 1);
        assert!(acc.is_empty_for(&[0]));
    }

    #[test]
    fn a_full_batch_is_ready_at_once_and_the_next_record_opens_a_new_one() {
        let t0 = Instant::now();
        let mut acc = Accumulator::new(cfg(1000, 1000));
        let mut readies = 0;
        for _ in 0..20 {
            if acc.append(3, t0, 1, &[1; 100]).unwrap().ready {
                readies += 1;
            }
        }
        // ~121 bytes per record, 61-byte header: 7 records per 1000-byte batch.
        assert!(readies >= 2, "{readies}");
        assert_eq!(acc.ready(&[3], t0), Ok(()));
        let d = acc.drain(9, &[3], t0);
        assert_eq!(d.len(), 1, "one batch per partition per request");
        let b = d.into_iter().next().unwrap().build().unwrap();
        assert!(b.bytes.len() <= 1000, "{}", b.bytes.len());
        assert!(b.bytes.len() > 1000 - 130, "{}", b.bytes.len());
        // Still more than one queued → still ready.
        assert_eq!(acc.ready(&[3], t0), Ok(()));
        let mut total = b.records;
        while acc.ready(&[3], t0).is_ok() {
            for d in acc.drain(9, &[3], t0) {
                total += d.records;
            }
        }
        // The last, partial batch waits for linger.
        assert!(acc.ready(&[3], t0).is_err());
        acc.flush();
        for d in acc.drain(9, &[3], t0) {
            total += d.records;
        }
        assert_eq!(total, 20);
        assert!(acc.is_empty_for(&[3]));
    }

    #[test]
    fn linger_zero_makes_every_new_batch_ready_and_records_still_join_it_until_drained() {
        let t0 = Instant::now();
        let mut acc = Accumulator::new(cfg(16_384, 0));
        assert!(acc.append(0, t0, 1, &[1; 10]).unwrap().ready);
        // Not drained yet (the sender has no free slot): the next records join the batch.
        assert!(!acc.append(0, t0, 1, &[1; 10]).unwrap().ready);
        assert!(!acc.append(0, t0, 1, &[1; 10]).unwrap().ready);
        assert_eq!(acc.ready(&[0], t0), Ok(()));
        let d = acc.drain(0, &[0], t0);
        assert_eq!(d[0].records, 3);
    }

    #[test]
    fn a_record_larger_than_batch_size_gets_its_own_batch() {
        let t0 = Instant::now();
        let mut acc = Accumulator::new(cfg(100, 1000));
        acc.append(0, t0, 1, &[1; 10]).unwrap();
        let a = acc.append(0, t0, 1, &[1; 500]).unwrap();
        assert!(a.ready);
        let d = acc.drain(0, &[0], t0);
        assert_eq!(d[0].records, 1);
        let d = acc.drain(0, &[0], t0);
        assert_eq!(d[0].records, 1);
        assert_eq!(d[0].payload_bytes, 500);
    }

    #[test]
    fn drain_takes_one_batch_per_partition_within_max_request_size_and_rotates() {
        let t0 = Instant::now();
        let mut c = cfg(1000, 0);
        c.max_request_size = 2000;
        let mut acc = Accumulator::new(c);
        for p in 0..4 {
            for _ in 0..7 {
                acc.append(p, t0, 1, &[1; 100]).unwrap();
            }
        }
        let parts = [0, 1, 2, 3];
        let d = acc.drain(1, &parts, t0);
        let got: Vec<i32> = d.iter().map(|b| b.partition).collect();
        assert_eq!(got, vec![0, 1], "two ~810-byte batches fit in 2000 bytes, not three");
        let d = acc.drain(1, &parts, t0);
        let got: Vec<i32> = d.iter().map(|b| b.partition).collect();
        assert_eq!(got, vec![2, 3], "the next drain starts further along");
        // The first batch always goes, even when over max.request.size.
        let mut c = cfg(10_000, 0);
        c.max_request_size = 10;
        let mut acc = Accumulator::new(c);
        acc.append(0, t0, 1, &[1; 100]).unwrap();
        assert_eq!(acc.drain(0, &[0], t0).len(), 1);
    }

    #[test]
    fn buffer_accounting_and_retries() {
        let t0 = Instant::now();
        let mut acc = Accumulator::new(cfg(16_384, 0));
        acc.append(0, t0, 1, &[1; 100]).unwrap();
        acc.append(0, t0, 1, &[1; 100]).unwrap();
        let held = acc.buffered();
        assert!(held > 200 && held < 300, "{held}");
        let b = acc.drain(0, &[0], t0).pop().unwrap();
        assert_eq!(b.buffered_bytes, held);
        let built = b.build().unwrap();
        // An error: back to the front, not ready before the backoff.
        acc.reenqueue(built.clone(), t0);
        assert_eq!(acc.ready(&[0], t0), Err(Some(t0 + Duration::from_millis(100))));
        assert!(acc.drain(0, &[0], t0).is_empty());
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(acc.ready(&[0], t1), Ok(()));
        let again = acc.drain(0, &[0], t1).pop().unwrap();
        assert_eq!(again.attempts, 1);
        let again = again.build().unwrap();
        assert_eq!(again.bytes, built.bytes, "a retry resends the same batch");
        acc.release(again.buffered_bytes);
        assert_eq!(acc.buffered(), 0);
    }

    #[test]
    fn compressed_batches_fill_up_to_batch_size_once_the_ratio_is_learnt() {
        let t0 = Instant::now();
        let mut c = cfg(16_384, 1000);
        c.compression = Compression::Zstd;
        let mut acc = Accumulator::new(c);
        let mut payloads = Payloads::new(100, 1);
        let mut sizes = Vec::new();
        // Like Java's estimator, the ratio improves by 0.005 per batch.
        for _ in 0..150 {
            while acc.ready(&[0], t0).is_err() {
                acc.append(0, t0, 1, payloads.next(0)).unwrap();
            }
            let built = acc.drain(0, &[0], t0).pop().unwrap().build().unwrap();
            acc.observe(&built);
            sizes.push(built.bytes.len());
        }
        assert!(acc.compression_ratio() < 0.9, "letters compress: {}", acc.compression_ratio());
        let last = *sizes.last().unwrap();
        assert!(last > 12_000 && last <= 16_384, "{sizes:?}");
    }

    #[test]
    fn an_idempotent_producer_numbers_batches_and_retries_them_in_order() {
        let t0 = Instant::now();
        let mut c = cfg(16_384, 0);
        c.producer = Some((42, 3));
        let mut acc = Accumulator::new(c);
        let mut built = Vec::new();
        for n in [3, 2, 4] {
            for _ in 0..n {
                acc.append(0, t0, 1, &[1; 10]).unwrap();
            }
            built.push(acc.drain(0, &[0], t0).pop().unwrap().build().unwrap());
        }
        let seqs: Vec<i32> = built.iter().map(|b| BatchHeader::parse(&b.bytes).unwrap().base_sequence).collect();
        assert_eq!(seqs, vec![0, 3, 5]);
        let h = BatchHeader::parse(&built[0].bytes).unwrap();
        assert_eq!((h.producer_id, h.producer_epoch), (42, 3));
        // A newer record waits in an open batch; the two failed batches come back in order.
        acc.append(0, t0, 1, &[1; 10]).unwrap();
        acc.reenqueue(built[2].clone(), t0);
        acc.reenqueue(built[1].clone(), t0);
        let t1 = t0 + Duration::from_millis(100);
        let again: Vec<i32> = (0..3)
            .map(|_| {
                let b = acc.drain(0, &[0], t1).pop().unwrap().build().unwrap();
                BatchHeader::parse(&b.bytes).unwrap().base_sequence
            })
            .collect();
        assert_eq!(again, vec![3, 5, 9]);
    }

    #[test]
    fn partitioners() {
        let mut rr = PartitionChooser::new(vec![0, 1, 2], None);
        let got: Vec<i32> = (0..6).map(|_| rr.next(10)).collect();
        assert_eq!(got, vec![0, 1, 2, 0, 1, 2]);
        let mut sticky = PartitionChooser::new(vec![4, 5], Some(100));
        let got: Vec<i32> = (0..12).map(|_| sticky.next(30)).collect();
        assert_eq!(got, vec![4, 4, 4, 4, 5, 5, 5, 5, 4, 4, 4, 4]);
    }

    #[test]
    fn pacing() {
        let t0 = Instant::now();
        assert_eq!(Pacer::new(t0, 0.0).due(5), None);
        let p = Pacer::new(t0, 1000.0);
        assert_eq!(p.due(0), Some(t0));
        assert_eq!(p.due(1500), Some(t0 + Duration::from_millis(1500)));
    }

    #[test]
    fn payloads_carry_the_time_and_letters() {
        let mut p = Payloads::new(64, 42);
        let a = p.next(123_456_789).to_vec();
        let b = p.next(5).to_vec();
        assert_eq!(a.len(), 64);
        assert_eq!(value_timestamp(&a), Some(123_456_789));
        assert_eq!(value_timestamp(&b), Some(5));
        assert!(a[8..].iter().all(|c| c.is_ascii_uppercase()));
        assert_ne!(a[8..], b[8..]);
        let mut small = Payloads::new(4, 1);
        assert_eq!(small.next(9).len(), 4);
        assert_eq!(value_timestamp(small.next(9)), None);
    }
}
