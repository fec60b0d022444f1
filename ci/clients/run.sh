#!/usr/bin/env bash
# Real-client tests: kcat, confluent-kafka, kafka-python and kafkajs against a
# real `strata serve`, plus a kill -9 crash test and bad input over raw sockets.
#
#   ci/clients/run.sh                      # install what is missing, build, test
#   STRATA_BIN=/path/to/strata ci/clients/run.sh   # test that binary, no build
#   ci/clients/run.sh -k kcat              # extra arguments go to pytest
#   CLIENTS_NO_INSTALL=1 ci/clients/run.sh # trust what is installed
#   CLIENTS_INSTALL_ONLY=1 ci/clients/run.sh  # install, print the moto_server
#                                          # path and, on a second line, the etcd
#                                          # path (for ci/test's cargo test), exit
#
# Brokers listen on free loopback ports with data directories under a temp
# directory; the test fixtures start and stop them, and the trap below stops
# any that are left (by the pids the fixtures record) and removes the temp
# directory. Exits non-zero on any failure.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-python3}
export PYTHONDONTWRITEBYTECODE=1

log() { printf '[clients] %s\n' "$*" >&2; }

WORK=$(mktemp -d /tmp/strata-clients.XXXXXX)
export STRATA_CI_PIDS="$WORK/pids"
mkdir -p "$STRATA_CI_PIDS"

cleanup() {
  local rc=$?
  local f pid
  for f in "$STRATA_CI_PIDS"/*; do
    [ -e "$f" ] || continue
    pid=$(basename "$f")
    if kill -0 "$pid" 2>/dev/null; then
      log "stopping leftover broker pid $pid ($(cat "$f"))"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  if [ "$rc" -ne 0 ] && [ "${CLIENTS_KEEP_LOGS:-1}" = 1 ]; then
    # keep the broker logs of a failed run, drop the data
    find "$WORK" -mindepth 1 -type d -name data -prune -exec rm -rf {} + 2>/dev/null || true
    find "$WORK" -mindepth 1 -type d -name 'crash-*' -prune -exec rm -rf {} + 2>/dev/null || true
    log "broker logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

install_deps() {
  if [ "${CLIENTS_NO_INSTALL:-0}" = 1 ]; then return; fi
  local need_apt=()
  command -v kcat >/dev/null 2>&1 || need_apt+=(kcat)
  command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
  command -v npm >/dev/null 2>&1 || need_apt+=(npm)
  # etcd for the etcd-sequencer tests (Debian's package starts no daemon in a container)
  [ -n "${ETCD_SERVER:-}" ] || command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)
  command -v "$PY" >/dev/null 2>&1 || need_apt+=(python3 python3-pip python3-venv)
  if [ ${#need_apt[@]} -gt 0 ]; then
    log "apt-get install ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  fi

  # Python packages, pinned in requirements.txt
  if ! "$PY" - "$HERE/requirements.txt" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if line:
        name, want = line.split("==")
        name = name.split("[")[0]  # moto[server]: the extra is not part of the name
        assert version(name) == want, line
EOF
  then
    log "pip install -r ci/clients/requirements.txt"
    if ! "$PY" -m pip install -q -r "$HERE/requirements.txt"; then
      # an externally managed Python (Debian's own): use a venv instead
      local venv="${XDG_CACHE_HOME:-$HOME/.cache}/strata-clients-venv"
      log "pip refused; using a venv in $venv"
      "$PY" -m venv "$venv"
      "$venv/bin/python" -m pip install -q -r "$HERE/requirements.txt"
      PY="$venv/bin/python"
    fi
  fi

  # kafkajs, exactly as locked
  local want have
  want=$(sed -n 's/.*"kafkajs": *"\([^"]*\)".*/\1/p' "$HERE/node/package.json" | head -1)
  have=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$HERE/node/node_modules/kafkajs/package.json" 2>/dev/null | head -1 || true)
  if [ "$want" != "$have" ]; then
    log "npm ci (kafkajs $want) in ci/clients/node"
    (cd "$HERE/node" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
}

build() {
  if [ -n "${STRATA_BIN:-}" ]; then
    STRATA_BIN=$(cd "$(dirname "$STRATA_BIN")" && pwd)/$(basename "$STRATA_BIN")
    export STRATA_BIN
    log "using STRATA_BIN=$STRATA_BIN"
  else
    log "cargo build --release -p strata-runtime"
    (cd "$ROOT" && cargo build --release --locked -p strata-runtime --bin strata)
    export STRATA_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/strata"
  fi
  [ -x "$STRATA_BIN" ] || { log "no broker binary at $STRATA_BIN"; exit 1; }
}

START=$(date +%s)
if [ "${CLIENTS_INSTALL_ONLY:-0}" = 1 ]; then
  install_deps >&2
  "$PY" -c 'import os, sysconfig; print(os.path.join(sysconfig.get_path("scripts"), "moto_server"))'
  echo "${ETCD_SERVER:-$(command -v etcd || true)}"
  exit 0
fi
install_deps
build
log "kcat: $(kcat -V 2>&1 | head -1)"
log "python: $("$PY" -c 'import confluent_kafka as c, kafka as k; print("confluent-kafka", c.version()[0], "librdkafka", c.libversion()[0], "/ kafka-python", k.__version__)')"
log "node: $(node --version), kafkajs $(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$HERE/node/node_modules/kafkajs/package.json" | head -1)"

cd "$HERE"
set +e
"$PY" -m pytest -c "$HERE/pytest.ini" --rootdir "$HERE" --basetemp "$WORK/pytest" "$@"
RC=$?
set -e
log "took $(( $(date +%s) - START )) s (pytest exit $RC)"
exit $RC
