"""Committed offsets outside a live group, with confluent-kafka:

- a simple consumer (assign() and commit, never subscribe) commits into a
  group that has no members; the offsets and their metadata read back through
  the consumer, a new consumer and the AdminClient, and a new assign()-ed
  consumer starts at them;
- offsets committed (and acknowledged) before a broker crash (kill -9) or a
  clean stop are there after the restart on the same data directory, and a new
  member of the group resumes at them.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, ConsumerGroupState, ConsumerGroupTopicPartitions, TopicPartition

from conftest import group_broker_args
from groups import admin, committed_offsets, create_topic, end_offsets, forget_admin, produce_numbered, wait_until

PARTITIONS = 4
DEADLINE = 60


def consumer(bootstrap, group, **extra):
    conf = {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}
    conf.update(extra)
    return Consumer(conf)


def read_until(c, want_count: int, timeout: float = DEADLINE) -> list:
    """Consumes until want_count records (then a short drain that must bring
    nothing more: no sleep, just the next poll)."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want_count and time.monotonic() < deadline:
        for m in c.consume(num_messages=500, timeout=0.5):
            assert m.error() is None, m.error()
            got.append((m.partition(), m.offset(), m.value().decode()))
    assert len(got) >= want_count, f"consumed {len(got)} of {want_count} records in {timeout}s"
    for m in c.consume(num_messages=500, timeout=0.5):
        if m.error() is None:
            got.append((m.partition(), m.offset(), m.value().decode()))
    return got


def test_simple_consumer_commits_into_a_group_without_members(group_broker, group, topic):
    b = group_broker.bootstrap
    create_topic(b, topic, PARTITIONS)
    produced = produce_numbered(b, topic, PARTITIONS, 50, "s")
    want = {p: 10 + 7 * p for p in range(PARTITIONS)}

    c = consumer(b, group)
    c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    read_until(c, len(produced))
    res = c.commit(offsets=[TopicPartition(topic, p, o, f"simple-{p}") for p, o in want.items()], asynchronous=False)
    assert [(tp.partition, tp.offset, tp.error) for tp in res] == [(p, o, None) for p, o in want.items()], res
    got = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=20)
    assert {tp.partition: (tp.offset, tp.metadata) for tp in got} == {p: (o, f"simple-{p}") for p, o in want.items()}
    c.close()

    # the broker knows them: the AdminClient (OffsetFetch), and the group is an Empty one without members
    assert committed_offsets(b, group, with_metadata=True) == \
        {(topic, p): (o, f"simple-{p}") for p, o in want.items()}
    d = admin(b).describe_consumer_groups([group], request_timeout=20)[group].result(30)
    assert d.state == ConsumerGroupState.EMPTY and d.members == [], (d.state, d.members)
    assert d.is_simple_consumer_group is True, "a group made only of commits has no protocol type"

    # a new consumer, assigned without offsets, starts at the committed ones
    c2 = consumer(b, group)
    assert {tp.partition: tp.offset for tp in c2.committed([TopicPartition(topic, p) for p in range(PARTITIONS)],
                                                           timeout=20)} == want
    c2.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])  # OFFSET_INVALID: use the committed offset
    rest = read_until(c2, sum(50 - o for o in want.values()))
    first = {}
    for p, o, _v in rest:
        first.setdefault(p, o)
    assert first == want, f"the assigned consumer started at {first}, the committed offsets are {want}"
    assert sorted((p, o) for p, o, _ in rest) == sorted((p, o) for _, p, o in produced if o >= want[p]), \
        "records from the committed offsets on: missing or repeated"
    # it commits over them: the newer offset wins
    c2.commit(offsets=[TopicPartition(topic, p, 50) for p in range(PARTITIONS)], asynchronous=False)
    c2.close()
    assert committed_offsets(b, group) == {(topic, p): 50 for p in range(PARTITIONS)}


@pytest.mark.parametrize("how", ["kill9", "sigterm"])
def test_committed_offsets_survive_a_broker_restart(new_broker, group, topic, how):
    brk = new_broker(args=["--default-partitions", str(PARTITIONS), *group_broker_args()], name="grestart").start()
    b = brk.bootstrap
    create_topic(b, topic, PARTITIONS)
    produced = produce_numbered(b, topic, PARTITIONS, 100, "r")

    # a subscribed member commits less than it read (explicit offsets), then leaves
    want = {p: 40 + p for p in range(PARTITIONS)}
    c = consumer(b, group)
    c.subscribe([topic])
    read_until(c, len(produced))
    res = c.commit(offsets=[TopicPartition(topic, p, o) for p, o in want.items()], asynchronous=False)
    assert all(tp.error is None for tp in res), res
    c.close()
    # and an admin commits into a second group, with metadata
    admin_group = group + "-admin"
    res = admin(b).alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(admin_group, [TopicPartition(topic, p, 90 - p, f"adm{p}") for p in range(PARTITIONS)])],
        request_timeout=20)[admin_group].result(30)
    assert all(tp.error is None for tp in res.topic_partitions), res.topic_partitions

    if how == "kill9":
        brk.kill9()
    else:
        assert brk.stop() == 0, brk.log_tail()
    brk.start()
    forget_admin(b)  # a new AdminClient, as after any outage of the whole cluster (see forget_admin)

    wait_until(lambda: _try(lambda: committed_offsets(b, group)) is not None, 30, "OffsetFetch after the restart")
    assert committed_offsets(b, group) == {(topic, p): o for p, o in want.items()}, "offsets after the restart"
    assert committed_offsets(b, admin_group, with_metadata=True) == \
        {(topic, p): (90 - p, f"adm{p}") for p in range(PARTITIONS)}, "admin-committed offsets after the restart"

    # a new member of the group resumes exactly there
    c2 = consumer(b, group)
    c2.subscribe([topic])
    rest = read_until(c2, sum(100 - o for o in want.values()))
    c2.close()
    first = {}
    for p, o, _v in rest:
        first.setdefault(p, o)
    assert first == want, f"after the restart the group resumed at {first}, committed {want}"
    assert sorted((p, o) for p, o, _ in rest) == sorted((p, o) for _, p, o in produced if o >= want[p])
    assert end_offsets(b, topic, PARTITIONS) == {p: 100 for p in range(PARTITIONS)}


def _try(f):
    try:
        return f()
    except Exception:  # noqa: BLE001 - the broker may still be coming up
        return None
