"""The etcd sequencer (`--sequencer etcd://HOST:PORT`) with a real etcd and a
real client (confluent-kafka): produce and consume; every acknowledged record
is at its offset after the broker is killed -9 and restarted; etcd itself
killed -9 and restarted under produce load costs the producer only retriable
errors (it retries), and every acknowledged record is there exactly once; a
broker pointed at an etcd that is not there says so and exits."""

from __future__ import annotations

import collections
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer

import etcd_server
import kafka_wire
from conftest import require_own_brokers
from readback import read_partitions
from strata_broker import free_port, strata_bin

PARTITIONS = 3


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    require_own_brokers()
    if etcd_server.etcd_bin() is None:
        if etcd_server.required():
            pytest.fail("STRATA_REQUIRE_ETCD=1 but etcd is not installed: apt-get install etcd-server")
        pytest.skip("etcd is not installed (apt-get install etcd-server; ci/clients/run.sh installs it)")
    e = etcd_server.EtcdServer(tmp_path_factory.mktemp("etcd")).start()
    yield e
    e.stop()


def etcd_args(etcd) -> list[str]:
    # A cluster id of its own per broker: the etcd is shared by the module's tests.
    return ["--sequencer", etcd.sequencer_arg, "--cluster-id", f"ci-{uuid.uuid4().hex[:8]}",
            "--default-partitions", str(PARTITIONS)]


def producer(bootstrap: str) -> Producer:
    return Producer({
        "bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 2,
        "message.timeout.ms": 90000, "request.timeout.ms": 10000, "retry.backoff.ms": 50,
        "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500,
    })


def check_exactly_once(bootstrap: str, topic: str, acked: list, produced: set) -> dict:
    logs = read_partitions(bootstrap, topic, PARTITIONS, deadline_s=120)
    lost = [(q, o, v) for q, o, v in acked if logs[q].get(o) != v]
    assert not lost, f"{len(lost)} acknowledged records not at their offsets, first: {lost[:5]}"
    counts = collections.Counter(v for log in logs.values() for v in log.values())
    dups = {v: n for v, n in counts.items() if n > 1}
    assert not dups, f"{len(dups)} values written more than once, e.g. {list(dups.items())[:5]}"
    assert set(counts) == produced, "the log holds records that were never produced, or misses some"
    return logs


def test_produce_consume_and_kill9_restart_on_etcd(etcd, new_broker):
    b = new_broker(args=etcd_args(etcd), name="etcd").start()
    topic = "etcd-records"
    kafka_wire.ensure_topic(b.host, b.port, topic)
    acked, failed = [], []
    p = producer(b.bootstrap)

    def on_delivery(err, m):
        (failed.append((err, m.value())) if err else acked.append((m.partition(), m.offset(), m.value())))

    values = [b"etcd-%06d" % i for i in range(3000)]
    for i, v in enumerate(values):
        p.produce(topic, value=v, partition=i % PARTITIONS, on_delivery=on_delivery)
        if i % 200 == 0:
            p.poll(0)
    assert p.flush(60) == 0, "records still undelivered after 60 s"
    assert not failed, f"{len(failed)} deliveries failed, first: {failed[:3]}"

    # A consumer in a group reads them all.
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": f"g-{uuid.uuid4().hex[:6]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    got, deadline = set(), time.monotonic() + 60
    while len(got) < len(values) and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.add(m.value())
    c.close()
    assert got == set(values), f"consumed {len(got)} of {len(values)}"

    # A crash: the restarted broker replays the log from etcd.
    b.kill9()
    b.start()
    check_exactly_once(b.bootstrap, topic, acked, set(values))


def test_etcd_crash_and_restart_under_produce_load(etcd, new_broker):
    b = new_broker(args=etcd_args(etcd), name="etcd-load").start()
    topic = "etcd-outage"
    kafka_wire.ensure_topic(b.host, b.port, topic)
    acked, failed, errors = [], [], []
    p = Producer({
        "bootstrap.servers": b.bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 2,
        "message.timeout.ms": 120000, "request.timeout.ms": 10000, "retry.backoff.ms": 50,
        "retry.backoff.max.ms": 500, "error_cb": lambda e: errors.append(e),
    })

    def on_delivery(err, m):
        (failed.append((err, m.value())) if err else acked.append((m.partition(), m.offset(), m.value())))

    produced: set[bytes] = set()
    i, rate, t0 = 0, 1000, time.monotonic()
    killed_at = restarted_at = None
    while (now := time.monotonic() - t0) < 9.0:
        if killed_at is None and now >= 3.0:
            etcd.kill9()
            killed_at = now
        if killed_at is not None and restarted_at is None and now >= killed_at + 3.0:
            etcd.start()
            restarted_at = now
        while i < int(now * rate):
            v = b"outage-%07d" % i
            try:
                p.produce(topic, value=v, partition=i % PARTITIONS, on_delivery=on_delivery)
            except BufferError:
                break
            produced.add(v)
            i += 1
        p.poll(0.005)
    assert p.flush(120) == 0, "records still undelivered 120 s after etcd came back"
    assert b.alive(), f"the broker died while etcd was down:\n{b.log_tail()}"
    # The producer retried through the outage: no delivery failed, no error was fatal.
    assert not failed, f"{len(failed)} deliveries failed, first: {failed[:3]}"
    fatal = [e for e in errors if e.fatal()]
    assert not fatal, f"fatal producer errors: {fatal}"
    assert len(acked) == len(produced)
    check_exactly_once(b.bootstrap, topic, acked, produced)
    print(f"produced {len(produced)} with etcd down from {killed_at:.1f} s to {restarted_at:.1f} s; "
          f"producer errors reported: {[str(e) for e in errors][:5]}")


def test_unreachable_etcd_is_refused_in_plain_words(tmp_path):
    require_own_brokers()
    port = free_port()  # nothing listens there
    cmd = [strata_bin(), "serve", "--listen", f"127.0.0.1:{free_port()}", "--internal-listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"),
           "--sequencer", f"etcd://127.0.0.1:{port}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode != 0, f"started anyway:\n{r.stdout}\n{r.stderr}"
    for words in (f"127.0.0.1:{port}", "etcd must be running"):
        assert words in r.stderr, f"{words!r} not in:\n{r.stderr}"
    print(r.stderr.strip())
