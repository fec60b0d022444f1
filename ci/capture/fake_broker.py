#!/usr/bin/env python3
"""A fake single-node Kafka broker that records the request frames it receives.

It answers just well enough (as a Kafka 3.7 broker would) for real clients to
go through their usual flows: ApiVersions, Metadata, Produce, Fetch,
ListOffsets, FindCoordinator, JoinGroup, SyncGroup, Heartbeat, OffsetFetch,
OffsetCommit, LeaveGroup, InitProducerId, OffsetForLeaderEpoch and
DescribeCluster. Produced record batches are kept in memory and served back by
Fetch, so consumers see real (compressed) batches.

Every request frame (the bytes after the 4-byte size prefix, i.e. starting at
the request header) is recorded: the first frame of each distinct
(api, version, label) goes to OUT/<api>_v<version>[_<label>].bin, and every
frame is summarised in the --log file (JSON lines).

Listens on loopback only.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import re
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import uuid as uuidlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_codec import Reader, Schemas, skip_tagged_fields, uvarint  # noqa: E402

NODE_ID = 1
CLUSTER_ID = "c3RyYXRhLWdvbGRlbi0w"  # arbitrary, base64-looking like a real one
NUM_PARTITIONS = 2
API_VERSIONS_KEY = 18

# (min, max) per api key, as advertised by an Apache Kafka 3.7 broker
# (KRaft mode, client listener). ConsumerGroupHeartbeat (68) and the KIP-714
# telemetry APIs (71, 72) are deliberately not advertised.
KAFKA_37_API_VERSIONS = {
    0: (0, 10),   # Produce
    1: (0, 16),   # Fetch
    2: (0, 8),    # ListOffsets
    3: (0, 12),   # Metadata
    8: (0, 9),    # OffsetCommit
    9: (0, 9),    # OffsetFetch
    10: (0, 4),   # FindCoordinator
    11: (0, 9),   # JoinGroup
    12: (0, 4),   # Heartbeat
    13: (0, 5),   # LeaveGroup
    14: (0, 5),   # SyncGroup
    15: (0, 5),   # DescribeGroups
    16: (0, 4),   # ListGroups
    17: (0, 1),   # SaslHandshake
    18: (0, 3),   # ApiVersions
    19: (0, 7),   # CreateTopics
    20: (0, 6),   # DeleteTopics
    21: (0, 2),   # DeleteRecords
    22: (0, 4),   # InitProducerId
    23: (0, 4),   # OffsetForLeaderEpoch
    24: (0, 4),   # AddPartitionsToTxn
    25: (0, 3),   # AddOffsetsToTxn
    26: (0, 3),   # EndTxn
    27: (0, 1),   # WriteTxnMarkers
    28: (0, 3),   # TxnOffsetCommit
    29: (0, 3),   # DescribeAcls
    30: (0, 3),   # CreateAcls
    31: (0, 3),   # DeleteAcls
    32: (0, 4),   # DescribeConfigs
    33: (0, 2),   # AlterConfigs
    34: (0, 2),   # AlterReplicaLogDirs
    35: (0, 4),   # DescribeLogDirs
    36: (0, 2),   # SaslAuthenticate
    37: (0, 3),   # CreatePartitions
    38: (0, 3),   # CreateDelegationToken
    39: (0, 2),   # RenewDelegationToken
    40: (0, 2),   # ExpireDelegationToken
    41: (0, 3),   # DescribeDelegationToken
    42: (0, 2),   # DeleteGroups
    43: (0, 2),   # ElectLeaders
    44: (0, 1),   # IncrementalAlterConfigs
    45: (0, 0),   # AlterPartitionReassignments
    46: (0, 0),   # ListPartitionReassignments
    47: (0, 0),   # OffsetDelete
    48: (0, 1),   # DescribeClientQuotas
    49: (0, 1),   # AlterClientQuotas
    50: (0, 0),   # DescribeUserScramCredentials
    51: (0, 0),   # AlterUserScramCredentials
    55: (0, 1),   # DescribeQuorum
    57: (0, 1),   # UpdateFeatures
    60: (0, 1),   # DescribeCluster
    61: (0, 0),   # DescribeProducers
    64: (0, 0),   # UnregisterBroker
    65: (0, 0),   # DescribeTransactions
    66: (0, 0),   # ListTransactions
}

METADATA_VERSION_LEVEL = 19  # 3.7-IV4

# Kafka error codes used here
NONE = 0
OFFSET_OUT_OF_RANGE = 1
UNSUPPORTED_VERSION = 35
MEMBER_ID_REQUIRED = 79
UNKNOWN_TOPIC_ID = 100

CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def snake(name):
    if name.endswith("Request"):
        name = name[: -len("Request")]
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def topic_uuid(name):
    b = bytearray(hashlib.md5(("strata-golden:" + name).encode()).digest())
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    return bytes(b)


class Topic:
    def __init__(self, name):
        self.name = name
        self.id = topic_uuid(name)
        # per partition: list of (base_offset, last_offset, batch bytes)
        self.logs = [[] for _ in range(NUM_PARTITIONS)]
        self.next_offset = [0] * NUM_PARTITIONS


class Group:
    def __init__(self, gid):
        self.id = gid
        self.generation = 0
        self.members = {}  # member_id -> dict(instance_id, protocols)
        self.leader = ""
        self.protocol = None
        self.protocol_type = "consumer"
        self.assignments = {}
        self.offsets = {}  # (topic, partition) -> (offset, leader_epoch, metadata)


def iter_batches(records):
    """Yields (start, end, magic) for each record batch / message in a records blob."""
    pos = 0
    while pos + 17 <= len(records):
        length = struct.unpack_from(">i", records, pos + 8)[0]
        end = pos + 12 + length
        if length <= 0 or end > len(records):
            break
        yield pos, end, records[pos + 16]
        pos = end


def records_label(records):
    """Label of a produce request's records: codec, idempotent/transactional."""
    if not records:
        return "empty"
    for start, end, magic in iter_batches(records):
        if magic >= 2:
            attrs = struct.unpack_from(">h", records, start + 21)[0]
            pid = struct.unpack_from(">q", records, start + 43)[0]
            label = CODECS.get(attrs & 7, "codec%d" % (attrs & 7))
            if attrs & 0x10:
                label += "_transactional"
            elif pid >= 0:
                label += "_idempotent"
            return label
        # legacy message set: offset(8) size(4) crc(4) magic(1) attributes(1)
        attrs = records[start + 17]
        return CODECS.get(attrs & 7, "codec%d" % (attrs & 7)) + "_magic%d" % magic
    return "unparsed"


