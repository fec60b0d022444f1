"""kcat (Debian's, librdkafka 2.0.x) against Strata: metadata, 10,000 keyed
messages in and byte-identical out, and offsets by timestamp."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import time
import uuid
import zlib

import pytest

import kafka_wire
from conftest import DEFAULT_PARTITIONS

N = 10_000
FIRST_PHASE = 6_000  # produced uncompressed; the rest with zstd, after a timestamp boundary
KCAT = shutil.which("kcat") or "kcat"
PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))


def kcat(*args, stdin: bytes | None = None, timeout: float = 60.0) -> bytes:
    p = subprocess.run([KCAT, *args], input=stdin, capture_output=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"kcat {' '.join(args)} exited {p.returncode}:\n{p.stderr.decode(errors='replace')[-3000:]}")
    return p.stdout


def messages() -> list[tuple[bytes, bytes]]:
    """N (key, value) pairs: printable, no newline, keys without ':' (kcat's
    key delimiter), values with ':' and sizes from 1 byte to 2 KiB."""
    rng = random.Random(20251121)
    out = []
    for i in range(N):
        key = f"user-{rng.randrange(1000):04d}-{i}"
        size = rng.choice([1, 5, 20, 100, 300, 2000])
        body = "".join(rng.choice(PRINTABLE) for _ in range(max(0, size - 6)))
        value = f"{i:05d}:{body}"[:size] if size >= 6 else f"{i:05d}"[:size]
        out.append((key.encode(), value.encode()))
    return out


def partition_of(key: bytes) -> int:
    """librdkafka's `consistent` partitioner: CRC-32 of the key modulo the count."""
    return zlib.crc32(key) % DEFAULT_PARTITIONS


def parse_consumed(out: bytes) -> list[dict]:
    """Parses kcat -f '%p|%o|%T|%K|%S|%k%s\\n' output, byte-exact (lengths first)."""
    records, pos = [], 0
    while pos < len(out):
        fields = []
        for _ in range(5):
            bar = out.index(b"|", pos)
            fields.append(int(out[pos:bar]))
            pos = bar + 1
        p, o, ts, klen, vlen = fields
        key = out[pos:pos + klen] if klen >= 0 else None
        pos += max(klen, 0)
        value = out[pos:pos + vlen] if vlen >= 0 else None
        pos += max(vlen, 0)
        assert out[pos:pos + 1] == b"\n", f"kcat output misparsed at byte {pos}"
        pos += 1
        records.append({"partition": p, "offset": o, "timestamp": ts, "key": key, "value": value})
    return records


@pytest.fixture(scope="module")
def produced(broker):
    """Produces the N messages with kcat in two runs, with a timestamp
    boundary between them, to a 4-partition auto-created topic."""
    topic = f"kcat-{uuid.uuid4().hex[:8]}"
    md = kafka_wire.ensure_topic(broker.host, broker.port, topic)
    assert len(md["partitions"]) == DEFAULT_PARTITIONS
    msgs = messages()
    common = ["-b", broker.bootstrap, "-P", "-t", topic, "-K:", "-X", "topic.partitioner=consistent",
              "-X", "linger.ms=10", "-X", "batch.num.messages=200"]

    def lines(ms):
        return b"".join(k + b":" + v + b"\n" for k, v in ms)

    kcat(*common, stdin=lines(msgs[:FIRST_PHASE]))
    time.sleep(0.05)
    boundary_ms = int(time.time() * 1000)
    time.sleep(0.05)
    kcat(*common, "-z", "zstd", stdin=lines(msgs[FIRST_PHASE:]))
    return {"topic": topic, "msgs": msgs, "boundary_ms": boundary_ms}


def expected_by_partition(msgs):
    out = {p: [] for p in range(DEFAULT_PARTITIONS)}
    for i, (k, v) in enumerate(msgs):
        out[partition_of(k)].append((i, k, v))
    return out


def test_metadata_lists_topic(broker, produced):
    out = kcat("-b", broker.bootstrap, "-L", "-t", produced["topic"]).decode()
    # e.g.:  broker 1 at 127.0.0.1:PORT (controller)
    assert re.search(rf"broker \d+ at 127\.0\.0\.1:{broker.port}\b", out), out
    assert f'topic "{produced["topic"]}" with {DEFAULT_PARTITIONS} partitions:' in out, out
    for p in range(DEFAULT_PARTITIONS):
        assert re.search(rf"partition {p}, leader \d+, replicas: \d+, isrs: \d+", out), out
    assert "Err" not in out.split(f'topic "{produced["topic"]}"', 1)[1], out
    # and the full listing (no -t) has it too
    assert f'topic "{produced["topic"]}"' in kcat("-b", broker.bootstrap, "-L").decode()


def test_consume_byte_identical(broker, produced):
    out = kcat("-b", broker.bootstrap, "-C", "-t", produced["topic"], "-o", "beginning", "-e", "-q",
               "-f", "%p|%o|%T|%K|%S|%k%s\n", timeout=120)
    records = parse_consumed(out)
    assert len(records) == N, f"consumed {len(records)} records, produced {N}"
    want = expected_by_partition(produced["msgs"])
    for p in range(DEFAULT_PARTITIONS):
        got = [r for r in records if r["partition"] == p]
        # byte-identical as sets...
        assert sorted((r["key"], r["value"]) for r in got) == sorted((k, v) for _, k, v in want[p]), f"partition {p}"
        # ...and in produce order, at dense offsets from 0
        assert [r["offset"] for r in got] == list(range(len(want[p]))), f"partition {p}: offsets not 0..{len(want[p]) - 1}"
        assert [(r["key"], r["value"]) for r in got] == [(k, v) for _, k, v in want[p]], f"partition {p}: order differs"
        # CreateTime timestamps survive, on the right side of the boundary
        for r, (i, _, _) in zip(got, want[p]):
            if i < FIRST_PHASE:
                assert r["timestamp"] < produced["boundary_ms"], (p, r["offset"], r["timestamp"])
            else:
                assert r["timestamp"] > produced["boundary_ms"], (p, r["offset"], r["timestamp"])


def query(broker, topic, p, ts) -> int:
    out = kcat("-b", broker.bootstrap, "-Q", "-t", f"{topic}:{p}:{ts}").decode()
    m = re.search(rf"\[{p}\]\s+offset\s+(-?\d+)", out)
    assert m, f"unexpected kcat -Q output: {out!r}"
    return int(m.group(1))


def test_query_offsets(broker, produced):
    topic = produced["topic"]
    want = expected_by_partition(produced["msgs"])
    for p in range(DEFAULT_PARTITIONS):
        total = len(want[p])
        first_phase = sum(1 for i, _, _ in want[p] if i < FIRST_PHASE)
        assert 0 < first_phase < total
        # earliest (-2) and latest (-1)
        assert query(broker, topic, p, -2) == 0, f"partition {p}: earliest"
        assert query(broker, topic, p, -1) == total, f"partition {p}: latest (high watermark)"
        # first offset whose timestamp >= ts
        assert query(broker, topic, p, 0) == 0, f"partition {p}: timestamp 0"
        assert query(broker, topic, p, produced["boundary_ms"]) == first_phase, f"partition {p}: timestamp boundary"
        # after every record: no offset (Kafka answers -1)
        future = int(time.time() * 1000) + 86_400_000
        assert query(broker, topic, p, future) == -1, f"partition {p}: timestamp in the future"
