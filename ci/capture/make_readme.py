#!/usr/bin/env python3
"""Writes proto/tests/golden/README.md from the captured frames.

Every frame is decoded again with kafka_codec (a sanity check: the script
fails if a frame does not decode) and listed with its header facts.
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_codec import Reader, Schemas, skip_tagged_fields  # noqa: E402

CLIENTS = ["kcat", "confluent_kafka", "kafka_python"]
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def client_versions():
    out = {}
    try:
        v = subprocess.run(["kcat", "-V"], capture_output=True, text=True, timeout=10).stdout
        line = next((ln for ln in v.splitlines() if ln.startswith("Version")), "").strip()
        out["kcat"] = line or "unknown"
    except Exception as e:  # noqa: BLE001
        out["kcat"] = f"unknown ({e})"
    try:
        import confluent_kafka
        from importlib.metadata import version
        out["confluent_kafka"] = (f"confluent-kafka {version('confluent-kafka')} "
                                  f"(bundled librdkafka {confluent_kafka.libversion()[0]})")
    except Exception as e:  # noqa: BLE001
        out["confluent_kafka"] = f"unknown ({e})"
    try:
        import kafka
        from importlib.metadata import version
        extras = ", ".join(f"{p} {version(p)}" for p in ("python-snappy", "lz4", "zstandard"))
        out["kafka_python"] = f"kafka-python {kafka.__version__} (codecs: {extras})"
    except Exception as e:  # noqa: BLE001
        out["kafka_python"] = f"unknown ({e})"
    return out


def batches_summary(records):
    parts = []
    pos = 0
    while pos + 61 <= len(records):
        length = struct.unpack_from(">i", records, pos + 8)[0]
        magic = records[pos + 16]
        if magic < 2:
            parts.append(f"magic {magic}")
            break
        attrs = struct.unpack_from(">h", records, pos + 21)[0]
        pid = struct.unpack_from(">q", records, pos + 43)[0]
        count = struct.unpack_from(">i", records, pos + 57)[0]
        s = f"{count} rec {CODECS.get(attrs & 7, attrs & 7)}"
        if pid >= 0:
            s += f" pid {pid}"
        parts.append(s)
        pos += 12 + length
    return "; ".join(parts)


def describe(schemas, data):
    r = Reader(data)
    key, ver, corr = r.fmt(">h"), r.fmt(">h"), r.fmt(">i")
    n = r.fmt(">h")
    cid = None if n < 0 else r.take(n).decode()
    req = schemas.requests[key]
    flex = req.is_flexible(ver)
    if flex:
        skip_tagged_fields(r)
    body, end = req.decode(data, ver, r.pos)
    notes = []
    if end != len(data):
        notes.append(f"**{len(data) - end} trailing bytes** after the body (`{data[end:].hex()}`)")
    name = req.name
    if name == "ProduceRequest":
        notes.append(", ".join(
            f"p{pd['Index']}: {batches_summary(pd.get('Records') or b'')}"
            for td in body.get("TopicData") or [] for pd in td.get("PartitionData") or []))
        notes.append(f"acks {body.get('Acks')}")
    elif name == "ApiVersionsRequest" and ver >= 3:
        notes.append(f"{body.get('ClientSoftwareName')} {body.get('ClientSoftwareVersion')}")
    elif name == "JoinGroupRequest":
        notes.append("protocols " + ",".join(p["Name"] for p in body.get("Protocols") or []))
        notes.append(f"member id {body.get('MemberId')!r}")
    elif name == "FetchRequest":
        notes.append(f"session {body.get('SessionId')}/{body.get('SessionEpoch')}")
    return key, ver, corr, cid, ("v2" if flex else "v1"), notes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--golden", required=True)
    ap.add_argument("--logs", default=None, help="unused; kept for run.sh compatibility")
    args = ap.parse_args()
    schemas = Schemas()
    versions = client_versions()

    rows = {}
    bad = []
    for client in CLIENTS:
        d = os.path.join(args.golden, client)
        if not os.path.isdir(d):
            continue
        rows[client] = []
        for fn in sorted(os.listdir(d)):
            if not fn.endswith(".bin"):
                continue
            data = open(os.path.join(d, fn), "rb").read()
            try:
                key, ver, corr, cid, hv, notes = describe(schemas, data)
            except Exception as e:  # noqa: BLE001
                bad.append(f"{client}/{fn}: {e}")
                key = ver = corr = cid = hv = "?"
                notes = [f"does not decode: {e}"]
            rows[client].append((fn, key, ver, hv, len(data), cid, "; ".join(n for n in notes if n)))

    lines = [TEMPLATE_HEAD.strip(), ""]
    lines += ["## Client versions (at the last capture)", ""]
    for c in CLIENTS:
        lines.append(f"- `{c}`: {versions.get(c)}")
    lines.append("")
    lines += ["## Files", ""]
    for client, rs in rows.items():
        lines += [f"### {client}", "",
                  "| file | api key | version | header | bytes | client id | notes |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for fn, key, ver, hv, size, cid, notes in rs:
            lines.append(f"| `{fn}` | {key} | {ver} | {hv} | {size} | `{cid}` | {notes} |")
        lines.append("")
    lines.append(TEMPLATE_TAIL.strip())
    lines.append("")
    with open(os.path.join(args.golden, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    if bad:
        print("frames that do not decode:\n  " + "\n  ".join(bad), file=sys.stderr)
        return 1
    return 0


TEMPLATE_HEAD = r"""
# Golden request frames from real Kafka clients

