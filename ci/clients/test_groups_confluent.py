"""Consumer groups with confluent-kafka (librdkafka 2.x), each member its own
process (lib/group_member.py) that commits synchronously what it processed
after every batch:

- three members share a six-partition topic: every record is consumed exactly
  once across them and the committed offsets end at the end offsets; one
  member is killed with kill -9 after it stopped committing: once its session
  times out the other two take its partitions, nothing is lost, and the only
  records delivered twice are the dead member's uncommitted tail;
- static membership: a member killed and restarted with the same
  group.instance.id within the session timeout gets its partitions back
  without a rebalance of the others;
- cooperative-sticky: members joining one by one converge to an even split,
  and a member only ever gives up the partitions that move.
"""

from __future__ import annotations

import time
from collections import Counter

from groups import (HEARTBEAT_MS, SESSION_TIMEOUT_MS, commits_reached, committed_offsets, consumption,
                    create_topic, describe_members, end_offsets, produce_numbered, wait_until, wrong_values)

PARTITIONS = 6
DEADLINE = 60  # generous: waits end as soon as their condition holds


def all_parts(topic):
    return {(topic, p) for p in range(PARTITIONS)}


def ends_of(bootstrap, topic):
    return {(topic, p): o for p, o in end_offsets(bootstrap, topic, PARTITIONS).items()}


def assert_committed_at_end(bootstrap, group, topic):
    """What the broker says the group committed (OffsetFetch) is the end of every partition."""
    ends = ends_of(bootstrap, topic)
    committed = committed_offsets(bootstrap, group)
    assert {k: committed.get(k) for k in ends} == ends, \
        f"committed offsets (OffsetFetch) {sorted(committed.items())} != end offsets {sorted(ends.items())}"
    return ends


def test_three_members_exactly_once_then_kill9_one(group_broker, members, group, topic):
    b = group_broker.bootstrap
    create_topic(b, topic, PARTITIONS)
    produced = produce_numbered(b, topic, PARTITIONS, 200, "a")

    ends = ends_of(b, topic)
    ms = [members.start(f"m{i}", group, [topic]) for i in range(3)]

    # 1. three members, two partitions each, every record exactly once, commits at the end
    def settled():
        owned = [m.owned() for m in ms]
        return (all(len(o) == 2 for o in owned) and set().union(*owned) == all_parts(topic)
                and len(consumption(ms)) == len(produced))
    wait_until(settled, DEADLINE, lambda: "3 members owning 2 partitions each, all records consumed:"
               + describe_members(ms))
    wait_until(lambda: commits_reached(ms, ends), DEADLINE,
               lambda: "every partition committed at its end" + describe_members(ms))

    seen = consumption(ms)
    dups = {k: v for k, v in seen.items() if len(v) > 1}
    assert not dups, f"records delivered more than once while no member failed: {sorted(dups.items())[:10]}"
    assert set(seen) == set(produced), f"missing records: {sorted(set(produced) - set(seen))[:10]}"
    assert not wrong_values(ms, produced), wrong_values(ms, produced)[:5]
    for m in ms:
        assert not m.of("commit_error"), f"{m.name}: commits refused: {m.of('commit_error')[:3]}"
    assert_committed_at_end(b, group, topic)

    # 2. the victim stops committing and reads on: it has an uncommitted tail
    victim, survivors = ms[0], ms[1:]
    victim_parts = victim.owned()
    assert len(victim_parts) == 2
    victim.stop_committing()
    last_commit = dict(victim.committed())  # final: it commits no more
    produce_numbered(b, topic, PARTITIONS, 100, "b", produced)
    tail_ends = ends_of(b, topic)
    wait_until(lambda: all(max([o for t, p, o, _ in victim.consumed() if (t, p) == k], default=-1) == tail_ends[k] - 1
                           for k in victim_parts), DEADLINE,
               lambda: f"the victim to read up to {tail_ends} on {victim_parts}" + describe_members(ms))
    tail = {(t, p, o) for t, p, o, _ in victim.consumed() if o >= last_commit.get((t, p), 0)}
    assert tail, "the victim has no uncommitted tail"
    survivor_rebalances = [m.rebalances() for m in survivors]

    # 3. kill -9: after the session timeout the survivors take over
    victim.kill9()
    killed_at = time.monotonic()
    killed_wall = time.time()
    produce_numbered(b, topic, PARTITIONS, 100, "c", produced)
    final_ends = ends_of(b, topic)

    def taken_over():
        owned = [m.owned() for m in survivors]
        return (all(len(o) == 3 for o in owned) and set().union(*owned) == all_parts(topic)
                and set(produced) <= set(consumption(ms)) and commits_reached(survivors, final_ends))
    wait_until(taken_over, DEADLINE + SESSION_TIMEOUT_MS / 1000,
               lambda: f"the two survivors to own 3 partitions each and commit everything "
                       f"(killed {time.monotonic() - killed_at:.1f}s ago):" + describe_members(ms))
    for m, before in zip(survivors, survivor_rebalances):
        assert m.rebalances() > before, f"{m.name} took part in no rebalance after the kill"
    # The dead member's last heartbeat was at most one interval before the
    # kill: the coordinator may not expire it before session timeout minus that.
    first_rebalance = min(e["ts"] for m in survivors for e in m.events()[:]
                          if e["e"] in ("assign", "revoke", "lost") and e["ts"] > killed_wall)
    earliest = (SESSION_TIMEOUT_MS - HEARTBEAT_MS) / 1000 - 0.25
    assert first_rebalance - killed_wall >= earliest, (
        f"the survivors rebalanced {first_rebalance - killed_wall:.2f}s after the kill: the coordinator expired the "
        f"dead member before its session timeout ({SESSION_TIMEOUT_MS} ms)")
    print(f"takeover: first survivor rebalance {first_rebalance - killed_wall:.2f}s after the kill; "
          f"uncommitted tail {len(tail)} records")

    seen = consumption(ms)
    lost = sorted(set(produced) - set(seen))
    assert not lost, f"records never consumed by any member: {lost[:10]} ({len(lost)})"
    # duplicates: only the victim's uncommitted tail, each once more by a survivor
    bad_dups = {}
    for k, who in seen.items():
        if len(who) == 1:
            continue
        c = Counter(who)
        ok = (k in tail and c[victim.name] == 1 and len(who) == 2)
        if not ok:
            bad_dups[k] = who
    assert not bad_dups, (f"records delivered more than once outside the dead member's uncommitted tail "
                          f"(its last commits {last_commit}): {sorted(bad_dups.items())[:10]} ({len(bad_dups)})")
    redelivered = {k for k in tail if len(seen[k]) == 2}
    assert redelivered == tail, (f"{len(tail - redelivered)} records of the dead member's uncommitted tail were not "
                                 f"re-delivered to the survivors: {sorted(tail - redelivered)[:10]}")
    assert not wrong_values(ms, produced), wrong_values(ms, produced)[:5]
    for m in survivors:
        assert not m.of("commit_error"), f"{m.name}: commits refused: {m.of('commit_error')[:3]}"
    assert_committed_at_end(b, group, topic)


