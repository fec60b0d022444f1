//! The checkers: run on the history and the final state after each seed.
//! Invariants of DESIGN.md: 1 (acknowledged records never lost), 2 (dense
//! offsets, the same bytes from every broker), 3 (idempotent retries never
//! duplicate, never leave gaps), 4 (consumers see a prefix), 5 (one owner
//! per partition in a generation; fenced members cannot commit), 6 (committed
//! offsets survive broker loss), 8 (no panic; a panic is reported by the
//! harness).

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use strata_core::error_code as ec;

use crate::history::{CommitOutcome, GroupCommitSent, Inner};

/// One broken invariant.
#[derive(Debug, Clone)]
pub struct Violation {
    pub invariant: String,
    pub detail: String,
    /// Strings that pick the relevant events out of the trail.
    pub keys: Vec<String>,
}

impl Violation {
    fn new(invariant: &str, detail: String, keys: Vec<String>) -> Self {
        Violation { invariant: invariant.into(), detail, keys }
    }
}

/// What the final reader got from one broker, per partition.
pub type BrokerRead = BTreeMap<i32, Result<(i64, Vec<(i64, Bytes)>), String>>;

fn show(v: &Bytes) -> String {
    String::from_utf8_lossy(v).into_owned()
}

/// Checks everything. `reference` is each partition's log end by replaying
/// the sequencer's log through the apply.
pub fn check(h: &Inner, reads: &[BrokerRead], reference: &BTreeMap<i32, i64>, partitions: i32) -> Vec<Violation> {
    let mut out = Vec::new();
    for a in &h.anomalies {
        let keys = a.partition.map(|p| vec![format!("p{p}")]).unwrap_or_default();
        out.push(Violation::new(a.invariant, a.detail.clone(), keys));
    }
    // The canonical log per partition: the first broker that could serve it.
    let mut canon: BTreeMap<i32, Vec<(i64, Bytes)>> = BTreeMap::new();
    for p in 0..partitions {
        let pk = vec![format!("p{p}")];
        let mut first: Option<(usize, i64, &Vec<(i64, Bytes)>)> = None;
        for (b, read) in reads.iter().enumerate() {
            match read.get(&p) {
                None => {}
                Some(Err(e)) => out.push(Violation::new(
                    "1 (acknowledged records readable from every broker)",
                    format!("broker {b} cannot serve p{p}: {e}"),
                    pk.clone(),
                )),
                Some(Ok((hw, records))) => {
                    // Dense: offsets 0, 1, 2, ... up to the high watermark.
                    for (i, (o, v)) in records.iter().enumerate() {
                        if *o != i as i64 {
                            out.push(Violation::new(
                                "2 (dense, increasing offsets)",
                                format!("broker {b} p{p}: record {i} has offset {o} ({})", show(v)),
                                pk.clone(),
                            ));
                            break;
                        }
                    }
                    if records.len() as i64 != *hw {
                        out.push(Violation::new(
                            "2 (dense, increasing offsets)",
                            format!("broker {b} p{p}: {} records below high watermark {hw}", records.len()),
                            pk.clone(),
                        ));
                    }
                    if let Some(&end) = reference.get(&p) {
                        if *hw != end {
                            out.push(Violation::new(
                                "2 (every broker applies the sequencer's log)",
                                format!("broker {b} p{p}: high watermark {hw}, the sequencer's log gives {end}"),
                                pk.clone(),
                            ));
                        }
                    }
                    match first {
                        None => first = Some((b, *hw, records)),
                        Some((fb, _, frecs)) => {
                            let n = frecs.len().min(records.len());
                            if let Some(i) = (0..n).find(|&i| frecs[i] != records[i]) {
                                out.push(Violation::new(
                                    "2 (same bytes for an offset from every broker)",
                                    format!(
                                        "p{p} offset {}: broker {fb} has {}, broker {b} has {}",
                                        frecs[i].0,
                                        show(&frecs[i].1),
                                        show(&records[i].1)
                                    ),
                                    vec![show(&frecs[i].1), show(&records[i].1)],
                                ));
                            } else if frecs.len() != records.len() {
                                out.push(Violation::new(
                                    "2 (same bytes for an offset from every broker)",
                                    format!("p{p}: broker {fb} has {} records, broker {b} has {}", frecs.len(), records.len()),
                                    pk.clone(),
                                ));
                            }
                        }
                    }
                }
            }
        }
        if let Some((_, _, recs)) = first {
            canon.insert(p, recs.clone());
        }
    }

    // Where each value sits in the canonical logs.
    let mut at: HashMap<&Bytes, Vec<(i32, i64)>> = HashMap::new();
    for (p, recs) in &canon {
        for (o, v) in recs {
            at.entry(v).or_default().push((*p, *o));
        }
    }

    // 1: every acknowledged record is at its acknowledged offset.
    for ack in &h.acks {
        let Some(recs) = canon.get(&ack.partition) else { continue };
        for (i, v) in ack.values.iter().enumerate() {
            let o = ack.base_offset + i as i64;
            let found = usize::try_from(o).ok().and_then(|o| recs.get(o)).map(|(_, v)| v);
            if found != Some(v) {
                out.push(Violation::new(
                    "1 (an acknowledged produce is never lost)",
                    format!(
                        "{} acknowledged by broker {} at p{} offset {o} at {} ms; the log has {} there; it is at {:?}",
                        show(v),
                        ack.broker,
                        ack.partition,
                        ack.at_ms,
                        found.map_or("nothing".into(), show),
                        at.get(v).cloned().unwrap_or_default()
                    ),
                    vec![show(v)],
                ));
                break;
            }
        }
    }

    // 3: idempotent producers: each value once, in order, no gap up to the last acknowledged.
    for ((producer, p), sent) in &h.idempotent_sent {
        let last_acked = h
            .acks
            .iter()
            .filter(|a| &a.producer == producer && a.partition == *p)
            .filter_map(|a| a.values.last())
            .filter_map(|v| sent.iter().position(|s| s == v))
            .max();
        let mut prev: Option<i64> = None;
        for (i, v) in sent.iter().enumerate() {
            let places = at.get(v).cloned().unwrap_or_default();
            if places.len() > 1 {
                out.push(Violation::new(
                    "3 (idempotent retries never duplicate)",
                    format!("{} appears {} times: {places:?}", show(v), places.len()),
                    vec![show(v)],
                ));
                break;
            }
            match places.first() {
                None if last_acked.is_some_and(|k| i <= k) => {
                    out.push(Violation::new(
                        "3 (idempotent retries never leave gaps)",
                        format!("{} is missing, though a later record of {producer} on p{p} was acknowledged", show(v)),
                        vec![show(v)],
                    ));
                    break;
                }
                None => {}
                Some(&(_, o)) => {
                    if prev.is_some_and(|q| o <= q) {
                        out.push(Violation::new(
                            "3 (idempotent records keep their order)",
                            format!("{} at offset {o} after an earlier record at {}", show(v), prev.unwrap_or(-1)),
                            vec![show(v)],
                        ));
                        break;
                    }
                    prev = Some(o);
                }
            }
        }
    }
    // Records of producers that never retry appear at most once.
    for v in &h.plain_sent {
        if let Some(places) = at.get(v) {
            if places.len() > 1 {
                out.push(Violation::new(
                    "2 (a record sent once is appended once)",
                    format!("{} appears {} times: {places:?}", show(v), places.len()),
                    vec![show(v)],
                ));
                break;
            }
        }
    }

    // 4: what consumers saw is a prefix of the final log.
    for s in &h.seen {
        let Some(recs) = canon.get(&s.partition) else { continue };
        let found = usize::try_from(s.offset).ok().and_then(|o| recs.get(o)).map(|(_, v)| v);
        if found != Some(&s.value) {
            out.push(Violation::new(
                "4 (a consumer sees a prefix of the partition)",
                format!(
                    "{} read {} at p{} offset {} from broker {} at {} ms; the final log has {} there",
                    s.consumer,
                    show(&s.value),
                    s.partition,
                    s.offset,
                    s.broker,
                    s.at_ms,
                    found.map_or("nothing".into(), show)
                ),
                vec![show(&s.value), format!("p{}", s.partition)],
            ));
            break;
        }
    }
    out.extend(check_groups(h, partitions));
    out
}

