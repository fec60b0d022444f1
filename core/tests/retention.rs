//! Retention: the periodic sweep moves log starts past extents older than
//! retention.ms or beyond retention.bytes, by commit, for delete-policy topics.

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
