//! The admin apis end to end through the in-memory harness: topics,
//! partitions, configs, records deletion, and the describe apis.

mod common;

use common::{batch, Harness};
use strata_core::broker::{Broker, BrokerConfig};
use strata_core::error_code as ec;
use strata_core::io::Input;
use strata_core::log::commit::Commit;
use strata_proto::messages::create_partitions_request::{CreatePartitionsAssignment, CreatePartitionsTopic};
use strata_proto::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig};
use strata_proto::messages::create_topics_response::CreatableTopicResult;
use strata_proto::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use strata_proto::messages::delete_topics_request::DeleteTopicState;
use strata_proto::messages::describe_configs_request::DescribeConfigsResource;
use strata_proto::messages::describe_configs_response::DescribeConfigsResult;
use strata_proto::messages::describe_log_dirs_request::DescribableLogDirTopic;
use strata_proto::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use strata_proto::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
use strata_proto::messages::*;
use strata_proto::{ApiKey, ResponseBody, Uuid};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;

fn new_topic(name: &str, partitions: i32, rf: i16) -> CreatableTopic {
    CreatableTopic { name: name.into(), num_partitions: partitions, replication_factor: rf, ..Default::default() }
}

fn with_configs(mut t: CreatableTopic, configs: &[(&str, Option<&str>)]) -> CreatableTopic {
    t.configs = configs
        .iter()
        .map(|(n, v)| CreatableTopicConfig { name: n.to_string(), value: v.map(str::to_string) })
        .collect();
    t
}

fn create(h: &mut Harness, topics: Vec<CreatableTopic>, validate_only: bool) -> Vec<CreatableTopicResult> {
    let req = CreateTopicsRequest { topics, validate_only, ..Default::default() };
    let ResponseBody::CreateTopics(r) = h.call(7, req.into()) else { panic!() };
    r.topics
}

