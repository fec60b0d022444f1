"""Metadata over the raw wire: auto-creation honours the request's flag, and
the answer describes this broker."""

from __future__ import annotations

import kafka_wire as kw
from conftest import DEFAULT_PARTITIONS

UNKNOWN_TOPIC_OR_PARTITION = 3


def test_auto_create_only_when_allowed(broker, topic):
    md = kw.metadata(broker.host, broker.port, [topic], version=4, allow_auto_create=False)
    [t] = md["topics"]
    assert (t["name"], t["error_code"], t["partitions"]) == (topic, UNKNOWN_TOPIC_OR_PARTITION, []), t
    assert topic not in [t["name"] for t in kw.metadata(broker.host, broker.port, None, version=1)["topics"]]

    t = kw.ensure_topic(broker.host, broker.port, topic)
    assert sorted(p["partition"] for p in t["partitions"]) == list(range(DEFAULT_PARTITIONS))
    node = kw.metadata(broker.host, broker.port, [topic], version=4)["brokers"][0]["node_id"]
    for p in t["partitions"]:
        assert (p["leader"], p["replicas"], p["isr"]) == (node, [node], [node]), p


def test_metadata_v1_to_v4_agree(broker, topic):
    kw.ensure_topic(broker.host, broker.port, topic)
    seen = []
    for v in (1, 2, 3, 4):
        md = kw.metadata(broker.host, broker.port, [topic], version=v)
        assert [(b["host"], b["port"]) for b in md["brokers"]] == [("127.0.0.1", broker.port)], (v, md)
        if v >= 2:
            assert md["cluster_id"], (v, md)
        [t] = md["topics"]
        seen.append((t["error_code"], sorted(p["partition"] for p in t["partitions"])))
    assert seen == [(0, list(range(DEFAULT_PARTITIONS)))] * 4, seen