def test_static_member_restart_within_session_timeout_no_rebalance(group_broker, members, group, topic):
    session_ms = 10_000  # headroom for the restarted process to rejoin in time on a busy machine
    b = group_broker.bootstrap
    create_topic(b, topic, PARTITIONS)
    produced = produce_numbered(b, topic, PARTITIONS, 50, "a")

    def member(i, name=None):
        return members.start(name or f"s{i}", group, [topic], instance_id=f"static-{i}", session_timeout_ms=session_ms)

    # s0 first (Kafka's first member leads the group and stays leader), then s1, s2
    ms = [member(0)]
    wait_until(lambda: len(ms[0].owned()) == PARTITIONS, DEADLINE, lambda: "s0 alone owns everything" + describe_members(ms))
    ms += [member(1), member(2)]
    ends = ends_of(b, topic)

    def settled():
        owned = [m.owned() for m in ms]
        return (all(len(o) == 2 for o in owned) and set().union(*owned) == all_parts(topic)
                and commits_reached(ms, ends))
    wait_until(settled, DEADLINE, lambda: "3 static members owning 2 partitions each, all committed" + describe_members(ms))

    victim, others = ms[2], ms[:2]
    victim_parts = victim.owned()
    before = {m.name: (m.rebalances(), m.owned()) for m in others}
    victim.kill9()
    killed_at = time.monotonic()
    again = member(2, "s2-restarted")

    wait_until(lambda: again.owned(), session_ms / 1000 * 2,
               lambda: "the restarted static member to be assigned" + describe_members(ms + [again]))
    assigned_after = time.monotonic() - killed_at

    produce_numbered(b, topic, PARTITIONS, 50, "b", produced)
    ends = ends_of(b, topic)
    # Watch past the old session's expiry (and a few heartbeats): a rebalance
    # caused by the old member timing out would show in the others' callbacks.
    watch_until = killed_at + session_ms / 1000 + 4 * HEARTBEAT_MS / 1000
    wait_until(lambda: commits_reached(others + [again], ends) and time.monotonic() >= watch_until,
               DEADLINE + session_ms / 1000, lambda: "everything committed" + describe_members(ms + [again]))

    after = {m.name: (m.rebalances(), m.owned()) for m in others}
    assert after == before, (f"the other members went through a rebalance when a static member restarted: "
                             f"before {before} after {after}" + describe_members(others))
    assert len(again.of("assign")) == 1 and not again.of("revoke") and not again.of("lost"), \
        "the restarted member was rebalanced:" + describe_members([again])
    assert again.owned() == victim_parts, \
        f"the restarted static member got {sorted(again.owned())}, it had {sorted(victim_parts)}"
    assert assigned_after < session_ms / 1000, (
        f"the restarted static member was assigned {assigned_after:.1f}s after the kill, past the session timeout "
        f"({session_ms} ms)")

    # it resumed at the committed offsets: got exactly the new records of its partitions
    seen = consumption(ms + [again])
    dups = {k: v for k, v in seen.items() if len(v) > 1}
    assert not dups, f"records delivered twice: {sorted(dups.items())[:10]}"
    assert set(seen) == set(produced), f"missing: {sorted(set(produced) - set(seen))[:10]}"
    got = {(t, p, o) for t, p, o, _ in again.consumed()}
    want = {k for k, v in produced.items() if (k[0], k[1]) in victim_parts and v.startswith("b:")}
    assert got == want, f"the restarted member consumed {len(got)} records, expected the {len(want)} new ones of its partitions"
    assert_committed_at_end(b, group, topic)


