"""Faults under load in a three-broker cluster on a real etcd and a real S3
server (moto_server) — issue 6. Each test starts three brokers sharing one
etcd and one bucket, creates a topic of several partitions, and runs an
idempotent acks=all confluent-kafka producer (bootstrap listing all three) at
a few thousand records/s on a thread, recording every acknowledged (partition,
offset, key, value), with a consumer reading along through one broker. During
the load:

1. the broker leading some partitions is killed -9 (or frozen with SIGSTOP,
   then killed): the producer moves to the others once the broker's lease
   lapses, and retries of batches the dead broker had committed are
   deduplicated by the apply;
2. etcd is killed -9 and restarted on its data directory, or stopped
   (SIGSTOP) and continued, for 10 s: the brokers (not restarted) answer
   retriable errors meanwhile and produce again once it is back;
3. moto_server is stopped (SIGSTOP) for 5 s, then continued: object writes
   hang, the brokers answer retriable errors within their request timeout and
   recover by themselves.

Afterwards every test checks that no delivery failed and no client error was
fatal, that the client timed out no request (the brokers answer, an error or
not, within twice their request timeout), that every acknowledged record is in the log exactly once at its
acknowledged offset (read back through a broker that stayed up), that the log
holds nothing else, and that the consumer read the same records. Figures
(failover and recovery times, errors the client saw) are printed, not asserted.
"""

from __future__ import annotations

import signal
import time
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition

import kafka_wire
from cluster import Follower, Load, check_exactly_once, leaders, wait_brokers
from readback import read_partitions
from test_etcd import etcd  # noqa: F401  (fixture)
from test_s3 import moto, new_bucket, s3_args, s3_env  # noqa: F401  (fixtures)

PARTITIONS = 6
MEMBER_TTL_MS = 3000
# The brokers' bound on an object write, and on a commit being applied:
# shorter than the faults, so that the time-out paths are taken.
REQUEST_TIMEOUT_MS = 3000
RATE = 3000  # records/s
# The client's own bound on a request (librdkafka's socket.timeout.ms; its
# request.timeout.ms is the timeout it asks the broker to honour): a broker
# answers within twice its request timeout (an object write, then a commit),
# so a request the client times out is one a broker left unanswered too long.
CLIENT_REQUEST_TIMEOUT_MS = 3 * REQUEST_TIMEOUT_MS
ETCD_DOWN_S = 10.0  # longer than the member TTL and the request timeouts


@pytest.fixture
def cluster(etcd, moto, s3_env, new_broker):  # noqa: F811
    """Starts brokers 1, 2, 3 on the module's etcd (a cluster id of their own)
    and a new bucket; returns {node id: Broker}."""
    bucket = new_bucket(moto)
    common = ["--sequencer", etcd.sequencer_arg, "--cluster-id", f"ci-{uuid.uuid4().hex[:8]}",
              *s3_args(moto, bucket, "faults"), "--default-partitions", str(PARTITIONS),
              "--member-ttl-ms", str(MEMBER_TTL_MS), "--request-timeout-ms", str(REQUEST_TIMEOUT_MS),
              # A few snapshots per test: truncation compacts the shared etcd (etcd-wide).
              "--snapshot-every-commits", "2000"]
    brokers = {n: new_broker(args=[*common, "--node-id", str(n)], name=f"node{n}").start() for n in (1, 2, 3)}
    wait_brokers(brokers[1].bootstrap, {1, 2, 3}, 20)
    return brokers


def bootstrap_all(brokers) -> str:
    return ",".join(b.bootstrap for b in brokers.values())


def new_topic(brokers) -> str:
    topic = f"faults-{uuid.uuid4().hex[:8]}"
    b = brokers[1]
    md = kafka_wire.ensure_topic(b.host, b.port, topic)
    assert len(md["partitions"]) == PARTITIONS
    return topic


def run_for(load: Load, seconds: float, t0: float) -> None:
    """Sleeps until `seconds` after `t0`, failing early if the producer thread died."""
    while time.monotonic() - t0 < seconds:
        assert load.exception is None, f"the producer thread failed: {load.exception!r}"
        time.sleep(0.05)