fn metadata(h: &mut Harness, name: &str) -> metadata_response::MetadataResponseTopic {
    let req = MetadataRequest {
        topics: Some(vec![metadata_request::MetadataRequestTopic { name: Some(name.into()), ..Default::default() }]),
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    let ResponseBody::Metadata(m) = h.call(12, req.into()) else { panic!() };
    m.topics.into_iter().next().unwrap()
}

fn describe(h: &mut Harness, version: i16, resources: &[(i8, &str)], keys: Option<&[&str]>, synonyms: bool) -> Vec<DescribeConfigsResult> {
    let req = DescribeConfigsRequest {
        resources: resources
            .iter()
            .map(|(t, n)| DescribeConfigsResource {
                resource_type: *t,
                resource_name: n.to_string(),
                configuration_keys: keys.map(|k| k.iter().map(|s| s.to_string()).collect()),
            })
            .collect(),
        include_synonyms: synonyms,
        include_documentation: true,
    };
    let ResponseBody::DescribeConfigs(r) = h.call(version, req.into()) else { panic!() };
    r.results
}

/// (value, source) of one config of a topic.
fn topic_config(h: &mut Harness, topic: &str, name: &str) -> (Option<String>, i8) {
    let r = describe(h, 4, &[(TOPIC, topic)], Some(&[name]), false);
    assert_eq!(r[0].error_code, ec::NONE, "{:?}", r[0].error_message);
    let c = r[0].configs.iter().find(|c| c.name == name).unwrap();
    (c.value.clone(), c.config_source)
}

/// (resource type, resource name, [(config, operation, value)]).
type IncrementalResource<'a> = (i8, &'a str, &'a [(&'a str, i8, Option<&'a str>)]);
/// (resource type, resource name, [(config, value)]).
type AlterResource<'a> = (i8, &'a str, &'a [(&'a str, Option<&'a str>)]);

fn incremental(h: &mut Harness, resources: &[IncrementalResource<'_>], validate_only: bool) -> Vec<(i16, Option<String>)> {
    let req = IncrementalAlterConfigsRequest {
        resources: resources
            .iter()
            .map(|(t, n, ops)| incremental_alter_configs_request::AlterConfigsResource {
                resource_type: *t,
                resource_name: n.to_string(),
                configs: ops
                    .iter()
                    .map(|(name, op, v)| incremental_alter_configs_request::AlterableConfig {
                        name: name.to_string(),
                        config_operation: *op,
                        value: v.map(str::to_string),
                    })
                    .collect(),
            })
            .collect(),
        validate_only,
    };
    let ResponseBody::IncrementalAlterConfigs(r) = h.call(1, req.into()) else { panic!() };
    r.responses.into_iter().map(|r| (r.error_code, r.error_message)).collect()
}

fn alter(h: &mut Harness, resources: &[AlterResource<'_>], validate_only: bool) -> Vec<(i16, Option<String>)> {
    let req = AlterConfigsRequest {
        resources: resources
            .iter()
            .map(|(t, n, cs)| alter_configs_request::AlterConfigsResource {
                resource_type: *t,
                resource_name: n.to_string(),
                configs: cs
                    .iter()
                    .map(|(name, v)| alter_configs_request::AlterableConfig { name: name.to_string(), value: v.map(str::to_string) })
                    .collect(),
            })
            .collect(),
        validate_only,
    };
    let ResponseBody::AlterConfigs(r) = h.call(2, req.into()) else { panic!() };
    r.responses.into_iter().map(|r| (r.error_code, r.error_message)).collect()
}

fn delete_records(h: &mut Harness, topic: &str, parts: &[(i32, i64)]) -> Vec<(i16, i64)> {
    let req = DeleteRecordsRequest {
        topics: vec![DeleteRecordsTopic {
            name: topic.into(),
            partitions: parts.iter().map(|(p, o)| DeleteRecordsPartition { partition_index: *p, offset: *o }).collect(),
        }],
        timeout_ms: 1000,
    };
    let ResponseBody::DeleteRecords(r) = h.call(2, req.into()) else { panic!() };
    r.topics[0].partitions.iter().map(|p| (p.error_code, p.low_watermark)).collect()
}

fn list_offset(h: &mut Harness, topic: &str, ts: i64) -> i64 {
    let req = ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic { name: topic.into(), partitions: vec![ListOffsetsPartition { partition_index: 0, timestamp: ts, ..Default::default() }] }],
        ..Default::default()
    };
    let ResponseBody::ListOffsets(r) = h.call(7, req.into()) else { panic!() };
    r.topics[0].partitions[0].offset
}

#[test]
fn create_topics_answers_with_id_partitions_replication_and_configs() {
    let mut h = Harness::new();
    let r = create(&mut h, vec![with_configs(new_topic("orders", 3, 3), &[("retention.ms", Some("1000"))])], false);
    assert_eq!(r[0].error_code, ec::NONE, "{:?}", r[0].error_message);
    assert!(!r[0].topic_id.is_zero());
    assert_eq!(r[0].num_partitions, 3);
    // Replication factor 3 is accepted; the topic has one replica, as Metadata shows.
    assert_eq!(r[0].replication_factor, 1);
    let configs = r[0].configs.as_ref().unwrap();
    let retention = configs.iter().find(|c| c.name == "retention.ms").unwrap();
    assert_eq!((retention.value.as_deref(), retention.config_source), (Some("1000"), 1));
    let segment = configs.iter().find(|c| c.name == "segment.bytes").unwrap();
    assert_eq!(segment.config_source, 5, "defaults are DEFAULT_CONFIG");
    let m = metadata(&mut h, "orders");
    assert_eq!(m.topic_id, r[0].topic_id);
    assert_eq!(m.partitions.len(), 3);
    assert_eq!(m.partitions[0].replica_nodes, vec![1]);

    // -1 partitions takes the broker default.
    let mut cfg = BrokerConfig::for_tests();
    cfg.default_partitions = 4;
    let mut h = Harness::new();
    h.broker = Broker::new(cfg);
    let r = create(&mut h, vec![new_topic("d", -1, -1)], false);
    assert_eq!((r[0].error_code, r[0].num_partitions, r[0].replication_factor), (ec::NONE, 4, 1));
}

#[test]
fn create_topics_validate_only_makes_no_commit() {
    let mut h = Harness::new();
    let commits = h.log.len();
    let r = create(&mut h, vec![new_topic("t", 2, 1)], true);
    assert_eq!((r[0].error_code, r[0].num_partitions), (ec::NONE, 2));
    assert!(r[0].topic_id.is_zero(), "nothing was created");
    assert_eq!(h.log.len(), commits);
    assert_eq!(metadata(&mut h, "t").error_code, ec::UNKNOWN_TOPIC_OR_PARTITION);
    // Errors are still reported.
    let r = create(&mut h, vec![new_topic("t", 0, 1)], true);
    assert_eq!(r[0].error_code, ec::INVALID_PARTITIONS);
}

#[test]
fn create_topics_refuses_duplicates_existing_and_bad_topics_one_by_one() {
    let mut h = Harness::new();
    h.create_topic("exists", 1);
    h.create_topic("a_b", 1);
    let r = create(
        &mut h,
        vec![
            new_topic("dup", 1, 1),
            new_topic("fine", 1, 1),
            new_topic("dup", 2, 1),
            new_topic("exists", 1, 1),
            new_topic("bad name", 1, 1),
            new_topic("a.b", 1, 1),
            new_topic("rf0", 1, 0),
            new_topic("p0", 0, 1),
            new_topic("__cluster_metadata", 1, 1),
        ],
        false,
    );
    let by_name = |n: &str| r.iter().filter(|t| t.name == n).collect::<Vec<_>>();
    assert_eq!(by_name("fine")[0].error_code, ec::NONE);
    let dup = by_name("dup");
    assert_eq!(dup.len(), 1, "one answer per duplicated name");
    assert_eq!((dup[0].error_code, dup[0].error_message.as_deref()), (ec::INVALID_REQUEST, Some("Duplicate topic name.")));
    let exists = by_name("exists")[0];
    assert_eq!((exists.error_code, exists.error_message.as_deref()), (ec::TOPIC_ALREADY_EXISTS, Some("Topic 'exists' already exists.")));
    assert_eq!(by_name("bad name")[0].error_code, ec::INVALID_TOPIC_EXCEPTION);
    let collide = by_name("a.b")[0];
    assert_eq!(collide.error_code, ec::INVALID_TOPIC_EXCEPTION);
    assert_eq!(collide.error_message.as_deref(), Some("Topic 'a.b' collides with existing topic: a_b"));
    assert_eq!(by_name("rf0")[0].error_code, ec::INVALID_REPLICATION_FACTOR);
    let p0 = by_name("p0")[0];
    assert_eq!(p0.error_code, ec::INVALID_PARTITIONS);
    assert_eq!(p0.error_message.as_deref(), Some("Number of partitions was set to an invalid non-positive value."));
    assert_eq!(by_name("__cluster_metadata")[0].error_code, ec::INVALID_REQUEST);
    for t in &r {
        if t.error_code != ec::NONE {
            assert_eq!((t.num_partitions, t.replication_factor), (-1, -1));
            assert!(t.topic_id.is_zero());
        }
    }
    assert_eq!(metadata(&mut h, "fine").error_code, ec::NONE);
    assert_eq!(metadata(&mut h, "dup").error_code, ec::UNKNOWN_TOPIC_OR_PARTITION);
}

#[test]
fn create_topics_validates_configs_with_kafkas_messages() {
    let mut h = Harness::new();
    let r = create(
        &mut h,
        vec![
            with_configs(new_topic("bad-value", 1, 1), &[("retention.ms", Some("abc"))]),
            with_configs(new_topic("bad-name", 1, 1), &[("no.such.config", Some("1"))]),
            with_configs(new_topic("null", 1, 1), &[("retention.ms", None)]),
        ],
        false,
    );
    assert_eq!(r[0].error_code, ec::INVALID_CONFIG);
    assert_eq!(r[0].error_message.as_deref(), Some("Invalid value abc for configuration retention.ms: Not a number of type LONG"));
    assert_eq!((r[1].error_code, r[1].error_message.as_deref()), (ec::INVALID_CONFIG, Some("Unknown topic config name: no.such.config")));
    assert_eq!((r[2].error_code, r[2].error_message.as_deref()), (ec::INVALID_CONFIG, Some("Null value not supported for topic configs: retention.ms")));
    assert_eq!(h.log.len(), 0, "nothing valid, nothing committed");
}

#[test]
fn create_topics_with_manual_assignments() {
    let mut h = Harness::new();
    let assign = |lists: &[(i32, &[i32])]| {
        lists.iter().map(|(p, b)| CreatableReplicaAssignment { partition_index: *p, broker_ids: b.to_vec() }).collect::<Vec<_>>()
    };
    let mut ok = new_topic("manual", -1, -1);
    ok.assignments = assign(&[(1, &[1]), (0, &[1])]);
    let mut counts = new_topic("counts", 2, -1);
    counts.assignments = assign(&[(0, &[1])]);
    let mut stranger = new_topic("stranger", -1, -1);
    stranger.assignments = assign(&[(0, &[7])]);
    let mut gap = new_topic("gap", -1, -1);
    gap.assignments = assign(&[(0, &[1]), (2, &[1])]);
    let r = create(&mut h, vec![ok, counts, stranger, gap], false);
    assert_eq!((r[0].error_code, r[0].num_partitions), (ec::NONE, 2));
    assert_eq!(r[1].error_code, ec::INVALID_REQUEST);
    assert_eq!(
        r[1].error_message.as_deref(),
        Some("A manual partition assignment was specified, but numPartitions was not set to -1.")
    );
    assert_eq!(r[2].error_code, ec::INVALID_REPLICA_ASSIGNMENT);
    assert_eq!(r[2].error_message.as_deref(), Some("The manual partition assignment includes broker 7, but no such broker is registered."));
    assert_eq!(r[3].error_code, ec::INVALID_REPLICA_ASSIGNMENT);
}

#[test]
fn a_failed_append_fails_the_admin_request() {
    let mut h = Harness::new();
    h.fail_appends = true;
    let r = create(&mut h, vec![new_topic("t", 1, 1)], false);
    assert_eq!(r[0].error_code, ec::KAFKA_STORAGE_ERROR);
    h.fail_appends = false;
    let r = create(&mut h, vec![new_topic("t", 1, 1)], false);
    assert_eq!(r[0].error_code, ec::NONE);
}

#[test]
fn delete_then_recreate_gives_a_new_id_and_empty_partitions() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    let first = metadata(&mut h, "t").topic_id;
    h.produce("t", 0, batch(&["a", "b"], None), -1);
    assert_eq!(list_offset(&mut h, "t", -1), 2);

    let req = DeleteTopicsRequest { topic_names: vec!["t".into(), "nope".into()], timeout_ms: 1000, ..Default::default() };
    let ResponseBody::DeleteTopics(r) = h.call(5, req.into()) else { panic!() };
    let t = r.responses.iter().find(|x| x.name.as_deref() == Some("t")).unwrap();
    assert_eq!(t.error_code, ec::NONE);
    let nope = r.responses.iter().find(|x| x.name.as_deref() == Some("nope")).unwrap();
    assert_eq!(nope.error_code, ec::UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(metadata(&mut h, "t").error_code, ec::UNKNOWN_TOPIC_OR_PARTITION);

    h.create_topic("t", 1);
    let second = metadata(&mut h, "t").topic_id;
    assert_ne!(first, second);
    assert_eq!(list_offset(&mut h, "t", -1), 0, "the new topic starts empty");
    let f = h.fetch("t", 0, 0, 1 << 20);
    assert!(common::records_of(&f).is_empty());

    // v6: by id; an unknown id, and a name with an id, are refused.
    let req = DeleteTopicsRequest {
        topics: vec![
            DeleteTopicState { name: None, topic_id: second },
            DeleteTopicState { name: None, topic_id: first },
            DeleteTopicState { name: Some("x".into()), topic_id: first },
        ],
        timeout_ms: 1000,
        ..Default::default()
    };
    let ResponseBody::DeleteTopics(r) = h.call(6, req.into()) else { panic!() };
    let by_id = |id: Uuid, named: bool| r.responses.iter().find(|x| x.topic_id == id && x.name.is_some() == named).unwrap();
    let gone = by_id(second, true);
    assert_eq!((gone.error_code, gone.name.as_deref()), (ec::NONE, Some("t")));
    assert_eq!(by_id(first, false).error_code, ec::UNKNOWN_TOPIC_ID);
    assert_eq!(by_id(first, true).error_code, ec::INVALID_REQUEST);
    assert_eq!(metadata(&mut h, "t").error_code, ec::UNKNOWN_TOPIC_OR_PARTITION);
}

#[test]
fn create_partitions_grows_topics_and_refuses_what_kafka_refuses() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    let grow = |name: &str, count: i32| CreatePartitionsTopic { name: name.into(), count, assignments: None };
    let req = CreatePartitionsRequest { topics: vec![grow("t", 3)], timeout_ms: 1000, validate_only: true };
    let commits = h.log.len();
    let ResponseBody::CreatePartitions(r) = h.call(3, req.into()) else { panic!() };
    assert_eq!(r.results[0].error_code, ec::NONE);
    assert_eq!(h.log.len(), commits, "validate_only makes no commit");
    assert_eq!(metadata(&mut h, "t").partitions.len(), 1);

    let req = CreatePartitionsRequest { topics: vec![grow("t", 3), grow("nope", 2)], timeout_ms: 1000, validate_only: false };
    let ResponseBody::CreatePartitions(r) = h.call(3, req.into()) else { panic!() };
    assert_eq!(r.results[0].error_code, ec::NONE);
    assert_eq!((r.results[1].error_code, r.results[1].error_message.as_deref()), (ec::UNKNOWN_TOPIC_OR_PARTITION, None));
    assert_eq!(metadata(&mut h, "t").partitions.len(), 3);
    let p = h.produce("t", 2, batch(&["x"], None), -1);
    assert_eq!(p.responses[0].partition_responses[0].error_code, ec::NONE);

    let mut bad_assign = grow("t", 5);
    bad_assign.assignments = Some(vec![CreatePartitionsAssignment { broker_ids: vec![1] }]);
    let req = CreatePartitionsRequest { topics: vec![grow("t", 3), bad_assign], timeout_ms: 1000, validate_only: false };
    let ResponseBody::CreatePartitions(r) = h.call(3, req.into()) else { panic!() };
    assert_eq!(r.results[0].error_code, ec::INVALID_REQUEST, "t twice: duplicate");
    let req = CreatePartitionsRequest { topics: vec![grow("t", 3)], timeout_ms: 1000, validate_only: false };
    let ResponseBody::CreatePartitions(r) = h.call(3, req.into()) else { panic!() };
    assert_eq!(r.results[0].error_code, ec::INVALID_PARTITIONS);
    assert_eq!(r.results[0].error_message.as_deref(), Some("Topic already has 3 partition(s)."));
    let req = CreatePartitionsRequest { topics: vec![grow("t", 2)], timeout_ms: 1000, validate_only: false };
    let ResponseBody::CreatePartitions(r) = h.call(3, req.into()) else { panic!() };
    assert_eq!(r.results[0].error_message.as_deref(), Some("The topic t currently has 3 partition(s); 2 would not be an increase."));
    let mut bad_assign = grow("t", 5);
    bad_assign.assignments = Some(vec![CreatePartitionsAssignment { broker_ids: vec![1] }]);
    let req = CreatePartitionsRequest { topics: vec![bad_assign], timeout_ms: 1000, validate_only: false };
    let ResponseBody::CreatePartitions(r) = h.call(3, req.into()) else { panic!() };
    assert_eq!(r.results[0].error_code, ec::INVALID_REPLICA_ASSIGNMENT);
    assert_eq!(
        r.results[0].error_message.as_deref(),
        Some("Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified.")
    );
}