def test_cooperative_sticky_members_join_one_by_one(group_broker, members, group, topic):
    b = group_broker.bootstrap
    create_topic(b, topic, PARTITIONS)
    produced = produce_numbered(b, topic, PARTITIONS, 100, "a")
    ms = []

    def join_and_settle(n, tag):
        ms.append(members.start(f"c{n}", group, [topic], strategy="cooperative-sticky"))
        share = PARTITIONS // len(ms)
        ends = ends_of(b, topic)

        def settled():
            owned = [m.owned() for m in ms]
            disjoint = sum(len(o) for o in owned) == PARTITIONS
            return (all(len(o) == share for o in owned) and disjoint and set().union(*owned) == all_parts(topic)
                    and commits_reached(ms, ends))
        wait_until(settled, DEADLINE, lambda: f"{len(ms)} cooperative members owning {share} partitions each, "
                                              f"everything committed (after {tag})" + describe_members(ms))

    join_and_settle(0, "c0 joined")
    produce_numbered(b, topic, PARTITIONS, 50, "b", produced)
    join_and_settle(1, "c1 joined")
    produce_numbered(b, topic, PARTITIONS, 50, "c", produced)
    join_and_settle(2, "c2 joined")
    produce_numbered(b, topic, PARTITIONS, 50, "d", produced)
    ends = ends_of(b, topic)
    wait_until(lambda: commits_reached(ms, ends), DEADLINE,
               lambda: "everything committed" + describe_members(ms))

    for m in ms:
        assert not m.of("lost"), f"{m.name} lost its partitions: {m.of('lost')}"
        final = m.owned()
        held = set()
        for e in m.events():
            if e["e"] == "revoke":
                parts = {tuple(x) for x in e["parts"]}
                assert not held or parts != held, \
                    f"{m.name}: a cooperative revoke took everything it owned ({sorted(held)})"
                assert not parts & final, f"{m.name}: revoked {sorted(parts & final)}, which it owns in the end"
            if e["e"] in ("assign", "revoke"):
                held = {tuple(x) for x in e["owned"]}
        revoked = [tuple(x) for e in m.of("revoke") for x in e["parts"]]
        assigned = [tuple(x) for e in m.of("assign") for x in e["parts"]]
        # revoked only what moved: everything it got minus what it kept, each once
        assert Counter(revoked) == Counter(assigned) - Counter(final), \
            f"{m.name}: assigned {sorted(assigned)}, revoked {sorted(revoked)}, owns {sorted(final)}"
    # c0 went 6 -> 3 -> 2, c1 0 -> 3 -> 2: they gave up 4 and 1 partitions, no more
    assert len([x for e in ms[0].of("revoke") for x in e["parts"]]) == 4
    assert len([x for e in ms[1].of("revoke") for x in e["parts"]]) == 1
    assert not ms[2].of("revoke")

    seen = consumption(ms)
    dups = {k: v for k, v in seen.items() if len(v) > 1}
    assert not dups, f"records delivered twice across cooperative rebalances: {sorted(dups.items())[:10]}"
    assert set(seen) == set(produced), f"missing: {sorted(set(produced) - set(seen))[:10]}"
    assert not wrong_values(ms, produced), wrong_values(ms, produced)[:5]
    assert_committed_at_end(b, group, topic)
