//! Retention: the periodic sweep moves log starts past extents older than
//! retention.ms or beyond retention.bytes, by commit, for delete-policy topics;
//! the object GC then deletes what no extent references, as well as orphans.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::Harness;
use strata_core::error_code as ec;
use strata_proto::records::{BatchBuilder, Compression};

/// The default `log.retention.check.interval.ms`.
const CHECK_INTERVAL: u64 = 300_000;

fn batch_at(ts: i64, values: &[&str]) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    for v in values {
        b.push(ts, None, Some(v.as_bytes()), &[]).unwrap();
    }
    b.build().unwrap()
}

fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn log_start(h: &Harness, topic: &str) -> i64 {
    h.broker.log().partition(topic, 0).unwrap().log_start
}

#[test]
fn records_older_than_retention_ms_go_at_the_next_sweep() {
    let mut h = Harness::new();
    h.create_topic("r", 1);
    h.set_topic_configs("r", configs(&[("retention.ms", "60000")]));
    // Two objects: an old batch, and one stamped near the sweep.
    assert_eq!(h.produce("r", 0, batch_at(1_000, &["old-1", "old-2"]), -1).responses[0].partition_responses[0].error_code, ec::NONE);
    assert_eq!(h.produce("r", 0, batch_at(290_000, &["new"]), -1).responses[0].partition_responses[0].error_code, ec::NONE);
    assert_eq!(log_start(&h, "r"), 0);
    h.advance(CHECK_INTERVAL);
    assert_eq!(log_start(&h, "r"), 2, "the old extent is past retention, the new one is not");
    let f = h.fetch("r", 0, 0, 1 << 20);
    assert_eq!(f.responses[0].partitions[0].error_code, ec::OFFSET_OUT_OF_RANGE);
    let f = h.fetch("r", 0, 2, 1 << 20);
    assert_eq!(common::records_of(&f), vec![(2, "new".to_string())]);
    // The next sweep, 5 minutes on, removes the rest.
    h.advance(CHECK_INTERVAL);
    assert_eq!(log_start(&h, "r"), 3);
}

#[test]
fn retention_bytes_keeps_the_newest_extents_and_compacted_topics_are_left_alone() {
    let mut h = Harness::new();
    h.create_topic("b", 1);
    h.create_topic("c", 1);
    h.set_topic_configs("b", configs(&[("retention.bytes", "1"), ("retention.ms", "-1")]));
    h.set_topic_configs("c", configs(&[("retention.bytes", "1"), ("retention.ms", "-1"), ("cleanup.policy", "compact")]));
    for i in 0..3 {
        let v = format!("v{i}");
        for t in ["b", "c"] {
            let mut b = BatchBuilder::new(Compression::None);
            b.push(1_000, Some(b"k"), Some(v.as_bytes()), &[]).unwrap();
            h.produce(t, 0, b.build().unwrap(), -1);
        }
    }
    h.advance(CHECK_INTERVAL);
    // Only the newest extent is kept: dropping it would leave less than 1 byte.
    assert_eq!(log_start(&h, "b"), 2);
    assert_eq!(log_start(&h, "c"), 0, "cleanup.policy=compact: retention does not delete");
}