#[test]
fn describe_configs_for_topics_brokers_and_loggers() {
    let mut h = Harness::new();
    let r = create(&mut h, vec![with_configs(new_topic("t", 1, 1), &[("cleanup.policy", Some("compact"))])], false);
    assert_eq!(r[0].error_code, ec::NONE);

    let r = describe(&mut h, 4, &[(TOPIC, "t")], None, true);
    assert_eq!(r[0].error_code, ec::NONE);
    let policy = r[0].configs.iter().find(|c| c.name == "cleanup.policy").unwrap();
    assert_eq!((policy.value.as_deref(), policy.config_source, policy.read_only), (Some("compact"), 1, false));
    assert_eq!(policy.config_type, 7, "LIST");
    assert!(policy.documentation.is_some());
    // Synonyms: the topic override first, then the broker's default.
    assert_eq!(policy.synonyms[0].name, "cleanup.policy");
    assert!(policy.synonyms.iter().any(|s| s.name == "log.cleanup.policy" && s.source == 5));
    let retention = r[0].configs.iter().find(|c| c.name == "retention.ms").unwrap();
    assert_eq!((retention.value.as_deref(), retention.config_source), (Some("604800000"), 5));

    // Only the keys asked for.
    let r = describe(&mut h, 4, &[(TOPIC, "t")], Some(&["retention.ms"]), false);
    assert_eq!(r[0].configs.len(), 1);
    assert!(r[0].configs[0].synonyms.is_empty());

    let r = describe(&mut h, 0, &[(TOPIC, "nope"), (TOPIC, "bad name"), (BROKER, "1"), (BROKER, "2"), (BROKER, ""), (BROKER_LOGGER, "1"), (BROKER_LOGGER, ""), (99, "x")], None, false);
    assert_eq!((r[0].error_code, r[0].error_message.as_deref()), (ec::UNKNOWN_TOPIC_OR_PARTITION, None));
    assert_eq!(r[1].error_code, ec::INVALID_TOPIC_EXCEPTION);
    assert_eq!(r[2].error_code, ec::NONE);
    let partitions = r[2].configs.iter().find(|c| c.name == "num.partitions").unwrap();
    assert!(partitions.read_only);
    assert!(partitions.is_default);
    let flush = r[2].configs.iter().find(|c| c.name == "strata.flush.bytes").unwrap();
    assert_eq!(flush.value.as_deref(), Some("1048576"));
    assert!(!flush.is_default, "set by the broker's settings");
    assert_eq!(r[3].error_code, ec::INVALID_REQUEST);
    assert_eq!(r[3].error_message.as_deref(), Some("Unexpected broker id, expected 1 or empty string, but received 2"));
    assert_eq!((r[4].error_code, r[4].configs.len()), (ec::NONE, 0), "no cluster-wide overrides yet");
    assert_eq!((r[5].error_code, r[5].configs.len()), (ec::NONE, 0), "Strata has no loggers");
    assert_eq!(r[6].error_code, ec::INVALID_REQUEST);
    assert_eq!(r[7].error_code, ec::INVALID_REQUEST);
}

