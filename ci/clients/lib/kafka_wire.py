"""A tiny hand-written Kafka wire client: just enough to send well-formed and
deliberately malformed requests over a raw socket and read the answers.

Only non-flexible versions are spoken (request header v1, response header v0):
ApiVersions v0, Metadata v1 and v4, Produce v3 (record batches v2, built
here byte by byte) and ListOffsets v1. Written from the Kafka protocol spec,
independent of the broker's own codec, so it checks the broker rather than
agreeing with it.
"""

from __future__ import annotations

import socket
import struct
import time

API_PRODUCE = 0
API_LIST_OFFSETS = 2
API_METADATA = 3
API_VERSIONS = 18

CORRUPT_MESSAGE = 2
INVALID_RECORD = 87

UNSUPPORTED_VERSION = 35


# ---- encoding ---------------------------------------------------------------

def i8(v: int) -> bytes:
    return struct.pack(">b", v)


def i16(v: int) -> bytes:
    return struct.pack(">h", v)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def i64(v: int) -> bytes:
    return struct.pack(">q", v)


def varint(v: int) -> bytes:
    """Zig-zag varint, as record fields use."""
    v = (v << 1) ^ (v >> 63)
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def crc32c(data: bytes) -> int:
    # kafka-python's own pure-Python CRC-32C (not the broker's code)
    from kafka.record.util import calc_crc32c
    return calc_crc32c(data)


def record_batch(values: list[bytes], base_timestamp: int = 1_700_000_000_000, crc_delta: int = 0,
                 magic: int = 2, claimed_count: int | None = None) -> bytes:
    """An uncompressed v2 record batch of `values` (no keys, no headers).
    crc_delta != 0 corrupts the CRC; claimed_count lies about the record count."""
    records = b""
    for i, v in enumerate(values):
        body = i8(0) + varint(i) + varint(i) + varint(-1) + varint(len(v)) + v + varint(0)
        records += varint(len(body)) + body
    after_crc = (i16(0) + i32(len(values) - 1) + i64(base_timestamp) + i64(base_timestamp + len(values) - 1)
                 + i64(-1) + i16(-1) + i32(-1) + i32(len(values) if claimed_count is None else claimed_count) + records)
    crc = (crc32c(after_crc) + crc_delta) & 0xFFFFFFFF
    tail = i32(0) + i8(magic) + struct.pack(">I", crc) + after_crc  # leader epoch, magic, crc, rest
    return i64(0) + i32(len(tail)) + tail


def produce_v3_body(topic: str, partition: int, batch: bytes, acks: int = -1, timeout_ms: int = 10000) -> bytes:
    return (string(None) + i16(acks) + i32(timeout_ms)
            + array([string(topic) + array([i32(partition) + i32(len(batch)) + batch])]))


def list_offsets_v1_body(topic: str, partition: int, timestamp: int) -> bytes:
    return i32(-1) + array([string(topic) + array([i32(partition) + i64(timestamp)])])


def string(s: str | None) -> bytes:
    if s is None:
        return i16(-1)
    b = s.encode()
    return i16(len(b)) + b


def array(items: list[bytes] | None) -> bytes:
    if items is None:
        return i32(-1)
    return i32(len(items)) + b"".join(items)


def request(api_key: int, version: int, correlation_id: int, body: bytes = b"", client_id: str | None = "strata-ci") -> bytes:
    """A whole request frame: size prefix, header v1, body."""
    payload = i16(api_key) + i16(version) + i32(correlation_id) + string(client_id) + body
    return i32(len(payload)) + payload


def metadata_v1_body(topics: list[str] | None = None) -> bytes:
    return array(None if topics is None else [string(t) for t in topics])


def metadata_v4_body(topics: list[str] | None, allow_auto_create: bool) -> bytes:
    return metadata_v1_body(topics) + i8(1 if allow_auto_create else 0)


# ---- decoding ---------------------------------------------------------------

class Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"truncated response: want {n} bytes at {self.pos}, have {len(self.data) - self.pos}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def i8(self) -> int:
        return struct.unpack(">b", self.take(1))[0]

    def i16(self) -> int:
        return struct.unpack(">h", self.take(2))[0]

    def i32(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def i64(self) -> int:
        return struct.unpack(">q", self.take(8))[0]

    def string(self) -> str | None:
        n = self.i16()
        if n == -1:
            return None
        return self.take(n).decode()

    def array(self, item) -> list | None:
        n = self.i32()
        if n == -1:
            return None
        if n < 0 or n > len(self.data):
            raise ValueError(f"bad array length {n}")
        return [item(self) for _ in range(n)]

    def at_end(self) -> bool:
        return self.pos == len(self.data)


def parse_api_versions_v0(body: bytes) -> dict:
    r = Reader(body)
    error = r.i16()
    apis = r.array(lambda r: (r.i16(), r.i16(), r.i16()))
    if not r.at_end():
        raise ValueError(f"{len(body) - r.pos} trailing bytes after an ApiVersions v0 response")
    return {"error_code": error, "api_keys": {k: (lo, hi) for k, lo, hi in apis}}


def parse_produce_v3(body: bytes) -> list[dict]:
    r = Reader(body)
    out = []
    for name, parts in r.array(lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i16(), r.i64(), r.i64())))):
        for index, error, base, append_time in parts:
            out.append({"topic": name, "partition": index, "error_code": error, "base_offset": base,
                        "log_append_time": append_time})
    r.i32()  # throttle
    if not r.at_end():
        raise ValueError("trailing bytes after a Produce v3 response")
    return out