def finish(load: Load, follower: Follower, reader, topic: str) -> dict:
    """Stops the load, checks delivery, reads the topic back through `reader`
    and checks it record by record; checks what the follower read too."""
    load.stop()
    load.check_delivered()
    # The brokers answered every request in time (an error or not).
    assert load.timed_out() == 0, (
        f"the client timed out requests (socket.timeout.ms {CLIENT_REQUEST_TIMEOUT_MS}; the brokers' "
        f"request timeout is {REQUEST_TIMEOUT_MS} ms): {load.req_timeouts}")
    # Acknowledged through other brokers: wait until the reader has applied
    # them (a broker does not yet catch up to the sequencer before answering).
    caught_up = wait_watermarks(reader.bootstrap, topic, load.acked, 30)
    assert caught_up is None, f"broker {reader.name} never reached the acknowledged offsets: {caught_up}"
    logs = read_partitions(reader.bootstrap, topic, PARTITIONS, record=lambda m: (m.key(), m.value()), deadline_s=120)
    check_exactly_once(logs, load.acked, load.produced)
    follower.wait_for(len(load.acked), 60)
    follower.stop()
    assert not follower.bad, f"the consumer read wrong records or got errors: {follower.bad[:5]}"
    assert follower.logs == logs, (
        f"the consumer read {follower.count()} records, the read-back {len(load.acked)}; "
        f"differing partitions: {[q for q in logs if follower.logs[q] != logs[q]]}")
    return logs


def recovery(load: Load, back_at: float, t0: float, what: str) -> tuple[float, float]:
    """Seconds from `back_at` (the fault's end) to the first ack, and to acks
    on every partition; then five more seconds of load."""
    recovered = load.wait_acks_after(back_at, 60)
    assert recovered is not None, f"no record was acknowledged within 60 s after {what}"
    all_parts = load.all_acked_since(back_at, set(range(PARTITIONS)), 60)
    assert all_parts is not None, f"some partitions got no acknowledgement within 60 s after {what}"
    run_for(load, max(back_at - t0 + 5.0, time.monotonic() - t0 + 2.0), t0)
    return recovered, all_parts


def summary(load: Load) -> str:
    return (f"client errors: {load.error_summary()}; requests the client timed out: {load.timed_out()}; "
            f"acknowledged without an offset: {load.without_offset()}; produce refused for a full queue: {load.full} times")


def wait_watermarks(bootstrap: str, topic: str, acked: list[tuple], within_s: float) -> dict | None:
    """Waits until the high watermarks through `bootstrap` cover every
    acknowledged offset; None when they do, else {partition: (watermark, needed)}."""
    need = {q: 0 for q in range(PARTITIONS)}
    for q, o, _, _ in acked:
        if o is not None:
            need[q] = max(need[q], o + 1)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "strata-ci-watermarks"})
    try:
        deadline = time.monotonic() + within_s
        while True:
            hw = {q: c.get_watermark_offsets(TopicPartition(topic, q), timeout=10, cached=False)[1] for q in need}
            short = {q: (hw[q], n) for q, n in need.items() if hw[q] < n}
            if not short or time.monotonic() > deadline:
                return short or None
            time.sleep(0.1)
    finally:
        c.close()


@pytest.mark.parametrize("fault", ["kill9", "freeze-then-kill9"])
def test_kill9_of_a_leader_during_idempotent_produce(cluster, fault):
    """kill -9 of a broker leading some partitions while the producer sends
    to it; or SIGSTOP first, then kill -9 a second later: commits it had sent
    to etcd are applied by the others but never answered, so the producer's
    retries of those batches, through another broker, must be duplicates."""
    topic = new_topic(cluster)
    lead = leaders(cluster[1].bootstrap, topic)
    victim = lead[0]
    led = {q for q, n in lead.items() if n == victim}
    survivors = {n: b for n, b in cluster.items() if n != victim}
    reader = survivors[max(survivors)]
    follower = Follower(reader.bootstrap, topic, PARTITIONS).start()
    load = Load(bootstrap_all(cluster), topic, PARTITIONS, RATE, tag="kill", **{"socket.timeout.ms": CLIENT_REQUEST_TIMEOUT_MS}).start()
    t0 = time.monotonic()
    run_for(load, 3.0, t0)
    assert load.acked, "nothing acknowledged before the kill"

    # kill -9 while the producer is sending to it.
    fault_at = time.monotonic()
    if fault == "freeze-then-kill9":
        cluster[victim].proc.send_signal(signal.SIGSTOP)
        time.sleep(1.0)
    cluster[victim].kill9()
    killed_at = time.monotonic()
    left = wait_brokers(reader.bootstrap, set(survivors), MEMBER_TTL_MS / 1000 + 10) + killed_at - fault_at
    # Records produced after the kill reach the others.
    moved = load.all_acked_since(killed_at, led, 60)
    assert moved is not None, f"partitions {sorted(led)} of the killed broker {victim} got no acknowledgement after the kill"
    assert set(leaders(reader.bootstrap, topic).values()) <= set(survivors)
    run_for(load, max(killed_at - t0 + 6.0, time.monotonic() - t0 + 2.0), t0)

    finish(load, follower, reader, topic)
    for n, b in survivors.items():
        assert b.alive(), f"broker {n} died:\n{b.log_tail()}"
    how = "stopped at {:.1f} s, killed -9 at {:.1f} s" if fault != "kill9" else "killed -9 at {1:.1f} s"
    print(f"\n{fault}: {len(load.acked)} records acked at {RATE}/s; broker {victim} (leader of partitions "
          f"{sorted(led)}) {how.format(fault_at - t0, killed_at - t0)}; it left Metadata {left:.1f} s after the fault "
          f"(TTL {MEMBER_TTL_MS} ms); records produced to its partitions after the kill were acknowledged within "
          f"{moved:.1f} s of it; "
          f"longest pause of their acks {load.longest_gap(led):.1f} s; {summary(load)}")


