"""Generic Kafka message codec driven by Kafka's JSON message definitions.

The definitions themselves are not copied into this repository: they are read
at run time from a directory of Apache Kafka's `*Request.json` /
`*Response.json` files (by default the copy that the kafka-python package
ships, see `default_schema_dir`).

Values are plain dicts keyed by Kafka's field names (`"TopicData"`,
`"PartitionIndex"`, ...). Missing fields take their default. Tagged fields are
written only when their key is present in the dict.
"""

from __future__ import annotations

import json
import os
import re
import struct
import uuid as uuidlib

INF = 1 << 30

_COMMENTS = re.compile(r"(?m)^\s*//.*\n?")


def parse_range(spec):
    """'0+', '3-5', '7', 'none' -> (lo, hi) inclusive, or None for 'none'."""
    if spec is None:
        return None
    spec = str(spec).strip()
    if spec == "none":
        return None
    if spec.endswith("+"):
        return (int(spec[:-1]), INF)
    if "-" in spec:
        lo, hi = spec.split("-", 1)
        return (int(lo), int(hi))
    return (int(spec), int(spec))


def in_range(v, rng):
    return rng is not None and rng[0] <= v <= rng[1]


def default_schema_dir():
    env = os.environ.get("KAFKA_MESSAGE_DIR")
    if env:
        return env
    import kafka.protocol.schemas.resources as res  # kafka-python ships Kafka's JSON definitions

    return os.path.dirname(res.__file__)


PRIMS = {
    "bool", "int8", "int16", "int32", "int64", "uint16", "uint32",
    "float64", "string", "bytes", "records", "uuid",
}

_FMT = {"int8": ">b", "int16": ">h", "int32": ">i", "int64": ">q",
        "uint16": ">H", "uint32": ">I", "float64": ">d"}


class Field:
    __slots__ = ("name", "type", "versions", "nullable", "tagged", "tag",
                 "default_raw", "fields", "elem", "is_array", "is_struct")

    def __init__(self, j, common):
        self.name = j["name"]
        self.type = j["type"]
        self.versions = parse_range(j.get("versions"))
        self.nullable = parse_range(j.get("nullableVersions"))
        self.tagged = parse_range(j.get("taggedVersions"))
        self.tag = j.get("tag")
        self.default_raw = j.get("default")
        t = self.type
        self.is_array = t.startswith("[]")
        self.elem = t[2:] if self.is_array else t
        self.is_struct = self.elem not in PRIMS
        sub = j.get("fields")
        if sub is None and self.is_struct:
            sub = common.get(self.elem)
            if sub is None:
                raise ValueError(f"unknown struct type {self.elem} for field {self.name}")
        self.fields = [Field(x, common) for x in sub] if sub is not None else None

    def default(self):
        d = self.default_raw
        if self.is_array:
            return []
        if self.is_struct:
            return {}
        if d == "null":
            return None
        t = self.type
        if t == "bool":
            return str(d).lower() == "true" if d is not None else False
        if t in ("int8", "int16", "int32", "int64", "uint16", "uint32"):
            return int(str(d), 0) if d is not None else 0
        if t == "float64":
            return float(d) if d is not None else 0.0
        if t == "string":
            return d if d is not None else ""
        if t in ("bytes", "records"):
            return b""
        if t == "uuid":
            return b"\x00" * 16
        raise ValueError(t)


class Message:
    def __init__(self, j):
        self.name = j["name"]
        self.api_key = j.get("apiKey")
        self.valid = parse_range(j.get("validVersions"))
        self.flexible = parse_range(j.get("flexibleVersions"))
        common = {s["name"]: s["fields"] for s in j.get("commonStructs", [])}
        self.fields = [Field(x, common) for x in j["fields"]]

    def is_flexible(self, version):
        return in_range(version, self.flexible)

    def encode(self, value, version):
        out = bytearray()
        _enc_struct(out, self.fields, value or {}, version, self.is_flexible(version))
        return bytes(out)

    def decode(self, data, version, pos=0):
        r = Reader(data, pos)
        v = _dec_struct(r, self.fields, version, self.is_flexible(version))
        return v, r.pos


class Schemas:
    def __init__(self, directory=None):
        self.dir = directory or default_schema_dir()
        self._cache = {}
        self.requests = {}   # api_key -> Message
        self.responses = {}
        for fn in sorted(os.listdir(self.dir)):
            if fn.endswith("Request.json") or fn.endswith("Response.json"):
                m = self.load(fn[:-5])
                if m.api_key is None:
                    continue
                if fn.endswith("Request.json"):
                    self.requests[m.api_key] = m
                else:
                    self.responses[m.api_key] = m

    def load(self, name):
        if name not in self._cache:
            with open(os.path.join(self.dir, name + ".json"), encoding="utf-8") as f:
                self._cache[name] = Message(json.loads(_COMMENTS.sub("", f.read())))
        return self._cache[name]


# ---------------------------------------------------------------- primitives

def uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(n):
    return uvarint((n << 1) ^ (n >> 63))