def parse_list_offsets_v1(body: bytes) -> list[dict]:
    r = Reader(body)
    out = []
    for name, parts in r.array(lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i16(), r.i64(), r.i64())))):
        for index, error, ts, offset in parts:
            out.append({"topic": name, "partition": index, "error_code": error, "timestamp": ts, "offset": offset})
    if not r.at_end():
        raise ValueError("trailing bytes after a ListOffsets v1 response")
    return out


def parse_metadata(body: bytes, version: int) -> dict:
    """Metadata v1..v4 response body."""
    assert 1 <= version <= 4
    r = Reader(body)
    out = {}
    if version >= 3:
        out["throttle_time_ms"] = r.i32()
    out["brokers"] = r.array(lambda r: {"node_id": r.i32(), "host": r.string(), "port": r.i32(), "rack": r.string()})
    if version >= 2:
        out["cluster_id"] = r.string()
    out["controller_id"] = r.i32()

    def partition(r):
        p = {"error_code": r.i16(), "partition": r.i32(), "leader": r.i32(),
             "replicas": r.array(Reader.i32), "isr": r.array(Reader.i32)}
        return p

    def topic(r):
        return {"error_code": r.i16(), "name": r.string(), "is_internal": r.i8() != 0,
                "partitions": r.array(partition)}

    out["topics"] = r.array(topic)
    if not r.at_end():
        raise ValueError(f"{len(body) - r.pos} trailing bytes after a Metadata v{version} response")
    return out


# ---- socket helpers ---------------------------------------------------------

def connect(host: str, port: int, timeout: float = 10.0) -> socket.socket:
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def recv_response(sock: socket.socket, correlation_id: int) -> bytes:
    """Reads one response frame; checks the correlation id; returns the body."""
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    if size < 4:
        raise ValueError(f"response size {size}")
    frame = recv_exact(sock, size)
    got = struct.unpack(">i", frame[:4])[0]
    if got != correlation_id:
        raise ValueError(f"correlation id {got}, expected {correlation_id}")
    return frame[4:]


def roundtrip(sock: socket.socket, api_key: int, version: int, correlation_id: int, body: bytes = b"") -> bytes:
    sock.sendall(request(api_key, version, correlation_id, body))
    return recv_response(sock, correlation_id)


def closed_by_peer(sock: socket.socket, timeout: float = 5.0) -> bool:
    """True if the peer closes (EOF or reset) within `timeout` without sending
    anything; False if it stays open that long. Raises if it sends bytes."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    if data == b"":
        return True
    raise AssertionError(f"expected the broker to close the connection, it sent {len(data)} bytes: {data[:64]!r}")


def metadata(host: str, port: int, topics: list[str] | None = None, version: int = 1, allow_auto_create: bool = False) -> dict:
    with connect(host, port) as s:
        body = metadata_v1_body(topics) if version < 4 else metadata_v4_body(topics, allow_auto_create)
        return parse_metadata(roundtrip(s, API_METADATA, version, 4242, body), version)


def ensure_topic(host: str, port: int, topic: str, timeout: float = 20.0) -> dict:
    """Asks for `topic` with auto-creation allowed (Metadata v4) until it has
    partitions, all without error. Returns the topic's metadata."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        md = metadata(host, port, [topic], version=4, allow_auto_create=True)
        t = [t for t in md["topics"] if t["name"] == topic]
        last = t
        if t and t[0]["error_code"] == 0 and t[0]["partitions"] and all(p["error_code"] == 0 for p in t[0]["partitions"]):
            return t[0]
        time.sleep(0.1)
    raise TimeoutError(f"topic {topic} not ready after {timeout}s: {last}")


# ---- consumer groups (non-flexible versions) -----------------------------------

API_OFFSET_COMMIT = 8
API_OFFSET_FETCH = 9
API_FIND_COORDINATOR = 10
API_JOIN_GROUP = 11
API_HEARTBEAT = 12
API_LEAVE_GROUP = 13
API_SYNC_GROUP = 14
API_DESCRIBE_GROUPS = 15

ILLEGAL_GENERATION = 22
INCONSISTENT_GROUP_PROTOCOL = 23
UNKNOWN_MEMBER_ID = 25
INVALID_SESSION_TIMEOUT = 26
REBALANCE_IN_PROGRESS = 27


def nbytes(b: bytes | None) -> bytes:
    return i32(-1) if b is None else i32(len(b)) + b


