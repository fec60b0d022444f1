//! `flush_when_idle`: the open object is written at once when no object write
//! is in flight, and what arrives during a write goes out when it finishes
//! (group commit) — never waiting for `flush_ms`.

mod common;

use common::{batch, Harness};
use strata_core::broker::BrokerConfig;
use strata_core::io::{Input, Output};
use strata_core::log::commit::CommitBody;
use strata_proto::codec::header::RequestHeader;
use strata_proto::messages::produce_request::{PartitionProduceData, TopicProduceData};
use strata_proto::messages::ProduceRequest;
use strata_proto::RequestBody;

fn produce(h: &mut Harness, request: u64, value: &str) -> Vec<Output> {
    let body: RequestBody = ProduceRequest {
        acks: -1,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: "t".into(),
            partition_data: vec![PartitionProduceData { index: 0, records: Some(batch(&[value], None)) }],
            ..Default::default()
        }],
        ..Default::default()
    }
    .into();
    let header = RequestHeader { api_key: body.api_key() as i16, api_version: 9, correlation_id: request as i32, client_id: None };
    let mut out = Vec::new();
    h.broker.handle(h.now, Input::Request { conn: 1, request, header, body, size: 0 }, &mut out);
    out
}

fn writes(out: &[Output]) -> Vec<u64> {
    out.iter().filter_map(|o| if let Output::WriteObject { write, .. } = o { Some(*write) } else { None }).collect()
}

#[test]
fn an_idle_broker_writes_at_once_and_a_busy_one_gathers_until_the_write_is_done() {
    let cfg = BrokerConfig { flush_when_idle: true, flush_ms: 1000, ..BrokerConfig::for_tests() };
    let mut h = Harness::with_config(cfg);
    h.create_topic("t", 1);

    // Idle: the first produce is written without waiting for flush_ms.
    let out = produce(&mut h, 100, "a");
    let first = writes(&out);
    assert_eq!(first.len(), 1, "{out:?}");

    // While it is being written, more produces wait in the open object.
    for (i, v) in ["b", "c", "d"].iter().enumerate() {
        let out = produce(&mut h, 101 + i as u64, v);
        assert!(writes(&out).is_empty(), "{out:?}");
    }

    // The write finishes: its commit is proposed and the gathered batches go out as one object.
    let mut out = Vec::new();
    h.broker.handle(h.now, Input::ObjectWritten { write: first[0], result: Ok(()) }, &mut out);
    assert!(out.iter().any(|o| matches!(o, Output::Append { .. })), "{out:?}");
    let second = writes(&out);
    assert_eq!(second.len(), 1, "{out:?}");
    let size = out.iter().find_map(|o| if let Output::WriteObject { bytes, .. } = o { Some(bytes.len()) } else { None });
    assert!(size.unwrap() > 3 * batch(&["b"], None).len(), "the three batches share one object");

    // Nothing open, nothing written on the next write's completion.
    let mut out = Vec::new();
    h.broker.handle(h.now, Input::ObjectWritten { write: second[0], result: Ok(()) }, &mut out);
    assert!(writes(&out).is_empty(), "{out:?}");
}

#[test]
fn without_it_the_open_object_waits_for_flush_ms() {
    let cfg = BrokerConfig { flush_when_idle: false, flush_ms: 1000, ..BrokerConfig::for_tests() };
    let mut h = Harness::with_config(cfg);
    h.create_topic("t", 1);
    let out = produce(&mut h, 100, "a");
    assert!(writes(&out).is_empty(), "{out:?}");
    assert!(out.iter().any(|o| matches!(o, Output::SetTimer { .. })), "{out:?}");
}

#[test]
fn with_concurrency_two_a_second_write_starts_at_once_and_commits_keep_flush_order() {
    let cfg = BrokerConfig { flush_when_idle: true, flush_concurrency: 2, flush_ms: 1000, ..BrokerConfig::for_tests() };
    let mut h = Harness::with_config(cfg);
    h.create_topic("t", 1);

    let (first, second) = (produce(&mut h, 100, "a"), produce(&mut h, 101, "b"));
    let (first, second) = (written_keys(&first), written_keys(&second));
    assert_eq!((first.len(), second.len()), (1, 1), "two writes in flight");
    // Two in flight: the next batch waits in the open object.
    assert!(writes(&produce(&mut h, 102, "c")).is_empty());

    // The second write finishes first: its commit waits for the first's (an
    // idempotent producer's batches reach the apply in order), but its slot
    // frees, so the open object goes out.
    let mut out = Vec::new();
    h.broker.handle(h.now, Input::ObjectWritten { write: second[0].0, result: Ok(()) }, &mut out);
    assert!(appended_keys(&out).is_empty(), "{out:?}");
    assert_eq!(writes(&out).len(), 1, "{out:?}");

    let mut out = Vec::new();
    h.broker.handle(h.now, Input::ObjectWritten { write: first[0].0, result: Ok(()) }, &mut out);
    assert_eq!(appended_keys(&out), vec![first[0].1.clone(), second[0].1.clone()], "commits in flush order");
}

fn written_keys(out: &[Output]) -> Vec<(u64, String)> {
    out.iter().filter_map(|o| if let Output::WriteObject { write, key, .. } = o { Some((*write, key.clone())) } else { None }).collect()
}

fn appended_keys(out: &[Output]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            Output::Append { commit, .. } => match &commit.body {
                CommitBody::Object { key, .. } => Some(key.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}
