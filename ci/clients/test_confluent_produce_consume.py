"""confluent-kafka (librdkafka 2.x): idempotent producer with every codec and
multi-record batches; an assign()-based consumer reads every message exactly
once, in order; watermarks and ListOffsets give the real counts."""

from __future__ import annotations

import json
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

import kafka_wire
from conftest import DEFAULT_PARTITIONS

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
N = 2_000
TIMEOUT = 30


def make_messages(codec: str):
    """(partition, key, value, headers): explicit partitions round-robin, keys
    sometimes absent, values of mixed sizes (compressible and not), headers
    on some."""
    out = []
    for i in range(N):
        key = None if i % 7 == 0 else f"k{i % 50}".encode()
        filler = (f"{codec}-{i}-" * (1 + i % 40)).encode() if i % 3 else bytes((i * 31 + j) % 256 for j in range(i % 200))
        value = f"{i:06d}|".encode() + filler
        headers = [("seq", str(i).encode()), ("empty", b"")] if i % 5 == 0 else None
        out.append((i % DEFAULT_PARTITIONS, key, value, headers))
    return out


def produce_all(bootstrap, topic, msgs, codec, extra=None):
    """Produces with the idempotent producer; returns the delivery reports in
    order of arrival and the largest records-per-batch librdkafka reported."""
    reports, max_batch = [], [0]

    def on_stats(js):
        t = json.loads(js).get("topics", {}).get(topic)
        if t:
            max_batch[0] = max(max_batch[0], t["batchcnt"]["max"])

    conf = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": codec,
        "linger.ms": 5,
        "batch.num.messages": 25,
        "statistics.interval.ms": 100,
        "stats_cb": on_stats,
    }
    conf.update(extra or {})
    p = Producer(conf)

    def on_delivery(err, m):
        reports.append((err, m.partition(), m.offset(), m.value()))

    for part, key, value, headers in msgs:
        while True:
            try:
                p.produce(topic, value=value, key=key, partition=part, headers=headers, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(TIMEOUT) == 0, "messages still undelivered after flush"
    time.sleep(0.25)  # one more stats interval
    p.poll(0)
    return reports, max_batch[0]


def consume_all(bootstrap, topic, counts: dict[int, int], timeout=TIMEOUT):
    """assign()-based consumer (group.id set, no subscribe, no commits): reads
    every partition from offset 0 up to its count; returns the messages and
    the consumer (still open, for watermark queries)."""
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "strata-ci-assign-only",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",
        "enable.partition.eof": True,
        # watermark queries queue behind a long-poll Fetch on the same connection
        # (one request at a time per connection, as Kafka does): keep polls short
        "fetch.wait.max.ms": 100,
    })
    c.assign([TopicPartition(topic, p, 0) for p in counts])
    got = {p: [] for p in counts}
    eof = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                eof.add(m.partition())
                if all(len(got[p]) >= counts[p] for p in counts) and eof == set(counts):
                    break
                continue
            raise AssertionError(f"consumer error: {m.error()}")
        got[m.partition()].append(m)
    return got, c


