"""Start, stop, kill and restart `strata serve` processes for the client tests.

Every broker listens on a free loopback port with its own data directory, and
its internal gRPC service (peer reads, `strata admin`) on another free port.
Each started process's pid is written to $STRATA_CI_PIDS (a directory that
ci/clients/run.sh creates and, on exit, uses to stop anything still running),
so a test run interrupted at any point leaves no broker behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def strata_bin() -> str:
    """The broker binary: $STRATA_BIN, else the release build of this tree."""
    env = os.environ.get("STRATA_BIN")
    if env:
        return env
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return str(target / "release" / "strata")


def free_port() -> int:
    """A loopback TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(host: str, port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """Waits until host:port accepts a TCP connection (or the process dies)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker exited with status {proc.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError as e:
            last = e
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s ({last})")


class Broker:
    """One `strata serve` process on 127.0.0.1:<port>, data in <data_dir>.

    The port and data directory stay the same across restart(), which is what
    the crash test needs.
    """

    def __init__(self, data_dir: Path | str, port: int | None = None, args: list[str] | tuple = (), name: str = "broker"):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        # Chosen here, not the default (the Kafka port + 1), which another
        # broker's free port may be.
        self.internal_port = free_port()
        self.args = list(args)
        self.name = name
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.{name}.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def internal(self) -> str:
        return f"127.0.0.1:{self.internal_port}"

    def command(self) -> list[str]:
        return [strata_bin(), "serve", "--listen", self.bootstrap, "--internal-listen", self.internal,
                "--data-dir", str(self.data_dir), *self.args]

    def admin(self, *action: str, timeout: float = 120.0) -> dict:
        """`strata admin ACTION... --addr <internal> --json`; the parsed answer."""
        r = subprocess.run([strata_bin(), "admin", *action, "--addr", self.internal, "--json"],
                           capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, f"strata admin {' '.join(action)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
        return json.loads(r.stdout)

    def start(self, timeout: float = 60.0) -> "Broker":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n==== start #{self.starts}: {' '.join(self.command())}\n".encode())
        log.flush()
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        # A new session: signals sent to the test runner's group do not reach
        # it, and it is stopped explicitly (or by run.sh's trap via the pid file).
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True,
        )
        log.close()
        self._record_pid()
        try:
            wait_port(self.host, self.port, timeout, self.proc)
        except Exception:
            self.stop()
            raise RuntimeError(f"{self.name} did not start; log tail:\n{self.log_tail()}")
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL, as a crash would: no flush, no goodbye."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._forget_pid()

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout`."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._forget_pid()
        return self.proc.returncode

    def restart(self, timeout: float = 60.0) -> "Broker":
        self.stop()
        return self.start(timeout)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])

    # pid files for run.sh's trap
    def _pid_file(self) -> Path | None:
        d = os.environ.get("STRATA_CI_PIDS")
        if not d or self.proc is None:
            return None
        return Path(d) / str(self.proc.pid)

    def _record_pid(self) -> None:
        p = self._pid_file()
        if p is not None:
            p.write_text(f"{self.name} {self.bootstrap}\n")

    def _forget_pid(self) -> None:
        p = self._pid_file()
        if p is not None:
            try:
                p.unlink()
            except FileNotFoundError:
                pass
