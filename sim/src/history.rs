//! The recorded history of one seed: a textual event trail (timestamped in
//! simulated time; its digest is the determinism witness) and the structured
//! facts the checkers read.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use strata_core::log::commit::{Commit, CommitBody};

/// One event of the trail.
#[derive(Debug, Clone)]
pub struct Event {
    pub at_ms: u64,
    pub who: String,
    pub what: String,
}

/// An acknowledged produce: these values sit at `base_offset..`.
#[derive(Debug, Clone)]
pub struct Ack {
    pub producer: String,
    pub partition: i32,
    pub base_offset: i64,
    pub values: Vec<Bytes>,
    pub broker: usize,
    pub at_ms: u64,
}

/// What a consumer saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub consumer: String,
    pub broker: usize,
    pub partition: i32,
    pub offset: i64,
    pub value: Bytes,
    pub at_ms: u64,
}

/// A group member's successful SyncGroup: in `generation` it owns `partitions`.
#[derive(Debug, Clone)]
pub struct GroupSync {
    pub member: String,
    pub member_id: String,
    pub generation: i32,
    pub partitions: Vec<i32>,
    pub at_ms: u64,
    /// Position in the history's total order of client observations.
    pub order: u64,
}

/// What became of an OffsetCommit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// No answer yet.
    Pending,
    /// Answered without error.
    Acked,
    /// Answered with this error code.
    Refused(i16),
    /// No answer (connection error, timeout): it may or may not have been applied.
    Unknown(String),
}

/// One OffsetCommit a group member sent (one partition each).
#[derive(Debug, Clone)]
pub struct GroupCommitSent {
    /// Its index in `Inner::group_commits`; also in the commit's metadata.
    pub id: usize,
    pub member: String,
    pub member_id: String,
    pub generation: i32,
    pub partition: i32,
    pub offset: i64,
    /// Sent right after a stall, before the member noticed anything.
    pub after_stall: bool,
    pub sent_ms: u64,
    pub sent_order: u64,
    pub outcome: CommitOutcome,
    pub done_ms: u64,
    pub done_order: u64,
}

/// A committed offset a member read (OffsetFetch from the coordinator).
#[derive(Debug, Clone)]
pub struct GroupRead {
    pub member: String,
    pub partition: i32,
    pub offset: i64,
    pub metadata: Option<String>,
    /// When the OffsetFetch was sent: ms and place in the order of observations.
    pub sent_ms: u64,
    pub sent_order: u64,
}

/// The committed offset of a partition read after the run: (offset, metadata).
pub type FinalOffset = Result<(i64, Option<String>), String>;

/// A protocol-level problem a client noticed on the spot.
#[derive(Debug, Clone)]
pub struct Anomaly {
    pub invariant: &'static str,
    pub detail: String,
    pub partition: Option<i32>,
}

#[derive(Default)]
pub struct Inner {
    pub events: Vec<Event>,
    pub acks: Vec<Ack>,
    pub seen: Vec<Seen>,
    pub anomalies: Vec<Anomaly>,
    /// Every value an idempotent producer sent, by producer and partition, in sequence order.
    pub idempotent_sent: BTreeMap<(String, i32), Vec<Bytes>>,
    /// Values sent by producers that do not retry (may be absent, never twice).
    pub plain_sent: Vec<Bytes>,
    /// Consumer groups: successful SyncGroups, OffsetCommits sent, the final
    /// committed offsets by partition, and counters of what members did.
    pub group_syncs: Vec<GroupSync>,
    pub group_commits: Vec<GroupCommitSent>,
    pub group_reads: Vec<GroupRead>,
    pub final_offsets: BTreeMap<i32, FinalOffset>,
    /// Where in the order of observations the final offsets were read.
    pub final_offsets_order: u64,
    pub group_counts: BTreeMap<&'static str, u64>,
    /// The total order of recorded client observations (syncs, commits).
    pub order: u64,
    /// Set once the run has started (simulated ms of the start).
    pub start: Option<tokio::time::Instant>,
}

/// Shared, cloneable handle on the history.
#[derive(Clone, Default)]
pub struct History(pub Arc<Mutex<Inner>>);

impl History {
    /// Starts the clock.
    pub fn start(&self) {
        self.0.lock().unwrap().start = Some(tokio::time::Instant::now());
    }

