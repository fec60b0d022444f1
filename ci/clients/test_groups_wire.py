"""The classic group protocol over raw sockets (lib/kafka_wire.py, written from
the protocol spec): the error codes that keep a group safe and that clients
act on, which the client libraries hide behind retries.

- JoinGroup below the minimum session timeout: INVALID_SESSION_TIMEOUT;
- the leader's assignment in SyncGroup is what members get, DescribeGroups
  shows it;
- Heartbeat / OffsetCommit with a stale generation: ILLEGAL_GENERATION; from an
  unknown member: UNKNOWN_MEMBER_ID; neither changes the committed offset;
- a second member joining: the first one's Heartbeat says
  REBALANCE_IN_PROGRESS, its commit with the current generation is still
  accepted while the group prepares the rebalance (eager clients commit in
  their revoke callback), a commit between JoinGroup and SyncGroup is
  REBALANCE_IN_PROGRESS, and the old generation is fenced once the new one
  exists;
- LeaveGroup of both: the group is Empty and keeps its offsets.

Kafka's behaviour: kafka.coordinator.group.GroupCoordinator (handleJoinGroup,
handleHeartbeat, handleCommitOffsets) and, since 3.x,
org.apache.kafka.coordinator.group.classic.ClassicGroup#validateOffsetCommit.
"""

from __future__ import annotations

import time

import kafka_wire as w

DEFAULT_PARTITIONS = 6


def test_generations_and_members_are_fenced(group_broker, group, topic):
    b = group_broker
    w.ensure_topic(b.host, b.port, topic)
    parts = list(range(DEFAULT_PARTITIONS))
    a = w.GroupConn(b.host, b.port)
    c = w.GroupConn(b.host, b.port)
    try:
        fc = a.find_coordinator(group)
        assert fc["error_code"] == 0, fc
        if b.name != "external":
            assert (fc["host"], fc["port"]) == (b.host, b.port), fc

        j = a.join(group, topics=[topic], session_ms=1000)
        assert j["error_code"] == w.INVALID_SESSION_TIMEOUT, \
            f"JoinGroup with session.timeout.ms 1000 (< group.min.session.timeout.ms 6000): {j}"

        j = a.join(group, topics=[topic])
        assert j["error_code"] == 0, j
        gen1, me = j["generation_id"], j["member_id"]
        assert me and j["leader"] == me and gen1 >= 1 and j["protocol_name"] == "range", j
        assert [m for m, _ in j["members"]] == [me], j["members"]
        assert j["members"][0][1] == w.consumer_subscription([topic]), "the leader must get the members' metadata as sent"

        mine = w.consumer_assignment({topic: parts})
        s = a.sync(group, gen1, me, {me: mine})
        assert s["error_code"] == 0 and w.parse_consumer_assignment(s["assignment"]) == {topic: parts}, s

        assert a.heartbeat(group, gen1, me) == 0
        assert a.heartbeat(group, gen1 + 1, me) == w.ILLEGAL_GENERATION
        assert a.heartbeat(group, gen1, "not-a-member") == w.UNKNOWN_MEMBER_ID

        assert a.commit(group, gen1, me, {(topic, 0): 42}, "m1") == {(topic, 0): 0}
        assert a.fetch(group, [(topic, 0), (topic, 1)]) == {(topic, 0): (42, "m1", 0), (topic, 1): (-1, "", 0)}
        assert a.commit(group, gen1 - 1, me, {(topic, 0): 7}) == {(topic, 0): w.ILLEGAL_GENERATION}
        assert a.commit(group, gen1, "not-a-member", {(topic, 0): 7}) == {(topic, 0): w.UNKNOWN_MEMBER_ID}
        assert a.fetch(group, [(topic, 0)])[(topic, 0)][0] == 42, "a refused commit changed the offset"

        d = a.describe(group)
        assert (d["error_code"], d["state"], d["protocol_type"], d["protocol"]) == (0, "Stable", "consumer", "range"), d
        assert [(m["member_id"], w.parse_consumer_assignment(m["assignment"])) for m in d["members"]] == [(me, {topic: parts})]

        # a second member: its JoinGroup waits for the rebalance, so it is sent without waiting for the answer
        c.cid += 1
        c.sock.sendall(w.request(w.API_JOIN_GROUP, 2, c.cid, (
            w.string(group) + w.i32(6000) + w.i32(10000) + w.string("") + w.string("consumer")
            + w.array([w.string("range") + w.nbytes(w.consumer_subscription([topic]))]))))
        join_cid = c.cid
        deadline = time.monotonic() + 20
        while (hb := a.heartbeat(group, gen1, me)) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hb == w.REBALANCE_IN_PROGRESS, f"heartbeat of the first member while the second joins: {hb}"
        # preparing the rebalance: a commit of the current generation still counts
        assert a.commit(group, gen1, me, {(topic, 0): 43}) == {(topic, 0): 0}, \
            "a commit with the current generation while the group prepares a rebalance must be accepted"
        assert a.fetch(group, [(topic, 0)])[(topic, 0)][0] == 43

        j1 = a.join(group, member_id=me, topics=[topic])
        assert j1["error_code"] == 0, j1
        r = w.Reader(w.recv_response(c.sock, join_cid))
        j2 = {"throttle": r.i32(), "error_code": r.i16(), "generation_id": r.i32(), "protocol_name": r.string(),
              "leader": r.string(), "member_id": r.string()}
        assert j2["error_code"] == 0, j2
        gen2, other = j1["generation_id"], j2["member_id"]
        assert gen2 > gen1 and j2["generation_id"] == gen2, (j1, j2)
        assert j1["leader"] == me == j2["leader"], "the first member stays leader"
        assert sorted(m for m, _ in j1["members"]) == sorted([me, other])

        # between JoinGroup and SyncGroup (CompletingRebalance): commits wait for the assignment
        assert a.commit(group, gen2, me, {(topic, 0): 44}) == {(topic, 0): w.REBALANCE_IN_PROGRESS}
        # the old generation is fenced
        assert a.commit(group, gen1, me, {(topic, 0): 44}) == {(topic, 0): w.ILLEGAL_GENERATION}

        s1 = a.sync(group, gen2, me, {me: w.consumer_assignment({topic: parts[:3]}),
                                      other: w.consumer_assignment({topic: parts[3:]})})
        s2 = c.sync(group, gen2, other, {})
        assert w.parse_consumer_assignment(s1["assignment"]) == {topic: parts[:3]}, s1
        assert w.parse_consumer_assignment(s2["assignment"]) == {topic: parts[3:]}, \
            f"the follower must get what the leader assigned it: {s2}"
        assert c.commit(group, gen2, other, {(topic, 5): 9}) == {(topic, 5): 0}
        assert a.heartbeat(group, gen2, me) == 0 and c.heartbeat(group, gen2, other) == 0

        assert a.leave(group, me) == 0 and c.leave(group, other) == 0
        d = a.describe(group)
        assert (d["state"], d["members"]) == ("Empty", []), d
        assert a.fetch(group, [(topic, 0), (topic, 5)]) == {(topic, 0): (43, "", 0), (topic, 5): (9, "", 0)}
    finally:
        a.close()
        c.close()
