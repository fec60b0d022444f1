use std::collections::BTreeMap;

use bytes::Bytes;
use strata_proto::Uuid;

use super::*;
use crate::log::apply::{apply, Applied};
use crate::log::commit::{BatchEntry, Commit, CommitBody, ConfigUpdate, NewTopic, Origin, PartitionEntry};
use crate::log::group::{GroupCommit, GroupGeneration, GroupOp, MemberRecord, OffsetRecord};

fn origin(broker: i32) -> Origin {
    Origin { broker, incarnation: 11, seq: 1 }
}

fn batch(position: u64, length: u32, count: u32, producer: i64, seq: i32) -> BatchEntry {
    BatchEntry {
        position,
        length,
        offset_count: count,
        record_count: count,
        max_timestamp: 1000 + position as i64,
        producer_id: producer,
        producer_epoch: if producer >= 0 { 0 } else { -1 },
        base_sequence: seq,
        transactional: false,
    }
}

/// A state built by applying real commits of every kind.
fn applied_state() -> LogState {
    let mut s = LogState::default();
    let mut rev = 0u64;
    let mut run = |s: &mut LogState, body: CommitBody| {
        rev += 1;
        apply(s, rev, &Commit { origin: origin(1), body })
    };
    let configs: BTreeMap<String, String> = [("retention.ms".to_string(), "60000".to_string())].into();
    let created = run(
        &mut s,
        CommitBody::CreateTopics(vec![
            NewTopic { name: "orders".into(), partitions: 3, configs: configs.clone() },
            NewTopic { name: "gone".into(), partitions: 1, configs: BTreeMap::new() },
            NewTopic { name: "quiet".into(), partitions: 2, configs: BTreeMap::new() },
        ]),
    );
    let Some(Applied::CreateTopics(ids)) = created else { panic!("{created:?}") };
    let ids: Vec<Uuid> = ids.into_iter().map(|r| r.unwrap()).collect();
    // Objects holding several partitions, plain and idempotent batches (more
    // than the producer window, so the window slides).
    for o in 0..8u64 {
        let mut entries = vec![PartitionEntry {
            topic_id: ids[0],
            partition: 0,
            batches: vec![batch(0, 100, 3, 7, o as i32 * 5), batch(100, 50, 2, 7, o as i32 * 5 + 3)],
        }];
        entries.push(PartitionEntry { topic_id: ids[0], partition: 2, batches: vec![batch(150, 80, 4, -1, -1)] });
        entries.push(PartitionEntry { topic_id: ids[1], partition: 0, batches: vec![batch(230, 10, 1, 9, o as i32)] });
        run(&mut s, CommitBody::Object { key: format!("objects/0{o}/obj{o}"), size: 1000, partitions: entries });
    }
    let update = |configs: BTreeMap<String, String>, based_on| ConfigUpdate { configs, based_on };
    run(&mut s, CommitBody::SetBrokerConfigs(update([("log.retention.ms".to_string(), "1".to_string())].into(), None)));
    run(&mut s, CommitBody::SetNodeConfigs(2, update(configs.clone(), Some(1))));
    run(&mut s, CommitBody::SetTopicConfigs(ids[2], update(configs, None)));
    run(&mut s, CommitBody::AllocateProducerId);
    run(&mut s, CommitBody::DeleteRecords(vec![(ids[0], 2, 9)]));
    run(&mut s, CommitBody::FenceObjects { below: 3 });
    run(&mut s, CommitBody::DeleteTopics(vec![ids[1]]));
    let group = |epoch, op| GroupCommit { group: "g1".into(), epoch, op };
    run(&mut s, CommitBody::Groups(vec![group(0, GroupOp::Claim)]));
    run(
        &mut s,
        CommitBody::Groups(vec![
            group(
                1,
                GroupOp::Generation(GroupGeneration {
                    generation: 4,
                    protocol_type: Some("consumer".into()),
                    protocol: Some("range".into()),
                    leader: Some("m1".into()),
                    timestamp_ms: 55,
                    members: vec![MemberRecord {
                        member_id: "m1".into(),
                        instance_id: Some("i".into()),
                        client_id: "c".into(),
                        client_host: "/10.0.0.1".into(),
                        session_timeout_ms: 6000,
                        rebalance_timeout_ms: 9000,
                        subscription: Bytes::from_static(b"sub"),
                        assignment: Bytes::from_static(b"asg"),
                    }],
                }),
            ),
            group(
                1,
                GroupOp::CommitOffsets(vec![OffsetRecord {
                    topic: "orders".into(),
                    partition: 1,
                    offset: 12,
                    leader_epoch: 0,
                    metadata: Some("m".into()),
                    commit_timestamp: 3,
                    expire_timestamp: -1,
                }]),
            ),
        ]),
    );
    run(&mut s, CommitBody::Groups(vec![GroupCommit { group: "g2".into(), epoch: 0, op: GroupOp::Claim }]));
    s
}

