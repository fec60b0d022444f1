"""kafka-python's KafkaAdminClient: its own request versions for the topic
and config admin APIs."""

from __future__ import annotations

import time

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
from kafka.errors import TopicAlreadyExistsError


def test_topics_and_configs(bootstrap, topic):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1,
                                      topic_configs={"retention.ms": "123456"})])
        try:
            admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
            raise AssertionError("creating an existing topic succeeded")
        except TopicAlreadyExistsError:
            pass
        [desc] = admin.describe_topics([topic])
        assert desc["error_code"] == 0 and len(desc["partitions"]) == 2, desc

        def retention():
            res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
            entry = res["topic"][topic]["retention.ms"]
            assert entry["config_source"] == "DYNAMIC_TOPIC_CONFIG", entry
            return entry["value"]

        assert retention() == "123456"
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "654321"})])
        assert retention() == "654321"
        admin.create_partitions({topic: NewPartitions(total_count=4)})
        [desc] = admin.describe_topics([topic])
        assert len(desc["partitions"]) == 4, desc
        admin.delete_topics([topic])
        deadline = time.monotonic() + 10
        while topic in admin.list_topics() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert topic not in admin.list_topics()
    finally:
        admin.close()


def test_cluster_log_dirs_producers_and_topic_partitions(bootstrap, broker, topic):
    from kafka import KafkaProducer, TopicPartition

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    try:
        # DescribeCluster
        cluster = admin.describe_cluster()
        assert cluster["cluster_id"], cluster
        [node] = cluster["brokers"]
        assert (node["host"], node["port"]) == ("127.0.0.1", broker.port), cluster
        assert cluster["controller_id"] == node["broker_id"], cluster

        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
        producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5)
        for i in range(30):
            producer.send(topic, value=b"x" * 100, partition=0 if i < 20 else 1)
        producer.flush(15)
        producer.close(10)

        # DescribeProducers: one idempotent producer, its last sequence per partition
        states = admin.describe_producers([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        last = {tp.partition: [p.last_sequence for p in s.active_producers] for tp, s in states.items()}
        assert last == {0: [19], 1: [9]}, states
        pids = {p.producer_id for s in states.values() for p in s.active_producers}
        assert len(pids) == 1 and min(pids) >= 0, states

        # DescribeLogDirs: the topic's partitions, with the bytes they hold
        [entry] = admin.describe_log_dirs()
        sizes = {(t["name"], p["partition_index"]): p["partition_size"]
                 for d in entry["log_dirs"] if d["error_code"] == 0 for t in d["topics"] for p in t["partitions"]}
        assert sizes.get((topic, 0), 0) > 20 * 100 and sizes.get((topic, 1), 0) > 10 * 100, sizes

        # DescribeTopicPartitions agrees with Metadata
        res = admin.describe_topic_partitions([topic])
        [t] = res["topics"]
        assert t["error_code"] == 0 and [p["partition_index"] for p in t["partitions"]] == [0, 1], t
        [md] = admin.describe_topics([topic])
        assert str(t["topic_id"]) == str(md["topic_id"]), (t["topic_id"], md["topic_id"])
        assert all(p["leader_id"] == node["broker_id"] for p in t["partitions"]), t
    finally:
        admin.close()


def test_idle_producer_ids_expire(new_broker, topic):
    """producer.id.expiration.ms: an idempotent producer's state goes once its
    last batch is older than that (here 2 s, swept every 0.5 s), and a later
    producer is served as ever."""
    from kafka import KafkaProducer, TopicPartition

    b = new_broker(args=["--config", "producer.id.expiration.ms=2000",
                         "--config", "log.retention.check.interval.ms=500"], name="expiry").start()
    admin = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=15000)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        tp = TopicPartition(topic, 0)

        def producer_ids() -> set[int]:
            return {p.producer_id for p in admin.describe_producers([tp])[tp].active_producers}

        def produce(n: int) -> None:
            producer = KafkaProducer(bootstrap_servers=b.bootstrap, enable_idempotence=True, acks="all", linger_ms=5)
            for _ in range(n):
                producer.send(topic, value=b"x", partition=0)
            producer.flush(15)
            producer.close(10)

        produce(10)
        first = producer_ids()
        assert len(first) == 1, first
        deadline = time.monotonic() + 30
        while producer_ids() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert producer_ids() == set(), "the idle producer's state was not expired within 30 s"
        produce(5)
        second = producer_ids()
        assert len(second) == 1 and second != first, (first, second)
    finally:
        admin.close()