Each `*.bin` file here is one request exactly as a real client sent it: the
bytes of one frame **after** the 4-byte size prefix, i.e. starting at the
request header:

```
int16  request_api_key
int16  request_api_version
int32  correlation_id
string client_id            (int16 length, -1 = null; never compact)
[tagged fields]             (request header v2 only: when the request version is flexible)
body                        (the request message at that version)
```

Files are named `<client>/<api>_v<version>[_<label>].bin`, one per distinct
(api, version, label); when a client sent several such frames, the first one
is kept. Labels:

- `produce`: codec of the record batch (`none`, `gzip`, `snappy`, `lz4`,
  `zstd`), plus `_idempotent` when the batch carries a producer id
  (`_transactional` for a transactional batch, `_acks0` for acks=0).
- `metadata`: `all_topics` (null topic list; empty list in v0), `no_topics`
  (empty list: brokers only), `topics` (named topics).
- `join_group`: `new_member` for the first join with an empty member id (the
  broker answers MEMBER_ID_REQUIRED with a member id, KIP-394); no label for the
  join with that member id.
- `sync_group`: `leader` (carries the assignments) or `follower`.
- `list_offsets`: `earliest` (timestamp -2), `latest` (-1), `timestamp` (a
  real timestamp).

The bytes are not reproducible across captures (record timestamps and CRCs,
member ids handed out by the fake broker, producer ids): tests should decode
them, and may re-encode the decoded value and compare with the file.

## How they were captured

```
bash ci/capture/run.sh            # all clients; or: bash ci/capture/run.sh kcat
```

`ci/capture/run.sh` installs what is missing (`apt-get install kcat`, pinned
pip packages `confluent-kafka kafka-python python-snappy lz4 zstandard`), then
for each client starts `ci/capture/fake_broker.py` on a free port of
127.0.0.1, runs the client's flows against it (each under `timeout`), stops it,
and regenerates this README with `ci/capture/make_readme.py` (which decodes
every frame again and fails on one that does not decode).

The fake broker (`ci/capture/fake_broker.py`, codec in
`ci/capture/kafka_codec.py`, driven by Apache Kafka's message JSON definitions
as shipped in the kafka-python package) is a single node (id 1) that:

- answers ApiVersions like an Apache Kafka 3.7 broker: ApiVersions 0-3 (a v4
  request gets the v0-layout UNSUPPORTED_VERSION answer and the client retries
  with v3), Produce 0-10, Fetch 0-16, ListOffsets 0-8, Metadata 0-12,
  OffsetCommit 0-9, OffsetFetch 0-9, FindCoordinator 0-4, JoinGroup 0-9,
  Heartbeat 0-4, LeaveGroup 0-5, SyncGroup 0-5, InitProducerId 0-4,
  OffsetForLeaderEpoch 0-4, DescribeCluster 0-1, and the rest of 3.7's client
  APIs. It does not advertise ConsumerGroupHeartbeat (KIP-848) nor the KIP-714
  telemetry APIs, so clients do not send them;
