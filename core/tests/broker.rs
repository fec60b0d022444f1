//! The broker core driven by an in-memory harness: a map for the object store,
//! a vector for the sequencer, a clock we move by hand. Produce, fetch, list
//! offsets, idempotence and metadata, end to end through the real apply.

mod common;

use bytes::Bytes;
use common::{batch, records_of, Harness};
use strata_core::broker::{Broker, BrokerConfig};
use strata_core::error_code as ec;
use strata_core::io::Input;
use strata_core::log::commit::{Commit, CommitBody};
use strata_proto::messages::fetch_request::{FetchPartition, FetchTopic};
use strata_proto::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use strata_proto::messages::metadata_request::MetadataRequestTopic;
use strata_proto::messages::produce_request::{PartitionProduceData, TopicProduceData};
use strata_proto::messages::*;
use strata_proto::records::{BatchBuilder, Compression};
use strata_proto::{ApiKey, ResponseBody};

#[test]
fn produce_then_fetch_returns_records_at_their_applied_offsets() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    let p1 = h.produce("t", 0, batch(&["a", "b", "c"], None), -1);
    assert_eq!(p1.responses[0].partition_responses[0].error_code, ec::NONE);
    assert_eq!(p1.responses[0].partition_responses[0].base_offset, 0);
    let p2 = h.produce("t", 0, batch(&["d", "e"], None), 1);
    assert_eq!(p2.responses[0].partition_responses[0].base_offset, 3);

    let f = h.fetch("t", 0, 0, 1 << 20);
    let part = &f.responses[0].partitions[0];
    assert_eq!(part.error_code, ec::NONE);
    assert_eq!(part.high_watermark, 5);
    let got = records_of(&f);
    let want: Vec<(i64, String)> = ["a", "b", "c", "d", "e"].iter().enumerate().map(|(i, v)| (i as i64, v.to_string())).collect();
    assert_eq!(got, want);

    // From the middle of the second batch: the whole batch comes back.
    let f = h.fetch("t", 0, 4, 1 << 20);
    assert_eq!(records_of(&f), vec![(3, "d".into()), (4, "e".into())]);
    // At the end: no data, no error.
    let f = h.fetch("t", 0, 5, 1 << 20);
    assert!(records_of(&f).is_empty());
    assert_eq!(f.responses[0].partitions[0].error_code, ec::NONE);
    // Past the end: out of range.
    let f = h.fetch("t", 0, 6, 1 << 20);
    assert_eq!(f.responses[0].partitions[0].error_code, ec::OFFSET_OUT_OF_RANGE);
}

#[test]
fn fetch_reads_from_the_object_store_when_the_object_left_memory() {
    let mut cfg = BrokerConfig::for_tests();
    cfg.recent_object_bytes = 0;
    let mut h = Harness::new();
    h.broker = Broker::new(cfg);
    h.create_topic("t", 1);
    h.produce("t", 0, batch(&["x", "y"], None), -1);
    h.produce("t", 0, batch(&["z"], None), -1);
    let f = h.fetch("t", 0, 0, 1 << 20);
    assert_eq!(records_of(&f), vec![(0, "x".into()), (1, "y".into()), (2, "z".into())]);
}