#[test]
fn alter_configs_replaces_the_overrides_by_commit() {
    let mut h = Harness::new();
    let r = create(&mut h, vec![with_configs(new_topic("t", 1, 1), &[("cleanup.policy", Some("compact"))])], false);
    assert_eq!(r[0].error_code, ec::NONE);
    let commits = h.log.len();
    let r = alter(&mut h, &[(TOPIC, "t", &[("retention.ms", Some("5000"))])], true);
    assert_eq!(r[0].0, ec::NONE);
    assert_eq!(h.log.len(), commits, "validate_only makes no commit");
    assert_eq!(topic_config(&mut h, "t", "retention.ms").1, 5);

    let r = alter(&mut h, &[(TOPIC, "t", &[("retention.ms", Some("5000"))])], false);
    assert_eq!(r[0].0, ec::NONE);
    assert_eq!(topic_config(&mut h, "t", "retention.ms"), (Some("5000".into()), 1));
    // The whole set is replaced: cleanup.policy is back to its default.
    assert_eq!(topic_config(&mut h, "t", "cleanup.policy"), (Some("delete".into()), 5));

    let r = alter(
        &mut h,
        &[
            (TOPIC, "t", &[("retention.ms", Some("abc"))]),
            (TOPIC, "nope", &[("retention.ms", Some("1"))]),
            (TOPIC, "dup", &[]),
            (TOPIC, "dup", &[]),
            (BROKER_LOGGER, "1", &[]),
            (BROKER, "", &[("log.retention.ms", Some("7000"))]),
        ],
        false,
    );
    assert_eq!(r[0], (ec::INVALID_CONFIG, Some("Invalid value abc for configuration retention.ms: Not a number of type LONG".into())));
    assert_eq!(r[1], (ec::UNKNOWN_TOPIC_OR_PARTITION, Some("The topic 'nope' does not exist.".into())));
    assert_eq!(r[2], (ec::INVALID_REQUEST, Some("Each resource must appear at most once.".into())));
    assert_eq!(r[3], r[2]);
    assert_eq!(r[4], (ec::INVALID_REQUEST, Some("Unknown resource type 8".into())));
    assert_eq!(r[5], (ec::NONE, None));
    assert_eq!(topic_config(&mut h, "t", "retention.ms").0.as_deref(), Some("5000"));
    // A new topic takes the cluster-wide default.
    h.create_topic("u", 1);
    assert_eq!(topic_config(&mut h, "u", "retention.ms"), (Some("7000".into()), 3));
}

