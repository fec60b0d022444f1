//! The checkers: run on the history and the final state after each seed.
//! Invariants of DESIGN.md: 1 (acknowledged records never lost), 2 (dense
//! offsets, the same bytes from every broker), 3 (idempotent retries never
//! duplicate, never leave gaps), 4 (consumers see a prefix), 8 (no panic; a
//! panic is reported by the harness).

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use crate::history::Inner;

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
    out
}