#[test]
fn idempotent_retries_get_the_original_offset_and_gaps_are_refused() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    let ResponseBody::InitProducerId(ip) = h.call(4, InitProducerIdRequest { transactional_id: None, ..Default::default() }.into()) else { panic!() };
    assert_eq!(ip.error_code, ec::NONE);
    let pid = ip.producer_id;
    let first = batch(&["a", "b"], Some((pid, 0, 0)));
    let p = h.produce("t", 0, first.clone(), -1);
    assert_eq!(p.responses[0].partition_responses[0].base_offset, 0);
    // The same batch again (a retry): same offset, no new records.
    let p = h.produce("t", 0, first, -1);
    assert_eq!(p.responses[0].partition_responses[0].error_code, ec::NONE);
    assert_eq!(p.responses[0].partition_responses[0].base_offset, 0);
    // A gap in the sequence.
    let p = h.produce("t", 0, batch(&["z"], Some((pid, 0, 5))), -1);
    assert_eq!(p.responses[0].partition_responses[0].error_code, ec::OUT_OF_ORDER_SEQUENCE_NUMBER);
    // The next one in order.
    let p = h.produce("t", 0, batch(&["c"], Some((pid, 0, 2))), -1);
    assert_eq!(p.responses[0].partition_responses[0].base_offset, 2);
    // A bumped epoch must restart at sequence 0; then the old epoch is fenced.
    let p = h.produce("t", 0, batch(&["d"], Some((pid, 1, 7))), -1);
    assert_eq!(p.responses[0].partition_responses[0].error_code, ec::OUT_OF_ORDER_SEQUENCE_NUMBER);
    let p = h.produce("t", 0, batch(&["d"], Some((pid, 1, 0))), -1);
    assert_eq!(p.responses[0].partition_responses[0].base_offset, 3);
    let p = h.produce("t", 0, batch(&["e"], Some((pid, 0, 3))), -1);
    assert_eq!(p.responses[0].partition_responses[0].error_code, ec::INVALID_PRODUCER_EPOCH);
    let f = h.fetch("t", 0, 0, 1 << 20);
    assert_eq!(f.responses[0].partitions[0].high_watermark, 4);
    let values: Vec<String> = records_of(&f).into_iter().map(|(_, v)| v).collect();
    assert_eq!(values, ["a", "b", "c", "d"]);
}

#[test]
fn produce_errors_are_per_partition() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    let p = h.produce("nope", 0, batch(&["a"], None), -1);
    assert_eq!(p.responses[0].partition_responses[0].error_code, ec::UNKNOWN_TOPIC_OR_PARTITION);
    let p = h.produce("t", 7, batch(&["a"], None), -1);
    assert_eq!(p.responses[0].partition_responses[0].error_code, ec::UNKNOWN_TOPIC_OR_PARTITION);
    let mut corrupt = batch(&["a"], None).to_vec();
    let n = corrupt.len();
    corrupt[n - 1] ^= 0xff;
    let p = h.produce("t", 0, Bytes::from(corrupt), -1);
    assert_eq!(p.responses[0].partition_responses[0].error_code, ec::CORRUPT_MESSAGE);
    let p = h.produce("t", 0, batch(&["a"], None), 2);
    assert_eq!(p.responses[0].partition_responses[0].error_code, ec::INVALID_REQUIRED_ACKS);
}

#[test]
fn a_failed_object_write_fails_its_requests_with_a_retriable_error_and_stores_nothing() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    h.fail_writes = true;
    let p = h.produce("t", 0, batch(&["a"], None), -1);
    assert_eq!(p.responses[0].partition_responses[0].error_code, ec::KAFKA_STORAGE_ERROR);
    h.fail_writes = false;
    let p = h.produce("t", 0, batch(&["b"], None), -1);
    assert_eq!(p.responses[0].partition_responses[0].base_offset, 0);
}

/// A batch whose records carry these timestamps (CreateTime).
fn batch_at_times(times: &[i64]) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    for (i, t) in times.iter().enumerate() {
        b.push(*t, Some(b"k"), Some(format!("v{i}").as_bytes()), &[]).unwrap();
    }
    b.build().unwrap()
}

fn list_offset(h: &mut Harness, ts: i64) -> (i64, i64) {
    let req = ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic { name: "t".into(), partitions: vec![ListOffsetsPartition { partition_index: 0, timestamp: ts, ..Default::default() }] }],
        ..Default::default()
    };
    let ResponseBody::ListOffsets(r) = h.call(7, req.into()) else { panic!() };
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, ec::NONE);
    (p.offset, p.timestamp)
}

