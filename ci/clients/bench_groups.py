"""Consumer-group figures with a real client (confluent-kafka / librdkafka),
run by ci/groups-bench (not part of the tests; pytest does not collect it):

1. rebalance: three members (threads of one process, heartbeat.interval.ms
   1000) subscribe to a six-partition topic at the same moment; the time from
   the subscribe() calls (FindCoordinator, then JoinGroup: a few ms on
   loopback) to the moment all three are assigned two partitions each (the
   group Stable, every SyncGroup answered).
   Median and spread over RUNS runs, each with a new group; once on a broker
   with Kafka's default group.initial.rebalance.delay.ms (3000), once with
   `--config group.initial.rebalance.delay.ms=0`.
2. offset commits: synchronous commits per second from one member (one
   partition per commit, the next commit after the answer), with latency
   percentiles; then asynchronous commits from several member processes, each
   committing all of its partitions per request with up to WINDOW requests in
   flight.

    python3 ci/clients/bench_groups.py        (STRATA_BIN, RUNS, COMMIT_SECS, MEMBERS, WINDOW)
"""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))

from confluent_kafka import Consumer, KafkaException, TopicPartition  # noqa: E402

from groups import create_topic, produce_numbered  # noqa: E402
from strata_broker import Broker, strata_bin  # noqa: E402

RUNS = int(os.environ.get("RUNS", "7"))
COMMIT_SECS = float(os.environ.get("COMMIT_SECS", "10"))
MEMBERS = int(os.environ.get("MEMBERS", "4"))
WINDOW = int(os.environ.get("WINDOW", "32"))
PARTITIONS = 6


def member_conf(bootstrap, group, name, **extra):
    c = {"bootstrap.servers": bootstrap, "group.id": group, "client.id": name, "enable.auto.commit": False,
         "auto.offset.reset": "earliest", "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}
    c.update(extra)
    return c


# ---- 1. rebalance -------------------------------------------------------------

def one_rebalance(bootstrap, topic) -> tuple[float, str]:
    group = f"bench-rebalance-{uuid.uuid4().hex[:8]}"
    owned = [set() for _ in range(3)]
    last_change = [0.0]
    lock = threading.Lock()
    stop = threading.Event()
    consumers = [Consumer(member_conf(bootstrap, group, f"rb{i}")) for i in range(3)]

    def run(i):
        c = consumers[i]

        def on_assign(_c, ps):
            with lock:
                owned[i].update(tp.partition for tp in ps)
                last_change[0] = time.monotonic()

        def on_revoke(_c, ps):
            with lock:
                owned[i].difference_update(tp.partition for tp in ps)
                last_change[0] = time.monotonic()

        c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
        while not stop.is_set():
            c.poll(0.02)

    t_subscribe = time.monotonic()
    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    done_at = None
    while time.monotonic() < deadline:
        with lock:
            if all(len(o) == 2 for o in owned) and set().union(*owned) == set(range(PARTITIONS)):
                done_at = last_change[0]
                break
        time.sleep(0.005)
    stop.set()
    for t in threads:
        t.join()
    for c in consumers:
        c.close()
    if done_at is None:
        raise RuntimeError(f"three members not assigned within 60 s: {owned}")
    return done_at - t_subscribe


def rebalance_figures(bootstrap, topic, label) -> str:
    one_rebalance(bootstrap, topic)  # warm-up (connections, metadata)
    times = sorted(one_rebalance(bootstrap, topic) * 1000 for _ in range(RUNS))
    return (f"rebalance, 3 members joining together, {label}: median {statistics.median(times):.0f} ms "
            f"(min {times[0]:.0f}, max {times[-1]:.0f}; {RUNS} runs)")


# ---- 2. commits -------------------------------------------------------------

def sync_commits(bootstrap, topic) -> str:
    group = f"bench-sync-{uuid.uuid4().hex[:8]}"
    c = Consumer(member_conf(bootstrap, group, "sync"))
    assigned = threading.Event()
    c.subscribe([topic], on_assign=lambda _c, ps: assigned.set() if ps else None)
    deadline = time.monotonic() + 60
    while not assigned.is_set() and time.monotonic() < deadline:
        c.poll(0.05)
    assert assigned.is_set(), "the sync committer was not assigned"
    parts = [tp.partition for tp in c.assignment()]
    lat = []
    errors: dict[str, int] = {}
    i = 0
    end = time.monotonic() + COMMIT_SECS
    while time.monotonic() < end:
        p = parts[i % len(parts)]
        t0 = time.perf_counter()
        try:
            c.commit(offsets=[TopicPartition(topic, p, 1 + i % 1000)], asynchronous=False)
        except KafkaException as e:
            name = e.args[0].name()
            errors[name] = errors.get(name, 0) + 1
        lat.append(time.perf_counter() - t0)
        i += 1
    c.close()
    lat.sort()
    q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] * 1000  # noqa: E731
    return (f"sync commits, 1 member: {len(lat) / COMMIT_SECS:.0f} commits/s "
            f"(latency p50 {q(0.5):.2f} ms, p99 {q(0.99):.2f} ms, max {lat[-1] * 1000:.1f} ms; errors {errors or 0})")


