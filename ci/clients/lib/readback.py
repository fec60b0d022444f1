"""Reading a whole topic back by assignment (no group), for the tests that
check what survived a crash: every record of every partition by offset."""

from __future__ import annotations

import time
from typing import Callable

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition


def read_partitions(bootstrap: str, topic: str, partitions: int,
                    record: Callable[[Message], object] = lambda m: m.value(),
                    deadline_s: float = 60.0) -> dict[int, dict[int, object]]:
    """partition -> offset -> record(message), from offset 0 to the high
    watermark read first; asserts no offset is delivered twice and every
    partition's offsets are dense."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "strata-ci-assign-only", "enable.auto.commit": False,
                  "auto.offset.reset": "error", "enable.partition.eof": True})
    logs: dict[int, dict[int, object]] = {q: {} for q in range(partitions)}
    try:
        hw = {q: c.get_watermark_offsets(TopicPartition(topic, q), timeout=10, cached=False)[1] for q in range(partitions)}
        c.assign([TopicPartition(topic, q, 0) for q in range(partitions)])
        deadline = time.monotonic() + deadline_s
        while sum(map(len, logs.values())) < sum(hw.values()) and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(f"consumer error: {m.error()}")
            assert m.offset() not in logs[m.partition()], f"offset {m.offset()} delivered twice by the consumer"
            logs[m.partition()][m.offset()] = record(m)
    finally:
        c.close()
    for q in range(partitions):
        assert sorted(logs[q]) == list(range(hw[q])), f"partition {q}: offsets not dense 0..{hw[q] - 1}"
    return logs
