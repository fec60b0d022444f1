#!/usr/bin/env bash
# Re-captures the golden request frames in proto/tests/golden/<client>/.
#
# For each client (kcat, confluent_kafka, kafka_python) it starts
# ci/capture/fake_broker.py on a free loopback port, runs the client's flows
# against it with short timeouts, stops the broker, and finally rewrites
# proto/tests/golden/README.md.
#
#   bash ci/capture/run.sh                # install what is missing, capture all
#   bash ci/capture/run.sh kcat           # only some clients
#   CAPTURE_NO_INSTALL=1 bash ci/capture/run.sh
#   GOLDEN_OUT=/tmp/golden bash ci/capture/run.sh   # write elsewhere
#
# Only loopback addresses are used. Everything started here is stopped here.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${GOLDEN_OUT:-$ROOT/proto/tests/golden}
TOPIC=golden
PY=${PYTHON:-python3}
export PYTHONDONTWRITEBYTECODE=1
WORK=$(mktemp -d /tmp/strata-capture.XXXXXX)
CLIENTS=("$@")
[ ${#CLIENTS[@]} -eq 0 ] && CLIENTS=(kcat confluent_kafka kafka_python)

# Pinned so that a re-capture sees the same client behaviour.
PIP_PKGS=(confluent-kafka==2.16.1 kafka-python==3.0.12 python-snappy==0.7.3 lz4==4.4.5 zstandard==0.25.0)

BROKER_PID=""
FAILED=()

log() { printf '[capture] %s\n' "$*" >&2; }

stop_broker() {
  if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
    kill "$BROKER_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$BROKER_PID" 2>/dev/null
    wait "$BROKER_PID" 2>/dev/null
  fi
  BROKER_PID=""
}
trap 'stop_broker' EXIT
trap 'stop_broker; exit 130' INT TERM

install_deps() {
  if [ "${CAPTURE_NO_INSTALL:-0}" = 1 ]; then return; fi
  if ! command -v kcat >/dev/null 2>&1; then
    log "installing kcat (Debian package)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null
  fi
  if ! "$PY" - "${PIP_PKGS[@]}" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    assert version(name) == want, spec
EOF
  then
    log "installing ${PIP_PKGS[*]}"
    "$PY" -m pip install -q "${PIP_PKGS[@]}"
  fi
}

start_broker() { # client
  local client=$1
  rm -rf "${OUT:?}/$client"
  mkdir -p "$OUT/$client"
  rm -f "$WORK/$client.port"
  "$PY" "$HERE/fake_broker.py" --out "$OUT/$client" --log "$WORK/$client.jsonl" \
    --port-file "$WORK/$client.port" --topic "$TOPIC" --max-lifetime 600 \
    2>"$WORK/$client.broker.log" &
  BROKER_PID=$!
  for _ in $(seq 100); do
    [ -s "$WORK/$client.port" ] && break
    kill -0 "$BROKER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ ! -s "$WORK/$client.port" ]; then
    log "fake broker did not start:"; cat "$WORK/$client.broker.log" >&2
    return 1
  fi
  PORT=$(cat "$WORK/$client.port")
  BOOT=127.0.0.1:$PORT
  log "$client: fake broker pid $BROKER_PID on $BOOT"
}

# run NAME SECONDS CMD... : run one flow with a hard timeout, never abort the capture
run() {
  local name=$1 secs=$2; shift 2
  log "  $name"
  timeout -k 5 "$secs" "$@" >>"$WORK/$CLIENT.client.log" 2>&1 </dev/null
  local rc=$?
  if [ $rc -ne 0 ]; then
    log "  $name FAILED (exit $rc), see $WORK/$CLIENT.client.log"
    FAILED+=("$CLIENT: $name (exit $rc)")
  fi
}

messages() { # codec -> three keyed, compressible lines for kcat -K:
  for i in 0 1 2; do
    printf 'key-%s:' "$i"
    for _ in 1 2 3 4 5 6 7 8; do printf 'kcat %s message %s ' "$1" "$i"; done
    printf '\n'
  done
}

capture_kcat() {
  local b=$BOOT z
  run "metadata (all topics)" 20 kcat -b "$b" -L
  run "metadata (one topic)" 20 kcat -b "$b" -L -t "$TOPIC"
  for z in none gzip snappy lz4 zstd; do
    run "produce $z" 20 bash -c "$(declare -f messages); messages $z | kcat -b $b -P -t $TOPIC -K: -z $z -X linger.ms=100"
  done
  for z in none zstd; do
    run "produce $z idempotent" 20 bash -c "$(declare -f messages); messages $z | kcat -b $b -P -t $TOPIC -K: -z $z -X linger.ms=100 -X enable.idempotence=true"
  done
  run "consume from beginning" 20 kcat -b "$b" -C -t "$TOPIC" -o beginning -e -q
  run "consume from end" 20 kcat -b "$b" -C -t "$TOPIC" -o end -e -q
  run "query offset by timestamp" 20 kcat -b "$b" -Q -t "$TOPIC:0:1"
  run "balanced consumer group" 30 kcat -b "$b" -G strata-golden-kcat-group -X auto.offset.reset=earliest \
    -X heartbeat.interval.ms=300 -e -q "$TOPIC"
}

capture_confluent_kafka() {
  run "confluent-kafka flows" 120 "$PY" "$HERE/clients/confluent_kafka_flows.py" "$BOOT" "$TOPIC"
}

capture_kafka_python() {
  run "kafka-python flows" 120 "$PY" "$HERE/clients/kafka_python_flows.py" "$BOOT" "$TOPIC"
}

install_deps

for CLIENT in "${CLIENTS[@]}"; do
  case $CLIENT in kcat|confluent_kafka|kafka_python) ;; *) log "unknown client $CLIENT"; exit 2;; esac
  log "capturing $CLIENT"
  : >"$WORK/$CLIENT.client.log"
  start_broker "$CLIENT" || { FAILED+=("$CLIENT: broker start"); continue; }
  "capture_$CLIENT"
  stop_broker
  if grep -q 'Traceback\|\[fake\] conn' "$WORK/$CLIENT.broker.log"; then
    log "fake broker reported errors for $CLIENT:"; cat "$WORK/$CLIENT.broker.log" >&2
    FAILED+=("$CLIENT: fake broker errors")
  fi
  log "$CLIENT: $(ls "$OUT/$CLIENT" | wc -l) frames saved"
done

"$PY" "$HERE/make_readme.py" --golden "$OUT" --logs "$WORK" || FAILED+=("README generation")

log "logs kept in $WORK"
if [ ${#FAILED[@]} -gt 0 ]; then
  log "failed flows:"; printf '  %s\n' "${FAILED[@]}" >&2
  exit 1
fi
log "done"