@pytest.mark.parametrize("fault", ["kill9-restart", "sigstop"])
def test_etcd_outage_under_load(cluster, etcd, fault):  # noqa: F811
    """etcd killed -9 and started again on its data directory and port, or
    stopped (SIGSTOP: connections stay open, nothing is answered) and
    continued: the brokers stay up and recover by themselves."""
    topic = new_topic(cluster)
    reader = cluster[3]
    follower = Follower(reader.bootstrap, topic, PARTITIONS).start()
    load = Load(bootstrap_all(cluster), topic, PARTITIONS, RATE, tag="etcd", **{"socket.timeout.ms": CLIENT_REQUEST_TIMEOUT_MS}).start()
    t0 = time.monotonic()
    run_for(load, 3.0, t0)
    assert load.acked, "nothing acknowledged before etcd went down"

    down_at = time.monotonic()
    if fault == "kill9-restart":
        etcd.kill9()
    else:
        etcd.proc.send_signal(signal.SIGSTOP)
    try:
        run_for(load, down_at - t0 + ETCD_DOWN_S, t0)
        acks_while_down = load.acks_since(down_at + 1.0)  # (answers to commits made just before it aside)
    finally:
        if fault == "kill9-restart":
            etcd.start()
        else:
            etcd.proc.send_signal(signal.SIGCONT)
    back_at = time.monotonic()
    recovered, all_parts = recovery(load, back_at, t0, "etcd came back")

    finish(load, follower, reader, topic)
    for n, b in cluster.items():
        assert b.alive(), f"broker {n} died while etcd was down:\n{b.log_tail()}"
    # The live set is whole again (leases renewed or re-granted, watches re-established).
    members_back = wait_brokers(reader.bootstrap, {1, 2, 3}, MEMBER_TTL_MS / 1000 + 10)
    print(f"\n{fault}: {len(load.acked)} records acked at {RATE}/s; etcd down from {down_at - t0:.1f} s to "
          f"{back_at - t0:.1f} s ({acks_while_down} acks while down); first ack {recovered:.2f} s after etcd was back, "
          f"records produced after it to every partition acknowledged within {all_parts:.2f} s; Metadata lists all three brokers "
          f"{members_back:.1f} s after the checks; longest pause between acks {load.longest_gap():.1f} s; "
          f"{summary(load)}")


def test_s3_stall_under_load(cluster, moto):  # noqa: F811
    topic = new_topic(cluster)
    reader = cluster[3]
    follower = Follower(reader.bootstrap, topic, PARTITIONS).start()
    load = Load(bootstrap_all(cluster), topic, PARTITIONS, RATE, tag="s3", **{"socket.timeout.ms": CLIENT_REQUEST_TIMEOUT_MS}).start()
    t0 = time.monotonic()
    run_for(load, 3.0, t0)
    assert load.acked, "nothing acknowledged before the stall"

    stopped_at = time.monotonic()
    moto.proc.send_signal(signal.SIGSTOP)
    try:
        run_for(load, stopped_at - t0 + 5.0, t0)
        acks_while_stopped = load.acks_since(stopped_at + 1.0)
    finally:
        moto.proc.send_signal(signal.SIGCONT)
    continued_at = time.monotonic()
    recovered, all_parts = recovery(load, continued_at, t0, "the S3 server continued")

    finish(load, follower, reader, topic)
    for n, b in cluster.items():
        assert b.alive(), f"broker {n} died while S3 was stalled:\n{b.log_tail()}"
    print(f"\n{len(load.acked)} records acked at {RATE}/s; S3 stopped from {stopped_at - t0:.1f} s to "
          f"{continued_at - t0:.1f} s ({acks_while_stopped} acks while stopped); first ack {recovered:.2f} s after it "
          f"continued, records produced after it to every partition acknowledged within {all_parts:.2f} s; longest pause between acks "
          f"{load.longest_gap():.1f} s; {summary(load)}")