/// Whether an OffsetCommit answered with `code` certainly did not take effect:
/// the coordinator refused it before proposing it, or the apply refused it
/// (NOT_COORDINATOR). COORDINATOR_NOT_AVAILABLE stands for an append that
/// failed or timed out, which may still be applied: its outcome is unknown.
fn certainly_refused(code: i16) -> bool {
    matches!(
        code,
        ec::ILLEGAL_GENERATION
            | ec::UNKNOWN_MEMBER_ID
            | ec::REBALANCE_IN_PROGRESS
            | ec::FENCED_INSTANCE_ID
            | ec::NOT_COORDINATOR
            | ec::COORDINATOR_LOAD_IN_PROGRESS
            | ec::INVALID_GROUP_ID
            | ec::UNKNOWN_TOPIC_OR_PARTITION
            | ec::OFFSET_METADATA_TOO_LARGE
    )
}

fn show_commit(c: &GroupCommitSent) -> String {
    format!(
        "commit#{} by {} ({}) gen {} p{} offset {}{}, sent at {} ms, {:?} at {} ms",
        c.id,
        c.member,
        c.member_id,
        c.generation,
        c.partition,
        c.offset,
        if c.after_stall { " right after a stall" } else { "" },
        c.sent_ms,
        c.outcome,
        c.done_ms
    )
}

