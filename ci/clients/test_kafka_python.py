"""kafka-python (pure Python) against Strata: idempotent produce with every
codec, assign()-based consume (no group), watermarks and offsets by time."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

import kafka_wire
from conftest import DEFAULT_PARTITIONS

CODECS = [None, "gzip", "snappy", "lz4", "zstd"]
N = 1_000


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c or "none")
def test_produce_consume_round_trip(bootstrap, topic, codec):
    host, port = bootstrap.split(":")
    kafka_wire.ensure_topic(host, int(port), topic)

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                             compression_type=codec, linger_ms=5, batch_size=4096, request_timeout_ms=30000)
    msgs = []
    futures = []
    for i in range(N):
        p = i % DEFAULT_PARTITIONS
        key = None if i % 9 == 0 else f"key-{i % 13}".encode()
        value = f"{i:05d}:".encode() + (b"x" * (i % 300) if i % 2 else bytes(range(i % 256)))
        headers = [("h", f"{i}".encode())] if i % 4 == 0 else []
        msgs.append((p, key, value, headers))
        futures.append(producer.send(topic, value=value, key=key, partition=p, headers=headers))
    producer.flush(30)
    metas = [f.get(timeout=30) for f in futures]
    producer.close(10)

    want = {p: [m for m in msgs if m[0] == p] for p in range(DEFAULT_PARTITIONS)}
    for p in range(DEFAULT_PARTITIONS):
        offs = [md.offset for md, m in zip(metas, msgs) if m[0] == p]
        assert offs == list(range(len(want[p]))), f"partition {p}: acknowledged offsets not dense from 0, in order"
    assert all(md.partition == m[0] and md.topic == topic for md, m in zip(metas, msgs))

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", fetch_max_wait_ms=200, request_timeout_ms=30000)
    try:
        tps = [TopicPartition(topic, p) for p in range(DEFAULT_PARTITIONS)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        got = {p: [] for p in range(DEFAULT_PARTITIONS)}
        deadline = time.monotonic() + 30
        while sum(map(len, got.values())) < N and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=500).items():
                got[tp.partition].extend(records)
        for p in range(DEFAULT_PARTITIONS):
            assert [r.offset for r in got[p]] == list(range(len(want[p]))), f"partition {p}: offsets"
            for r, (_, key, value, headers) in zip(got[p], want[p]):
                assert (r.key, r.value) == (key, value), f"partition {p} offset {r.offset}"
                assert list(r.headers) == headers, f"partition {p} offset {r.offset}: headers"
        # nothing more arrives
        extra = consumer.poll(timeout_ms=500)
        assert not any(extra.values()), f"unexpected extra records: {extra}"

        # watermarks and offsets by time
        assert consumer.beginning_offsets(tps) == {tp: 0 for tp in tps}
        assert consumer.end_offsets(tps) == {tp: len(want[tp.partition]) for tp in tps}
        # offsets by time at the ends (inside-batch precision: test_confluent_produce_consume.py)
        for tp in tps:
            last_ts = max(r.timestamp for r in got[tp.partition])
            found = consumer.offsets_for_times({tp: 0})[tp]
            assert found is not None and found.offset == 0, f"{tp}: offsets_for_times(0) = {found}"
            assert consumer.offsets_for_times({tp: last_ts + 1})[tp] is None, f"{tp}: offsets_for_times past the end"
    finally:
        consumer.close()


def test_fetch_returns_a_batch_larger_than_the_fetch_limits(bootstrap, topic):
    """KIP-74: the first batch is returned even when it exceeds
    max_partition_fetch_bytes / fetch_max_bytes, so a consumer never stalls."""
    host, port = bootstrap.split(":")
    kafka_wire.ensure_topic(host, int(port), topic)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=1 << 20)
    values = [bytes([i]) * 50_000 for i in range(6)]
    futures = [producer.send(topic, value=v, partition=0) for v in values]
    producer.flush(30)
    assert [f.get(timeout=30).offset for f in futures] == list(range(6))
    producer.close(10)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             max_partition_fetch_bytes=1024, fetch_max_bytes=1024, fetch_max_wait_ms=100)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        got = []
        deadline = time.monotonic() + 20
        while len(got) < 6 and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got.extend(r.value for r in records)
        assert got == values, f"got {len(got)} of 6 records with a 1 KiB fetch limit"
    finally:
        consumer.close()


@pytest.mark.parametrize("api_version", [(0, 10, 1), (0, 9)], ids=["magic1", "magic0"])
def test_old_message_format_producers(bootstrap, topic, api_version):
    """A producer speaking an old protocol (Produce v2 with magic-1 message
    sets, v1 with magic 0), plain and gzip, is read back by today's clients."""
    from confluent_kafka import Consumer
    from confluent_kafka import TopicPartition as CTP

    host, port = bootstrap.split(":")
    kafka_wire.ensure_topic(host, int(port), topic)
    sent = []
    for codec in (None, "gzip"):
        producer = KafkaProducer(bootstrap_servers=bootstrap, api_version=api_version, compression_type=codec,
                                 linger_ms=5, acks=1, enable_idempotence=False)
        futures = []
        for i in range(20):
            kv = (f"k{i}".encode(), f"{codec}-{i}".encode())
            sent.append(kv)
            futures.append(producer.send(topic, key=kv[0], value=kv[1], partition=0))
        producer.flush(15)
        assert [f.get(timeout=15).offset for f in futures] == list(range(len(sent) - 20, len(sent)))
        producer.close(10)

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        got = []
        deadline = time.monotonic() + 20
        while len(got) < len(sent) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got.extend((r.offset, r.key, r.value) for r in records)
        assert got == [(o, k, v) for o, (k, v) in enumerate(sent)]
    finally:
        consumer.close()

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "strata-ci-assign-only", "enable.auto.commit": False})
    try:
        c.assign([CTP(topic, 0, 0)])
        got = []
        deadline = time.monotonic() + 20
        while len(got) < len(sent) and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None:
                assert not m.error(), m.error()
                got.append((m.offset(), m.key(), m.value()))
        assert got == [(o, k, v) for o, (k, v) in enumerate(sent)]
    finally:
        c.close()
