"""The internal gRPC surface with real clients, on etcd and an S3 bucket
(moto_server): records produced through broker 1 and read by a confluent-kafka
consumer from broker 2 come from broker 1's memory, not from S3 (`strata admin
status` says so); `strata admin drain` on one broker of three makes a running
idempotent producer move to the others, and nothing is lost or duplicated."""

from __future__ import annotations

import threading
import time
import uuid

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

import kafka_wire
from readback import read_partitions
from test_cluster_etcd import wait_brokers
from test_etcd import etcd  # noqa: F401  (fixture)
from test_s3 import moto, new_bucket, s3_args, s3_env  # noqa: F401  (fixtures)

MEMBER_TTL_MS = 3000


def cluster(etcd, moto, new_broker, nodes: list[int], partitions: int):  # noqa: F811
    bucket = new_bucket(moto)
    common = ["--sequencer", etcd.sequencer_arg, "--cluster-id", f"ci-{uuid.uuid4().hex[:8]}",
              *s3_args(moto, bucket, "grpc"), "--default-partitions", str(partitions),
              "--member-ttl-ms", str(MEMBER_TTL_MS)]
    brokers = [new_broker(args=[*common, "--node-id", str(n)], name=f"node{n}").start() for n in nodes]
    wait_brokers(brokers[0].bootstrap, set(nodes), 15)
    for b in brokers:
        wait_brokers(b.bootstrap, set(nodes), 15)
    return brokers


def leaders(broker, topic: str) -> dict[int, int]:
    md = kafka_wire.metadata(broker.host, broker.port, [topic])
    (t,) = [t for t in md["topics"] if t["name"] == topic]
    return {p["partition"]: p["leader"] for p in t["partitions"]}


def produce_through(broker, topic: str, partition: int, batches: list[list[bytes]]) -> None:
    """Produces each batch to `partition` through `broker` itself (acks=-1),
    whoever Metadata names leader: any Strata broker takes produce for any partition."""
    with kafka_wire.connect(broker.host, broker.port) as s:
        for i, values in enumerate(batches):
            body = kafka_wire.produce_v3_body(topic, partition, kafka_wire.record_batch(values))
            (r,) = kafka_wire.parse_produce_v3(kafka_wire.roundtrip(s, 0, 3, 100 + i, body))
            assert r["error_code"] == 0, f"produce through broker {broker.name} failed: {r}"


