//! Starting a broker from a snapshot and reloading one in place: same state,
//! same fetches, and nothing left hanging on the commits the snapshot skipped.

mod common;

use common::{batch, records_of, Harness};
use strata_core::broker::{Broker, BrokerConfig};
use strata_core::error_code as ec;
use strata_core::io::{AppendResult, Input, Output};
use strata_core::log::commit::Commit;
use strata_core::log::snapshot;
use strata_core::log::state::LogState;
use strata_proto::codec::header::RequestHeader;
use strata_proto::messages::*;
use strata_proto::{ApiKey, ResponseBody};

fn produce_some(h: &mut Harness) {
    h.create_topic("t", 2);
    for i in 0..5 {
        let v = format!("v{i}");
        h.produce("t", i % 2, batch(&[v.as_str(), "x"], None), -1);
    }
}

#[test]
fn a_broker_started_from_a_snapshot_plus_the_tail_equals_one_that_replayed_everything() {
    let mut h = Harness::new();
    produce_some(&mut h);
    let (at, bytes) = h.broker.snapshot();
    assert_eq!(at, h.log.len() as u64);
    h.produce("t", 0, batch(&["after"], None), -1);

    let state = snapshot::decode(bytes).unwrap();
    let mut other = Broker::from_snapshot(BrokerConfig { incarnation: 99, ..BrokerConfig::for_tests() }, state);
    let mut out = Vec::new();
    for (i, c) in h.log.iter().enumerate().skip(at as usize) {
        other.handle(0, Input::Applied { revision: i as u64 + 1, commit: Commit::decode(c.clone()).unwrap() }, &mut out);
    }
    assert_eq!(other.log(), h.broker.log());
    assert_eq!(other.log().digest(), h.broker.log().digest());
    // And it serves the same records at the same offsets.
    let before = records_of(&h.fetch("t", 0, 0, 1 << 20));
    let mut h2 = Harness { broker: other, ..Harness::new() };
    h2.objects = h.objects.clone();
    h2.log = h.log.clone();
    assert_eq!(records_of(&h2.fetch("t", 0, 0, 1 << 20)), before);
    assert!(before.iter().any(|(_, v)| v == "after"));
}

#[test]
fn reloading_a_newer_snapshot_replaces_the_state_and_fails_what_it_skipped() {
    let mut h = Harness::new();
    produce_some(&mut h);
    // A lagging broker: it applied only the first commit.
    let mut b = Broker::new(BrokerConfig { incarnation: 5, ..BrokerConfig::for_tests() });
    let mut out = Vec::new();
    b.handle(0, Input::Applied { revision: 1, commit: Commit::decode(h.log[0].clone()).unwrap() }, &mut out);
    // It proposes a producer id; the append lands at a revision the snapshot will cover.
    out.clear();
    let header = RequestHeader { api_key: ApiKey::InitProducerId as i16, api_version: 4, correlation_id: 9, client_id: None };
    b.handle(0, Input::Request { conn: 1, request: 0, header, body: InitProducerIdRequest::default().into(), size: 0 }, &mut out);
    let Some(Output::Append { append, commit }) = out.pop() else { panic!("an append") };
    out.clear(); // (the proposal's deadline timer)
    h.log.push(commit.encode());
    let rev = h.log.len() as u64;
    b.handle(0, Input::Appended { append, result: AppendResult::Ok(rev) }, &mut out);
    assert!(out.is_empty());
    // Rebuild the state at `rev` (what the snapshotter would have published).
    let mut full = Broker::new(BrokerConfig::for_tests());
    for (i, c) in h.log.iter().enumerate() {
        full.handle(0, Input::Applied { revision: i as u64 + 1, commit: Commit::decode(c.clone()).unwrap() }, &mut Vec::new());
    }
    let state = snapshot::decode(full.snapshot().1).unwrap();
    // A snapshot no newer than what it applied is refused.
    assert!(!b.reload(LogState { revision: 1, ..state.clone() }, &mut out));
    assert!(b.reload(state.clone(), &mut out));
    assert_eq!(b.log(), &state);
    let Some(Output::Respond { body: ResponseBody::InitProducerId(r), .. }) = out.pop() else { panic!("an answer") };
    assert_eq!(r.error_code, ec::KAFKA_STORAGE_ERROR);
    assert!(!b.reload(state, &mut out));
}