@pytest.mark.parametrize("codec", CODECS)
def test_idempotent_produce_then_assign_consume(bootstrap, topic, codec):
    host, port = bootstrap.split(":")
    kafka_wire.ensure_topic(host, int(port), topic)
    msgs = make_messages(codec)
    reports, max_batch = produce_all(bootstrap, topic, msgs, codec)

    # every message acknowledged, once, without error
    errors = [(e, p, o) for e, p, o, _ in reports if e is not None]
    assert not errors, f"{len(errors)} delivery errors, first: {errors[:3]}"
    assert len(reports) == N
    # the batches really held several records each
    assert max_batch > 1, f"librdkafka never sent a batch of more than {max_batch} record(s); the test needs multi-record batches"

    # acknowledged offsets: dense from 0 per partition, in produce order
    want = {p: [m for m in msgs if m[0] == p] for p in range(DEFAULT_PARTITIONS)}
    acked = {p: sorted((o, v) for _, pp, o, v in reports if pp == p) for p in range(DEFAULT_PARTITIONS)}
    for p in range(DEFAULT_PARTITIONS):
        assert [o for o, _ in acked[p]] == list(range(len(want[p]))), f"partition {p}: acked offsets not dense from 0"
        assert [v for _, v in acked[p]] == [m[2] for m in want[p]], f"partition {p}: acked offsets out of produce order"

    counts = {p: len(want[p]) for p in range(DEFAULT_PARTITIONS)}
    got, consumer = consume_all(bootstrap, topic, counts)
    try:
        for p in range(DEFAULT_PARTITIONS):
            ms = got[p]
            assert len(ms) == counts[p], f"partition {p}: consumed {len(ms)}, produced {counts[p]}"
            assert [m.offset() for m in ms] == list(range(counts[p])), f"partition {p}: offsets"
            for m, (_, key, value, headers) in zip(ms, want[p]):
                assert m.value() == value, f"partition {p} offset {m.offset()}: value differs"
                assert m.key() == key, f"partition {p} offset {m.offset()}: key differs"
                assert (m.headers() or None) == headers, f"partition {p} offset {m.offset()}: headers differ"
                assert m.timestamp()[0] == 1 and m.timestamp()[1] > 0  # CreateTime

        # watermarks: fresh from the broker, and as the fetches reported them
        for p in range(DEFAULT_PARTITIONS):
            tp = TopicPartition(topic, p)
            assert consumer.get_watermark_offsets(tp, timeout=10, cached=False) == (0, counts[p]), f"partition {p}: watermarks"
            assert consumer.get_watermark_offsets(tp, cached=True)[1] == counts[p], f"partition {p}: high watermark in Fetch"

        # offsets_for_times at the ends (inside-batch precision has its own test below)
        for p in range(DEFAULT_PARTITIONS):
            last_ts = max(m.timestamp()[1] for m in got[p])
            for probe, expect in ((0, 0), (last_ts + 1, -1)):
                [r] = consumer.offsets_for_times([TopicPartition(topic, p, probe)], timeout=10)
                assert r.error is None and r.offset == expect, f"partition {p}: offsets_for_times({probe}) = {r.offset}, want {expect}"
    finally:
        consumer.close()

    # AdminClient.list_offsets
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for spec, expect in ((OffsetSpec.earliest(), lambda p: 0), (OffsetSpec.latest(), lambda p: counts[p])):
        fs = admin.list_offsets({TopicPartition(topic, p): spec for p in range(DEFAULT_PARTITIONS)}, request_timeout=10)
        for tp, f in fs.items():
            assert f.result(timeout=TIMEOUT).offset == expect(tp.partition), f"list_offsets {spec} partition {tp.partition}"


