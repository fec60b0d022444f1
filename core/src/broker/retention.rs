//! Retention for `cleanup.policy=delete` topics: every
//! `log.retention.check.interval.ms` the broker moves each partition's log
//! start past whole extents older than `retention.ms` (by their largest
//! record timestamp, as Kafka judges segments) or beyond `retention.bytes`
//! (oldest first, while what remains is still at least `retention.bytes`).
//! The move is a DeleteRecords commit, decided again by the apply, so every
//! broker agrees; in a cluster each partition is swept by one broker (the
//! rendezvous hash of the partition). The same sweep expires producer ids
//! (see `producer_expiry`).

use super::{Broker, Proposal};
use crate::config::TopicConfig;
use crate::io::{Output, TimerId};
use crate::log::commit::CommitBody;
use crate::log::state::Partition;

/// The retention sweep's timer.
pub(crate) const TIMER_RETENTION: TimerId = 3;

impl Broker {
    /// Arms the sweep once (the first commit applied starts it).
    pub(crate) fn arm_retention(&mut self, out: &mut Vec<Output>) {
        if self.retention_armed {
            return;
        }
        self.retention_armed = true;
        let settings = self.static_settings();
        let interval = self.config_view(&settings).log_retention_check_interval_ms().max(1) as u64;
        out.push(Output::SetTimer { timer: TIMER_RETENTION, at_ms: self.now_ms + interval });
    }

    /// The sweep timer fired: propose the moves, then arm it again.
    pub(crate) fn on_retention_timer(&mut self, out: &mut Vec<Output>) {
        self.retention_armed = false;
        let settings = self.static_settings();
        let view = self.config_view(&settings);
        let now = self.now_ms as i64;
        let mut moves = Vec::new();
        for t in self.log.topics.values() {
            let cfg = TopicConfig::resolve(&t.configs, &view);
            if !cfg.cleanup_policy.delete {
                continue;
            }
            for (i, p) in t.partitions.iter().enumerate() {
                let Some(start) = retention_start(p, now, cfg.retention_ms, cfg.retention_bytes) else { continue };
                // The partition's leader sweeps it: one proposal per partition in the cluster.
                if self.leader_of(t.id, i as i32) == self.cfg.node_id {
                    moves.push((t.id, i as i32, start));
                }
            }
        }
        if !moves.is_empty() {
            self.propose(CommitBody::DeleteRecords(moves), Proposal::Retention, out);
        }
        if let Some(expire) = self.producer_expiries() {
            self.propose(expire, Proposal::Retention, out);
        }
        self.arm_retention(out);
    }
}

/// The log start retention asks for, if it is past the current one.
fn retention_start(p: &Partition, now: i64, retention_ms: i64, retention_bytes: i64) -> Option<i64> {
    let mut start = p.log_start;
    let mut remaining = p.size_bytes;
    for e in &p.extents {
        let expired = retention_ms >= 0 && e.max_timestamp < now.saturating_sub(retention_ms);
        let oversize = retention_bytes >= 0 && remaining.saturating_sub(e.length) >= retention_bytes as u64;
        if !(expired || oversize) {
            break;
        }
        start = start.max(e.end_offset);
        remaining = remaining.saturating_sub(e.length);
    }
    (start > p.log_start).then_some(start)
}
