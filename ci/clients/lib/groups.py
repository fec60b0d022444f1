"""Helpers of the consumer-group tests: member processes (lib/group_member.py),
waiting on conditions, producing numbered records, reading a group's committed
offsets and a topic's end offsets with the confluent-kafka AdminClient."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

HERE = Path(__file__).resolve().parent
MEMBER_SCRIPT = HERE / "group_member.py"

# Kafka's group.min.session.timeout.ms default: the shortest session a broker
# with Kafka's defaults accepts.
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_MS = 1000


# member processes started and neither killed nor stopped by the test: a wait
# fails at once when one of them has died
RUNNING: list = []


def wait_until(cond, timeout: float, what, interval: float = 0.1):
    """Polls cond() until it returns something truthy (which is returned).
    On timeout fails with `what` (a string, or a callable giving one: the
    state to show); fails at once if a member process died on its own."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        dead = [m for m in RUNNING if not m.alive()]
        if dead:
            desc = what() if callable(what) else what
            raise AssertionError(f"member process died while waiting for: {desc}\n died:" + describe_members(dead))
        if time.monotonic() >= deadline:
            desc = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for: {desc}")
        time.sleep(interval)


# ---- admin ------------------------------------------------------------------

_ADMINS: dict[str, AdminClient] = {}


def admin(bootstrap: str) -> AdminClient:
    """One AdminClient per broker, kept for the session: a client that is
    garbage-collected while a request is in flight never resolves its future."""
    if bootstrap not in _ADMINS:
        _ADMINS[bootstrap] = AdminClient({"bootstrap.servers": bootstrap})
    return _ADMINS[bootstrap]


def forget_admin(bootstrap: str) -> None:
    """Drops the AdminClient of a broker that was restarted: after every
    broker of its cluster went away, librdkafka 2.16 decommissions the broker
    it knew and may queue later requests on that terminating handle, which
    never connects again (seen as _TIMED_OUT "Failed while waiting for
    response from broker" with nothing sent on the wire)."""
    _ADMINS.pop(bootstrap, None)


def create_topic(bootstrap: str, topic: str, partitions: int, timeout: float = 30) -> None:
    a = admin(bootstrap)
    a.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout)
    wait_until(lambda: len(a.list_topics(topic, timeout=10).topics[topic].partitions) == partitions
               and a.list_topics(topic, timeout=10).topics[topic].error is None,
               timeout, f"topic {topic} with {partitions} partitions in Metadata")


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    a = admin(bootstrap)
    fs = a.list_offsets({TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)}, request_timeout=20)
    return {tp.partition: f.result(30).offset for tp, f in fs.items()}


def committed_offsets(bootstrap: str, group: str, tps: list[TopicPartition] | None = None,
                      with_metadata: bool = False) -> dict:
    """The group's committed offsets per (topic, partition) via OffsetFetch
    (AdminClient.list_consumer_group_offsets); partitions without a committed
    offset are left out. With with_metadata, values are (offset, metadata)."""
    a = admin(bootstrap)
    req = ConsumerGroupTopicPartitions(group, tps) if tps else ConsumerGroupTopicPartitions(group)
    res = a.list_consumer_group_offsets([req], request_timeout=20)[group].result(30)
    out = {}
    for tp in res.topic_partitions:
        assert tp.error is None, f"OffsetFetch of {group} {tp.topic}[{tp.partition}]: {tp.error}"
        if tp.offset >= 0:
            out[(tp.topic, tp.partition)] = (tp.offset, tp.metadata) if with_metadata else tp.offset
    return out


# ---- producing --------------------------------------------------------------

def produce_numbered(bootstrap: str, topic: str, partitions: int, per_partition: int, tag: str,
                     produced: dict | None = None, timeout: float = 30) -> dict:
    """Produces per_partition records to each partition, values
    "<tag>:<partition>:<i>", and returns (and adds to `produced`) the map
    (topic, partition, offset) -> value from the delivery reports."""
    produced = {} if produced is None else produced
    errors = []

    def on_delivery(err, m):
        if err is not None:
            errors.append(err)
        else:
            produced[(m.topic(), m.partition(), m.offset())] = m.value().decode()

    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5})
    for i in range(per_partition):
        for part in range(partitions):
            while True:
                try:
                    p.produce(topic, value=f"{tag}:{part}:{i}".encode(), partition=part, on_delivery=on_delivery)
                    break
                except BufferError:
                    p.poll(0.05)
        p.poll(0)
    assert p.flush(timeout) == 0, "produce: records still undelivered after flush"
    assert not errors, f"produce errors: {errors[:5]}"
    return produced


# ---- member processes -------------------------------------------------------