/// The keys that pick a commit's events out of the trail.
fn commit_key(c: &GroupCommitSent) -> String {
    format!("commit#{} ", c.id)
}

const INV6: &str = "6 (committed offsets survive the loss of any broker)";
/// Picks broker (re)starts out of the trail (a restarted coordinator reloads the group).
const RESTARTS: &str = "started (incarnation";

/// Invariant 6 for one read of partition `p`'s committed offset (`offset`,
/// with `metadata` naming the commit it came from), sent at `sent_order`.
/// Every commit acknowledged before the read was sent is applied, so the
/// value must come from the last of those or from a commit applied after it:
/// -1 only if none was acknowledged; never from a commit certainly refused;
/// never from an acknowledged commit that another acknowledged-before-the-read
/// commit was sent after (that one was applied later: an older value came back).
fn check_committed_read(h: &Inner, p: i32, sent_order: u64, offset: i64, metadata: &Option<String>) -> Result<(), (String, Vec<String>)> {
    let acked_before: Vec<&GroupCommitSent> = h
        .group_commits
        .iter()
        .filter(|c| c.partition == p && c.outcome == CommitOutcome::Acked && c.done_order < sent_order)
        .collect();
    if offset == -1 {
        return match acked_before.iter().max_by_key(|c| c.done_order) {
            Some(a) => Err((format!("no committed offset, though {} was acknowledged before", show_commit(a)), vec![commit_key(a)])),
            None => Ok(()),
        };
    }
    let id = metadata.as_deref().and_then(|m| m.rsplit_once("commit#")).and_then(|(_, id)| id.parse::<usize>().ok());
    let Some(c) = id.and_then(|id| h.group_commits.get(id)) else {
        return Err((format!("committed offset {offset} with metadata {metadata:?} comes from no commit the members sent"), vec![]));
    };
    if c.partition != p || c.offset != offset {
        return Err((format!("committed offset {offset}, with the metadata of {}", show_commit(c)), vec![commit_key(c)]));
    }
    if matches!(c.outcome, CommitOutcome::Refused(code) if certainly_refused(code)) {
        return Err((format!("committed offset {offset} comes from a refused commit: {}", show_commit(c)), vec![commit_key(c)]));
    }
    if c.outcome == CommitOutcome::Acked {
        if let Some(later) = acked_before.iter().find(|a| a.sent_order > c.done_order) {
            return Err((
                format!(
                    "committed offset {offset} comes from {}, but {} was sent after that was acknowledged, and acknowledged before the read",
                    show_commit(c),
                    show_commit(later)
                ),
                vec![commit_key(c), commit_key(later)],
            ));
        }
    }
    Ok(())
}

