"""Starting and ending the servers the tests need besides brokers (etcd,
moto_server): each runs in a session of its own, logs to a file, and has its
pid in $STRATA_CI_PIDS while it runs, so ci/clients/run.sh's trap stops it if
the run is interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from strata_broker import wait_port


def _pid_file(proc: subprocess.Popen) -> Path | None:
    d = os.environ.get("STRATA_CI_PIDS")
    return Path(d) / str(proc.pid) if d else None


def spawn(cmd: list[str], log_path: Path, label: str, port: int, timeout: float) -> subprocess.Popen:
    """Starts `cmd` and waits until it listens on 127.0.0.1:`port` (ending it if it does not)."""
    log = open(log_path, "ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    if (f := _pid_file(proc)) is not None:
        f.write_text(f"{label}\n")
    try:
        wait_port("127.0.0.1", port, timeout, proc)
    except Exception:
        end(proc)
        raise
    return proc


def end(proc: subprocess.Popen | None, sig=signal.SIGTERM) -> None:
    """Sends `sig` (SIGKILL after 15 s) and reaps it."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    if (f := _pid_file(proc)) is not None:
        try:
            f.unlink()
        except FileNotFoundError:
            pass
