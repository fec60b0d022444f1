"""Bad input over a real socket. Each case sends one bad frame on its own
connection and checks what Kafka does (close, or answer and keep the
connection), then that the broker still serves a fresh connection."""

from __future__ import annotations

import random
import struct

import pytest

import kafka_wire as kw

MAX_REQUEST_BYTES = 1 << 20


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    from conftest import require_own_brokers
    from strata_broker import Broker

    require_own_brokers()
    b = Broker(tmp_path_factory.mktemp("bad-input") / "data", args=["--max-request-bytes", str(MAX_REQUEST_BYTES)],
               name="bad-input").start()
    yield b
    alive = b.alive()
    b.stop()
    assert alive, f"the broker died during the bad-input tests; log tail:\n{b.log_tail()}"


def assert_still_serves(b):
    """A fresh connection gets a well-formed Metadata v1 answer naming the broker."""
    assert b.alive(), f"broker process exited:\n{b.log_tail()}"
    md = kw.metadata(b.host, b.port, None, version=1)
    assert [(x["host"], x["port"]) for x in md["brokers"]] == [("127.0.0.1", b.port)], md
    assert md["controller_id"] == md["brokers"][0]["node_id"], md


def send_and_expect_close(b, data: bytes, what: str):
    with kw.connect(b.host, b.port) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return  # closed before we finished sending: that is a close too
        assert kw.closed_by_peer(s, timeout=5.0), f"{what}: the broker kept the connection open (Kafka closes it)"


def test_garbage_with_valid_size_prefix(target):
    rng = random.Random(7)
    for n in (1, 7, 64, 4096):
        junk = bytes(rng.randrange(256) for _ in range(n))
        # an api key no Kafka has (0x7f..) so the junk cannot parse as a real request by chance
        junk = b"\x7f\xf0" + junk[2:] if n >= 2 else junk
        send_and_expect_close(target, struct.pack(">i", len(junk)) + junk, f"{n} garbage bytes")
        assert_still_serves(target)


def test_truncated_request_body(target):
    # Metadata v1 whose topics array claims 1000 entries but has none
    frame = kw.request(kw.API_METADATA, 1, 1, kw.i32(1000))
    send_and_expect_close(target, frame, "truncated Metadata body")
    assert_still_serves(target)
    # header whose client id length runs past the frame
    payload = kw.i16(kw.API_METADATA) + kw.i16(1) + kw.i32(2) + kw.i16(5000) + b"abc"
    send_and_expect_close(target, kw.i32(len(payload)) + payload, "client id past the frame")
    assert_still_serves(target)


def test_frame_larger_than_max_request_bytes(target):
    # only the size prefix is sent: the broker must refuse before reading the body
    for size in (MAX_REQUEST_BYTES + 1, 0x7FFFFFFF):
        send_and_expect_close(target, struct.pack(">i", size), f"size prefix {size}")
        assert_still_serves(target)


def test_negative_and_zero_size(target):
    for size in (-1, -0x80000000, 0):
        send_and_expect_close(target, struct.pack(">i", size) + b"\x00" * 16, f"size prefix {size}")
        assert_still_serves(target)


def test_unknown_api_key(target):
    for key in (1000, 32767, -1):
        send_and_expect_close(target, kw.request(key, 0, 9, b""), f"api key {key}")
        assert_still_serves(target)


def test_api_versions_unknown_version_answers_v0_and_keeps_connection(target):
    with kw.connect(target.host, target.port) as s:
        # v99 request: the body is whatever a v99 client might send
        body = kw.roundtrip(s, kw.API_VERSIONS, 99, 77, b"\x00\x01\x02")
        resp = kw.parse_api_versions_v0(body)
        assert resp["error_code"] == kw.UNSUPPORTED_VERSION, resp
        apis = resp["api_keys"]
        assert kw.API_VERSIONS in apis and apis[kw.API_VERSIONS][0] == 0, apis
        assert kw.API_METADATA in apis and apis[kw.API_METADATA][0] <= 1 <= apis[kw.API_METADATA][1], apis
        # the same connection still works: ApiVersions v0, then Metadata v1
        ok = kw.parse_api_versions_v0(kw.roundtrip(s, kw.API_VERSIONS, 0, 78))
        assert ok["error_code"] == 0 and ok["api_keys"] == apis, ok
        md = kw.parse_metadata(kw.roundtrip(s, kw.API_METADATA, 1, 79, kw.metadata_v1_body(None)), 1)
        assert md["brokers"][0]["port"] == target.port
    assert_still_serves(target)