    /// Simulated ms since the start.
    pub fn now_ms(&self) -> u64 {
        let start = self.0.lock().unwrap().start;
        start.map_or(0, |s| s.elapsed().as_millis() as u64)
    }

    /// Adds an event to the trail.
    pub fn log(&self, who: &str, what: String) {
        let at_ms = self.now_ms();
        self.0.lock().unwrap().events.push(Event { at_ms, who: who.to_owned(), what });
    }

    pub fn ack(&self, ack: Ack) {
        self.0.lock().unwrap().acks.push(ack);
    }

    pub fn seen(&self, seen: Seen) {
        self.0.lock().unwrap().seen.push(seen);
    }

    pub fn anomaly(&self, invariant: &'static str, partition: Option<i32>, detail: String) {
        self.log("checker", format!("{invariant}: {detail}"));
        self.0.lock().unwrap().anomalies.push(Anomaly { invariant, detail, partition });
    }

    /// Records a successful SyncGroup (its order and time are set here).
    pub fn group_synced(&self, mut s: GroupSync) {
        s.at_ms = self.now_ms();
        let mut inner = self.0.lock().unwrap();
        inner.order += 1;
        s.order = inner.order;
        inner.group_syncs.push(s);
    }

    /// Records an OffsetCommit about to be sent; returns its id.
    pub fn group_commit_sent(&self, mut c: GroupCommitSent) -> usize {
        c.sent_ms = self.now_ms();
        let mut inner = self.0.lock().unwrap();
        inner.order += 1;
        c.sent_order = inner.order;
        c.id = inner.group_commits.len();
        c.outcome = CommitOutcome::Pending;
        let id = c.id;
        inner.group_commits.push(c);
        id
    }

    /// Records what became of OffsetCommit `id`.
    pub fn group_commit_done(&self, id: usize, outcome: CommitOutcome) {
        let now = self.now_ms();
        let mut inner = self.0.lock().unwrap();
        inner.order += 1;
        let order = inner.order;
        if let Some(c) = inner.group_commits.get_mut(id) {
            c.outcome = outcome;
            c.done_ms = now;
            c.done_order = order;
        }
    }

    /// The next place in the order of observations (for a request about to be sent).
    pub fn next_order(&self) -> u64 {
        let mut inner = self.0.lock().unwrap();
        inner.order += 1;
        inner.order
    }

    /// Records a committed offset a member read.
    pub fn group_read(&self, r: GroupRead) {
        self.0.lock().unwrap().group_reads.push(r);
    }

    /// Counts a member's action (stall, leave, join, ...).
    pub fn group_count(&self, what: &'static str) {
        *self.0.lock().unwrap().group_counts.entry(what).or_default() += 1;
    }

    /// The digest of the whole trail.
    pub fn digest(&self) -> u64 {
        // SipHash with fixed keys: the same on every run.
        #[allow(deprecated)]
        let mut h = std::hash::SipHasher::new_with_keys(0x5354_5241_5441, 0x53_494d);
        for e in &self.0.lock().unwrap().events {
            e.at_ms.hash(&mut h);
            e.who.hash(&mut h);
            e.what.hash(&mut h);
        }
        h.finish()
    }
}

/// A short description of a sequencer record.
pub fn summarize_commit(record: &Bytes) -> String {
    match Commit::decode(record.clone()) {
        Err(e) => format!("undecodable ({e})"),
        Ok(c) => {
            let o = &c.origin;
            let body = match &c.body {
                CommitBody::Object { key, partitions, .. } => {
                    let parts: Vec<String> = partitions
                        .iter()
                        .map(|p| {
                            let seqs: Vec<String> = p
                                .batches
                                .iter()
                                .map(|b| if b.producer_id >= 0 { format!("pid{}#{}", b.producer_id, b.base_sequence) } else { format!("x{}", b.offset_count) })
                                .collect();
                            format!("p{}[{}]", p.partition, seqs.join(","))
                        })
                        .collect();
                    format!("object {key} {}", parts.join(" "))
                }
                CommitBody::FenceObjects { below } => format!("fence objects created before revision {below}"),
                other => format!("{:?}", std::mem::discriminant(other)).replace("Discriminant", "commit"),
            };
            format!("from broker {} seq {}: {body}", o.broker, o.seq)
        }
    }
}
