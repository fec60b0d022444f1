"""A real S3 server for the tests: moto's `moto_server` (PyPI `moto[server]`,
which honours conditional writes), on a free loopback port.

Its pid goes into $STRATA_CI_PIDS like a broker's, so ci/clients/run.sh's trap
stops it if the run is interrupted; MotoServer.stop() stops it otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import helper_process
from strata_broker import free_port

# moto does not check signatures; any keys will do, but some must be given.
ACCESS_KEY_ID = "strata-ci"
SECRET_ACCESS_KEY = "strata-ci-secret"
REGION = "us-east-1"


def moto_server_bin() -> str | None:
    """$MOTO_SERVER, else the moto_server of this Python, else one on PATH."""
    env = os.environ.get("MOTO_SERVER")
    if env:
        return env
    here = Path(sysconfig.get_path("scripts")) / "moto_server"
    if here.is_file():
        return str(here)
    return shutil.which("moto_server")


class MotoServer:
    def __init__(self, log_path: Path):
        self.port = free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "MotoServer":
        binary = moto_server_bin()
        if binary is None:
            raise RuntimeError("moto_server is not installed: pip install 'moto[server]' (ci/clients/run.sh does)")
        self.proc = helper_process.spawn(
            [binary, "-H", "127.0.0.1", "-p", str(self.port)], self.log_path, f"moto_server {self.endpoint}", self.port, 60,
        )
        return self

    def client(self):
        """A boto3 S3 client on this server (boto3 comes with moto)."""
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
        )

    def stop(self) -> None:
        helper_process.end(self.proc)


def required() -> bool:
    """ci/test sets STRATA_REQUIRE_MOTO=1: there a missing moto fails the run."""
    return os.environ.get("STRATA_REQUIRE_MOTO") == "1"
