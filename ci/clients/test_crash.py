"""kill -9 (and SIGTERM) in the middle of an idempotent, acks=all produce
stream: every acknowledged record survives at its acknowledged offset, and the
producer's retries across the restart leave no duplicates and no gaps."""

from __future__ import annotations

import collections
import time

import pytest

from confluent_kafka import Consumer, Producer, TopicPartition

import kafka_wire
from readback import read_partitions

PARTITIONS = 3
PRODUCE_BEFORE_KILL_S = 2.0
DOWN_S = 0.5
PRODUCE_AFTER_RESTART_S = 3.0
RATE_PER_S = 3000


@pytest.mark.parametrize("how", ["kill9", "sigterm"])
def test_broker_stop_mid_stream_loses_no_acknowledged_record(new_broker, how):
    """kill9: a crash. sigterm: a clean shutdown, which answers what is in
    flight and exits 0. Either way the producer carries on after the restart."""
    b = new_broker(args=["--default-partitions", str(PARTITIONS)], name="crash").start()
    topic = "crash-test"
    kafka_wire.ensure_topic(b.host, b.port, topic)

    acked = []        # (partition, offset, value) from successful delivery reports
    failed = []       # (error, value)
    sent_at = {}      # value -> time produced

    def on_delivery(err, m):
        if err is None:
            acked.append((m.partition(), m.offset(), m.value()))
        else:
            failed.append((err, m.value()))

    p = Producer({
        "bootstrap.servers": b.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        "batch.num.messages": 50,
        "message.timeout.ms": 60000,
        "request.timeout.ms": 10000,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        "retry.backoff.ms": 50,
        "topic.metadata.refresh.interval.ms": 1000,
    })

    i = 0
    t0 = time.monotonic()
    killed_at = restarted_at = None
    acked_before_kill = 0
    end = PRODUCE_BEFORE_KILL_S + DOWN_S + PRODUCE_AFTER_RESTART_S
    while (now := time.monotonic() - t0) < end:
        if killed_at is None and now >= PRODUCE_BEFORE_KILL_S:
            if how == "kill9":
                b.kill9()
            else:
                code = b.stop()
                assert code == 0, f"SIGTERM: the broker exited {code}:\n{b.log_tail()}"
            killed_at = now
            p.poll(0)
            acked_before_kill = len(acked)
        if killed_at is not None and restarted_at is None and now >= killed_at + DOWN_S:
            b.start()
            restarted_at = time.monotonic() - t0
        # produce at about RATE_PER_S, in small bursts
        target = int(now * RATE_PER_S)
        while i < target:
            value = f"crash-{i:07d}".encode()
            try:
                p.produce(topic, value=value, partition=i % PARTITIONS, on_delivery=on_delivery)
            except BufferError:
                break
            sent_at[value] = now
            i += 1
        p.poll(0.005)
    remaining = p.flush(60)
    produced = i
    assert remaining == 0, f"{remaining} messages still undelivered 60 s after the restart"
    assert b.alive(), f"broker died after restart:\n{b.log_tail()}"

    # Every message was acknowledged exactly once (idempotence: no failure reports).
    assert not failed, f"{len(failed)} deliveries failed, first: {failed[:3]}"
    assert len(acked) == produced
    assert 0 < acked_before_kill < produced, "the kill did not land in the middle of the stream"
    acked_after_restart = sum(1 for _, _, v in acked if sent_at[v] > restarted_at)
    assert acked_after_restart > 0, "nothing produced after the restart was acknowledged"

    # Read everything back.
    logs = read_partitions(b.bootstrap, topic, PARTITIONS)

    # 1. every acknowledged record is at its acknowledged offset
    lost = [(q, o, v) for q, o, v in acked if logs[q].get(o) != v]
    assert not lost, (f"{len(lost)} acknowledged records not found at their offsets, first: "
                      f"{[(q, o, v, logs[q].get(o)) for q, o, v in lost[:5]]}")
    # 2. no duplicates: each value once in the whole topic, nothing unknown
    counts = collections.Counter(v for log in logs.values() for v in log.values())
    dups = {v: n for v, n in counts.items() if n > 1}
    assert not dups, f"{len(dups)} values written more than once, e.g. {list(dups.items())[:5]}"
    assert set(counts) == set(sent_at), "the log holds records that were never produced, or misses some"
    # 3. per partition, in produce order
    for q in range(PARTITIONS):
        seq = [int(logs[q][o].split(b"-")[1]) for o in sorted(logs[q])]
        assert seq == sorted(seq), f"partition {q}: records out of produce order"
    print(f"produced {produced}, acknowledged before the kill {acked_before_kill}, "
          f"after the restart {acked_after_restart}; high watermarks { {q: len(log) for q, log in logs.items()} }")


def test_acknowledged_admin_changes_survive_kill9_and_restart(new_broker):
    """Topics, partitions and configs that the broker acknowledged are there
    after a kill -9 and after a clean restart; so are the records."""
    from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic, ResourceType

    b = new_broker(name="admin-crash").start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    fs = admin.create_topics([NewTopic("kept", num_partitions=2, replication_factor=1, config={"retention.ms": "4242000"}),
                              NewTopic("dropped", num_partitions=1, replication_factor=1)], operation_timeout=10)
    for f in fs.values():
        f.result(timeout=15)
    admin.create_partitions([NewPartitions("kept", 3)], operation_timeout=10)["kept"].result(timeout=15)
    admin.delete_topics(["dropped"], operation_timeout=10)["dropped"].result(timeout=15)
    p = Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True, "acks": "all"})
    for i in range(30):
        p.produce("kept", value=b"%d" % i, partition=i % 3)
    assert p.flush(15) == 0

    def check(when):
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        md = a.list_topics(timeout=15)
        assert "dropped" not in md.topics, f"{when}: a deleted topic came back"
        assert "kept" in md.topics and len(md.topics["kept"].partitions) == 3, f"{when}: {md.topics.get('kept')}"
        res = ConfigResource(ResourceType.TOPIC, "kept")
        assert a.describe_configs([res])[res].result(timeout=15)["retention.ms"].value == "4242000", when
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "strata-ci-assign-only"})
        try:
            for q in range(3):
                assert c.get_watermark_offsets(TopicPartition("kept", q), timeout=10, cached=False) == (0, 10), f"{when}: partition {q}"
        finally:
            c.close()

    check("before any restart")
    b.kill9()
    b.start()
    check("after kill -9")
    assert b.stop() == 0, f"clean shutdown exited non-zero:\n{b.log_tail()}"
    b.start()
    check("after a clean restart")