#[test]
fn incremental_alter_configs_set_delete_append_subtract() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    const SET: i8 = 0;
    const DELETE: i8 = 1;
    const APPEND: i8 = 2;
    const SUBTRACT: i8 = 3;
    let r = incremental(&mut h, &[(TOPIC, "t", &[("cleanup.policy", APPEND, Some("compact")), ("retention.ms", SET, Some("100"))])], false);
    assert_eq!(r[0], (ec::NONE, None));
    assert_eq!(topic_config(&mut h, "t", "cleanup.policy"), (Some("delete,compact".into()), 1));
    assert_eq!(topic_config(&mut h, "t", "retention.ms").0.as_deref(), Some("100"));

    let r = incremental(&mut h, &[(TOPIC, "t", &[("cleanup.policy", SUBTRACT, Some("delete")), ("retention.ms", DELETE, None)])], false);
    assert_eq!(r[0], (ec::NONE, None));
    assert_eq!(topic_config(&mut h, "t", "cleanup.policy").0.as_deref(), Some("compact"));
    assert_eq!(topic_config(&mut h, "t", "retention.ms"), (Some("604800000".into()), 5));

    let commits = h.log.len();
    let r = incremental(
        &mut h,
        &[
            (TOPIC, "t", &[("retention.ms", APPEND, Some("1"))]),
            (TOPIC, "t2", &[("retention.ms", SET, None)]),
            (TOPIC, "t3", &[("a", SET, Some("1")), ("a", SET, Some("2"))]),
            (TOPIC, "", &[]),
            (BROKER, "2", &[]),
            (BROKER, "x", &[]),
            (BROKER, "", &[("num.partitions", SET, Some("3"))]),
            (BROKER_LOGGER, "1", &[("kafka", SET, Some("DEBUG"))]),
            (BROKER_LOGGER, "2", &[]),
            (TOPIC, "t9", &[("retention.ms", 9, Some("1"))]),
        ],
        false,
    );
    assert_eq!(r[0], (ec::INVALID_CONFIG, Some("Can't APPEND to key retention.ms because its type is not LIST.".into())));
    assert_eq!(r[1], (ec::INVALID_REQUEST, Some("Null value not supported for : retention.ms".into())));
    assert_eq!(r[2], (ec::INVALID_REQUEST, Some("Error due to duplicate config keys".into())));
    assert_eq!(r[3], (ec::INVALID_REQUEST, Some("Default topic resources are not allowed.".into())));
    assert_eq!(r[4], (ec::INVALID_REQUEST, Some("Unexpected broker id, expected 1, but received 2".into())));
    assert_eq!(r[5], (ec::INVALID_REQUEST, Some("Node id must be an integer, but it is: x".into())));
    assert_eq!(r[6].0, ec::INVALID_REQUEST, "num.partitions is not dynamic: {:?}", r[6].1);
    assert_eq!(r[7], (ec::INVALID_CONFIG, Some("Logger kafka does not exist!".into())));
    assert_eq!(r[8], (ec::INVALID_REQUEST, Some("Unexpected node id. Expected 1, but received 2".into())));
    assert_eq!(r[9], (ec::INVALID_REQUEST, Some("Unknown operations type 9".into())));
    assert_eq!(h.log.len(), commits, "nothing valid, nothing committed");

    // The broker resources: this node's overrides beat the cluster-wide default.
    let r = incremental(
        &mut h,
        &[(BROKER, "", &[("log.retention.ms", SET, Some("7000"))]), (BROKER, "1", &[("log.retention.ms", SET, Some("8000"))])],
        false,
    );
    assert_eq!(r, vec![(ec::NONE, None), (ec::NONE, None)]);
    assert_eq!(h.log.len(), commits + 2, "one commit per resource");
    assert_eq!(topic_config(&mut h, "t", "retention.ms"), (Some("8000".into()), 2));
    let b = describe(&mut h, 4, &[(BROKER, "1"), (BROKER, "")], Some(&["log.retention.ms"]), true);
    let node = &b[0].configs[0];
    assert_eq!((node.value.as_deref(), node.config_source, node.read_only), (Some("8000"), 2, false));
    assert_eq!(node.synonyms.iter().map(|s| s.source).collect::<Vec<_>>(), vec![2, 3, 5]);
    let cluster = &b[1].configs[0];
    assert_eq!((cluster.value.as_deref(), cluster.config_source), (Some("7000"), 3));
    let r = incremental(&mut h, &[(BROKER, "1", &[("log.retention.ms", DELETE, None)])], false);
    assert_eq!(r[0].0, ec::NONE);
    assert_eq!(topic_config(&mut h, "t", "retention.ms"), (Some("7000".into()), 3));
}

#[test]
fn delete_records_moves_the_log_start_and_fetch_below_it_is_out_of_range() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    h.produce("t", 0, batch(&["a", "b"], None), -1);
    h.produce("t", 0, batch(&["c", "d", "e"], None), -1);
    let r = delete_records(&mut h, "t", &[(0, 2), (5, 1)]);
    assert_eq!(r, vec![(ec::NONE, 2), (ec::UNKNOWN_TOPIC_OR_PARTITION, -1)]);
    assert_eq!(list_offset(&mut h, "t", -2), 2);
    let f = h.fetch("t", 0, 0, 1 << 20);
    assert_eq!(f.responses[0].partitions[0].error_code, ec::OFFSET_OUT_OF_RANGE);
    assert_eq!(f.responses[0].partitions[0].log_start_offset, 2);
    let f = h.fetch("t", 0, 2, 1 << 20);
    assert_eq!(common::records_of(&f).into_iter().map(|(o, _)| o).collect::<Vec<_>>(), vec![2, 3, 4]);

    assert_eq!(delete_records(&mut h, "t", &[(0, 6)]), vec![(ec::OFFSET_OUT_OF_RANGE, -1)]);
    assert_eq!(delete_records(&mut h, "t", &[(0, -7)]), vec![(ec::OFFSET_OUT_OF_RANGE, -1)]);
    // Below the current start: nothing moves.
    assert_eq!(delete_records(&mut h, "t", &[(0, 1)]), vec![(ec::NONE, 2)]);
    // -1: up to the high watermark.
    assert_eq!(delete_records(&mut h, "t", &[(0, -1)]), vec![(ec::NONE, 5)]);
    assert_eq!(list_offset(&mut h, "t", -2), 5);
    assert_eq!(delete_records(&mut h, "nope", &[(0, 1)]), vec![(ec::UNKNOWN_TOPIC_OR_PARTITION, -1)]);

    let r = create(&mut h, vec![with_configs(new_topic("compacted", 1, 1), &[("cleanup.policy", Some("compact"))])], false);
    assert_eq!(r[0].error_code, ec::NONE);
    assert_eq!(delete_records(&mut h, "compacted", &[(0, 0)]), vec![(ec::POLICY_VIOLATION, -1)]);
}

