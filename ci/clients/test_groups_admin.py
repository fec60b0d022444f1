"""Group administration through the confluent-kafka AdminClient (ListGroups,
DescribeGroups, DeleteGroups, OffsetCommit as an admin, OffsetFetch) and
kafka-python's KafkaAdminClient for OffsetDelete (confluent-kafka's Python
AdminClient has no delete_consumer_group_offsets), with Kafka's refusals:
DeleteGroups of a group with members is NON_EMPTY_GROUP, an admin offset
commit to a group with members is UNKNOWN_MEMBER_ID, OffsetDelete of a topic
the active group subscribes to is GROUP_SUBSCRIBED_TO_TOPIC.

The group's members are processes of lib/group_member.py subscribed to a
six-partition topic."""

from __future__ import annotations

import pytest
from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition

from groups import admin, commits_reached, committed_offsets, create_topic, describe_members, end_offsets, \
    produce_numbered, wait_until

PARTITIONS = 6
DEADLINE = 60


@pytest.fixture
def active_group(group_broker, members, group, topic):
    """`group` with two members that own three partitions of `topic` each and
    committed everything; `topic + "-other"` (2 partitions) has offsets of the
    group, committed by an admin before the members joined."""
    b = group_broker.bootstrap
    other = topic + "-other"
    create_topic(b, topic, PARTITIONS)
    create_topic(b, other, 2)
    produce_numbered(b, topic, PARTITIONS, 20, "a")
    alter_offsets(b, group, [TopicPartition(other, 0, 5, "meta-0"), TopicPartition(other, 1, 7, "meta-1")])
    ms = [members.start(f"adm{i}", group, [topic]) for i in range(2)]
    ends = {(topic, p): o for p, o in end_offsets(b, topic, PARTITIONS).items()}

    def settled():
        owned = [m.owned() for m in ms]
        return all(len(o) == 3 for o in owned) and len(set().union(*owned)) == PARTITIONS and commits_reached(ms, ends)
    wait_until(settled, DEADLINE, lambda: "two members owning 3 partitions each, all committed" + describe_members(ms))
    return {"group": group, "topic": topic, "other": other, "members": ms, "ends": ends}


def alter_offsets(bootstrap, group, tps):
    """AlterConsumerGroupOffsets; returns {(topic, partition): error code or None}
    (a request-level error is given for every partition)."""
    a = admin(bootstrap)
    f = a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)], request_timeout=20)[group]
    try:
        res = f.result(30)
    except KafkaException as e:
        return {(tp.topic, tp.partition): e.args[0].code() for tp in tps}
    return {(tp.topic, tp.partition): (tp.error.code() if tp.error else None) for tp in res.topic_partitions}


def error_code_of(fut):
    """The KafkaError code a future fails with (None if it succeeds)."""
    try:
        fut.result(30)
        return None
    except KafkaException as e:
        return e.args[0].code()


def offset_delete(bootstrap, group, tps):
    """OffsetDelete through kafka-python: {(topic, partition): error class name},
    or the top-level error's class name (raised)."""
    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KTP
    a = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="strata-ci-offset-delete", request_timeout_ms=20000)
    try:
        res = a.delete_group_offsets(group, [KTP(t, p) for t, p in tps])
        return {(tp.topic, tp.partition): err.__name__ for tp, err in res.items()}
    finally:
        a.close()


def group_listing(bootstrap, group, states=None):
    a = admin(bootstrap)
    kw = {"request_timeout": 20}
    if states:
        kw["states"] = set(states)
    res = a.list_consumer_groups(**kw).result(30)
    assert not res.errors, f"ListGroups errors: {res.errors}"
    return {g.group_id: g for g in res.valid}.get(group)


def describe(bootstrap, group):
    return admin(bootstrap).describe_consumer_groups([group], request_timeout=20)[group].result(30)


def test_list_and_describe_an_active_group(group_broker, active_group):
    b, g, topic = group_broker.bootstrap, active_group["group"], active_group["topic"]
    listed = group_listing(b, g)
    assert listed is not None, "ListGroups does not list the active group"
    assert listed.state == ConsumerGroupState.STABLE, listed.state
    assert listed.is_simple_consumer_group is False
    assert group_listing(b, g, [ConsumerGroupState.STABLE]) is not None, "not listed with the STABLE state filter"
    assert group_listing(b, g, [ConsumerGroupState.EMPTY]) is None, "listed with the EMPTY state filter"

    d = describe(b, g)
    assert d.group_id == g
    assert d.state == ConsumerGroupState.STABLE, d.state
    assert d.is_simple_consumer_group is False
    assert d.partition_assignor == "range", d.partition_assignor  # librdkafka's default range,roundrobin picks range
    if group_broker.name != "external":
        assert (d.coordinator.host, d.coordinator.port) == (group_broker.host, group_broker.port), d.coordinator
    by_client = {m.client_id: m for m in d.members}
    assert sorted(by_client) == ["adm0", "adm1"], f"members: {[(m.member_id, m.client_id) for m in d.members]}"
    assert len({m.member_id for m in d.members}) == 2 and all(m.member_id for m in d.members)
    for mem in active_group["members"]:
        dm = by_client[mem.name]
        got = {(tp.topic, tp.partition) for tp in dm.assignment.topic_partitions}
        assert got == mem.owned(), f"{mem.name}: DescribeGroups says {sorted(got)}, the member owns {sorted(mem.owned())}"
        assert dm.host, "member host empty"
        assert dm.group_instance_id is None