def consume(bootstrap: str, topic: str, partitions: list[int], want: int) -> dict[int, list[bytes]]:
    """Every value of `partitions` from offset 0, by partition, once `want` values arrived."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "strata-ci-grpc", "enable.auto.commit": False,
                  "enable.partition.eof": True})
    got: dict[int, list[bytes]] = {q: [] for q in partitions}
    try:
        c.assign([TopicPartition(topic, q, 0) for q in partitions])
        deadline = time.monotonic() + 60
        while sum(map(len, got.values())) < want and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None or (m.error() and m.error().code() == KafkaError._PARTITION_EOF):
                continue
            assert not m.error(), f"consumer error: {m.error()}"
            assert m.offset() == len(got[m.partition()]), f"partition {m.partition()}: offset {m.offset()} out of order"
            got[m.partition()].append(m.value())
    finally:
        c.close()
    return got


def test_tail_reads_on_another_broker_come_from_the_writer(etcd, moto, s3_env, new_broker):  # noqa: F811
    b1, b2 = cluster(etcd, moto, new_broker, [1, 2], partitions=16)
    topic = "tail-from-peer"
    kafka_wire.ensure_topic(b1.host, b1.port, topic)
    # Partitions whose leader is broker 2: the consumer fetches them there.
    on_b2 = [q for q, leader in sorted(leaders(b2, topic).items()) if leader == 2][:4]
    assert on_b2, f"no partition led by broker 2: {leaders(b2, topic)}"

    sent = {q: [[b"p%d-b%d-r%d" % (q, i, j) for j in range(10)] for i in range(20)] for q in on_b2}
    for q, batches in sent.items():
        produce_through(b1, topic, q, batches)
    s1, s2 = b1.admin("status"), b2.admin("status")
    assert s1["recent_objects"] > 0, s1

    got = consume(b2.bootstrap, topic, on_b2, want=sum(len(b) * 10 for b in sent.values()))
    for q, batches in sent.items():
        assert got[q] == [v for b in batches for v in b], f"partition {q} read back wrong"

    a1, a2 = b1.admin("status"), b2.admin("status")
    assert a2["peer_reads_used"] > s2["peer_reads_used"], f"broker 2 read nothing from broker 1: {a2}"
    assert a2["store_gets"] == s2["store_gets"], f"broker 2 read S3 for a tail read: {s2} -> {a2}"
    assert a1["peer_reads_served"] > s1["peer_reads_served"], f"broker 1 served nothing: {a1}"
    print(f"partitions {on_b2}: broker 2 read {a2['peer_reads_used'] - s2['peer_reads_used']} ranges from broker 1 "
          f"({a1['peer_bytes_served'] - s1['peer_bytes_served']} bytes), S3 GETs {a2['store_gets'] - s2['store_gets']}")


def test_drain_moves_a_running_producer_and_loses_nothing(etcd, moto, s3_env, new_broker):  # noqa: F811
    b1, b2, b3 = cluster(etcd, moto, new_broker, [1, 2, 3], partitions=6)
    topic = "drained"
    kafka_wire.ensure_topic(b1.host, b1.port, topic)
    assert 1 in leaders(b1, topic).values(), "broker 1 leads no partition: nothing would move"

    acked, failed = [], []
    stop = threading.Event()

    def run():
        p = Producer({"bootstrap.servers": ",".join(b.bootstrap for b in (b1, b2, b3)), "enable.idempotence": True,
                      "acks": "all", "linger.ms": 5, "message.timeout.ms": 60000, "retry.backoff.ms": 50,
                      "reconnect.backoff.max.ms": 500})

        def on_delivery(err, m):
            (failed.append((err, m.value())) if err else acked.append((m.partition(), m.offset(), m.value())))

        i = 0
        while not stop.is_set():
            p.produce(topic, key=b"k%d" % (i % 31), value=b"v%d" % i, on_delivery=on_delivery)
            i += 1
            p.poll(0)
            if i % 50 == 0:
                p.flush(30)
        assert p.flush(60) == 0, "records undelivered after 60 s"

    t = threading.Thread(target=run)
    t.start()
    try:
        deadline = time.monotonic() + 60
        while len(acked) < 1000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(acked) >= 1000, f"only {len(acked)} acknowledged before the drain"

        d = b1.admin("drain")
        assert not d["exiting"], d
        s = b1.admin("status")
        assert s["draining"] and [m["node_id"] for m in s["members"]] == [2, 3], s
        committed = s["objects_committed"]
        wait_brokers(b2.bootstrap, {2, 3}, 15)

        at_drain = len(acked)
        deadline = time.monotonic() + 60
        while len(acked) < at_drain + 1000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(acked) >= at_drain + 1000, f"the producer stalled after the drain: {len(acked) - at_drain} more acked"
    finally:
        stop.set()
        t.join(120)
    assert not failed, f"{len(failed)} deliveries failed, first: {failed[:3]}"
    # Broker 1 took no produce after the drain: its objects stopped at the drain's.
    assert b1.admin("status")["objects_committed"] == committed, "broker 1 still wrote objects after the drain"

    logs = read_partitions(b2.bootstrap, topic, 6, deadline_s=120)
    wrong = [(q, o) for q, o, v in acked if logs[q].get(o) != v]
    assert not wrong, f"{len(wrong)} acknowledged records missing or different, first: {wrong[:5]}"
    assert sum(map(len, logs.values())) == len(acked), "the log holds records never acknowledged (or duplicates)"
    assert b1.stop() == 0, "the drained broker did not stop cleanly"
    print(f"{len(acked)} records acknowledged, {len(acked) - at_drain} after broker 1 drained "
          f"({d['objects']} objects flushed by the drain at revision {d['applied_revision']})")