#[test]
fn describe_cluster_reports_this_broker() {
    let mut h = Harness::new();
    for v in 0..=2 {
        let req = DescribeClusterRequest { include_cluster_authorized_operations: true, endpoint_type: 1, include_fenced_brokers: false };
        let ResponseBody::DescribeCluster(r) = h.call(v, req.into()) else { panic!() };
        assert_eq!(r.error_code, ec::NONE);
        assert_eq!(r.cluster_id, "strata-test");
        assert_eq!(r.controller_id, 1);
        assert_eq!(r.brokers.len(), 1);
        assert_eq!((r.brokers[0].broker_id, r.brokers[0].host.as_str(), r.brokers[0].port), (1, "127.0.0.1", 9092));
        assert!(r.cluster_authorized_operations > 0);
    }
    let req = DescribeClusterRequest { include_cluster_authorized_operations: false, endpoint_type: 1, include_fenced_brokers: false };
    let ResponseBody::DescribeCluster(r) = h.call(1, req.into()) else { panic!() };
    assert_eq!(r.cluster_authorized_operations, i32::MIN);
    let req = DescribeClusterRequest { endpoint_type: 2, ..Default::default() };
    let ResponseBody::DescribeCluster(r) = h.call(1, req.into()) else { panic!() };
    assert_eq!(r.error_code, ec::MISMATCHED_ENDPOINT_TYPE);
    let req = DescribeClusterRequest { endpoint_type: 9, ..Default::default() };
    let ResponseBody::DescribeCluster(r) = h.call(1, req.into()) else { panic!() };
    assert_eq!(r.error_code, ec::UNSUPPORTED_ENDPOINT_TYPE);
}

#[test]
fn describe_log_dirs_reports_partition_sizes() {
    let mut h = Harness::new();
    h.create_topic("a", 2);
    h.create_topic("b", 1);
    h.produce("a", 1, batch(&["x", "y"], None), -1);
    let ResponseBody::DescribeLogDirs(r) = h.call(4, DescribeLogDirsRequest { topics: None }.into()) else { panic!() };
    assert_eq!(r.error_code, ec::NONE);
    assert_eq!(r.results.len(), 1);
    let dir = &r.results[0];
    assert_eq!((dir.log_dir.as_str(), dir.total_bytes, dir.usable_bytes), ("/tmp/strata-test", -1, -1));
    assert_eq!(dir.topics.len(), 2);
    let a = dir.topics.iter().find(|t| t.name == "a").unwrap();
    assert_eq!(a.partitions.len(), 2);
    assert_eq!(a.partitions[0].partition_size, 0);
    assert!(a.partitions[1].partition_size > 0);
    assert_eq!((a.partitions[1].offset_lag, a.partitions[1].is_future_key), (0, false));

    let req = DescribeLogDirsRequest {
        topics: Some(vec![
            DescribableLogDirTopic { topic: "a".into(), partitions: vec![1, 7] },
            DescribableLogDirTopic { topic: "nope".into(), partitions: vec![0] },
        ]),
    };
    let ResponseBody::DescribeLogDirs(r) = h.call(1, req.into()) else { panic!() };
    let topics = &r.results[0].topics;
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0].partitions.iter().map(|p| p.partition_index).collect::<Vec<_>>(), vec![1]);
}

#[test]
fn describe_producers_after_idempotent_produce() {
    let mut h = Harness::new();
    h.create_topic("t", 2);
    let ResponseBody::InitProducerId(ip) = h.call(4, InitProducerIdRequest::default().into()) else { panic!() };
    let pid = ip.producer_id;
    h.produce("t", 0, batch(&["a", "b"], Some((pid, 0, 0))), -1);
    h.produce("t", 0, batch(&["c"], Some((pid, 0, 2))), -1);
    let req = DescribeProducersRequest {
        topics: vec![
            describe_producers_request::TopicRequest { name: "t".into(), partition_indexes: vec![0, 1, 9] },
            describe_producers_request::TopicRequest { name: "nope".into(), partition_indexes: vec![0] },
        ],
    };
    let ResponseBody::DescribeProducers(r) = h.call(0, req.into()) else { panic!() };
    let parts = &r.topics[0].partitions;
    assert_eq!(parts[0].error_code, ec::NONE);
    assert_eq!(parts[0].active_producers.len(), 1);
    let p = &parts[0].active_producers[0];
    assert_eq!((p.producer_id, p.producer_epoch, p.last_sequence), (pid, 0, 2));
    assert_eq!(p.last_timestamp, 1000, "the last batch's max timestamp");
    assert_eq!((p.coordinator_epoch, p.current_txn_start_offset), (-1, -1));
    assert!(parts[1].active_producers.is_empty());
    assert_eq!(parts[2].error_code, ec::UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(r.topics[1].partitions[0].error_code, ec::UNKNOWN_TOPIC_OR_PARTITION);
}

#[test]
fn describe_topic_partitions_paginates_with_a_cursor() {
    let mut h = Harness::new();
    h.create_topic("c", 1);
    h.create_topic("a", 3);
    h.create_topic("b", 2);
    let page = |h: &mut Harness, cursor: Option<(&str, i32)>| {
        let req = DescribeTopicPartitionsRequest {
            topics: vec![],
            response_partition_limit: 2,
            cursor: cursor.map(|(t, p)| describe_topic_partitions_request::Cursor { topic_name: t.into(), partition_index: p }),
        };
        let ResponseBody::DescribeTopicPartitions(r) = h.call(0, req.into()) else { panic!() };
        let got: Vec<(String, Vec<i32>)> =
            r.topics.iter().map(|t| (t.name.clone().unwrap(), t.partitions.iter().map(|p| p.partition_index).collect())).collect();
        (got, r.next_cursor.map(|c| (c.topic_name, c.partition_index)))
    };
    let (got, next) = page(&mut h, None);
    assert_eq!(got, vec![("a".to_string(), vec![0, 1])]);
    assert_eq!(next, Some(("a".to_string(), 2)));
    let (got, next) = page(&mut h, Some(("a", 2)));
    assert_eq!(got, vec![("a".to_string(), vec![2]), ("b".to_string(), vec![0])]);
    assert_eq!(next, Some(("b".to_string(), 1)));
    let (got, next) = page(&mut h, Some(("b", 1)));
    assert_eq!(got, vec![("b".to_string(), vec![1]), ("c".to_string(), vec![0])]);
    assert_eq!(next, None);

    // Named topics: unknown ones get an error entry; the partition details match Metadata.
    let req = DescribeTopicPartitionsRequest {
        topics: vec![describe_topic_partitions_request::TopicRequest { name: "zz".into() }, describe_topic_partitions_request::TopicRequest { name: "b".into() }],
        ..Default::default()
    };
    let ResponseBody::DescribeTopicPartitions(r) = h.call(0, req.into()) else { panic!() };
    assert_eq!(r.topics[0].name.as_deref(), Some("b"));
    assert_eq!(r.topics[0].topic_id, metadata(&mut h, "b").topic_id);
    let p = &r.topics[0].partitions[1];
    assert_eq!((p.leader_id, p.leader_epoch, p.replica_nodes.clone(), p.isr_nodes.clone()), (1, 0, vec![1], vec![1]));
    assert_eq!((r.topics[1].name.as_deref(), r.topics[1].error_code), (Some("zz"), ec::UNKNOWN_TOPIC_OR_PARTITION));
    // A cursor naming a topic not asked for is refused.
    let req = DescribeTopicPartitionsRequest {
        topics: vec![describe_topic_partitions_request::TopicRequest { name: "b".into() }],
        cursor: Some(describe_topic_partitions_request::Cursor { topic_name: "c".into(), partition_index: 0 }),
        ..Default::default()
    };
    let ResponseBody::DescribeTopicPartitions(r) = h.call(0, req.into()) else { panic!() };
    assert_eq!(r.topics[0].error_code, ec::INVALID_REQUEST);
}

#[test]
fn offset_for_leader_epoch_knows_epoch_zero_only() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    h.produce("t", 0, batch(&["a", "b", "c"], None), -1);
    let ask = |h: &mut Harness, topic: &str, current: i32, epoch: i32| {
        let req = OffsetForLeaderEpochRequest {
            replica_id: -1,
            topics: vec![OffsetForLeaderTopic {
                topic: topic.into(),
                partitions: vec![OffsetForLeaderPartition { partition: 0, current_leader_epoch: current, leader_epoch: epoch }],
            }],
        };
        let ResponseBody::OffsetForLeaderEpoch(r) = h.call(4, req.into()) else { panic!() };
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.leader_epoch, p.end_offset)
    };
    assert_eq!(ask(&mut h, "t", 0, 0), (ec::NONE, 0, 3));
    assert_eq!(ask(&mut h, "t", -1, 0), (ec::NONE, 0, 3));
    assert_eq!(ask(&mut h, "t", -1, 2), (ec::NONE, -1, -1));
    assert_eq!(ask(&mut h, "t", 1, 0), (ec::UNKNOWN_LEADER_EPOCH, -1, -1));
    assert_eq!(ask(&mut h, "nope", -1, 0), (ec::UNKNOWN_TOPIC_OR_PARTITION, -1, -1));
}