#[test]
fn list_offsets_earliest_latest_and_by_timestamp_to_the_record() {
    for in_memory in [true, false] {
        let mut cfg = BrokerConfig::for_tests();
        if !in_memory {
            cfg.recent_object_bytes = 0; // answers need a ranged read of the batch
        }
        let mut h = Harness::with_config(cfg);
        h.create_topic("t", 1);
        h.produce("t", 0, batch_at_times(&[1000, 2000, 3000, 20000, 5000]), -1);
        h.produce("t", 0, batch_at_times(&[6000, 7000]), -1);
        assert_eq!(list_offset(&mut h, -2).0, 0);
        assert_eq!(list_offset(&mut h, -1).0, 7);
        // The first record at or after the target, inside a batch.
        assert_eq!(list_offset(&mut h, 2500), (2, 3000));
        assert_eq!(list_offset(&mut h, 0), (0, 1000));
        assert_eq!(list_offset(&mut h, 5500), (3, 20000));
        assert_eq!(list_offset(&mut h, 20001), (-1, -1));
        // Max timestamp: the record that carries it.
        assert_eq!(list_offset(&mut h, -3), (3, 20000));
    }
}

#[test]
fn log_append_time_topics_stamp_batches_with_the_broker_time() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    let mut configs = std::collections::BTreeMap::new();
    configs.insert("message.timestamp.type".to_string(), "LogAppendTime".to_string());
    h.set_topic_configs("t", configs);
    h.now = 1_700_000_000_000;
    let p = h.produce("t", 0, batch_at_times(&[5, 6]), -1);
    let pr = &p.responses[0].partition_responses[0];
    assert_eq!(pr.error_code, ec::NONE);
    assert_eq!(pr.log_append_time_ms, 1_700_000_000_000);
    let f = h.fetch("t", 0, 0, 1 << 20);
    let data = f.responses[0].partitions[0].records.clone().unwrap();
    let b = strata_proto::records::RecordBatch::parse(data).unwrap();
    b.verify_crc().unwrap();
    assert_eq!(b.header().attributes.timestamp_type(), strata_proto::records::TimestampType::LogAppendTime);
    assert_eq!(b.header().max_timestamp, 1_700_000_000_000);
}

#[test]
fn batches_whose_offsets_and_record_count_disagree_are_refused() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    let good = batch_at_times(&[1, 2, 3]);
    // Claim 5 records where the offsets say 3 (the count is at bytes 57..61, inside the CRC).
    let mut bad = good.to_vec();
    bad[57..61].copy_from_slice(&5i32.to_be_bytes());
    let crc = crc32c::crc32c(&bad[21..]);
    bad[17..21].copy_from_slice(&crc.to_be_bytes());
    let p = h.produce("t", 0, Bytes::from(bad), -1);
    assert_eq!(p.responses[0].partition_responses[0].error_code, ec::INVALID_RECORD);
    let f = h.fetch("t", 0, 0, 1 << 20);
    assert_eq!(f.responses[0].partitions[0].high_watermark, 0, "nothing was stored");
}

