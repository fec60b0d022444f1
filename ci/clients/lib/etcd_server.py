"""A real etcd for the tests (Debian's `etcd-server`, binary `etcd`), on free
loopback ports with its own data directory. kill9() and start() again keep the
ports and the data directory: a crash and a restart of the same member.

Its pid goes into $STRATA_CI_PIDS like a broker's, so ci/clients/run.sh's trap
stops it if the run is interrupted; EtcdServer.stop() stops it otherwise.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import helper_process
from strata_broker import free_port


def etcd_bin() -> str | None:
    """$ETCD_SERVER, else `etcd` on PATH."""
    return os.environ.get("ETCD_SERVER") or shutil.which("etcd")


def required() -> bool:
    """ci/test sets STRATA_REQUIRE_ETCD=1: there a missing etcd fails the run."""
    return os.environ.get("STRATA_REQUIRE_ETCD") == "1"


class EtcdServer:
    def __init__(self, work_dir: Path):
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.peer_port = free_port()
        self.log_path = self.work_dir / "etcd.log"
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sequencer_arg(self) -> str:
        """The broker's --sequencer value for this etcd."""
        return f"etcd://{self.endpoint}"

    def start(self) -> "EtcdServer":
        binary = etcd_bin()
        if binary is None:
            raise RuntimeError("etcd is not installed: apt-get install etcd-server (ci/clients/run.sh does)")
        client, peer = f"http://{self.endpoint}", f"http://127.0.0.1:{self.peer_port}"
        self.proc = helper_process.spawn(
            [binary, "--name", "strata-ci", "--data-dir", str(self.work_dir / "data"),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"strata-ci={peer}"],
            self.log_path, f"etcd {self.endpoint}", self.port, 30,
        )
        return self

    def kill9(self) -> None:
        """SIGKILL, as a crash: the data directory stays for a restart."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def _end(self, sig) -> None:
        helper_process.end(self.proc, sig)