#[test]
fn api_versions_advertises_the_admin_apis() {
    let mut h = Harness::new();
    let ResponseBody::ApiVersions(r) = h.call(3, ApiVersionsRequest::default().into()) else { panic!() };
    for key in [
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::CreatePartitions,
        ApiKey::DescribeConfigs,
        ApiKey::AlterConfigs,
        ApiKey::IncrementalAlterConfigs,
        ApiKey::DeleteRecords,
        ApiKey::DescribeCluster,
        ApiKey::DescribeLogDirs,
        ApiKey::DescribeProducers,
        ApiKey::DescribeTopicPartitions,
        ApiKey::OffsetForLeaderEpoch,
    ] {
        let (lo, hi) = key.versions();
        assert!(r.api_keys.iter().any(|a| a.api_key == key as i16 && a.min_version == lo && a.max_version == hi), "{key:?}");
    }
}

#[test]
fn admin_commits_replay_to_the_same_state_on_another_broker() {
    let mut h = Harness::new();
    h.create_topic("t", 2);
    h.create_topic("gone", 1);
    h.produce("t", 0, batch(&["a", "b"], None), -1);
    let _ = alter(&mut h, &[(TOPIC, "t", &[("retention.ms", Some("100"))]), (BROKER, "1", &[("log.retention.ms", Some("9"))])], false);
    let _ = delete_records(&mut h, "t", &[(0, 1)]);
    let req = DeleteTopicsRequest { topic_names: vec!["gone".into()], timeout_ms: 1000, ..Default::default() };
    let _ = h.call(5, req.into());
    let req = CreatePartitionsRequest {
        topics: vec![CreatePartitionsTopic { name: "t".into(), count: 4, assignments: None }],
        timeout_ms: 1000,
        validate_only: false,
    };
    let _ = h.call(3, req.into());
    let mut cfg = BrokerConfig::for_tests();
    cfg.node_id = 2;
    let mut other = Broker::new(cfg);
    for (i, c) in h.log.iter().enumerate() {
        let mut out = Vec::new();
        other.handle(0, Input::Applied { revision: i as u64 + 1, commit: Commit::decode(c.clone()).unwrap() }, &mut out);
    }
    assert_eq!(other.log(), h.broker.log());
    assert_eq!(other.log().digest(), h.broker.log().digest());
    let t = &other.log().topics["t"];
    assert_eq!((t.partitions.len(), t.partitions[0].log_start), (4, 1));
    assert_eq!(other.log().node_configs[&1]["log.retention.ms"], "9");
    assert!(!other.log().topics.contains_key("gone"));
}

#[test]
fn every_admin_api_answers_at_every_version() {
    let mut h = Harness::new();
    h.create_topic("t", 2);
    h.produce("t", 0, batch(&["a"], Some((0, 0, 0))), -1);
    let bodies: Vec<strata_proto::RequestBody> = vec![
        CreateTopicsRequest { topics: vec![new_topic("n", 1, 1), new_topic("t", 1, 1), new_topic("n", 1, 1)], ..Default::default() }.into(),
        DeleteTopicsRequest {
            topic_names: vec!["x".into()],
            topics: vec![DeleteTopicState { name: Some("x".into()), topic_id: Uuid::ZERO }, DeleteTopicState { name: None, topic_id: Uuid::ZERO }],
            timeout_ms: 1000,
        }
        .into(),
        CreatePartitionsRequest {
            topics: vec![CreatePartitionsTopic { name: "t".into(), count: 1, assignments: None }],
            timeout_ms: 1000,
            validate_only: true,
        }
        .into(),
        DescribeConfigsRequest {
            resources: vec![
                DescribeConfigsResource { resource_type: TOPIC, resource_name: "t".into(), configuration_keys: None },
                DescribeConfigsResource { resource_type: BROKER, resource_name: "1".into(), configuration_keys: None },
                DescribeConfigsResource { resource_type: TOPIC, resource_name: "zz".into(), configuration_keys: None },
            ],
            include_synonyms: true,
            include_documentation: true,
        }
        .into(),
        AlterConfigsRequest {
            resources: vec![alter_configs_request::AlterConfigsResource { resource_type: TOPIC, resource_name: "zz".into(), configs: vec![] }],
            validate_only: true,
        }
        .into(),
        IncrementalAlterConfigsRequest {
            resources: vec![incremental_alter_configs_request::AlterConfigsResource {
                resource_type: TOPIC,
                resource_name: "t".into(),
                configs: vec![],
            }],
            validate_only: true,
        }
        .into(),
        DeleteRecordsRequest {
            topics: vec![DeleteRecordsTopic { name: "t".into(), partitions: vec![DeleteRecordsPartition { partition_index: 1, offset: 0 }] }],
            timeout_ms: 1000,
        }
        .into(),
        DescribeClusterRequest { include_cluster_authorized_operations: true, endpoint_type: 1, include_fenced_brokers: true }.into(),
        DescribeLogDirsRequest { topics: None }.into(),
        DescribeProducersRequest {
            topics: vec![describe_producers_request::TopicRequest { name: "t".into(), partition_indexes: vec![0, 5] }],
        }
        .into(),
        DescribeTopicPartitionsRequest {
            topics: vec![describe_topic_partitions_request::TopicRequest { name: "t".into() }, describe_topic_partitions_request::TopicRequest { name: "zz".into() }],
            ..Default::default()
        }
        .into(),
        OffsetForLeaderEpochRequest {
            replica_id: -1,
            topics: vec![OffsetForLeaderTopic {
                topic: "t".into(),
                partitions: vec![OffsetForLeaderPartition { partition: 0, current_leader_epoch: -1, leader_epoch: 0 }],
            }],
        }
        .into(),
    ];
    for body in bodies {
        let key = body.api_key();
        let (lo, hi) = key.versions();
        for v in lo..=hi {
            // The harness checks that each answer encodes at its version.
            let r = h.call(v, body.clone());
            assert_eq!(r.api_key(), key);
        }
    }
}