/// Invariants 5 and 6 over the group members' history.
///
/// 5a: within one generation no partition is assigned to two members (over
///     successful SyncGroups), and a member's assignment in a generation is one.
/// 5b: no OffsetCommit for generation g is acknowledged if it was sent after
///     some member had completed a SyncGroup for a generation > g (a newer
///     generation exists, so g's members were fenced). "After" is the order in
///     which the simulated clients observed things (one thread: exact).
/// 6:  every committed offset read, by members during the run (across
///     coordinator restarts) and after it, reflects every commit
///     acknowledged before the read (see `check_committed_read`).
fn check_groups(h: &Inner, partitions: i32) -> Vec<Violation> {
    let mut out = Vec::new();
    // 5a.
    let mut owners: BTreeMap<i32, BTreeMap<i32, &crate::history::GroupSync>> = BTreeMap::new();
    let mut by_member: BTreeMap<(i32, &str), &crate::history::GroupSync> = BTreeMap::new();
    'syncs: for s in &h.group_syncs {
        if let Some(prev) = by_member.insert((s.generation, s.member_id.as_str()), s) {
            if prev.partitions != s.partitions {
                out.push(Violation::new(
                    "5 (one assignment per member and generation)",
                    format!(
                        "{} ({}) synced gen {} twice: partitions {:?} at {} ms, then {:?} at {} ms",
                        s.member, s.member_id, s.generation, prev.partitions, prev.at_ms, s.partitions, s.at_ms
                    ),
                    vec![format!("synced gen {}:", s.generation)],
                ));
                break 'syncs;
            }
        }
        let gen = owners.entry(s.generation).or_default();
        for p in &s.partitions {
            if let Some(other) = gen.get(p) {
                if other.member_id != s.member_id {
                    out.push(Violation::new(
                        "5 (within a generation no partition is assigned to two members)",
                        format!(
                            "gen {}: p{p} assigned to {} ({}) at {} ms and to {} ({}) at {} ms",
                            s.generation, other.member, other.member_id, other.at_ms, s.member, s.member_id, s.at_ms
                        ),
                        vec![format!("synced gen {}:", s.generation)],
                    ));
                    break 'syncs;
                }
            }
            gen.insert(*p, s);
        }
    }

    // 5b: the syncs in order; for each acknowledged commit, the first sync of a
    // newer generation completed before it was sent.
    for c in h.group_commits.iter().filter(|c| c.outcome == CommitOutcome::Acked) {
        let newer = h.group_syncs.iter().find(|s| s.generation > c.generation && s.order < c.sent_order);
        if let Some(s) = newer {
            out.push(Violation::new(
                "5 (a fenced member cannot commit offsets)",
                format!(
                    "{} was acknowledged, though {} ({}) had completed a SyncGroup for gen {} at {} ms, before it was sent",
                    show_commit(c),
                    s.member,
                    s.member_id,
                    s.generation,
                    s.at_ms
                ),
                vec![commit_key(c), format!("synced gen {}:", s.generation), format!("{} stalls", c.member)],
            ));
            break;
        }
    }

    // 6: what members read mid-run (a restarted coordinator must still have
    // every acknowledged commit), then the final reads.
    for r in &h.group_reads {
        if let Err((detail, mut keys)) = check_committed_read(h, r.partition, r.sent_order, r.offset, &r.metadata) {
            keys.push(RESTARTS.into());
            let detail = format!("{} read p{} at {} ms: {detail}", r.member, r.partition, r.sent_ms);
            out.push(Violation::new(INV6, detail, keys));
            break;
        }
    }
    for p in 0..partitions {
        let last_acked = h
            .group_commits
            .iter()
            .filter(|c| c.partition == p && c.outcome == CommitOutcome::Acked)
            .max_by_key(|c| c.done_order);
        let result = match h.final_offsets.get(&p) {
            None => continue,
            Some(Err(e)) => match last_acked {
                Some(c) => Err((
                    format!("the committed offset cannot be read: {e}; last acknowledged {}", show_commit(c)),
                    vec![commit_key(c)],
                )),
                None => Ok(()),
            },
            Some(Ok((offset, metadata))) => check_committed_read(h, p, h.final_offsets_order, *offset, metadata),
        };
        if let Err((detail, mut keys)) = result {
            keys.push(format!("final-offsets p{p}:"));
            keys.push(RESTARTS.into());
            out.push(Violation::new(INV6, format!("after the run, p{p}: {detail}"), keys));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{GroupRead, GroupSync};

    fn sync(h: &mut Inner, member: &str, generation: i32, partitions: &[i32]) {
        h.order += 1;
        let order = h.order;
        h.group_syncs.push(GroupSync {
            member: member.into(),
            member_id: format!("{member}-id"),
            generation,
            partitions: partitions.to_vec(),
            at_ms: order,
            order,
        });
    }

    /// A commit sent and answered at once; returns its id.
    fn commit(h: &mut Inner, member: &str, generation: i32, partition: i32, offset: i64, outcome: CommitOutcome) -> usize {
        let id = h.group_commits.len();
        h.order += 2;
        h.group_commits.push(GroupCommitSent {
            id,
            member: member.into(),
            member_id: format!("{member}-id"),
            generation,
            partition,
            offset,
            after_stall: false,
            sent_ms: h.order - 1,
            sent_order: h.order - 1,
            outcome,
            done_ms: h.order,
            done_order: h.order,
        });
        id
    }

    fn read(h: &mut Inner, partition: i32, offset: i64, id: Option<usize>) {
        h.order += 1;
        let order = h.order;
        let metadata = id.map(|id| format!("m gen 1 commit#{id}"));
        h.group_reads.push(GroupRead { member: "m".into(), partition, offset, metadata, sent_ms: order, sent_order: order });
    }

    fn invariants(h: &Inner) -> Vec<String> {
        check_groups(h, 1).into_iter().map(|v| v.invariant).collect()
    }

    #[test]
    fn a_good_history_passes() {
        let mut h = Inner::default();
        sync(&mut h, "a", 1, &[0]);
        let c = commit(&mut h, "a", 1, 0, 5, CommitOutcome::Acked);
        sync(&mut h, "b", 2, &[0]);
        commit(&mut h, "a", 1, 0, 7, CommitOutcome::Refused(ec::ILLEGAL_GENERATION));
        read(&mut h, 0, 5, Some(c));
        let u = commit(&mut h, "b", 2, 0, 9, CommitOutcome::Unknown("timeout".into()));
        // An unknown outcome may have been applied: either value is fine.
        read(&mut h, 0, 9, Some(u));
        h.final_offsets.insert(0, Ok((5, Some(format!("a gen 1 commit#{c}")))));
        h.order += 1;
        h.final_offsets_order = h.order;
        assert!(invariants(&h).is_empty(), "{:?}", check_groups(&h, 1));
    }

    #[test]
    fn two_owners_in_one_generation() {
        let mut h = Inner::default();
        sync(&mut h, "a", 3, &[0]);
        sync(&mut h, "b", 3, &[0]);
        assert_eq!(invariants(&h), vec!["5 (within a generation no partition is assigned to two members)"]);
    }

    #[test]
    fn a_fenced_member_commits() {
        let mut h = Inner::default();
        sync(&mut h, "a", 1, &[0]);
        sync(&mut h, "b", 2, &[0]);
        commit(&mut h, "a", 1, 0, 5, CommitOutcome::Acked);
        assert_eq!(invariants(&h), vec!["5 (a fenced member cannot commit offsets)"]);
    }

    #[test]
    fn lost_stale_and_refused_offsets() {
        // Lost: nothing committed, though a commit was acknowledged.
        let mut h = Inner::default();
        commit(&mut h, "a", 1, 0, 5, CommitOutcome::Acked);
        read(&mut h, 0, -1, None);
        assert_eq!(invariants(&h), vec![INV6]);
        // Stale: an older acknowledged value comes back.
        let mut h = Inner::default();
        let old = commit(&mut h, "a", 1, 0, 5, CommitOutcome::Acked);
        commit(&mut h, "a", 1, 0, 8, CommitOutcome::Acked);
        h.final_offsets.insert(0, Ok((5, Some(format!("a gen 1 commit#{old}")))));
        h.order += 1;
        h.final_offsets_order = h.order;
        assert_eq!(invariants(&h), vec![INV6]);
        // A refused commit took effect.
        let mut h = Inner::default();
        let refused = commit(&mut h, "a", 1, 0, 5, CommitOutcome::Refused(ec::UNKNOWN_MEMBER_ID));
        read(&mut h, 0, 5, Some(refused));
        assert_eq!(invariants(&h), vec![INV6]);
    }
}
