"""confluent-kafka's AdminClient against Strata: topics and their configs are
created, described, altered and deleted, and come back as set."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

TIMEOUT = 15


@pytest.fixture
def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})


def error_of(future) -> KafkaError | None:
    try:
        future.result(timeout=TIMEOUT)
    except KafkaException as e:
        return e.args[0]
    return None


def create(admin, name, partitions=3, config=None, **kw):
    fs = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
                             operation_timeout=TIMEOUT, **kw)
    fs[name].result(timeout=TIMEOUT)


def topic_metadata(admin, name):
    return admin.list_topics(topic=name, timeout=TIMEOUT).topics.get(name)


def wait_partitions(admin, name, count, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    md = None
    while time.monotonic() < deadline:
        md = topic_metadata(admin, name)
        if md is not None and md.error is None and len(md.partitions) == count:
            return md
        time.sleep(0.1)
    raise AssertionError(f"{name}: wanted {count} partitions, metadata says {md and md.partitions} / {md and md.error}")


def describe(admin, name) -> dict[str, ConfigEntry]:
    res = ConfigResource(ResourceType.TOPIC, name)
    return admin.describe_configs([res])[res].result(timeout=TIMEOUT)


def all_topic_names(admin):
    # a Metadata request for all topics does not auto-create anything
    return set(admin.list_topics(timeout=TIMEOUT).topics)


def test_create_topic_appears_in_metadata(admin, broker, topic):
    create(admin, topic, partitions=3)
    md = wait_partitions(admin, topic, 3)
    assert sorted(md.partitions) == [0, 1, 2]
    cluster = admin.list_topics(timeout=TIMEOUT)
    assert [(b.host, b.port) for b in cluster.brokers.values()] == [("127.0.0.1", broker.port)]
    node = next(iter(cluster.brokers))
    for p in md.partitions.values():
        assert p.error is None
        assert p.leader == node
        assert p.replicas == [node] and p.isrs == [node]
    assert topic in all_topic_names(admin)


def test_create_existing_topic_fails(admin, topic):
    create(admin, topic, partitions=1)
    fs = admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)], operation_timeout=TIMEOUT)
    err = error_of(fs[topic])
    assert err is not None and err.code() == KafkaError.TOPIC_ALREADY_EXISTS, err
    # the first definition stands
    assert len(wait_partitions(admin, topic, 1).partitions) == 1


def test_create_invalid_requests_are_refused(admin, topic):
    bad_config = topic + "-cfg"
    fs = admin.create_topics([NewTopic(bad_config, num_partitions=1, replication_factor=1,
                                       config={"retention.ms": "not-a-number"})], operation_timeout=TIMEOUT)
    err = error_of(fs[bad_config])
    assert err is not None and err.code() == KafkaError.INVALID_CONFIG, err

    unknown = topic + "-unk"
    fs = admin.create_topics([NewTopic(unknown, num_partitions=1, replication_factor=1,
                                       config={"no.such.config": "1"})], operation_timeout=TIMEOUT)
    err = error_of(fs[unknown])
    assert err is not None and err.code() == KafkaError.INVALID_CONFIG, err

    zero = topic + "-zero"
    fs = admin.create_topics([NewTopic(zero, num_partitions=0, replication_factor=1)], operation_timeout=TIMEOUT)
    err = error_of(fs[zero])
    assert err is not None and err.code() == KafkaError.INVALID_PARTITIONS, err

    names = all_topic_names(admin)
    assert not {bad_config, unknown, zero} & names, "a refused CreateTopics still created a topic"


def test_create_validate_only_creates_nothing(admin, topic):
    fs = admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)],
                             validate_only=True, operation_timeout=TIMEOUT)
    assert error_of(fs[topic]) is None
    assert topic not in all_topic_names(admin)


def test_configs_set_at_creation_are_described(admin, topic):
    create(admin, topic, partitions=2, config={"retention.ms": "86400000", "max.message.bytes": "2000000"})
    wait_partitions(admin, topic, 2)
    cfg = describe(admin, topic)
    assert cfg["retention.ms"].value == "86400000"
    assert cfg["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert not cfg["retention.ms"].is_default
    assert cfg["max.message.bytes"].value == "2000000"
    assert cfg["max.message.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    # configs not set: Kafka's defaults
    for name, default in {"cleanup.policy": "delete", "retention.bytes": "-1", "min.insync.replicas": "1",
                          "compression.type": "producer", "message.timestamp.type": "CreateTime"}.items():
        assert name in cfg, f"{name} missing from DescribeConfigs"
        assert cfg[name].value == default, f"{name} = {cfg[name].value}"
        assert cfg[name].source in (ConfigSource.DEFAULT_CONFIG.value, ConfigSource.STATIC_BROKER_CONFIG.value), \
            f"{name} source {cfg[name].source}"
        assert not cfg[name].is_read_only


def test_incremental_alter_configs(admin, topic):
    create(admin, topic, partitions=1, config={"retention.ms": "86400000", "max.message.bytes": "2000000"})
    wait_partitions(admin, topic, 1)
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("segment.bytes", "10485760", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("max.message.bytes", None, incremental_operation=AlterConfigOpType.DELETE),
    ])
    admin.incremental_alter_configs([res])[res].result(timeout=TIMEOUT)
    cfg = describe(admin, topic)
    assert (cfg["retention.ms"].value, cfg["retention.ms"].source) == ("3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert (cfg["segment.bytes"].value, cfg["segment.bytes"].source) == ("10485760", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    # deleted: back to the broker's value (message.max.bytes, 1048588 by default)
    assert cfg["max.message.bytes"].value == "1048588"
    assert cfg["max.message.bytes"].source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value

    # an invalid value is refused and changes nothing
    bad = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)])
    err = error_of(admin.incremental_alter_configs([bad])[bad])
    assert err is not None and err.code() == KafkaError.INVALID_CONFIG, err
    assert describe(admin, topic)["retention.ms"].value == "3600000"

    # validate_only changes nothing
    dry = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
    assert error_of(admin.incremental_alter_configs([dry], validate_only=True)[dry]) is None
    assert describe(admin, topic)["retention.ms"].value == "3600000"


def test_alter_configs_unknown_topic(admin, topic):
    res = ConfigResource(ResourceType.TOPIC, topic + "-missing", incremental_configs=[
        ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
    err = error_of(admin.incremental_alter_configs([res])[res])
    assert err is not None and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, err
    missing = ConfigResource(ResourceType.TOPIC, topic + "-missing")
    err = error_of(admin.describe_configs([missing])[missing])
    assert err is not None and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, err


def test_create_partitions(admin, bootstrap, topic):
    create(admin, topic, partitions=2)
    wait_partitions(admin, topic, 2)
    admin.create_partitions([NewPartitions(topic, 5)], operation_timeout=TIMEOUT)[topic].result(timeout=TIMEOUT)
    wait_partitions(admin, topic, 5)
    # the new partitions take writes
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    acked = []
    p.produce(topic, value=b"in-new-partition", partition=4, on_delivery=lambda e, m: acked.append((e, m.partition(), m.offset())))
    assert p.flush(TIMEOUT) == 0
    assert acked == [(None, 4, 0)]
    # shrinking is refused
    err = error_of(admin.create_partitions([NewPartitions(topic, 3)], operation_timeout=TIMEOUT)[topic])
    assert err is not None and err.code() == KafkaError.INVALID_PARTITIONS, err
    assert len(wait_partitions(admin, topic, 5).partitions) == 5


def test_delete_topic(admin, bootstrap, topic):
    create(admin, topic, partitions=2)
    wait_partitions(admin, topic, 2)
    admin.delete_topics([topic], operation_timeout=TIMEOUT)[topic].result(timeout=TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while topic in all_topic_names(admin) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert topic not in all_topic_names(admin)
    err = error_of(admin.delete_topics([topic], operation_timeout=TIMEOUT)[topic])
    assert err is not None and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, err
    # the name can be used again, from scratch
    create(admin, topic, partitions=1)
    wait_partitions(admin, topic, 1)
    assert describe(admin, topic)["retention.ms"].source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value


def test_describe_cluster(admin, broker):
    desc = admin.describe_cluster(request_timeout=TIMEOUT).result(timeout=TIMEOUT)
    assert desc.cluster_id
    assert [(n.host, n.port) for n in desc.nodes] == [("127.0.0.1", broker.port)]
    assert desc.controller is not None


def test_describe_broker_config(admin):
    node = next(iter(admin.list_topics(timeout=TIMEOUT).brokers))
    res = ConfigResource(ResourceType.BROKER, str(node))
    cfg = admin.describe_configs([res])[res].result(timeout=TIMEOUT)
    assert cfg["message.max.bytes"].value == "1048588"
    assert cfg["auto.create.topics.enable"].value == "true"
    assert cfg["num.partitions"].value == "4"  # --default-partitions 4


def test_delete_records(admin, bootstrap, topic):
    from confluent_kafka import Consumer, TopicPartition

    create(admin, topic, partitions=2)
    wait_partitions(admin, topic, 2)
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for i in range(100):
        p.produce(topic, value=b"%d" % i, partition=i % 2)
    assert p.flush(TIMEOUT) == 0
    # delete below offset 30 in partition 0 (inside a batch), everything in partition 1
    res = admin.delete_records([TopicPartition(topic, 0, 30), TopicPartition(topic, 1, -1)], request_timeout=TIMEOUT)
    lows = {tp.partition: f.result(timeout=TIMEOUT).low_watermark for tp, f in res.items()}
    assert lows == {0: 30, 1: 50}, lows
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "strata-ci-assign-only", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False) == (30, 50)
        assert c.get_watermark_offsets(TopicPartition(topic, 1), timeout=10, cached=False) == (50, 50)
        # reading from the beginning starts at the new log start
        c.assign([TopicPartition(topic, 0, -2)])
        got = []
        deadline = time.monotonic() + TIMEOUT
        while len(got) < 20 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append((m.offset(), m.value()))
        assert got == [(o, b"%d" % (2 * o)) for o in range(30, 50)], got[:5]
    finally:
        c.close()
    # beyond the high watermark: OFFSET_OUT_OF_RANGE
    res = admin.delete_records([TopicPartition(topic, 0, 51)], request_timeout=TIMEOUT)
    err = error_of(next(iter(res.values())))
    assert err is not None and err.code() == KafkaError.OFFSET_OUT_OF_RANGE, err


def test_invalid_topic_names_are_refused(admin, topic):
    names = ["has space", "slash/name", "star*", ".", "..", "x" * 250]
    fs = admin.create_topics([NewTopic(n, num_partitions=1, replication_factor=1) for n in names], operation_timeout=TIMEOUT)
    for n in names:
        err = error_of(fs[n])
        assert err is not None and err.code() == KafkaError.TOPIC_EXCEPTION, f"{n[:20]!r}: {err}"
    # the longest legal name (249 characters) is fine
    long_ok = (topic + "-" + "y" * 249)[:249]
    create(admin, long_ok, partitions=1)
    assert long_ok in all_topic_names(admin)


def test_topic_max_message_bytes_is_enforced(admin, bootstrap, topic):
    create(admin, topic, partitions=1, config={"max.message.bytes": "10000"})
    wait_partitions(admin, topic, 1)
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": False, "acks": "all", "retries": 0,
                  "compression.type": "none", "linger.ms": 0})
    results = []
    p.produce(topic, value=b"s" * 5000, on_delivery=lambda e, m: results.append(e))
    p.flush(TIMEOUT)
    p.produce(topic, value=b"l" * 20000, on_delivery=lambda e, m: results.append(e))
    p.flush(TIMEOUT)
    assert results[0] is None, results
    assert results[1] is not None and results[1].code() == KafkaError.MSG_SIZE_TOO_LARGE, results


def test_log_append_time_topic(admin, bootstrap, topic):
    """message.timestamp.type=LogAppendTime: the broker stamps the records;
    producers learn the stamp in the answer, consumers read it back."""
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer, TopicPartition

    create(admin, topic, partitions=1, config={"message.timestamp.type": "LogAppendTime"})
    wait_partitions(admin, topic, 1)
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20})
    reports = []
    before = int(time.time() * 1000)
    for i in range(5):
        p.produce(topic, value=b"%d" % i, timestamp=1_000_000_000_000 + i,
                  on_delivery=lambda e, m: reports.append((e, m.offset(), m.timestamp())))
    assert p.flush(TIMEOUT) == 0
    after = int(time.time() * 1000)
    assert all(e is None for e, _, _ in reports), reports
    for _, _, (kind, ts) in reports:
        assert kind == TIMESTAMP_LOG_APPEND_TIME and before - 1000 <= ts <= after + 1000, reports
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "strata-ci-assign-only", "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got = []
        deadline = time.monotonic() + TIMEOUT
        while len(got) < 5 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append(m.timestamp())
        assert len(got) == 5
        assert all(kind == TIMESTAMP_LOG_APPEND_TIME and before - 1000 <= ts <= after + 1000 for kind, ts in got), got
        assert {ts for _, ts in got} == {ts for _, _, (_, ts) in reports}, (got, reports)
    finally:
        c.close()


def test_dynamic_flush_ms_takes_effect(new_broker, topic):
    """strata.flush.ms altered as a dynamic broker config (this node's) changes
    when the broker writes objects: a broker started with a 10-minute
    flush.ms (and no idle flush) answers a produce within seconds once the
    config says 5 ms."""
    b = new_broker(args=["--flush-when-idle", "false", "--flush-ms", "600000"], name="flushms").start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap, "socket.timeout.ms": 10000})
    create(admin, topic, partitions=1)
    node = str(next(iter(admin.list_topics(timeout=TIMEOUT).brokers)))
    res = ConfigResource(ResourceType.BROKER, node, incremental_configs=[
        ConfigEntry("strata.flush.ms", "5", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([res])[res].result(timeout=TIMEOUT)
    mine = ConfigResource(ResourceType.BROKER, node)
    entry = admin.describe_configs([mine])[mine].result(timeout=TIMEOUT)["strata.flush.ms"]
    assert (entry.value, entry.source) == ("5", ConfigSource.DYNAMIC_BROKER_CONFIG.value), entry

    acked = []
    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "message.timeout.ms": 60000})
    p.produce(topic, value=b"soon", partition=0, on_delivery=lambda err, m: acked.append((err, m.offset())))
    assert p.flush(30) == 0, "not acknowledged within 30 s: the 10-minute flush.ms is still in force"
    assert acked == [(None, 0)], acked