class Broker:
    def __init__(self, args):
        self.args = args
        self.schemas = Schemas(args.schema_dir)
        self.lock = threading.RLock()
        self.topics = {}
        for t in args.topic:
            self.topic(t)
        self.groups = {}
        self.next_pid = 1000
        self.member_seq = 0
        self.seen = set()
        self.port = None
        os.makedirs(args.out, exist_ok=True)
        self.log = open(args.log, "a", encoding="utf-8") if args.log else None

    # ------------------------------------------------------------ state
    def topic(self, name):
        t = self.topics.get(name)
        if t is None:
            t = self.topics[name] = Topic(name)
        return t

    def topic_by_id(self, tid):
        for t in self.topics.values():
            if t.id == bytes(tid):
                return t
        return None

    def group(self, gid):
        g = self.groups.get(gid)
        if g is None:
            g = self.groups[gid] = Group(gid)
        return g

    def broker_entry(self, api):
        if api == "describe_cluster":
            return {"BrokerId": NODE_ID, "Host": self.args.host, "Port": self.port, "Rack": None}
        return {"NodeId": NODE_ID, "Host": self.args.host, "Port": self.port, "Rack": None}

    # ------------------------------------------------------------ recording
    def record(self, conn_id, frame, api_key, version, corr, client_id, api, label, note=None):
        name = f"{api}_v{version}" + (f"_{label}" if label else "")
        path = os.path.join(self.args.out, name + ".bin")
        with self.lock:
            first = name not in self.seen and not (self.args.keep_existing and os.path.exists(path))
            if first:
                self.seen.add(name)
                with open(path, "wb") as f:
                    f.write(frame)
            if self.log:
                self.log.write(json.dumps({
                    "t": round(time.time(), 3), "conn": conn_id, "api_key": api_key,
                    "api": api, "version": version, "corr": corr, "client_id": client_id,
                    "label": label, "size": len(frame), "saved": name + ".bin" if first else None,
                    "note": note,
                }) + "\n")
                self.log.flush()

    # ------------------------------------------------------------ dispatch
    def handle_frame(self, conn_id, frame):
        """Returns the response bytes (without size prefix), or None for no response."""
        r = Reader(frame)
        api_key = r.fmt(">h")
        version = r.fmt(">h")
        corr = r.fmt(">i")
        n = r.fmt(">h")
        client_id = None if n < 0 else r.take(n).decode("utf-8", "replace")
        req_schema = self.schemas.requests.get(api_key)
        api = snake(req_schema.name) if req_schema else f"api{api_key}"

        if api_key == API_VERSIONS_KEY and version > KAFKA_37_API_VERSIONS[API_VERSIONS_KEY][1]:
            # Unsupported ApiVersions version: answer in v0 layout, as Kafka does.
            self.record(conn_id, frame, api_key, version, corr, client_id, api, None,
                        note="unsupported version, answered v0 UNSUPPORTED_VERSION")
            lo, hi = KAFKA_37_API_VERSIONS[API_VERSIONS_KEY]
            body = struct.pack(">hi", UNSUPPORTED_VERSION, 1) + struct.pack(">hhh", API_VERSIONS_KEY, lo, hi)
            return struct.pack(">i", corr) + body

        if req_schema is None:
            self.record(conn_id, frame, api_key, version, corr, client_id, api, "undecoded",
                        note="unknown api key")
            raise ConnectionError(f"unknown api key {api_key}")

        flexible = req_schema.is_flexible(version)
        try:
            if flexible:
                skip_tagged_fields(r)  # request header v2
            req, end = req_schema.decode(frame, version, r.pos)
        except Exception as e:  # record anyway, then drop the connection
            self.record(conn_id, frame, api_key, version, corr, client_id, api, "undecoded",
                        note=f"decode error: {e}")
            raise

        label = self.label(api, version, req)
        note = None
        if end != len(frame):
            # Kafka ignores bytes after the request body; so do we, but say so.
            note = f"{len(frame) - end} trailing bytes after the body: {frame[end:].hex()}"
        self.record(conn_id, frame, api_key, version, corr, client_id, api, label, note=note)
        ctx = {"api": api, "version": version, "client_id": client_id or "", "conn": conn_id}
        handler = getattr(self, "h_" + api, None)
        if handler is None:
            resp = {}
            sys.stderr.write(f"[fake] no handler for {api} v{version}, answering defaults\n")
        else:
            with self.lock:
                resp = handler(req, ctx)
        if resp is None:  # e.g. acks=0 produce
            return None
        if api == "fetch" and ctx.get("wait"):
            time.sleep(ctx["wait"])
        resp_schema = self.schemas.responses[api_key]
        body = resp_schema.encode(resp, version)
        header = struct.pack(">i", corr)
        if resp_schema.is_flexible(version) and api_key != API_VERSIONS_KEY:
            header += uvarint(0)  # response header v1: empty tagged fields
        return header + body

    def label(self, api, version, req):
        if api == "produce":
            labels = []
            for td in req.get("TopicData") or []:
                for pd in td.get("PartitionData") or []:
                    labels.append(records_label(pd.get("Records") or b""))
            label = labels[0] if labels else "empty"
            if req.get("Acks") == 0:
                label += "_acks0"
            return label
        if api == "metadata":
            topics = req.get("Topics")
            if topics is None or (version == 0 and not topics):
                return "all_topics"
            return "topics" if topics else "no_topics"
        if api == "join_group":
            return "new_member" if not req.get("MemberId") else None
        if api == "sync_group":
            return "leader" if req.get("Assignments") else "follower"
        if api == "list_offsets":
            ts = {p.get("Timestamp") for t in req.get("Topics") or [] for p in t.get("Partitions") or []}
            if ts == {-2}:
                return "earliest"
            if ts == {-1}:
                return "latest"
            if ts and all(x >= 0 for x in ts):
                return "timestamp"
            return None
        return None

    # ------------------------------------------------------------ handlers
    def h_api_versions(self, req, ctx):
        return {
            "ErrorCode": NONE,
            "ApiKeys": [{"ApiKey": k, "MinVersion": lo, "MaxVersion": hi}
                        for k, (lo, hi) in sorted(KAFKA_37_API_VERSIONS.items())],
            "ThrottleTimeMs": 0,
            "SupportedFeatures": [{"Name": "metadata.version", "MinVersion": 1,
                                   "MaxVersion": METADATA_VERSION_LEVEL}],
            "FinalizedFeaturesEpoch": 1,
            "FinalizedFeatures": [{"Name": "metadata.version",
                                   "MaxVersionLevel": METADATA_VERSION_LEVEL,
                                   "MinVersionLevel": METADATA_VERSION_LEVEL}],
        }

    def h_metadata(self, req, ctx):
        v = ctx["version"]
        topics = req.get("Topics")
        if topics is None or (v == 0 and not topics):
            wanted = list(self.topics.values())
        else:
            wanted = []
            for t in topics:
                name = t.get("Name")
                if name is None:
                    found = self.topic_by_id(t.get("TopicId") or b"")
                    if found:
                        wanted.append(found)
                    continue
                wanted.append(self.topic(name))  # every asked topic exists (auto-created)
        return {
            "ThrottleTimeMs": 0,
            "Brokers": [self.broker_entry("metadata")],
            "ClusterId": CLUSTER_ID,
            "ControllerId": NODE_ID,
            "Topics": [{
                "ErrorCode": NONE, "Name": t.name, "TopicId": t.id, "IsInternal": False,
                "Partitions": [{
                    "ErrorCode": NONE, "PartitionIndex": p, "LeaderId": NODE_ID, "LeaderEpoch": 0,
                    "ReplicaNodes": [NODE_ID], "IsrNodes": [NODE_ID], "OfflineReplicas": [],
                } for p in range(NUM_PARTITIONS)],
            } for t in wanted],
        }

    def h_describe_cluster(self, req, ctx):
        return {"ThrottleTimeMs": 0, "ErrorCode": NONE, "ErrorMessage": None, "ClusterId": CLUSTER_ID,
                "ControllerId": NODE_ID, "Brokers": [self.broker_entry("describe_cluster")]}

    def h_produce(self, req, ctx):
        out = []
        for td in req.get("TopicData") or []:
            if td.get("Name") is not None:
                t = self.topic(td["Name"])
            else:
                t = self.topic_by_id(td.get("TopicId") or b"")
            parts = []
            for pd in td.get("PartitionData") or []:
                idx = pd["Index"]
                if t is None or not 0 <= idx < NUM_PARTITIONS:
                    parts.append({"Index": idx, "ErrorCode": 3, "BaseOffset": -1})  # UNKNOWN_TOPIC_OR_PARTITION
                    continue
                base = t.next_offset[idx]
                records = pd.get("Records") or b""
                for start, end, magic in iter_batches(records):
                    batch = bytearray(records[start:end])
                    if magic >= 2:
                        count = struct.unpack_from(">i", batch, 23)[0] + 1
                        struct.pack_into(">q", batch, 0, t.next_offset[idx])
                        struct.pack_into(">i", batch, 12, 0)  # partition leader epoch
                        t.logs[idx].append((t.next_offset[idx], t.next_offset[idx] + count - 1, bytes(batch)))
                        t.next_offset[idx] += count
                    else:
                        t.next_offset[idx] += 1  # legacy messages: counted, not served
                parts.append({"Index": idx, "ErrorCode": NONE, "BaseOffset": base,
                              "LogAppendTimeMs": -1, "LogStartOffset": 0, "RecordErrors": [],
                              "ErrorMessage": None})
            out.append({"Name": td.get("Name"), "TopicId": td.get("TopicId"), "PartitionResponses": parts})
        if req.get("Acks") == 0:
            return None
        return {"Responses": out, "ThrottleTimeMs": 0}

    def h_fetch(self, req, ctx):
        v = ctx["version"]
        responses = []
        any_data = False
        for ft in req.get("Topics") or []:
            t = self.topics.get(ft["Topic"]) if v < 13 else self.topic_by_id(ft.get("TopicId") or b"")
            parts = []
            for fp in ft.get("Partitions") or []:
                idx = fp["Partition"]
                p = {"PartitionIndex": idx, "ErrorCode": NONE, "HighWatermark": -1,
                     "LastStableOffset": -1, "LogStartOffset": -1, "AbortedTransactions": None,
                     "PreferredReadReplica": -1, "Records": b""}
                if t is None or not 0 <= idx < NUM_PARTITIONS:
                    p["ErrorCode"] = UNKNOWN_TOPIC_ID if v >= 13 else 3
                    parts.append(p)
                    continue
                hw = t.next_offset[idx]
                off = fp["FetchOffset"]
                p.update(HighWatermark=hw, LastStableOffset=hw, LogStartOffset=0)
                if off > hw or off < 0:
                    p["ErrorCode"] = OFFSET_OUT_OF_RANGE
                else:
                    limit = max(fp.get("PartitionMaxBytes") or 0, 1)
                    data = bytearray()
                    for base, last, batch in t.logs[idx]:
                        if last >= off:
                            if data and len(data) + len(batch) > limit:
                                break
                            data += batch
                    if data:
                        any_data = True
                    p["Records"] = bytes(data)
                parts.append(p)
            responses.append({"Topic": ft.get("Topic"), "TopicId": ft.get("TopicId"), "Partitions": parts})
        if not any_data:
            # long poll: a real broker waits up to MaxWaitMs when there is nothing to return
            ctx["wait"] = min(max(req.get("MaxWaitMs", 0), 0), 1000) / 1000.0
        return {"ThrottleTimeMs": 0, "ErrorCode": NONE, "SessionId": 0, "Responses": responses}

    def h_list_offsets(self, req, ctx):
        v = ctx["version"]
        topics = []
        for lt in req.get("Topics") or []:
            t = self.topic(lt["Name"])
            parts = []
            for lp in lt.get("Partitions") or []:
                idx = lp["PartitionIndex"]
                ts = lp["Timestamp"]
                end = t.next_offset[idx] if 0 <= idx < NUM_PARTITIONS else 0
                if ts == -1:        # latest
                    off = end
                elif ts == -3:      # max timestamp
                    off = end - 1 if end else -1
                elif ts in (-2, -4):  # earliest, earliest local
                    off = 0
                elif ts == -5:      # latest tiered
                    off = -1
                else:               # by timestamp: our logs have no index, answer the start
                    off = 0 if end else -1
                p = {"PartitionIndex": idx, "ErrorCode": NONE, "Timestamp": -1, "Offset": off,
                     "LeaderEpoch": 0}
                if v == 0:
                    p["OldStyleOffsets"] = [off] if off >= 0 else []
                parts.append(p)
            topics.append({"Name": lt["Name"], "Partitions": parts})
        return {"ThrottleTimeMs": 0, "Topics": topics}

    def h_offset_for_leader_epoch(self, req, ctx):
        topics = []
        for ot in req.get("Topics") or []:
            t = self.topic(ot["Topic"])
            topics.append({"Topic": ot["Topic"], "Partitions": [
                {"ErrorCode": NONE, "Partition": op["Partition"], "LeaderEpoch": 0,
                 "EndOffset": t.next_offset[op["Partition"]] if 0 <= op["Partition"] < NUM_PARTITIONS else -1}
                for op in ot.get("Partitions") or []]})
        return {"ThrottleTimeMs": 0, "Topics": topics}

    def h_find_coordinator(self, req, ctx):
        if ctx["version"] >= 4:
            return {"ThrottleTimeMs": 0, "Coordinators": [
                {"Key": k, "NodeId": NODE_ID, "Host": self.args.host, "Port": self.port,
                 "ErrorCode": NONE, "ErrorMessage": None} for k in req.get("CoordinatorKeys") or []]}
        return {"ThrottleTimeMs": 0, "ErrorCode": NONE, "ErrorMessage": None,
                "NodeId": NODE_ID, "Host": self.args.host, "Port": self.port}

    def new_member_id(self, client_id):
        self.member_seq += 1
        return f"{client_id}-{uuidlib.UUID(int=self.member_seq, version=4)}"

    def h_join_group(self, req, ctx):
        v = ctx["version"]
        g = self.group(req["GroupId"])
        member_id = req.get("MemberId") or ""
        if not member_id:
            member_id = self.new_member_id(ctx["client_id"])
            if v >= 4:  # KIP-394: first join only hands out a member id
                return {"ThrottleTimeMs": 0, "ErrorCode": MEMBER_ID_REQUIRED, "GenerationId": -1,
                        "ProtocolType": None, "ProtocolName": None if v >= 7 else "",
                        "Leader": "", "SkipAssignment": False, "MemberId": member_id, "Members": []}
        protocols = req.get("Protocols") or []
        if not protocols:
            return {"ErrorCode": 23, "GenerationId": -1, "ProtocolName": "", "Leader": "",
                    "MemberId": member_id}  # INCONSISTENT_GROUP_PROTOCOL
        # one member at a time: the joining member replaces any previous one and leads
        g.members = {member_id: {"instance": req.get("GroupInstanceId"), "protocols": protocols}}
        g.generation += 1
        g.leader = member_id
        g.protocol = protocols[0]["Name"]
        g.protocol_type = req.get("ProtocolType") or "consumer"
        g.assignments = {}
        return {
            "ThrottleTimeMs": 0, "ErrorCode": NONE, "GenerationId": g.generation,
            "ProtocolType": g.protocol_type, "ProtocolName": g.protocol, "Leader": g.leader,
            "SkipAssignment": False, "MemberId": member_id,
            "Members": [{"MemberId": member_id, "GroupInstanceId": req.get("GroupInstanceId"),
                         "Metadata": protocols[0]["Metadata"]}],
        }

    def h_sync_group(self, req, ctx):
        g = self.group(req["GroupId"])
        for a in req.get("Assignments") or []:
            g.assignments[a["MemberId"]] = a["Assignment"]
        return {"ThrottleTimeMs": 0, "ErrorCode": NONE, "ProtocolType": g.protocol_type,
                "ProtocolName": g.protocol, "Assignment": g.assignments.get(req["MemberId"], b"")}

    def h_heartbeat(self, req, ctx):
        return {"ThrottleTimeMs": 0, "ErrorCode": NONE}

    def h_leave_group(self, req, ctx):
        g = self.group(req["GroupId"])
        members = req.get("Members")
        if ctx["version"] < 3:
            g.members.pop(req.get("MemberId"), None)
            return {"ThrottleTimeMs": 0, "ErrorCode": NONE}
        out = []
        for m in members or []:
            g.members.pop(m["MemberId"], None)
            out.append({"MemberId": m["MemberId"], "GroupInstanceId": m.get("GroupInstanceId"),
                        "ErrorCode": NONE})
        return {"ThrottleTimeMs": 0, "ErrorCode": NONE, "Members": out}

    def h_offset_commit(self, req, ctx):
        g = self.group(req["GroupId"])
        topics = []
        for ct in req.get("Topics") or []:
            name = ct.get("Name")
            if name is None:
                t = self.topic_by_id(ct.get("TopicId") or b"")
                name = t.name if t else "?"
            parts = []
            for cp in ct.get("Partitions") or []:
                g.offsets[(name, cp["PartitionIndex"])] = (
                    cp["CommittedOffset"], cp.get("CommittedLeaderEpoch", -1), cp.get("CommittedMetadata"))
                parts.append({"PartitionIndex": cp["PartitionIndex"], "ErrorCode": NONE})
            topics.append({"Name": ct.get("Name"), "TopicId": ct.get("TopicId"), "Partitions": parts})
        return {"ThrottleTimeMs": 0, "Topics": topics}

    def _fetched_offsets(self, g, topics):
        if topics is None:  # all committed offsets of the group
            names = sorted({k[0] for k in g.offsets})
            topics = [{"Name": n, "PartitionIndexes": sorted(p for (tn, p) in g.offsets if tn == n)}
                      for n in names]
        out = []
        for ft in topics:
            name = ft.get("Name")
            parts = []
            for idx in ft.get("PartitionIndexes") or []:
                off, epoch, meta = g.offsets.get((name, idx), (-1, -1, ""))
                parts.append({"PartitionIndex": idx, "CommittedOffset": off,
                              "CommittedLeaderEpoch": epoch, "Metadata": meta if meta is not None else "",
                              "ErrorCode": NONE})
            out.append({"Name": name, "TopicId": ft.get("TopicId"), "Partitions": parts})
        return out

    def h_offset_fetch(self, req, ctx):
        if ctx["version"] >= 8:
            groups = []
            for rg in req.get("Groups") or []:
                g = self.group(rg["GroupId"])
                groups.append({"GroupId": rg["GroupId"], "Topics": self._fetched_offsets(g, rg.get("Topics")),
                               "ErrorCode": NONE})
            return {"ThrottleTimeMs": 0, "Groups": groups}
        g = self.group(req["GroupId"])
        return {"ThrottleTimeMs": 0, "Topics": self._fetched_offsets(g, req.get("Topics")), "ErrorCode": NONE}

    def h_init_producer_id(self, req, ctx):
        pid = req.get("ProducerId", -1)
        if pid is not None and pid >= 0:
            return {"ThrottleTimeMs": 0, "ErrorCode": NONE, "ProducerId": pid,
                    "ProducerEpoch": req.get("ProducerEpoch", -1) + 1}
        self.next_pid += 1
        return {"ThrottleTimeMs": 0, "ErrorCode": NONE, "ProducerId": self.next_pid, "ProducerEpoch": 0}


