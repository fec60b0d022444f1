#!/usr/bin/env python3
"""confluent-kafka (librdkafka) flows run against the fake broker.

usage: confluent_kafka_flows.py BOOTSTRAP TOPIC
Every step has its own short timeout; the script always ends by itself.
"""

import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

BOOT, TOPIC = sys.argv[1], sys.argv[2]
BASE = {"bootstrap.servers": BOOT, "client.id": "strata-golden-confluent", "socket.timeout.ms": 5000}
failures = []


def step(name, fn):
    print(f"--- {name}", flush=True)
    try:
        fn()
    except Exception as e:  # report and go on with the next flow
        failures.append(name)
        print(f"!!! {name}: {type(e).__name__}: {e}", flush=True)


def admin():
    a = AdminClient(dict(BASE))
    md = a.list_topics(timeout=5)
    print("brokers", list(md.brokers), "topics", sorted(md.topics))
    md = a.list_topics(topic=TOPIC, timeout=5)
    print("topic", TOPIC, "partitions", sorted(md.topics[TOPIC].partitions))
    try:
        fut = a.describe_cluster(request_timeout=5)
        print("cluster", fut.result(timeout=5).cluster_id)
    except (AttributeError, TypeError):
        print("describe_cluster not available in this confluent-kafka")


def produce(codec, idempotent=False):
    def run():
        conf = dict(BASE, **{"compression.type": codec, "enable.idempotence": idempotent,
                             "linger.ms": 100, "acks": "all", "message.timeout.ms": 8000})
        p = Producer(conf)
        delivered = []

        def cb(err, msg):
            if err:
                raise KafkaException(err)
            delivered.append((msg.partition(), msg.offset()))

        for i in range(3):
            # compressible values so that librdkafka really sends a compressed batch
            value = (f"confluent {codec} message {i} " * 8).encode()
            p.produce(TOPIC, key=f"key-{i}".encode(), value=value, on_delivery=cb,
                      headers=[("h", b"v")] if i == 0 else None)
        left = p.flush(10)
        print(codec, "idempotent" if idempotent else "", "delivered", delivered, "left", left)
        if left:
            raise RuntimeError(f"{left} messages not delivered")
    return run


def consume():
    c = Consumer(dict(BASE, **{
        "group.id": "strata-golden-confluent-group", "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "enable.partition.eof": True,
        "heartbeat.interval.ms": 300, "session.timeout.ms": 10000,
    }))
    c.subscribe([TOPIC])
    got, eof, assigned = 0, set(), set()
    deadline = time.time() + 20
    while time.time() < deadline:
        msg = c.poll(0.5)
        assigned = {(tp.topic, tp.partition) for tp in c.assignment()}
        if msg is None:
            if assigned and eof >= assigned and got:
                break
            continue
        if msg.error():
            if msg.error().code() == -191:  # _PARTITION_EOF
                eof.add((msg.topic(), msg.partition()))
                if assigned and eof >= assigned:
                    break
                continue
            raise KafkaException(msg.error())
        got += 1
    print("consumed", got, "assigned", sorted(assigned))
    time.sleep(0.7)  # let a heartbeat or two go out
    if got:
        c.commit(asynchronous=False)
    c.close()  # LeaveGroup
    if not got:
        raise RuntimeError("nothing consumed")


def consume_assigned():
    # plain consumer without group management: ListOffsets + Fetch only
    c = Consumer(dict(BASE, **{"group.id": "strata-golden-unused", "enable.auto.commit": False,
                               "enable.partition.eof": True}))
    c.assign([TopicPartition(TOPIC, 0, -2), TopicPartition(TOPIC, 1, -2)])  # OFFSET_BEGINNING
    eof, got = set(), 0
    deadline = time.time() + 10
    while time.time() < deadline and len(eof) < 2:
        msg = c.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == -191:
                eof.add(msg.partition())
            continue
        got += 1
    print("assigned consumer got", got)
    c.close()


step("admin metadata", admin)
for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
    step(f"produce {codec}", produce(codec))
step("produce idempotent", produce("none", idempotent=True))
step("produce idempotent zstd", produce("zstd", idempotent=True))
step("consume group", consume)
step("consume assigned", consume_assigned)
print("failures:", failures)
sys.exit(1 if failures else 0)
