"""kafka-python consumer group: a member reads part of a six-partition topic,
commits exactly what it processed and leaves; a new member of the group
resumes at the committed offsets: no committed record again, none skipped."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from groups import committed_offsets, create_topic, end_offsets, produce_numbered

PARTITIONS = 6
DEADLINE = 60


def member(bootstrap, group, topic, name):
    return KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, client_id=name,
                         enable_auto_commit=False, auto_offset_reset="earliest",
                         session_timeout_ms=6000, heartbeat_interval_ms=1000, max_poll_records=50)


def test_kafka_python_group_commit_stop_resume(group_broker, group, topic):
    b = group_broker.bootstrap
    create_topic(b, topic, PARTITIONS)
    produced = produce_numbered(b, topic, PARTITIONS, 100, "a")
    half = len(produced) // 2

    # 1. process half of it, commit exactly that, leave
    c1 = member(b, group, topic, "kp-1")
    processed = {}
    nxt = {}
    deadline = time.monotonic() + DEADLINE
    while len(processed) < half and time.monotonic() < deadline:
        for tp, recs in c1.poll(timeout_ms=500).items():
            for r in recs:
                if len(processed) >= half:
                    break
                processed[(r.topic, r.partition, r.offset)] = r.value.decode()
                nxt[tp] = r.offset + 1
    assert len(processed) == half, f"kafka-python consumed {len(processed)} of {half} records in {DEADLINE}s"
    assert set(c1.assignment()) == {TopicPartition(topic, p) for p in range(PARTITIONS)}, c1.assignment()
    c1.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in nxt.items()})
    for tp, o in nxt.items():
        assert c1.committed(tp) == o, f"{tp}: committed() {c1.committed(tp)}, committed {o}"
    c1.close(autocommit=False)
    assert committed_offsets(b, group) == {(tp.topic, tp.partition): o for tp, o in nxt.items()}

    # 2. more records; a new member resumes at the committed offsets
    produce_numbered(b, topic, PARTITIONS, 50, "b", produced)
    want = {k: v for k, v in produced.items() if k not in processed}
    c2 = member(b, group, topic, "kp-2")
    got = []
    deadline = time.monotonic() + DEADLINE
    while len(got) < len(want) and time.monotonic() < deadline:
        for recs in c2.poll(timeout_ms=500).values():
            got += [((r.topic, r.partition, r.offset), r.value.decode()) for r in recs]
    got += [((r.topic, r.partition, r.offset), r.value.decode()) for recs in c2.poll(timeout_ms=500).values() for r in recs]
    again = [k for k, _ in got if k in processed]
    assert not again, f"committed records delivered again: {sorted(again)[:10]} ({len(again)})"
    assert len(got) == len({k for k, _ in got}), "records delivered twice to the resumed member"
    assert dict(got) == want, (f"resumed member: {len(got)} records, expected {len(want)}; "
                               f"missing {sorted(set(want) - {k for k, _ in got})[:10]}")
    first = {}
    for (t, p, o), _ in got:
        first.setdefault(p, o)
    assert first == {tp.partition: o for tp, o in nxt.items()} | {p: 0 for p in range(PARTITIONS) if TopicPartition(topic, p) not in nxt}
    c2.commit()  # the positions: the end of every partition
    c2.close(autocommit=False)
    ends = end_offsets(b, topic, PARTITIONS)
    assert committed_offsets(b, group) == {(topic, p): o for p, o in ends.items()}
