"""The S3 object store (`--objects s3://BUCKET/PREFIX`) on a real S3 server,
moto_server (which honours conditional writes): every record a real client
produced and the broker acknowledged is there after a kill -9 and restart, at
its offset, byte-identical; the broker's objects are create-only; a
misconfigured store is refused at start-up in plain words."""

from __future__ import annotations

import random
import subprocess
import uuid

import pytest
from botocore.exceptions import ClientError
from confluent_kafka import Producer

import kafka_wire
from readback import read_partitions
import moto_server
from conftest import require_own_brokers
from strata_broker import free_port, strata_bin

PARTITIONS = 3
RECORDS = 3000


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    require_own_brokers()
    if moto_server.moto_server_bin() is None:
        if moto_server.required():
            pytest.fail("STRATA_REQUIRE_MOTO=1 but moto_server is not installed: pip install 'moto[server]'")
        pytest.skip("moto_server is not installed (pip install 'moto[server]'; ci/clients/run.sh installs it)")
    m = moto_server.MotoServer(tmp_path_factory.mktemp("moto") / "moto_server.log").start()
    yield m
    m.stop()


@pytest.fixture
def s3_env(monkeypatch):
    """The standard AWS variables, as a user would set them (brokers inherit them)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", moto_server.ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", moto_server.SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_REGION", moto_server.REGION)
    for name in ("AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_ALLOW_HTTP"):
        monkeypatch.delenv(name, raising=False)


def new_bucket(moto) -> str:
    bucket = f"strata-ci-{uuid.uuid4().hex[:12]}"
    moto.client().create_bucket(Bucket=bucket)
    return bucket


def s3_args(moto, bucket: str, prefix: str) -> list[str]:
    return ["--objects", f"s3://{bucket}/{prefix}", "--s3-endpoint", moto.endpoint, "--s3-allow-http"]


def read_all(bootstrap: str, topic: str) -> dict[int, dict[int, tuple]]:
    """Every record of every partition, by offset: (key, value, headers)."""
    return read_partitions(bootstrap, topic, PARTITIONS, record=lambda m: (m.key(), m.value(), m.headers()), deadline_s=120)


def test_acknowledged_records_survive_kill9_and_restart_on_s3(moto, s3_env, new_broker):
    bucket = new_bucket(moto)
    prefix = "cluster-a"
    b = new_broker(args=[*s3_args(moto, bucket, prefix), "--default-partitions", str(PARTITIONS)], name="s3").start()
    topic = "s3-records"
    kafka_wire.ensure_topic(b.host, b.port, topic)

    # Values of every size up to a few KiB, random bytes (a fixed seed: a failure replays).
    rng = random.Random(20240611)
    sent: dict[bytes, tuple] = {}  # key -> (key, value, headers): delivery reports carry no headers
    acked, failed = [], []

    def on_delivery(err, m):
        if err:
            failed.append((err, m.key()))
        else:
            acked.append((m.partition(), m.offset(), *sent[m.key()]))

    p = Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5,
                  "compression.type": "none"})
    for i in range(RECORDS):
        key, value, headers = b"k%d" % i, rng.randbytes(rng.randrange(0, 4096)), [("i", str(i).encode())]
        sent[key] = (key, value, headers)
        p.produce(topic, key=key, value=value, partition=i % PARTITIONS, headers=headers, on_delivery=on_delivery)
        if i % 500 == 0:
            p.poll(0)
    assert p.flush(60) == 0, "records still undelivered after 60 s"
    assert not failed, f"{len(failed)} deliveries failed, first: {failed[:3]}"
    assert len(acked) == RECORDS

    # The records went to the bucket, under the prefix, and not to the data directory.
    s3 = moto.client()
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/objects/")
            for o in page.get("Contents", [])]
    assert keys, "no object in the bucket"
    assert not (b.data_dir / "objects").exists(), "objects were written to the data directory"

    # The bucket refuses to replace an object the broker wrote (create-only).
    before = s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read()
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key=keys[0], Body=b"overwritten", IfNoneMatch="*")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412, refused.value.response
    assert s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read() == before

    # A crash, then a new process: nothing in memory, every read comes from S3.
    b.kill9()
    b.start()
    logs = read_all(b.bootstrap, topic)
    lost = [(q, o) for q, o, k, v, h in acked if logs[q].get(o) != (k, v, h)]
    assert not lost, f"{len(lost)} acknowledged records missing or different at their offsets, first: {lost[:5]}"
    assert sum(map(len, logs.values())) == RECORDS, "the log holds records that were never acknowledged"
    print(f"{RECORDS} records in {len(keys)} objects in s3://{bucket}/{prefix}, all read back after kill -9")


@pytest.mark.parametrize("case", ["no-such-bucket", "plain-http", "s3-flag-without-s3", "no-bucket-in-url"])
def test_misconfigured_s3_is_refused_in_plain_words(moto, s3_env, tmp_path, case):
    bucket = new_bucket(moto)
    args, expect = {
        "no-such-bucket": (s3_args(moto, "no-such-bucket-here", "p"), ["bucket no-such-bucket-here does not exist", "create it"]),
        "plain-http": (["--objects", f"s3://{bucket}", "--s3-endpoint", moto.endpoint], ["plain HTTP", "--s3-allow-http"]),
        "s3-flag-without-s3": (["--s3-endpoint", moto.endpoint], ["only applies to an S3 object store", "--objects s3://"]),
        "no-bucket-in-url": (["--objects", "s3://", "--s3-endpoint", moto.endpoint, "--s3-allow-http"], ["names no bucket"]),
    }[case]
    cmd = [strata_bin(), "serve", "--listen", f"127.0.0.1:{free_port()}", "--internal-listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"), *args]
    # Refused at start-up: the process exits by itself (the bound only stops a hung test).
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode != 0, f"started anyway:\n{r.stdout}\n{r.stderr}"
    for words in expect:
        assert words in r.stderr, f"{words!r} not in:\n{r.stderr}"
    print(f"{case}: {r.stderr.strip()}")