def test_delete_of_a_group_with_members_is_non_empty_group(group_broker, active_group):
    b, g = group_broker.bootstrap, active_group["group"]
    code = error_code_of(admin(b).delete_consumer_groups([g], request_timeout=20)[g])
    assert code == KafkaError.NON_EMPTY_GROUP, f"DeleteGroups of an active group: {code}, expected NON_EMPTY_GROUP (68)"
    assert describe(b, g).state == ConsumerGroupState.STABLE
    assert committed_offsets(b, g) != {}, "the offsets went although the delete was refused"


def test_admin_offset_commit_to_a_group_with_members_is_refused(group_broker, active_group):
    b, g, topic, ends = group_broker.bootstrap, active_group["group"], active_group["topic"], active_group["ends"]
    errs = alter_offsets(b, g, [TopicPartition(topic, 0, 1)])
    # Kafka: an OffsetCommit with generation -1 (an admin's) to a group that is not Empty is UNKNOWN_MEMBER_ID
    assert errs == {(topic, 0): KafkaError.UNKNOWN_MEMBER_ID}, \
        f"AlterConsumerGroupOffsets on an active group answered {errs}, expected UNKNOWN_MEMBER_ID (25)"
    assert committed_offsets(b, g)[(topic, 0)] == ends[(topic, 0)], "the refused commit changed the offset"


def test_offset_delete_of_a_subscribed_topic_is_refused(group_broker, active_group):
    b, g, topic, other = group_broker.bootstrap, active_group["group"], active_group["topic"], active_group["other"]
    res = offset_delete(b, g, [(topic, 0), (topic, 1), (other, 0)])
    assert res == {(topic, 0): "GroupSubscribedToTopicError", (topic, 1): "GroupSubscribedToTopicError",
                   (other, 0): "NoError"}, f"OffsetDelete in an active group: {res}"
    committed = committed_offsets(b, g, with_metadata=True)
    assert (other, 0) not in committed, f"{other}[0] still has an offset after OffsetDelete: {committed[(other, 0)]}"
    assert committed[(other, 1)] == (7, "meta-1"), committed.get((other, 1))
    for p in range(PARTITIONS):
        assert committed[(topic, p)][0] == active_group["ends"][(topic, p)], f"{topic}[{p}] changed: {committed}"


def test_empty_group_offsets_alter_list_delete_then_delete_group(group_broker, active_group):
    b, g, topic, other = group_broker.bootstrap, active_group["group"], active_group["topic"], active_group["other"]
    for m in active_group["members"]:
        assert m.stop() == 0, m.describe()
        assert m.of("closed"), m.describe()

    # both left (LeaveGroup): the group is Empty and keeps its offsets
    wait_until(lambda: describe(b, g).state == ConsumerGroupState.EMPTY, 20,
               lambda: f"the group to be EMPTY after its members left (it is {describe(b, g).state})")
    d = describe(b, g)
    assert d.members == [], d.members
    listed = group_listing(b, g, [ConsumerGroupState.EMPTY])
    assert listed is not None, "an empty group holding offsets is not listed (state filter EMPTY)"
    assert committed_offsets(b, g)[(topic, 0)] == active_group["ends"][(topic, 0)]

    # admin commits with metadata round-trip
    want = {(topic, p): (p * 3 + 1, f"m{p}") for p in range(PARTITIONS)}
    errs = alter_offsets(b, g, [TopicPartition(topic, p, o, md) for (_, p), (o, md) in want.items()])
    assert set(errs.values()) == {None}, f"AlterConsumerGroupOffsets on an empty group: {errs}"
    committed = committed_offsets(b, g, with_metadata=True)
    assert {k: committed.get(k) for k in want} == want, f"OffsetFetch after alter: {committed}"
    # OffsetFetch of named partitions only
    named = committed_offsets(b, g, [TopicPartition(topic, 2), TopicPartition(other, 1)])
    assert named == {(topic, 2): 7, (other, 1): 7}, named

    # OffsetDelete in an empty group: allowed for any topic
    res = offset_delete(b, g, [(topic, 0), (topic, 1)])
    assert res == {(topic, 0): "NoError", (topic, 1): "NoError"}, f"OffsetDelete in an empty group: {res}"
    committed = committed_offsets(b, g, with_metadata=True)
    assert (topic, 0) not in committed and (topic, 1) not in committed, f"deleted offsets still there: {committed}"
    assert {k: committed.get(k) for k in want if k[1] >= 2} == {k: v for k, v in want.items() if k[1] >= 2}

    # DeleteGroups of the empty group: gone, offsets and all
    assert error_code_of(admin(b).delete_consumer_groups([g], request_timeout=20)[g]) is None
    assert group_listing(b, g) is None, "the deleted group is still listed"
    assert committed_offsets(b, g) == {}, "the deleted group still has offsets"
    try:
        state = describe(b, g).state
    except KafkaException as e:
        state = e.args[0].code()
    assert state in (ConsumerGroupState.DEAD, KafkaError.GROUP_ID_NOT_FOUND), f"describe of a deleted group: {state}"

    # and deleting it again, or any group that does not exist
    code = error_code_of(admin(b).delete_consumer_groups([g], request_timeout=20)[g])
    assert code == KafkaError.GROUP_ID_NOT_FOUND, f"DeleteGroups of a missing group: {code}, expected GROUP_ID_NOT_FOUND (69)"