#[test]
fn applied_states_round_trip() {
    let s = applied_state();
    // The sample covers what it should: every part of the state is non-empty.
    assert!(s.revision > 0 && s.next_producer_id > 0);
    assert!(!s.broker_configs.is_empty() && !s.node_configs.is_empty() && s.topics.len() == 2);
    let p = s.partition("orders", 0).unwrap();
    assert!(p.producers[&7].recent.len() == crate::log::state::PRODUCER_WINDOW && p.max_timestamp.is_some());
    assert!(s.partition("orders", 2).unwrap().log_start == 9);
    assert!(s.groups["g1"].generation.is_some() && !s.groups["g1"].offsets.is_empty());
    let bytes = encode(&s);
    assert_eq!(peek_revision(&bytes), Ok(s.revision));
    let back = decode(bytes).unwrap();
    assert_eq!(back.digest(), s.digest());
    assert_eq!(back, s);
    // Extents of one object share its key once decoded.
    let e2 = &back.partition("orders", 2).unwrap().extents[0];
    let e0 = back.partition("orders", 0).unwrap().extents.iter().find(|e| e.object == e2.object).unwrap();
    assert!(Arc::ptr_eq(&e0.object, &e2.object));
}

#[test]
fn the_empty_state_round_trips() {
    let s = LogState::default();
    assert_eq!(decode(encode(&s)).unwrap(), s);
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = encode(&applied_state());
    for cut in 0..bytes.len() {
        assert!(decode(bytes.slice(..cut)).is_err(), "cut at {cut}");
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(decode(Bytes::from(longer)).is_err());
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn byte_flips_are_errors_not_panics() {
    let bytes = encode(&applied_state());
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..2000 {
        let mut b = bytes.to_vec();
        let i = (xorshift(&mut x) % b.len() as u64) as usize;
        b[i] ^= 1 << (xorshift(&mut x) % 8);
        assert!(decode(Bytes::from(b)).is_err(), "flip at {i} went unnoticed");
    }
}

/// The body decoder on its own (the CRC fixed up after each flip, as a
/// damaged-but-checksummed snapshot would be): never a panic, and whatever
/// decodes can be encoded again.
#[test]
fn body_flips_with_a_valid_crc_never_panic() {
    let bytes = encode(&applied_state());
    let mut x = 0x0123_4567_89ab_cdefu64;
    for round in 0..20_000 {
        let mut b = bytes.to_vec();
        for _ in 0..1 + round % 3 {
            let i = HEADER + (xorshift(&mut x) % (b.len() - HEADER) as u64) as usize;
            b[i] = xorshift(&mut x) as u8;
        }
        let crc = crc32c::crc32c_append(crc32c::crc32c(&b[..HEADER - 4]), &b[HEADER..]);
        b[22..26].copy_from_slice(&crc.to_be_bytes());
        if let Ok(s) = decode(Bytes::from(b)) {
            let again = decode(encode(&s)).unwrap();
            assert_eq!(again, s);
        }
    }
}

#[test]
fn random_bytes_are_errors_not_panics() {
    let mut x = 0x5eed_u64;
    for _ in 0..5000 {
        let n = (xorshift(&mut x) % 96) as usize;
        let mut b: Vec<u8> = (0..n).map(|_| xorshift(&mut x) as u8).collect();
        if n >= 4 && xorshift(&mut x) % 2 == 0 {
            b[..4].copy_from_slice(MAGIC);
        }
        let _ = decode(Bytes::from(b));
    }
}

#[test]
fn keys_sort_by_revision_and_parse_back() {
    assert_eq!(key(42), "snapshots/00000000000000000042");
    assert!(key(9) < key(10));
    assert_eq!(revision_of_key(&key(123_456)), Some(123_456));
    assert_eq!(revision_of_key("snapshots/12"), None);
    assert_eq!(revision_of_key("objects/00000000000000000042"), None);
}
