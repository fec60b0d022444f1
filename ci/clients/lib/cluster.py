"""What the multi-broker tests share (test_cluster_etcd.py, test_cluster_faults.py):
the live brokers and partition leaders as Metadata lists them, a producer
under steady load on a thread (idempotent, acks=all) that records every
acknowledged record, a consumer reading along on a thread, and the check that
every acknowledged record is in the log exactly once, at its offset."""

from __future__ import annotations

import collections
import json
import threading
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient


def broker_ids(bootstrap: str) -> set[int]:
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    return set(md.brokers)


def wait_brokers(bootstrap: str, want: set[int], within_s: float) -> float:
    """Seconds until Metadata through `bootstrap` lists exactly `want`."""
    t0 = time.monotonic()
    seen = None
    while time.monotonic() - t0 < within_s:
        seen = broker_ids(bootstrap)
        if seen == want:
            return time.monotonic() - t0
        time.sleep(0.1)
    raise AssertionError(f"Metadata lists brokers {seen}, not {want}, after {within_s} s")


def leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """partition -> leader node id, as Metadata through `bootstrap` names them."""
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    return {q: p.leader for q, p in md.topics[topic].partitions.items()}


class Load:
    """A producer thread: `rate` records/s round-robin over `partitions`
    partitions, every value unique (`{tag}-{i}:` then random-looking bytes),
    idempotent, acks=all. Keeps every acknowledged (partition, offset, key,
    value) with the time of its acknowledgement, every failed delivery, and
    every error the client reported through error_cb."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, rate: int = 3000, tag: str = "r",
                 **config):
        self.topic, self.partitions, self.rate, self.tag = topic, partitions, rate, tag
        # (partition, offset, key, value); the offset is None when the client
        # acknowledges a record without one: librdkafka does when it concludes
        # that a batch it was retrying had been written after all (a later
        # batch of the partition was acknowledged first), not knowing where.
        self.acked: list[tuple[int, int | None, bytes, bytes]] = []
        self.acked_at: list[float] = []  # monotonic time of each acknowledgement, in order
        self.sent_at: list[float] = []  # and of its produce() call
        self.failed: list[tuple] = []
        self.errors: list = []  # KafkaError from error_cb
        self.produced: set[bytes] = set()
        self.full = 0  # produce() calls refused with BufferError (queue full)
        conf = {
            "bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5,
            "message.timeout.ms": 120000, "request.timeout.ms": 10000, "retry.backoff.ms": 50,
            "retry.backoff.max.ms": 500, "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500,
            "error_cb": self.errors.append,
            # Statistics count the requests the client timed out (which it
            # retries without a word to error_cb).
            "statistics.interval.ms": 200, "stats_cb": self._on_stats,
        }
        conf.update(config)
        self.producer = Producer(conf)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"load-{tag}", daemon=True)
        self.exception: BaseException | None = None
        self.req_timeouts: dict[str, int] = {}  # broker -> requests the client timed out

    def _on_stats(self, text: str):
        for name, b in json.loads(text).get("brokers", {}).items():
            self.req_timeouts[name] = max(self.req_timeouts.get(name, 0), b.get("req_timeouts", 0))

    def _on_delivery(self, err, m, sent: float):
        if err:
            self.failed.append((err, m.partition(), m.value()[:20]))
        else:
            self.acked.append((m.partition(), m.offset(), m.key(), m.value()))
            self.sent_at.append(sent)
            self.acked_at.append(time.monotonic())

    def _run(self):
        try:
            i, t0 = 0, time.monotonic()
            while not self._stop.is_set():
                due = int((time.monotonic() - t0) * self.rate)
                while i < due:
                    key = b"%s-k%d" % (self.tag.encode(), i % 1009)
                    value = b"%s-%d:" % (self.tag.encode(), i) + bytes((i * 7 + j) & 0xFF for j in range(i % 200))
                    try:
                        self.producer.produce(self.topic, key=key, value=value, partition=i % self.partitions,
                                              on_delivery=lambda err, m, sent=time.monotonic(): self._on_delivery(err, m, sent))
                    except BufferError:
                        self.full += 1
                        break
                    self.produced.add(value)
                    i += 1
                self.producer.poll(0.005)
        except BaseException as e:  # reported by stop()
            self.exception = e

    def start(self) -> "Load":
        self._thread.start()
        return self

    def without_offset(self) -> int:
        """Records acknowledged without an offset."""
        return sum(1 for a in self.acked if a[1] is None)

    def all_acked_since(self, t: float, partitions: set[int], within_s: float) -> float | None:
        """Seconds from `t` until every partition of `partitions` has had a
        record produced after `t` acknowledged (waiting up to `within_s`)."""
        deadline = time.monotonic() + within_s
        while True:
            first: dict[int, float] = {}
            for (q, _, _, _), sent, at in zip(self.acked, self.sent_at, self.acked_at):
                if sent > t and q in partitions and q not in first:
                    first[q] = at
            if set(first) == partitions:
                return max(first.values()) - t
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)

    def acks_since(self, t: float) -> int:
        return sum(1 for a in self.acked_at if a > t)

    def first_ack_after(self, t: float) -> float | None:
        """Seconds from `t` to the first acknowledgement after it."""
        return next((a - t for a in self.acked_at if a > t), None)

    def wait_acks_after(self, t: float, within_s: float) -> float | None:
        """Seconds from `t` to the first acknowledgement after it, waiting up to `within_s`."""
        deadline = time.monotonic() + within_s
        while (d := self.first_ack_after(t)) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return d

    def longest_gap(self, partitions: set[int] | None = None) -> float:
        """The longest time without any acknowledgement (after the first), of
        `partitions` (all if None)."""
        ts = [at for (q, _, _, _), at in zip(self.acked, self.acked_at) if partitions is None or q in partitions]
        return max((b - a for a, b in zip(ts, ts[1:])), default=0.0)

    def stop(self, flush_s: float = 120.0) -> None:
        """Stops producing and waits until every record is delivered (or failed)."""
        self._stop.set()
        self._thread.join(30)
        assert self.exception is None, f"the producer thread failed: {self.exception!r}"
        left = self.producer.flush(flush_s)
        assert left == 0, f"{left} records still undelivered {flush_s} s after the load stopped"
        self.producer.poll(0.5)  # the last statistics
        self.producer = None  # closes it

    def timed_out(self) -> int:
        """Requests the client timed out (request.timeout.ms) and retried."""
        return sum(self.req_timeouts.values())

    def check_delivered(self) -> None:
        """No delivery failed and no error was fatal: the client retried through everything."""
        assert not self.failed, f"{len(self.failed)} deliveries failed, first: {self.failed[:5]}"
        fatal = [e for e in self.errors if e.fatal()]
        assert not fatal, f"fatal producer errors: {fatal}"
        assert len(self.acked) == len(self.produced), f"{len(self.acked)} acks for {len(self.produced)} records"

    def error_summary(self) -> str:
        return ", ".join(f"{n}x {name}" for name, n in collections.Counter(e.name() for e in self.errors).most_common()) or "none"


class Follower:
    """A consumer thread reading every partition from offset 0 as records
    arrive (assign, no group): partition -> offset -> (key, value). Fails on
    an offset delivered twice with different content, and on consumer errors
    other than transient ones."""

    TRANSIENT = {KafkaError._PARTITION_EOF, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN,
                 KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT, KafkaError.NOT_LEADER_FOR_PARTITION,
                 KafkaError.LEADER_NOT_AVAILABLE, KafkaError.KAFKA_STORAGE_ERROR}

    def __init__(self, bootstrap: str, topic: str, partitions: int):
        self.logs: dict[int, dict[int, tuple]] = {q: {} for q in range(partitions)}
        self.errors: list = []
        self.bad: list = []
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "strata-ci-follower",
                                  "enable.auto.commit": False, "auto.offset.reset": "error",
                                  "enable.partition.eof": False, "fetch.wait.max.ms": 100,
                                  "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500})
        self.consumer.assign([TopicPartition(topic, q, 0) for q in range(partitions)])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="follower", daemon=True)
        self.read_at: list[float] = []

    def _run(self):
        while not self._stop.is_set():
            m = self.consumer.poll(0.1)
            if m is None:
                continue
            if m.error():
                self.errors.append(m.error())
                if m.error().code() not in self.TRANSIENT:
                    self.bad.append(m.error())
                continue
            rec = (m.key(), m.value())
            seen = self.logs[m.partition()].setdefault(m.offset(), rec)
            if seen != rec:
                self.bad.append(f"partition {m.partition()} offset {m.offset()} read as two different records")
            self.read_at.append(time.monotonic())

    def start(self) -> "Follower":
        self._thread.start()
        return self

    def count(self) -> int:
        return sum(map(len, self.logs.values()))

    def wait_for(self, n: int, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while self.count() < n and time.monotonic() < deadline and not self.bad:
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self.consumer.close()


def check_exactly_once(logs: dict[int, dict[int, tuple]], acked: list[tuple], produced: set[bytes]) -> None:
    """`logs` (partition -> offset -> (key, value), offsets dense, as
    readback.read_partitions gives) holds every acknowledged record at its
    acknowledged offset (anywhere in its partition if acknowledged without
    one), no value twice, and nothing that was never produced."""
    wrong = [(q, o, v[:20]) for q, o, k, v in acked if o is not None and logs[q].get(o) != (k, v)]
    assert not wrong, f"{len(wrong)} acknowledged records missing or different at their offsets, first: {wrong[:5]}"
    kept = {(q, k, v) for q, log in logs.items() for k, v in log.values()}
    lost = [(q, v[:20]) for q, o, k, v in acked if o is None and (q, k, v) not in kept]
    assert not lost, f"{len(lost)} records acknowledged without an offset are not in their partition, first: {lost[:5]}"
    counts = collections.Counter(v for log in logs.values() for _, v in log.values())
    dups = {v[:20]: n for v, n in counts.items() if n > 1}
    assert not dups, f"{len(dups)} values in the log more than once (duplicates), e.g. {list(dups.items())[:5]}"
    strangers = set(counts) - produced
    assert not strangers, f"{len(strangers)} records in the log were never produced"