def test_consume_from_the_middle_and_past_the_end(bootstrap, topic):
    """assign() at an offset inside a multi-record batch starts exactly there."""
    host, port = bootstrap.split(":")
    kafka_wire.ensure_topic(host, int(port), topic)
    msgs = [(0, None, f"{i:04d}".encode(), None) for i in range(500)]
    reports, max_batch = produce_all(bootstrap, topic, msgs, "lz4", {"batch.num.messages": 100})
    assert all(e is None for e, *_ in reports) and max_batch > 1
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "strata-ci-assign-only", "enable.auto.commit": False,
                  "auto.offset.reset": "error"})
    try:
        for start in (0, 1, 137, 499):
            c.assign([TopicPartition(topic, 0, start)])
            vals = []
            deadline = time.monotonic() + TIMEOUT
            while len(vals) < 500 - start and time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is not None and not m.error():
                    vals.append((m.offset(), m.value()))
                elif m is not None:
                    raise AssertionError(f"consumer error: {m.error()}")
            assert vals == [(i, f"{i:04d}".encode()) for i in range(start, 500)], f"from offset {start}"
            c.unassign()
    finally:
        c.close()

    # past the end: Kafka answers OFFSET_OUT_OF_RANGE, which a consumer with
    # auto.offset.reset=error reports
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "strata-ci-assign-only", "enable.auto.commit": False,
                  "auto.offset.reset": "error"})
    try:
        c.assign([TopicPartition(topic, 0, 600)])
        deadline = time.monotonic() + TIMEOUT
        err = None
        while err is None and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None:
                assert m.error(), f"got a message at offset {m.offset()} past the end"
                err = m.error()
        assert err is not None and err.code() == KafkaError._AUTO_OFFSET_RESET, err
    finally:
        c.close()


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_offsets_by_timestamp_inside_one_batch(bootstrap, topic, codec):
    """ListOffsets by timestamp answers the first *record* with a timestamp >=
    the target, with that record's timestamp, even inside a multi-record
    batch; max_timestamp answers the record holding the largest timestamp."""
    host, port = bootstrap.split(":")
    kafka_wire.ensure_topic(host, int(port), topic)
    base = 1_700_000_000_000
    # one batch of 10 records, CreateTime base+1s .. base+10s, except record 3 which is the newest
    stamps = [base + (20_000 if i == 3 else 1000 * (i + 1)) for i in range(10)]
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 200, "compression.type": codec})
    acked = []
    for i, ts in enumerate(stamps):
        p.produce(topic, value=b"r%d" % i, partition=0, timestamp=ts, on_delivery=lambda e, m: acked.append((e, m.offset())))
    assert p.flush(TIMEOUT) == 0
    assert acked == [(None, i) for i in range(10)]

    def first_at_or_after(t):
        i = next((i for i, s in enumerate(stamps) if s >= t), None)
        return (-1, -1) if i is None else (i, stamps[i])

    admin = AdminClient({"bootstrap.servers": bootstrap})
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "strata-ci-assign-only"})
    wrong = []
    try:
        for probe in (base, base + 1000, base + 5500, base + 10_000, base + 10_001, base + 20_000, base + 20_001):
            want_offset, want_ts = first_at_or_after(probe)
            [r] = c.offsets_for_times([TopicPartition(topic, 0, probe)], timeout=10)
            if r.offset != want_offset:
                wrong.append(f"offsets_for_times(base+{probe - base}): offset {r.offset}, Kafka answers {want_offset}")
            [f] = admin.list_offsets({TopicPartition(topic, 0): OffsetSpec.for_timestamp(probe)}, request_timeout=10).values()
            res = f.result(timeout=TIMEOUT)
            if (res.offset, res.timestamp) != (want_offset, want_ts):
                wrong.append(f"list_offsets(base+{probe - base}): (offset {res.offset}, timestamp base+{res.timestamp - base}), "
                             f"Kafka answers ({want_offset}, base+{want_ts - base})")
        [f] = admin.list_offsets({TopicPartition(topic, 0): OffsetSpec.max_timestamp()}, request_timeout=10).values()
        res = f.result(timeout=TIMEOUT)
        if (res.offset, res.timestamp) != (3, base + 20_000):
            wrong.append(f"list_offsets(max_timestamp): (offset {res.offset}, timestamp base+{res.timestamp - base}), "
                         f"Kafka (since KAFKA-16310) answers (3, base+20000)")
    finally:
        c.close()
    assert not wrong, "ListOffsets answers differ from Kafka's:\n  " + "\n  ".join(wrong)


@pytest.mark.parametrize("acks", ["0", "1"])
def test_acks_0_and_1(bootstrap, topic, acks):
    """Non-idempotent producers with acks=0 and acks=1: everything arrives, once."""
    host, port = bootstrap.split(":")
    kafka_wire.ensure_topic(host, int(port), topic)
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": False, "acks": acks, "linger.ms": 5,
                  "batch.num.messages": 50})
    errors = []
    for i in range(1000):
        p.produce(topic, value=f"{i}".encode(), partition=i % DEFAULT_PARTITIONS,
                  on_delivery=lambda e, m: e and errors.append(e))
        p.poll(0)
    assert p.flush(TIMEOUT) == 0 and not errors, errors[:3]
    want = {q: 1000 // DEFAULT_PARTITIONS + (1 if q < 1000 % DEFAULT_PARTITIONS else 0) for q in range(DEFAULT_PARTITIONS)}
    # acks=0 gets no answer: wait until the writes are visible
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "strata-ci-assign-only"})
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            hw = {q: c.get_watermark_offsets(TopicPartition(topic, q), timeout=10)[1] for q in want}
            if hw == want:
                break
            time.sleep(0.1)
        assert hw == want
    finally:
        c.close()
    got, c = consume_all(bootstrap, topic, want)
    c.close()
    for q in want:
        assert [m.value() for m in got[q]] == [f"{i}".encode() for i in range(q, 1000, DEFAULT_PARTITIONS)]