class Member:
    """A group member process (lib/group_member.py) and what it reported."""

    def __init__(self, name: str, workdir: Path, bootstrap: str, group: str, topics: list[str],
                 conf: dict | None = None, instance_id: str | None = None,
                 session_timeout_ms: int = SESSION_TIMEOUT_MS, strategy: str | None = None):
        self.name = name
        self.events_path = Path(workdir) / f"{name}.events.jsonl"
        self.stderr_path = Path(workdir) / f"{name}.stderr"
        self.events_path.write_text("")
        c = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": name,
            "session.timeout.ms": session_timeout_ms,
            "heartbeat.interval.ms": HEARTBEAT_MS,
            "topic.metadata.refresh.interval.ms": 2000,
        }
        if instance_id:
            c["group.instance.id"] = instance_id
        if strategy:
            c["partition.assignment.strategy"] = strategy
        c.update(conf or {})
        self.cfg = {"events": str(self.events_path), "topics": topics, "conf": c}
        self.proc: subprocess.Popen | None = None
        self._pos = 0
        self._events: list[dict] = []

    def start(self) -> "Member":
        err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([sys.executable, str(MEMBER_SCRIPT), json.dumps(self.cfg)],
                                     stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT)
        err.close()
        RUNNING.append(self)
        d = os.environ.get("STRATA_CI_PIDS")
        if d:  # run.sh's trap stops whatever is left
            (Path(d) / str(self.proc.pid)).write_text(f"group member {self.name}\n")
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _forget_pid(self):
        if self in RUNNING:
            RUNNING.remove(self)
        d = os.environ.get("STRATA_CI_PIDS")
        if d and self.proc is not None:
            try:
                (Path(d) / str(self.proc.pid)).unlink()
            except FileNotFoundError:
                pass

    def kill9(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._forget_pid()

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM: close() (LeaveGroup for a dynamic member), then exit."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._forget_pid()
        return self.proc.returncode

    def stop_committing(self, timeout: float = 20) -> None:
        """SIGUSR1, and waits until the member says it committed for the last time."""
        self.proc.send_signal(signal.SIGUSR1)
        wait_until(lambda: any(e["e"] == "commits_off" for e in self.events()), timeout,
                   f"{self.name} to stop committing")

    # what it reported
    def events(self) -> list[dict]:
        with open(self.events_path, "rb") as f:
            f.seek(self._pos)
            data = f.read()
        end = data.rfind(b"\n")
        if end >= 0:
            for line in data[:end].splitlines():
                self._events.append(json.loads(line))
            self._pos += end + 1
        return self._events

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events() if e["e"] == kind]

    def owned(self) -> set[tuple[str, int]]:
        """What it owns after its last assign/revoke/lost callback."""
        last = [e for e in self.events() if e["e"] in ("assign", "revoke", "lost")]
        return {tuple(x) for x in last[-1]["owned"]} if last else set()

    def consumed(self) -> list[tuple[str, int, int, str]]:
        return [(e["t"], e["p"], e["o"], e["v"]) for e in self.of("m")]

    def committed(self) -> dict[tuple[str, int], int]:
        """Highest offset it committed successfully, per partition."""
        out: dict[tuple[str, int], int] = {}
        for e in self.of("commit"):
            for t, p, o in e["offsets"]:
                out[(t, p)] = max(out.get((t, p), -1), o)
        return out

    def rebalances(self) -> int:
        return len([e for e in self.events() if e["e"] in ("assign", "revoke", "lost")])

    def describe(self) -> str:
        ev = self.events()
        kinds = Counter(e["e"] for e in ev)
        errs = [e["error"] for e in ev if e["e"] in ("error", "commit_error")][-5:]
        try:
            tail = self.stderr_path.read_text(errors="replace").splitlines()[-5:]
        except OSError:
            tail = []
        return (f"{self.name}: alive={self.alive()} owned={sorted(self.owned())} events={dict(kinds)}"
                + (f" errors={errs}" if errs else "") + (f" stderr={tail}" if tail else ""))


def describe_members(members) -> str:
    return "\n  " + "\n  ".join(m.describe() for m in members)


def consumption(members) -> dict[tuple[str, int, int], list[str]]:
    """(topic, partition, offset) -> names of the members that consumed it, in order."""
    out: dict[tuple[str, int, int], list[str]] = defaultdict(list)
    for m in members:
        for t, p, o, _v in m.consumed():
            out[(t, p, o)].append(m.name)
    return out


def wrong_values(members, produced: dict) -> list:
    """Consumed records whose value is not what was produced at that offset."""
    bad = []
    for m in members:
        for t, p, o, v in m.consumed():
            if produced.get((t, p, o)) != v:
                bad.append((m.name, t, p, o, v, produced.get((t, p, o))))
    return bad


def commits_reached(members, ends: dict[tuple[str, int], int]) -> bool:
    """Every partition's highest commit (over these members) is at its end offset."""
    best: dict[tuple[str, int], int] = {}
    for m in members:
        for k, o in m.committed().items():
            best[k] = max(best.get(k, -1), o)
    return all(best.get(k, -1) >= v for k, v in ends.items())


class Members:
    """Starts members and stops whatever is left at the end of a test."""

    def __init__(self, workdir: Path, bootstrap: str):
        self.workdir = Path(workdir)
        self.bootstrap = bootstrap
        self.all: list[Member] = []

    def start(self, name, group, topics, **kw) -> Member:
        m = Member(name, self.workdir, self.bootstrap, group, topics, **kw)
        self.all.append(m)
        return m.start()

    def close(self):
        for m in self.all:
            if m.alive():
                m.kill9()
            else:
                m._forget_pid()
