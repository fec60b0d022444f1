"""Retention with a real client: records past retention.ms, or beyond
retention.bytes, leave the log (the low watermark moves, consumers from the
beginning start after them); a compacted topic keeps everything."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

CHECK_MS = 300  # log.retention.check.interval.ms for this broker


def produce_in_separate_objects(bootstrap: str, topic: str, batches: list[list[tuple[bytes, int | None]]]) -> None:
    """Each batch is flushed (and so stored) on its own before the next."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "all"})
    for batch in batches:
        errors = []
        for value, ts in batch:
            kw = {"timestamp": ts} if ts is not None else {}
            p.produce(topic, value=value, partition=0, on_delivery=lambda e, m: errors.append(e) if e else None, **kw)
        assert p.flush(15) == 0
        assert not errors, errors


def low_watermark(bootstrap: str, topic: str) -> tuple[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "wm"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        c.close()


def wait_low_watermark(bootstrap: str, topic: str, want: int, deadline_s: float = 20.0) -> tuple[int, int]:
    end = time.monotonic() + deadline_s
    wm = low_watermark(bootstrap, topic)
    while wm[0] != want and time.monotonic() < end:
        time.sleep(0.1)
        wm = low_watermark(bootstrap, topic)
    return wm


def values_from_beginning(bootstrap: str, topic: str, count: int) -> list[bytes]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{topic}", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    got = []
    try:
        c.assign([TopicPartition(topic, 0, -2)])  # OFFSET_BEGINNING
        end = time.monotonic() + 15
        while len(got) < count and time.monotonic() < end:
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                got.append(m.value())
    finally:
        c.close()
    return got


def test_retention_ms_and_bytes_move_the_log_start(new_broker):
    b = new_broker(args=["--config", f"log.retention.check.interval.ms={CHECK_MS}"], name="retention").start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    topics = {
        "by-time": {"retention.ms": "60000"},
        "by-size": {"retention.bytes": "1", "retention.ms": "-1"},
        "compacted": {"retention.bytes": "1", "retention.ms": "1", "cleanup.policy": "compact"},
    }
    for f in admin.create_topics([NewTopic(t, 1, config=c) for t, c in topics.items()]).values():
        f.result(15)
    hour_ago = int(time.time() * 1000) - 3_600_000
    old = [(b"old-%d" % i, hour_ago) for i in range(5)]
    new = [(b"new-%d" % i, None) for i in range(3)]
    produce_in_separate_objects(b.bootstrap, "by-time", [old, new])
    # retention.ms: the hour-old records go, the fresh ones stay.
    assert wait_low_watermark(b.bootstrap, "by-time", 5) == (5, 8)
    assert values_from_beginning(b.bootstrap, "by-time", 3) == [v for v, _ in new]

    keyed = [[(b"k%d" % i, None)] for i in range(4)]
    produce_in_separate_objects(b.bootstrap, "by-size", keyed)
    # retention.bytes=1: everything but the newest stored extent goes.
    assert wait_low_watermark(b.bootstrap, "by-size", 3) == (3, 4)
    assert values_from_beginning(b.bootstrap, "by-size", 1) == [b"k3"]

    produce_in_separate_objects(b.bootstrap, "compacted", keyed)
    time.sleep(3 * CHECK_MS / 1000)
    assert low_watermark(b.bootstrap, "compacted") == (0, 4), "cleanup.policy=compact: retention deletes nothing"


def object_files(data_dir) -> list:
    """The keys of the broker's live objects (objects/XX/...), read from its
    segment files the way the broker reads them back at start: a 32-byte
    header (magic b"SSG1", state byte 1 = live, data length u64 at 8, key
    length u16 at 24), the key, the data; a header that does not parse ends
    the segment."""
    keys = []
    for seg in sorted((data_dir / "segments").glob("*.seg")):
        raw = seg.read_bytes()
        at = 0
        while at + 32 <= len(raw) and raw[at:at + 4] == b"SSG1":
            data_len = int.from_bytes(raw[at + 8:at + 16], "little")
            key_len = int.from_bytes(raw[at + 24:at + 26], "little")
            key = raw[at + 32:at + 32 + key_len].decode()
            if raw[at + 4] == 1 and key.startswith("objects/"):
                keys.append(key)
            at += 32 + key_len + data_len
    return sorted(keys)


def test_objects_retention_freed_are_deleted_by_the_object_gc(new_broker):
    # GC every 300 ms; the grace is then twice the 1 s request timeout.
    b = new_broker(
        args=["--config", f"log.retention.check.interval.ms={CHECK_MS}", "--object-gc-interval-ms", "300",
              "--object-gc-grace-ms", "0", "--request-timeout-ms", "1000"],
        name="object-gc",
    ).start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    for f in admin.create_topics([NewTopic("gc", 1, config={"retention.bytes": "1", "retention.ms": "-1"})]).values():
        f.result(15)
    produce_in_separate_objects(b.bootstrap, "gc", [[(b"v%d" % i, None)] for i in range(4)])
    assert wait_low_watermark(b.bootstrap, "gc", 3) == (3, 4)
    # The three objects retention freed go once they are past the grace period; the newest stays.
    end = time.monotonic() + 30
    files = object_files(b.data_dir)
    while len(files) != 1 and time.monotonic() < end:
        time.sleep(0.2)
        files = object_files(b.data_dir)
    assert len(files) == 1, f"expected only the newest object left, got {files}"
    assert values_from_beginning(b.bootstrap, "gc", 1) == [b"v3"]
    # Nothing referenced was deleted: after a restart (a full replay) the record is still there.
    b.stop()
    b.start()
    assert values_from_beginning(b.bootstrap, "gc", 1) == [b"v3"]
    assert object_files(b.data_dir) == files