- has topic `golden` with 2 partitions (any asked-for topic exists), itself as
  leader, coordinator and controller, topic ids from v10;
- stores produced batches and serves them back on Fetch (consumers read real
  compressed batches), long-polls empty fetches, creates no fetch sessions;
- runs a one-member consumer group: JoinGroup (MEMBER_ID_REQUIRED first for
  v4+), the member is leader, SyncGroup returns the leader's assignment,
  OffsetCommit/OffsetFetch keep offsets, Heartbeat/LeaveGroup succeed;
- hands out producer ids (InitProducerId) for idempotent producers.

Flows run per client:

- **kcat**: `-L` (all topics) and `-L -t golden`; `-P -K: -z CODEC` for
  none/gzip/snappy/lz4/zstd (3 keyed, compressible messages each), the same
  with `-X enable.idempotence=true` for none and zstd; `-C -o beginning -e`;
  `-C -o end -e`; `-Q -t golden:0:1` (offset for a timestamp); `-G GROUP golden
  -e` (balanced consumer: FindCoordinator, JoinGroup, SyncGroup, OffsetFetch,
  Heartbeat, Fetch, OffsetCommit, LeaveGroup).
- **confluent_kafka** (`ci/capture/clients/confluent_kafka_flows.py`):
  AdminClient `list_topics()` (all, one topic) and `describe_cluster()`
  (librdkafka does that with a brokers-only Metadata request); a
  Producer per codec none/gzip/snappy/lz4/zstd (3 messages, one with a header),
  idempotent Producers (none, zstd); a group Consumer (subscribe, consume to
  EOF, commit, close); an assign()ed Consumer from the beginning.
- **kafka_python** (`ci/capture/clients/kafka_python_flows.py`):
  KafkaAdminClient `list_topics()` and `describe_cluster()`; a KafkaProducer
  per codec None/gzip/snappy/lz4/zstd with `enable_idempotence=False`, and
  idempotent ones (None, zstd); a group KafkaConsumer (consume, commit, close);
  an assign()ed KafkaConsumer with seek_to_beginning and end_offsets.
"""

TEMPLATE_TAIL = r"""
## Things to know

- `confluent_kafka/metadata_v12_all_topics.bin` has **3 trailing bytes**.
  Its body is `00 00 00 00 01 00 00`: librdkafka (2.16, and any version that
  sends Metadata v9+ for all topics) leaves the 4-byte placeholder of the null
  topic array instead of the 1-byte compact null `00` (librdkafka issue #5049,
  fix proposed in PR #5053), then writes AllowAutoTopicCreation=true,
  IncludeTopicAuthorizedOperations=false and an empty tagged-field section. A
  Kafka broker reads topics=null (all topics), false, false, no tagged fields,
  and ignores the `01 00 00` left over. A Strata decoder must likewise accept
  bytes left after a request body, or librdkafka's `list_topics()` breaks.
- kafka-python sends ApiVersions v4 first (`kafka_python/api_versions_v4.bin`);
  a 3.7 broker answers UNSUPPORTED_VERSION in the v0 layout and the client
  retries with v3 (`api_versions_v3.bin`). librdkafka 2.0.2 and 2.16 start at
  v3.
- librdkafka sends JoinGroup v5, SyncGroup v3, Heartbeat v3, LeaveGroup v1 and
  FindCoordinator v2 (its maxima for the classic group protocol) even to a
  broker with higher versions; kafka-python uses the flexible versions.

## Not captured

- Transactions (AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit):
  no flow runs a transactional producer.
- The KIP-848 consumer protocol (ConsumerGroupHeartbeat) and KIP-714 telemetry
  (GetTelemetrySubscriptions, PushTelemetry): not advertised, as on a default
  3.7 broker.
- OffsetForLeaderEpoch: clients send it only after a leader change, which the
  fake never makes.
- Incremental fetch sessions: the fake answers session id 0, so every Fetch is
  a full one (no ForgottenTopicsData).
- Admin operations other than metadata/describe_cluster (CreateTopics,
  DescribeGroups, ListGroups, DescribeConfigs...), SASL, acks=0 producers,
  and the legacy (magic 0/1) message format.
- librdkafka only sends a compressed batch when compression makes it smaller,
  which is why the captured values are repetitive text.
"""


if __name__ == "__main__":
    sys.exit(main())