def consumer_subscription(topics: list[str]) -> bytes:
    """ConsumerProtocolSubscription v0: version, topics, user data (null)."""
    return i16(0) + array([string(t) for t in topics]) + nbytes(None)


def consumer_assignment(parts: dict[str, list[int]]) -> bytes:
    """ConsumerProtocolAssignment v0: version, [topic, [partition]], user data (null)."""
    return i16(0) + array([string(t) + array([i32(p) for p in ps]) for t, ps in parts.items()]) + nbytes(None)


def parse_consumer_assignment(b: bytes) -> dict[str, list[int]]:
    if not b:
        return {}
    r = Reader(b)
    r.i16()
    return dict(r.array(lambda r: (r.string(), r.array(Reader.i32))))


class GroupConn:
    """One connection speaking the classic group protocol at fixed, non-flexible
    versions: FindCoordinator v1, JoinGroup v2, SyncGroup v1, Heartbeat v1,
    LeaveGroup v1, OffsetCommit v2, OffsetFetch v1, DescribeGroups v1."""

    def __init__(self, host: str, port: int):
        self.sock = connect(host, port)
        self.cid = 0

    def close(self):
        self.sock.close()

    def call(self, api: int, version: int, body: bytes) -> Reader:
        self.cid += 1
        return Reader(roundtrip(self.sock, api, version, self.cid, body))

    def find_coordinator(self, group: str) -> dict:
        r = self.call(API_FIND_COORDINATOR, 1, string(group) + i8(0))
        return {"throttle": r.i32(), "error_code": r.i16(), "error_message": r.string(), "node_id": r.i32(),
                "host": r.string(), "port": r.i32()}

    def join(self, group: str, member_id: str = "", topics=("t",), session_ms: int = 6000, rebalance_ms: int = 10000,
             protocols=("range",)) -> dict:
        meta = consumer_subscription(list(topics))
        body = (string(group) + i32(session_ms) + i32(rebalance_ms) + string(member_id) + string("consumer")
                + array([string(p) + nbytes(meta) for p in protocols]))
        r = self.call(API_JOIN_GROUP, 2, body)
        out = {"throttle": r.i32(), "error_code": r.i16(), "generation_id": r.i32(), "protocol_name": r.string(),
               "leader": r.string(), "member_id": r.string()}
        out["members"] = r.array(lambda r: (r.string(), r.take(max(0, r.i32()))))
        return out

    def sync(self, group: str, generation: int, member_id: str, assignments: dict[str, bytes]) -> dict:
        body = (string(group) + i32(generation) + string(member_id)
                + array([string(m) + nbytes(a) for m, a in assignments.items()]))
        r = self.call(API_SYNC_GROUP, 1, body)
        out = {"throttle": r.i32(), "error_code": r.i16()}
        n = r.i32()
        out["assignment"] = r.take(n) if n > 0 else b""
        return out

    def heartbeat(self, group: str, generation: int, member_id: str) -> int:
        r = self.call(API_HEARTBEAT, 1, string(group) + i32(generation) + string(member_id))
        r.i32()
        return r.i16()

    def leave(self, group: str, member_id: str) -> int:
        r = self.call(API_LEAVE_GROUP, 1, string(group) + string(member_id))
        r.i32()
        return r.i16()

    def commit(self, group: str, generation: int, member_id: str, offsets: dict[tuple[str, int], int],
               metadata: str = "") -> dict[tuple[str, int], int]:
        by_topic: dict[str, list] = {}
        for (t, p), o in offsets.items():
            by_topic.setdefault(t, []).append(i32(p) + i64(o) + string(metadata))
        body = (string(group) + i32(generation) + string(member_id) + i64(-1)
                + array([string(t) + array(ps) for t, ps in by_topic.items()]))
        r = self.call(API_OFFSET_COMMIT, 2, body)
        out = {}
        for t, parts in r.array(lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i16())))):
            for p, err in parts:
                out[(t, p)] = err
        return out

    def fetch(self, group: str, parts: list[tuple[str, int]]) -> dict[tuple[str, int], tuple[int, str | None, int]]:
        by_topic: dict[str, list] = {}
        for t, p in parts:
            by_topic.setdefault(t, []).append(i32(p))
        r = self.call(API_OFFSET_FETCH, 1, string(group) + array([string(t) + array(ps) for t, ps in by_topic.items()]))
        out = {}
        for t, ps in r.array(lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i64(), r.string(), r.i16())))):
            for p, o, md, err in ps:
                out[(t, p)] = (o, md, err)
        return out

    def describe(self, group: str) -> dict:
        r = self.call(API_DESCRIBE_GROUPS, 1, array([string(group)]))
        r.i32()

        def member(r):
            return {"member_id": r.string(), "client_id": r.string(), "client_host": r.string(),
                    "metadata": r.take(max(0, r.i32())), "assignment": r.take(max(0, r.i32()))}
        groups = r.array(lambda r: {"error_code": r.i16(), "group_id": r.string(), "state": r.string(),
                                    "protocol_type": r.string(), "protocol": r.string(), "members": r.array(member)})
        return groups[0]
