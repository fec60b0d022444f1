"""A three-broker cluster on one etcd (the sequencer) and one S3 bucket
(moto_server): Metadata lists every live broker; records produced through one
broker read back byte-identical, at identical offsets, through the others; a
broker killed -9 leaves Metadata within its member TTL and the rest go on; a
new broker with an empty data directory starts from the newest snapshot plus
the log and serves the same data."""

from __future__ import annotations

import random
import uuid

from confluent_kafka import Producer

import kafka_wire
from cluster import broker_ids, wait_brokers
from readback import read_partitions
from test_etcd import etcd  # noqa: F401  (fixture)
from test_s3 import moto, new_bucket, s3_args, s3_env  # noqa: F401  (fixtures)

PARTITIONS = 3
MEMBER_TTL_MS = 3000
SNAPSHOT_EVERY = 10  # revisions; a commit is one, and one object per flush of a few records


def produce(bootstrap: str, topic: str, rng: random.Random, start: int, n: int) -> list[tuple]:
    """Produces n keyed records (idempotent, acks=all); returns (partition, offset, key, value) acked."""
    acked, failed = [], []

    def on_delivery(err, m):
        (failed.append((err, m.key())) if err else acked.append((m.partition(), m.offset(), m.key(), m.value())))

    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5,
                  "message.timeout.ms": 60000, "retry.backoff.ms": 50, "reconnect.backoff.max.ms": 500})
    for i in range(start, start + n):
        p.produce(topic, key=b"k%d" % (i % 97), value=b"%d:" % i + rng.randbytes(rng.randrange(0, 512)),
                  on_delivery=on_delivery)
        if i % 100 == 99:
            p.flush(60)  # many small commits, so that snapshots and truncation happen
    assert p.flush(60) == 0, "records still undelivered after 60 s"
    assert not failed, f"{len(failed)} deliveries failed, first: {failed[:3]}"
    return acked


def read_all(bootstrap: str, topic: str) -> dict[int, dict[int, tuple]]:
    return read_partitions(bootstrap, topic, PARTITIONS, record=lambda m: (m.key(), m.value()), deadline_s=60)


def check(logs: dict, acked: list[tuple]) -> None:
    wrong = [(q, o) for q, o, k, v in acked if logs[q].get(o) != (k, v)]
    assert not wrong, f"{len(wrong)} acknowledged records missing or different, first: {wrong[:5]}"
    assert sum(map(len, logs.values())) == len(acked), "the log holds records that were never acknowledged"


def test_three_broker_cluster_on_etcd_and_s3(etcd, moto, s3_env, new_broker):  # noqa: F811
    bucket = new_bucket(moto)
    common = ["--sequencer", etcd.sequencer_arg, "--cluster-id", f"ci-{uuid.uuid4().hex[:8]}",
              *s3_args(moto, bucket, "cluster"), "--default-partitions", str(PARTITIONS),
              "--snapshot-every-commits", str(SNAPSHOT_EVERY), "--member-ttl-ms", str(MEMBER_TTL_MS)]

    def start(node: int):
        return new_broker(args=[*common, "--node-id", str(node)], name=f"node{node}").start()

    b1, b2, b3 = start(1), start(2), start(3)
    wait_brokers(b1.bootstrap, {1, 2, 3}, 15)
    assert broker_ids(b3.bootstrap) == {1, 2, 3}
    topic = "cluster-records"
    kafka_wire.ensure_topic(b1.host, b1.port, topic)

    rng = random.Random(20261121)
    acked = produce(b1.bootstrap, topic, rng, 0, 3000)
    logs2, logs3 = read_all(b2.bootstrap, topic), read_all(b3.bootstrap, topic)
    check(logs2, acked)
    assert logs2 == logs3, "brokers 2 and 3 serve different records"

    # A crash: broker 2's lease lapses, and it leaves Metadata within its TTL.
    b2.kill9()
    took = wait_brokers(b1.bootstrap, {1, 3}, MEMBER_TTL_MS / 1000 + 3)
    acked += produce(b1.bootstrap, topic, rng, 3000, 500)
    check(read_all(b3.bootstrap, topic), acked)

    # A new broker, empty data directory: the newest snapshot plus the log.
    snapshots = [o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket, Prefix="cluster/snapshots/").get("Contents", [])]
    assert snapshots, "no snapshot was written"
    b4 = start(4)
    wait_brokers(b4.bootstrap, {1, 3, 4}, 15)
    logs4 = read_all(b4.bootstrap, topic)
    check(logs4, acked)
    assert logs4 == read_all(b1.bootstrap, topic)
    # (It listens before it has loaded: the log says so only by now.)
    assert "snapshot loaded" in b4.log_tail(400), f"broker 4 did not start from a snapshot:\n{b4.log_tail()}"
    print(f"{len(acked)} records; broker 2 left Metadata {took:.1f} s after kill -9 (TTL {MEMBER_TTL_MS} ms); "
          f"{len(snapshots)} snapshots in the bucket; broker 4 started from one")