def async_member(bootstrap, topic, group, name, ready, go, results):
    done = {"ok": 0, "err": 0, "parts": 0, "errors": {}}
    inflight = [0]

    def on_commit(err, tps):
        inflight[0] -= 1
        if err is not None or any(tp.error for tp in tps):
            done["err"] += 1
            name = err.name() if err is not None else next(tp.error.name() for tp in tps if tp.error)
            done["errors"][name] = done["errors"].get(name, 0) + 1
        else:
            done["ok"] += 1
            done["parts"] += len(tps)

    c = Consumer(member_conf(bootstrap, group, name, on_commit=on_commit))
    c.subscribe([topic])
    ready.put(name)
    while not go.is_set():
        c.poll(0.05)
    parts = [tp.partition for tp in c.assignment()]
    i = 0
    end = time.monotonic() + COMMIT_SECS
    t0 = time.monotonic()
    while time.monotonic() < end:
        if parts and inflight[0] < WINDOW:
            c.commit(offsets=[TopicPartition(topic, p, 1 + i % 1000) for p in parts], asynchronous=True)
            inflight[0] += 1
            i += 1
            c.poll(0)
        else:
            c.poll(0.001)
    t1 = time.monotonic()
    drain = time.monotonic() + 10
    while inflight[0] > 0 and time.monotonic() < drain:
        c.poll(0.01)
    c.close()
    results.put((name, len(parts), done["ok"], done["err"], done["parts"], t1 - t0, done["errors"]))


def async_commits(bootstrap, topic) -> str:
    group = f"bench-async-{uuid.uuid4().hex[:8]}"
    ctx = mp.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=async_member, args=(bootstrap, topic, group, f"async{i}", ready, go, results))
             for i in range(MEMBERS)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=60)
    # every member assigned: wait for a settled group via the AdminClient
    from confluent_kafka.admin import AdminClient
    a = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        d = a.describe_consumer_groups([group])[group].result(30)
        if str(d.state).endswith("STABLE") and len(d.members) == MEMBERS and \
                sum(len(m.assignment.topic_partitions) for m in d.members) == PARTITIONS:
            break
        time.sleep(0.1)
    time.sleep(1.0)  # members poll once more and see their assignment
    go.set()
    rows = [results.get(timeout=COMMIT_SECS + 60) for _ in procs]
    for p in procs:
        p.join(30)
    secs = max(r[5] for r in rows)
    ok = sum(r[2] for r in rows)
    err: dict[str, int] = {}
    for r in rows:
        for k, n in r[6].items():
            err[k] = err.get(k, 0) + n
    parts = sum(r[4] for r in rows)
    per = ", ".join(f"{r[0]}: {r[1]} partitions {r[2] / r[5]:.0f}/s" for r in sorted(rows))
    return (f"async commits, {MEMBERS} members, up to {WINDOW} in flight each, all own partitions per commit: "
            f"{ok / secs:.0f} commits/s, {parts / secs:.0f} partition offsets/s (errors {err or 0}; {per})")


def main() -> int:
    # SIGTERM/SIGINT (a timeout, Ctrl-C) unwind through the finally blocks that stop the brokers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    figures = []
    with tempfile.TemporaryDirectory(prefix="strata-groups-bench.") as tmp:
        setups = [("broker defaults (group.initial.rebalance.delay.ms 3000)", []),
                  ("group.initial.rebalance.delay.ms=0", ["--config", "group.initial.rebalance.delay.ms=0"])]
        for label, args in setups:
            b = Broker(Path(tmp) / f"data-{len(figures)}", args=["--default-partitions", str(PARTITIONS), *args],
                       name="bench").start()
            try:
                topic = f"bench-{uuid.uuid4().hex[:6]}"
                create_topic(b.bootstrap, topic, PARTITIONS)
                produce_numbered(b.bootstrap, topic, PARTITIONS, 1000, "x")
                figures.append(rebalance_figures(b.bootstrap, topic, label))
                print(figures[-1], flush=True)
                if not args:
                    figures.append(sync_commits(b.bootstrap, topic))
                    print(figures[-1], flush=True)
                    figures.append(async_commits(b.bootstrap, topic))
                    print(figures[-1], flush=True)
            finally:
                b.stop()
    print()
    print(f"groups bench ({strata_bin()}, {os.cpu_count()} CPUs, confluent-kafka with librdkafka "
          f"{__import__('confluent_kafka').libversion()[0]}; commit runs {COMMIT_SECS:.0f} s):")
    for f in figures:
        print("  " + f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