class Reader:
    def __init__(self, data, pos=0):
        self.data = data
        self.pos = pos

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"short read: need {n} at {self.pos} of {len(self.data)}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return bytes(b)

    def fmt(self, f):
        size = struct.calcsize(f)
        return struct.unpack(f, self.take(size))[0]

    def uvarint(self):
        shift = 0
        result = 0
        while True:
            b = self.take(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")

    def varint(self):
        u = self.uvarint()
        return (u >> 1) ^ -(u & 1)


def _as_uuid_bytes(v):
    if v is None:
        return b"\x00" * 16
    if isinstance(v, uuidlib.UUID):
        return v.bytes
    if isinstance(v, str):
        return uuidlib.UUID(v).bytes
    return bytes(v)


def _enc_prim(out, t, v, nullable, flex):
    if t == "bool":
        out += b"\x01" if v else b"\x00"
    elif t in _FMT:
        out += struct.pack(_FMT[t], v)
    elif t == "uuid":
        out += _as_uuid_bytes(v)
    elif t == "string":
        if v is None:
            if not nullable:
                raise ValueError("null for non-nullable string")
            out += uvarint(0) if flex else struct.pack(">h", -1)
        else:
            b = v.encode("utf-8")
            out += uvarint(len(b) + 1) if flex else struct.pack(">h", len(b))
            out += b
    elif t in ("bytes", "records"):
        if v is None:
            if not nullable:
                raise ValueError("null for non-nullable bytes")
            out += uvarint(0) if flex else struct.pack(">i", -1)
        else:
            b = bytes(v)
            out += uvarint(len(b) + 1) if flex else struct.pack(">i", len(b))
            out += b
    else:
        raise ValueError(t)


def _dec_prim(r, t, flex):
    if t == "bool":
        return r.take(1) != b"\x00"
    if t in _FMT:
        return r.fmt(_FMT[t])
    if t == "uuid":
        return r.take(16)
    if t == "string":
        n = (r.uvarint() - 1) if flex else r.fmt(">h")
        return None if n < 0 else r.take(n).decode("utf-8")
    if t in ("bytes", "records"):
        n = (r.uvarint() - 1) if flex else r.fmt(">i")
        return None if n < 0 else r.take(n)
    raise ValueError(t)


def _enc_value(out, f, v, version, flex):
    nullable = in_range(version, f.nullable)
    if f.is_array:
        if v is None:
            if not nullable:
                raise ValueError(f"null for non-nullable array {f.name}")
            out += uvarint(0) if flex else struct.pack(">i", -1)
            return
        out += uvarint(len(v) + 1) if flex else struct.pack(">i", len(v))
        for e in v:
            if f.is_struct:
                _enc_struct(out, f.fields, e, version, flex)
            else:
                _enc_prim(out, f.elem, e, False, flex)
    elif f.is_struct:
        if nullable:
            if v is None:
                out += struct.pack(">b", -1)
                return
            out += struct.pack(">b", 1)
        _enc_struct(out, f.fields, v or {}, version, flex)
    else:
        _enc_prim(out, f.type, v, nullable, flex)


def _dec_value(r, f, version, flex):
    if f.is_array:
        n = (r.uvarint() - 1) if flex else r.fmt(">i")
        if n < 0:
            return None
        if f.is_struct:
            return [_dec_struct(r, f.fields, version, flex) for _ in range(n)]
        return [_dec_prim(r, f.elem, flex) for _ in range(n)]
    if f.is_struct:
        if in_range(version, f.nullable):
            if r.fmt(">b") < 0:
                return None
        return _dec_struct(r, f.fields, version, flex)
    return _dec_prim(r, f.type, flex)


def _enc_struct(out, fields, value, version, flex):
    tagged = []
    for f in fields:
        if not in_range(version, f.versions):
            continue
        if flex and in_range(version, f.tagged):
            if f.name in value:
                tagged.append(f)
            continue
        v = value[f.name] if f.name in value else f.default()
        _enc_value(out, f, v, version, flex)
    if flex:
        tagged.sort(key=lambda f: f.tag)
        out += uvarint(len(tagged))
        for f in tagged:
            body = bytearray()
            _enc_value(body, f, value[f.name], version, flex)
            out += uvarint(f.tag) + uvarint(len(body)) + body


def _dec_struct(r, fields, version, flex):
    value = {}
    by_tag = {}
    for f in fields:
        if not in_range(version, f.versions):
            continue
        if flex and in_range(version, f.tagged):
            by_tag[f.tag] = f
            continue
        value[f.name] = _dec_value(r, f, version, flex)
    if flex:
        for _ in range(r.uvarint()):
            tag = r.uvarint()
            size = r.uvarint()
            raw = r.take(size)
            f = by_tag.get(tag)
            if f is None:
                value.setdefault("_unknown_tags", {})[tag] = raw
            else:
                value[f.name] = _dec_value(Reader(raw), f, version, flex)
    return value


def skip_tagged_fields(r):
    for _ in range(r.uvarint()):
        r.uvarint()
        r.take(r.uvarint())