#[test]
fn object_gc_deletes_unreferenced_objects_after_the_grace_period_and_nothing_referenced() {
    const GRACE: u64 = 60_000;
    let cfg = strata_core::broker::BrokerConfig {
        object_gc_interval_ms: 10_000,
        object_gc_grace_ms: GRACE,
        request_timeout_ms: 1_000,
        ..strata_core::broker::BrokerConfig::for_tests()
    };
    let mut h = Harness::with_config(cfg);
    h.create_topic("g", 1);
    for i in 0..3 {
        let v = format!("v{i}");
        assert_eq!(h.produce("g", 0, batch_at(1_000, &[&v]), -1).responses[0].partition_responses[0].error_code, ec::NONE);
    }
    let written: Vec<String> = h.objects.keys().cloned().collect();
    assert_eq!(written.len(), 3, "one object per produce: {written:?}");
    // An orphan: written by a flush whose commit never came (a crash between the two).
    h.objects.insert("objects/ff/9-00000000000000aa-0000000001-r1".into(), Bytes::from_static(b"orphan"));
    h.written_at.insert("objects/ff/9-00000000000000aa-0000000001-r1".into(), h.now);
    // Something that is not an object of ours is never touched.
    h.objects.insert("snapshots/00000000000000000001".into(), Bytes::from_static(b"snap"));

    h.advance(GRACE / 2);
    assert_eq!(h.objects.len(), 5, "nothing is old enough yet");
    h.advance(GRACE);
    let left: Vec<&String> = h.objects.keys().collect();
    assert!(!left.iter().any(|k| k.starts_with("objects/ff/")), "the orphan is gone: {left:?}");
    assert_eq!(h.objects.len(), 4, "every referenced object stays: {left:?}");

    // DeleteRecords past the first two records leaves two objects unreferenced.
    let r = h.call(
        2,
        strata_proto::RequestBody::DeleteRecords(strata_proto::messages::DeleteRecordsRequest {
            topics: vec![strata_proto::messages::delete_records_request::DeleteRecordsTopic {
                name: "g".into(),
                partitions: vec![strata_proto::messages::delete_records_request::DeleteRecordsPartition {
                    partition_index: 0,
                    offset: 2,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            timeout_ms: 1000,
            ..Default::default()
        }),
    );
    let strata_proto::ResponseBody::DeleteRecords(r) = r else { panic!("{r:?}") };
    assert_eq!(r.topics[0].partitions[0].error_code, ec::NONE);
    assert_eq!(log_start(&h, "g"), 2);
    h.advance(GRACE + 10_000);
    let referenced: Vec<String> =
        h.broker.log().partition("g", 0).unwrap().extents.iter().map(|e| e.object.to_string()).collect();
    let left_objects: Vec<String> = h.objects.keys().filter(|k| k.starts_with("objects/")).cloned().collect();
    assert_eq!(left_objects, referenced, "exactly the referenced objects are left");
    assert_eq!(left_objects.len(), 1);
    assert!(h.objects.contains_key("snapshots/00000000000000000001"), "only objects/ is collected");
    let f = h.fetch("g", 0, 2, 1 << 20);
    assert_eq!(common::records_of(&f), vec![(2, "v2".to_string())], "what is left is still readable");
}

#[test]
fn producer_ids_expire_after_producer_id_expiration_ms_without_a_batch() {
    let mut cfg = strata_core::broker::BrokerConfig::for_tests();
    cfg.static_props.insert("producer.id.expiration.ms".into(), "100000".into());
    let mut h = Harness::with_config(cfg);
    h.create_topic("p", 1);
    let idem = |pid: i64, ts: i64, seq: i32, v: &str| {
        let mut b = BatchBuilder::new(Compression::None).producer(pid, 0, seq);
        b.push(ts, None, Some(v.as_bytes()), &[]).unwrap();
        b.build().unwrap()
    };
    // Producer 1 last wrote at 1 s, producer 2 at 250 s; the sweep runs at 300 s.
    for (pid, ts) in [(1, 1_000), (2, 250_000)] {
        let r = h.produce("p", 0, idem(pid, ts, 0, "a"), -1);
        assert_eq!(r.responses[0].partition_responses[0].error_code, ec::NONE);
    }
    let producers = |h: &Harness| h.broker.log().partition("p", 0).unwrap().producers.keys().copied().collect::<Vec<_>>();
    assert_eq!(producers(&h), vec![1, 2]);
    h.advance(CHECK_INTERVAL);
    assert_eq!(producers(&h), vec![2], "producer 1 is past the expiration, producer 2 is not");
    // Producer 2 is still deduplicated: its retry gets the original offset.
    let r = h.produce("p", 0, idem(2, 250_000, 0, "a"), -1);
    assert_eq!(r.responses[0].partition_responses[0].base_offset, 1);
    // A new producer id starts at sequence 0 as ever.
    let r = h.produce("p", 0, idem(3, 550_000, 0, "b"), -1);
    assert_eq!((r.responses[0].partition_responses[0].error_code, r.responses[0].partition_responses[0].base_offset), (ec::NONE, 2));
    h.advance(CHECK_INTERVAL);
    assert_eq!(producers(&h), vec![3], "producer 2's last batch is now older than 100 s");
}