/// Two brokers alter different configs of one topic at the same moment: the
/// commit computed from the older state is refused by the apply and computed
/// again, so both changes hold (no lost update), on both brokers.
#[test]
fn concurrent_incremental_alters_through_two_brokers_both_hold() {
    use strata_core::io::{AppendResult, Output};
    use strata_proto::codec::header::RequestHeader;

    let mut h = Harness::new();
    h.create_topic("t", 1);
    let mut b = Broker::new(BrokerConfig { node_id: 2, incarnation: 8, ..BrokerConfig::for_tests() });
    let mut applied = 0;
    let catch_up = |b: &mut Broker, log: &[bytes::Bytes], applied: &mut usize, out: &mut Vec<Output>| {
        while *applied < log.len() {
            let commit = Commit::decode(log[*applied].clone()).unwrap();
            *applied += 1;
            b.handle(0, Input::Applied { revision: *applied as u64, commit }, out);
        }
    };
    let mut out = Vec::new();
    catch_up(&mut b, &h.log, &mut applied, &mut out);

    // Broker 2 is asked first; its commit is on its way to the sequencer.
    let body: strata_proto::RequestBody = IncrementalAlterConfigsRequest {
        resources: vec![incremental_alter_configs_request::AlterConfigsResource {
            resource_type: TOPIC,
            resource_name: "t".into(),
            configs: vec![incremental_alter_configs_request::AlterableConfig {
                name: "retention.ms".into(),
                config_operation: 0, // SET
                value: Some("1000".into()),
            }],
        }],
        validate_only: false,
    }
    .into();
    let header = RequestHeader { api_key: body.api_key() as i16, api_version: 1, correlation_id: 1, client_id: None };
    let mut out = Vec::new();
    b.handle(0, Input::Request { conn: 1, request: 1, header, body, size: 0 }, &mut out);

    // Meanwhile broker 1 changes another config of the topic; its commit lands first.
    let r = incremental(&mut h, &[(TOPIC, "t", &[("cleanup.policy", 0, Some("compact"))])], false);
    assert_eq!(r[0].0, ec::NONE);

    // Broker 2's commits land after it: the first is refused (computed from
    // the older state), the second (computed again) holds.
    let mut answer = None;
    for _ in 0..4 {
        let appends: Vec<_> = out.drain(..).filter_map(|o| if let Output::Append { append, commit } = o { Some((append, commit)) } else { None }).collect();
        let mut next = Vec::new();
        for (append, commit) in appends {
            h.log.push(commit.encode());
            let revision = h.log.len() as u64;
            b.handle(0, Input::Appended { append, result: AppendResult::Ok(revision) }, &mut next);
        }
        catch_up(&mut b, &h.log, &mut applied, &mut next);
        for o in &next {
            if let Output::Respond { body: ResponseBody::IncrementalAlterConfigs(r), .. } = o {
                answer = Some(r.responses[0].error_code);
            }
        }
        out = next;
    }
    assert_eq!(answer, Some(ec::NONE), "broker 2 answered");
    let want = [("cleanup.policy", "compact"), ("retention.ms", "1000")].map(|(k, v)| (k.to_string(), v.to_string()));
    assert_eq!(b.log().topics["t"].configs, want.into_iter().collect(), "both changes hold on broker 2");
    let mut out = Vec::new();
    for (i, c) in h.log.clone().iter().enumerate().skip(h.broker.log().revision as usize) {
        h.broker.handle(0, Input::Applied { revision: i as u64 + 1, commit: Commit::decode(c.clone()).unwrap() }, &mut out);
    }
    assert_eq!(h.broker.log().digest(), b.log().digest(), "and both brokers agree");
}

/// The dynamic broker configs strata.flush.ms / strata.flush.bytes take effect
/// on the produce path, the node's own override over the cluster default.
#[test]
fn dynamic_flush_configs_change_when_objects_are_written() {
    use strata_proto::messages::produce_request::{PartitionProduceData, TopicProduceData};
    const TIMER_FLUSH: u64 = 1;
    let mut h = Harness::new(); // flush.ms 5, flush.bytes 1 MiB, no idle flush
    h.create_topic("t", 1);
    let produce = |h: &mut Harness, v: &str| {
        let body = ProduceRequest {
            acks: -1,
            timeout_ms: 1000,
            topic_data: vec![TopicProduceData {
                name: "t".into(),
                partition_data: vec![PartitionProduceData { index: 0, records: Some(batch(&[v], None)) }],
                ..Default::default()
            }],
            ..Default::default()
        };
        h.send(9, body.into())
    };
    let r = incremental(&mut h, &[(BROKER, "", &[("strata.flush.ms", 0, Some("2000"))])], false);
    assert_eq!(r[0].0, ec::NONE);
    let at = h.now;
    let req = produce(&mut h, "a");
    assert_eq!(h.timers.get(&TIMER_FLUSH), Some(&(at + 2000)), "the cluster-wide override is in force");
    h.advance(1999);
    assert!(h.take(req).is_none(), "not written before flush.ms");
    h.advance(1);
    assert!(h.take(req).is_some(), "written and answered at flush.ms");

    // This node's override beats the cluster default; a tiny flush.bytes writes at once.
    let r = incremental(&mut h, &[(BROKER, "1", &[("strata.flush.bytes", 0, Some("1"))])], false);
    assert_eq!(r[0].0, ec::NONE);
    let req = produce(&mut h, "b");
    assert!(h.take(req).is_some(), "a batch above flush.bytes is written without waiting");
}