def test_metadata_unsupported_version_closes(target):
    with kw.connect(target.host, target.port) as s:
        ok = kw.parse_api_versions_v0(kw.roundtrip(s, kw.API_VERSIONS, 0, 1))
        hi = ok["api_keys"][kw.API_METADATA][1]
    for version in (hi + 1, 99, -1):
        send_and_expect_close(target, kw.request(kw.API_METADATA, version, 5, kw.metadata_v1_body(None)),
                              f"Metadata v{version}")
        assert_still_serves(target)


def test_pipelined_requests_answered_in_order(target):
    """Not bad input, but the other half of framing: many requests written at
    once come back one answer each, in order."""
    with kw.connect(target.host, target.port) as s:
        frames = b"".join(kw.request(kw.API_METADATA if i % 2 else kw.API_VERSIONS, 1 if i % 2 else 0, 1000 + i,
                                     kw.metadata_v1_body(None) if i % 2 else b"") for i in range(50))
        s.sendall(frames)
        for i in range(50):
            body = kw.recv_response(s, 1000 + i)
            if i % 2:
                kw.parse_metadata(body, 1)
            else:
                assert kw.parse_api_versions_v0(body)["error_code"] == 0


def test_corrupt_record_batches_are_refused_and_connection_kept(target):
    """Produce v3 over a raw socket: a good batch is stored; a batch with a
    wrong CRC gets CORRUPT_MESSAGE (as Kafka answers), a batch lying about
    its record count or magic gets an error; none of them is stored, and the
    connection keeps working."""
    topic = "raw-produce"
    kw.ensure_topic(target.host, target.port, topic)

    def produce(s, cid, batch):
        [r] = kw.parse_produce_v3(kw.roundtrip(s, kw.API_PRODUCE, 3, cid, kw.produce_v3_body(topic, 0, batch)))
        return r

    def high_watermark(s, cid):
        [r] = kw.parse_list_offsets_v1(kw.roundtrip(s, kw.API_LIST_OFFSETS, 1, cid, kw.list_offsets_v1_body(topic, 0, -1)))
        assert r["error_code"] == 0, r
        return r["offset"]

    with kw.connect(target.host, target.port) as s:
        ok = produce(s, 1, kw.record_batch([b"a", b"b", b"c"]))
        assert (ok["error_code"], ok["base_offset"]) == (0, 0), ok
        assert high_watermark(s, 2) == 3

        bad_crc = produce(s, 3, kw.record_batch([b"d", b"e"], crc_delta=1))
        assert bad_crc["error_code"] == kw.CORRUPT_MESSAGE, bad_crc
        # Kafka's LogValidator: "Inconsistent batch offset range [...] and count of
        # records" -> INVALID_RECORD (CORRUPT_MESSAGE for Produce below v8, KIP-467)
        lying = produce(s, 4, kw.record_batch([b"f"], claimed_count=5))
        assert lying["error_code"] in (kw.CORRUPT_MESSAGE, kw.INVALID_RECORD), f"record count 5, one record: {lying}"
        lying = produce(s, 5, kw.record_batch([b"x", b"y", b"z"], claimed_count=1))
        assert lying["error_code"] in (kw.CORRUPT_MESSAGE, kw.INVALID_RECORD), f"record count 1, three records: {lying}"
        magic = produce(s, 6, kw.record_batch([b"g"], magic=3))
        assert magic["error_code"] in (kw.CORRUPT_MESSAGE, kw.INVALID_RECORD), f"magic 3: {magic}"
        assert high_watermark(s, 16) == 3, "a refused batch was stored"

        again = produce(s, 17, kw.record_batch([b"h"]))
        assert (again["error_code"], again["base_offset"]) == (0, 3), again
        assert high_watermark(s, 18) == 4
    assert_still_serves(target)