#[test]
fn long_poll_fetch_is_woken_by_the_apply() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    let req = FetchRequest {
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 1 << 20,
        topics: vec![FetchTopic {
            topic: "t".into(),
            partitions: vec![FetchPartition { partition: 0, fetch_offset: 0, partition_max_bytes: 1 << 20, ..Default::default() }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = h.send(12, req.into());
    h.advance(10);
    assert!(h.take(r).is_none(), "the fetch waits for data");
    h.produce("t", 0, batch(&["late"], None), 1);
    let Some(ResponseBody::Fetch(f)) = h.take(r) else { panic!("woken by the apply") };
    assert_eq!(records_of(&f), vec![(0, "late".into())]);
}

#[test]
fn metadata_auto_creates_and_lists_topics() {
    let mut h = Harness::new();
    h.auto_create_topic("orders");
    let ResponseBody::Metadata(m) = h.call(12, MetadataRequest { topics: None, ..Default::default() }.into()) else { panic!() };
    assert_eq!(m.brokers.len(), 1);
    assert_eq!(m.topics.len(), 1);
    assert_eq!(m.topics[0].name.as_deref(), Some("orders"));
    assert!(!m.topics[0].topic_id.is_zero());
    let bad = MetadataRequest { topics: Some(vec![MetadataRequestTopic { name: Some("bad name".into()), ..Default::default() }]), allow_auto_topic_creation: true, ..Default::default() };
    let ResponseBody::Metadata(m) = h.call(12, bad.into()) else { panic!() };
    assert_eq!(m.topics[0].error_code, ec::INVALID_TOPIC_EXCEPTION);
    let no_create = MetadataRequest { topics: Some(vec![MetadataRequestTopic { name: Some("other".into()), ..Default::default() }]), allow_auto_topic_creation: false, ..Default::default() };
    let ResponseBody::Metadata(m) = h.call(12, no_create.into()) else { panic!() };
    assert_eq!(m.topics[0].error_code, ec::UNKNOWN_TOPIC_OR_PARTITION);
}

#[test]
fn the_same_commits_give_the_same_state_on_another_broker() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    for i in 0..20 {
        h.produce("t", 0, batch(&[&format!("v{i}")], Some((0, 0, i))), -1);
    }
    // A second broker (another node) applies the same log: same state, byte for byte.
    let mut cfg = BrokerConfig::for_tests();
    cfg.node_id = 2;
    let mut other = Broker::new(cfg);
    for (i, c) in h.log.iter().enumerate() {
        let mut out = Vec::new();
        other.handle(0, Input::Applied { revision: i as u64 + 1, commit: Commit::decode(c.clone()).unwrap() }, &mut out);
    }
    assert_eq!(other.log().digest(), h.broker.log().digest());
    assert_eq!(other.log(), h.broker.log());
    // Replaying a commit again (a watch reconnect) changes nothing.
    let before = other.log().digest();
    let mut out = Vec::new();
    other.handle(0, Input::Applied { revision: 3, commit: Commit::decode(h.log[2].clone()).unwrap() }, &mut out);
    assert_eq!(other.log().digest(), before);
    let _ = ApiKey::Produce;
}

#[test]
fn a_proposal_whose_revision_was_applied_without_it_fails_instead_of_hanging() {
    use strata_core::io::{AppendResult, Output};
    use strata_proto::codec::header::RequestHeader;
    let mut h = Harness::new();
    h.create_topic("t", 1);
    // Drive by hand: the append lands at a revision whose record is undecodable.
    let mut b = Broker::new(BrokerConfig::for_tests());
    let mut out = Vec::new();
    for (i, c) in h.log.iter().enumerate() {
        b.handle(0, Input::Applied { revision: i as u64 + 1, commit: Commit::decode(c.clone()).unwrap() }, &mut out);
    }
    out.clear();
    let header = RequestHeader { api_key: ApiKey::InitProducerId as i16, api_version: 4, correlation_id: 9, client_id: None };
    b.handle(0, Input::Request { conn: 1, request: 0, header, body: InitProducerIdRequest::default().into(), size: 0 }, &mut out);
    let Some(Output::Append { append, .. }) = out.pop() else { panic!("an append") };
    out.clear(); // (the proposal's deadline timer)
    let next = h.log.len() as u64 + 1;
    b.handle(0, Input::Appended { append, result: AppendResult::Ok(next) }, &mut out);
    assert!(out.is_empty());
    b.handle(0, Input::Skipped { revision: next }, &mut out);
    let Some(Output::Respond { body: ResponseBody::InitProducerId(r), .. }) = out.pop() else { panic!("an answer") };
    assert_eq!(r.error_code, ec::KAFKA_STORAGE_ERROR);
}

#[test]
fn a_commit_stuck_in_the_sequencer_times_out_within_the_request_timeout_and_its_retry_is_a_duplicate() {
    // A sequencer that hangs (etcd stopped, a partition) neither fails nor
    // answers the append: the request must still be answered, retriably,
    // within the request timeout of its commit being proposed.
    let cfg = BrokerConfig { request_timeout_ms: 1_000, ..BrokerConfig::for_tests() };
    let mut h = Harness::with_config(cfg);
    h.create_topic("t", 1);
    let ResponseBody::InitProducerId(ip) = h.call(4, InitProducerIdRequest { transactional_id: None, ..Default::default() }.into()) else { panic!() };
    let first = batch(&["a", "b"], Some((ip.producer_id, 0, 0)));
    h.hold_appends = true;
    let r = h.send(9, Harness::produce_request("t", 0, first.clone(), -1).into());
    h.advance(10); // the object is written and its commit proposed
    assert_eq!(h.held.len(), 1, "the commit is stuck in the sequencer");
    h.advance(900);
    assert!(h.take(r).is_none(), "answered before the request timeout");
    h.advance(200);
    let Some(ResponseBody::Produce(p)) = h.take(r) else { panic!("no answer after the request timeout") };
    assert_eq!(p.responses[0].partition_responses[0].error_code, ec::REQUEST_TIMED_OUT);

    // The sequencer recovers and the stuck commit lands after all; the
    // client's retry of the batch gets the offset it was given, once.
    h.release_appends();
    let p = h.produce("t", 0, first, -1);
    assert_eq!(p.responses[0].partition_responses[0].error_code, ec::NONE);
    assert_eq!(p.responses[0].partition_responses[0].base_offset, 0);
    let p = h.produce("t", 0, batch(&["c"], Some((ip.producer_id, 0, 2))), -1);
    assert_eq!(p.responses[0].partition_responses[0].base_offset, 2);
    let values: Vec<String> = records_of(&h.fetch("t", 0, 0, 1 << 20)).into_iter().map(|(_, v)| v).collect();
    assert_eq!(values, ["a", "b", "c"]);
}

#[test]
fn an_object_is_cut_before_its_commit_outgrows_what_a_sequencer_takes() {
    // Flushes by size or time never come: only the commit's size can cut.
    let cfg = strata_core::broker::BrokerConfig { flush_bytes: 1 << 30, flush_ms: 1 << 40, ..strata_core::broker::BrokerConfig::for_tests() };
    let mut h = Harness::with_config(cfg);
    h.create_topic("many", 1000);
    let one = common::batch(&["x"], None);
    let records: bytes::Bytes = std::iter::repeat(one.as_ref()).take(30).flatten().copied().collect::<Vec<u8>>().into();
    let req = ProduceRequest {
        acks: -1,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: "many".into(),
            partition_data: (0..1000).map(|p| PartitionProduceData { index: p, records: Some(records.clone()) }).collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let before = h.log.len();
    let request = h.send(9, req.into());
    h.feed(strata_core::io::Input::Flush);
    let ResponseBody::Produce(r) = h.take(request).expect("answered") else { panic!() };
    for p in &r.responses[0].partition_responses {
        assert_eq!((p.error_code, p.base_offset), (0, 0), "partition {}", p.index);
    }
    // 30,000 batches: one commit would be ~1.3 MiB, over etcd's default 1.5 MiB with its keys; two fit.
    let objects: Vec<usize> = h.log[before..]
        .iter()
        .filter(|c| matches!(Commit::decode((*c).clone()).unwrap().body, CommitBody::Object { .. }))
        .map(|c| c.len())
        .collect();
    assert!(objects.len() >= 2, "{objects:?}");
    assert!(objects.iter().all(|&n| n <= 1 << 20), "every commit within 1 MiB: {objects:?}");
    assert_eq!(h.broker.log().partition("many", 999).unwrap().log_end, 30);
}