class Handler(socketserver.BaseRequestHandler):
    counter = 0

    def handle(self):
        broker = self.server.broker
        with broker.lock:
            Handler.counter += 1
            conn_id = Handler.counter
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(broker.args.idle_timeout)
        try:
            while True:
                head = recv_exact(sock, 4)
                if head is None:
                    return
                (size,) = struct.unpack(">i", head)
                if size < 8 or size > 100 * 1024 * 1024:
                    return
                frame = recv_exact(sock, size)
                if frame is None:
                    return
                resp = broker.handle_frame(conn_id, frame)
                if resp is not None:
                    sock.sendall(struct.pack(">i", len(resp)) + resp)
        except (ConnectionError, socket.timeout, OSError):
            return
        except Exception as e:  # keep serving other connections
            sys.stderr.write(f"[fake] conn {conn_id}: {type(e).__name__}: {e}\n")
            return


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1", help="loopback address to listen on and advertise")
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    ap.add_argument("--port-file", help="write the chosen port here once listening")
    ap.add_argument("--out", required=True, help="directory for <api>_v<N>[_<label>].bin files")
    ap.add_argument("--log", help="append a JSON line per received frame here")
    ap.add_argument("--topic", action="append", default=["golden"], help="pre-created topic(s)")
    ap.add_argument("--schema-dir", default=None, help="directory of Kafka's message JSON definitions")
    ap.add_argument("--keep-existing", action="store_true", help="do not overwrite existing .bin files")
    ap.add_argument("--idle-timeout", type=float, default=120.0)
    ap.add_argument("--max-lifetime", type=float, default=900.0, help="exit after this many seconds")
    args = ap.parse_args()

    if not ipaddress.ip_address(args.host).is_loopback:
        ap.error("--host must be a loopback address")

    broker = Broker(args)
    server = Server((args.host, args.port), Handler)
    server.broker = broker
    broker.port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{broker.port}\n")
        os.replace(tmp, args.port_file)
    sys.stderr.write(f"[fake] listening on {args.host}:{broker.port}, recording to {args.out}\n")

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Timer(args.max_lifetime, stop).start() if args.max_lifetime > 0 else None
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    sys.stderr.write("[fake] stopped\n")
    os._exit(0)


if __name__ == "__main__":
    main()
