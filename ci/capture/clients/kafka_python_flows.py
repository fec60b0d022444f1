#!/usr/bin/env python3
"""kafka-python flows run against the fake broker.

usage: kafka_python_flows.py BOOTSTRAP TOPIC
Every step has its own short timeout; the script always ends by itself.
"""

import logging
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

BOOT, TOPIC = sys.argv[1], sys.argv[2]
BASE = {"bootstrap_servers": BOOT, "client_id": "strata-golden-kafka-python",
        "request_timeout_ms": 8000}
failures = []
logging.basicConfig(level=logging.WARNING)


def step(name, fn):
    print(f"--- {name}", flush=True)
    try:
        fn()
    except Exception as e:  # report and go on with the next flow
        failures.append(name)
        print(f"!!! {name}: {type(e).__name__}: {e}", flush=True)


def admin():
    a = KafkaAdminClient(**BASE)
    try:
        print("topics", sorted(a.list_topics()))
        print("cluster", a.describe_cluster())
    finally:
        a.close()


def produce(codec, idempotent=False):
    def run():
        p = KafkaProducer(compression_type=codec, enable_idempotence=idempotent, acks="all",
                          linger_ms=100, max_block_ms=8000, **BASE)
        try:
            futures = []
            for i in range(3):
                value = (f"kafka-python {codec} message {i} " * 8).encode()
                futures.append(p.send(TOPIC, key=f"key-{i}".encode(), value=value,
                                      headers=[("h", b"v")] if i == 0 else None))
            p.flush(timeout=10)
            print(codec, "idempotent" if idempotent else "",
                  [(m.partition, m.offset) for m in (f.get(timeout=5) for f in futures)])
        finally:
            p.close(timeout=5)
    return run


def consume_group():
    c = KafkaConsumer(TOPIC, group_id="strata-golden-kafka-python-group", auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=4000, heartbeat_interval_ms=300,
                      session_timeout_ms=10000, **BASE)
    got = 0
    deadline = time.time() + 20
    try:
        for _msg in c:
            got += 1
            if time.time() > deadline:
                break
        print("consumed", got, "assignment", sorted(c.assignment()))
        if got:
            c.commit()  # OffsetCommit
    finally:
        c.close()  # LeaveGroup
    if not got:
        raise RuntimeError("nothing consumed")


def consume_assigned():
    c = KafkaConsumer(consumer_timeout_ms=3000, **BASE)
    try:
        tps = [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        got = sum(1 for _ in c)
        print("assigned consumer got", got, "end offsets", c.end_offsets(tps))
    finally:
        c.close()


step("admin", admin)
codecs = [None, "gzip", "snappy", "lz4", "zstd"]
for codec in codecs:
    step(f"produce {codec}", produce(codec))
step("produce idempotent", produce(None, idempotent=True))
step("produce idempotent zstd", produce("zstd", idempotent=True))
step("consume group", consume_group)
step("consume assigned", consume_assigned)
print("failures:", failures)
sys.exit(1 if failures else 0)