def test_message_too_large_is_refused_and_large_one_accepted(bootstrap, topic):
    """A record batch above the broker's message.max.bytes (1048588 by default)
    is refused with MESSAGE_TOO_LARGE; one just under it round-trips."""
    host, port = bootstrap.split(":")
    kafka_wire.ensure_topic(host, int(port), topic)
    # not idempotent: a refused batch would leave an idempotent producer a sequence gap to repair
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": False, "acks": "all",
                  "message.max.bytes": 4_000_000, "compression.type": "none", "retries": 0})
    results = []
    big = bytes(range(256)) * (1_000_000 // 256)       # ~1 MB: under the limit
    huge = b"x" * 2_000_000                             # 2 MB: over it
    p.produce(topic, value=big, partition=0, on_delivery=lambda e, m: results.append(("big", e, m.offset())))
    p.flush(TIMEOUT)
    p.produce(topic, value=huge, partition=1, on_delivery=lambda e, m: results.append(("huge", e, m.offset())))
    p.flush(TIMEOUT)
    assert results[0] == ("big", None, 0), results
    assert results[1][0] == "huge" and results[1][1] is not None, results
    assert results[1][1].code() == KafkaError.MSG_SIZE_TOO_LARGE, results[1][1]
    got, c = consume_all(bootstrap, topic, {0: 1, 1: 0})
    c.close()
    assert [m.value() for m in got[0]] == [big]
    assert got[1] == []


def test_long_poll_fetch_wakes_on_new_data(bootstrap, topic):
    """A consumer waiting at the end of a partition (fetch.wait.max.ms=5000)
    gets a new record as soon as it is written, not when its wait runs out."""
    host, port = bootstrap.split(":")
    kafka_wire.ensure_topic(host, int(port), topic)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "strata-ci-assign-only", "enable.auto.commit": False,
                  "fetch.wait.max.ms": 5000})
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 0})
    try:
        # one record first: once it is read, the consumer's next fetch waits at the end
        p.produce(topic, value=b"first", partition=0)
        p.flush(TIMEOUT)
        c.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + 10
        m = None
        while time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                break
        assert m is not None and m.value() == b"first"
        time.sleep(1.0)  # now inside a 5 s long poll
        latencies = []
        for i in range(3):
            sent = time.monotonic()
            p.produce(topic, value=b"wake-%d" % i, partition=0)
            p.flush(TIMEOUT)
            while time.monotonic() - sent < 10:
                m = c.poll(0.05)
                if m is not None and not m.error():
                    assert m.value() == b"wake-%d" % i
                    latencies.append(time.monotonic() - sent)
                    break
            time.sleep(0.7)
        print(f"long-poll wake latencies: {latencies}")
        assert len(latencies) == 3, f"records not received: {latencies}"
        assert max(latencies) < 2.0, f"records took {latencies} s to arrive: the long poll did not wake on new data"
    finally:
        c.close()


def test_concurrent_producers_share_partitions(bootstrap, topic):
    """Four idempotent producers write the same two partitions at once: the
    offsets stay dense, nothing is lost or doubled, and each producer's own
    records keep their order."""
    import threading

    host, port = bootstrap.split(":")
    kafka_wire.ensure_topic(host, int(port), topic)
    per_producer = 1500
    acked = {w: [] for w in range(4)}

    def run(w):
        p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 2,
                      "batch.num.messages": 30})
        for i in range(per_producer):
            p.produce(topic, value=f"w{w}-{i:05d}".encode(), partition=i % 2,
                      on_delivery=lambda e, m, w=w: acked[w].append((e, m.partition(), m.offset(), m.value())))
            p.poll(0)
        p.flush(TIMEOUT)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for w in range(4):
        assert len(acked[w]) == per_producer and all(e is None for e, *_ in acked[w]), f"producer {w}"
    counts = {q: 4 * per_producer // 2 for q in (0, 1)}
    got, c = consume_all(bootstrap, topic, counts)
    c.close()
    for q in (0, 1):
        log = [m.value() for m in got[q]]
        assert len(log) == counts[q] and len(set(log)) == counts[q], f"partition {q}: {len(log)} records, {len(set(log))} distinct"
        for w in range(4):
            mine = [v for v in log if v.startswith(f"w{w}-".encode())]
            assert mine == sorted(mine) and len(mine) == per_producer // 2, f"partition {q}, producer {w}"
        where = {v: o for o, v in enumerate(log)}
        for w in range(4):
            for e, pq, o, v in acked[w]:
                if pq == q:
                    assert where[v] == o, f"{v!r} acknowledged at {o}, found at {where[v]}"
