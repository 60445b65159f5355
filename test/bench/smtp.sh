#!/usr/bin/env bash
# SMTP intake benchmark: Postfix's smtp-source drives Postern and, in the same run, Postfix's
# smtp-sink (a receiver that stores nothing) as the ceiling; prints messages/s for both and
# the ratio postern/smtp-sink. Postern runs with its normal durable settings (config defaults,
# a fresh data dir, one user whose address is the recipient, so every message is archived).
# Afterwards it waits for the intake to drain and checks that the archive holds every message.
#
#   npm run bench:smtp
#   BENCH_MESSAGES=2000 npm run bench:smtp        # quick run
#
# Environment (defaults in brackets):
#   BENCH_MESSAGES [20000]  messages per target (smtp-source -m)
#   BENCH_SESSIONS [8]      parallel sessions (smtp-source -s)
#   BENCH_SIZE     [20000]  message size in bytes (smtp-source -l)
#   BENCH_DRAIN_TIMEOUT [900] seconds to wait for the intake to drain after the run
#   BENCH_KEEP=1            keep the temp dir (data dir and server log)
# Only 127.0.0.1 is used; nothing listens on port 25.
set -euo pipefail
cd "$(dirname "$0")/../.."

MESSAGES="${BENCH_MESSAGES:-20000}"
SESSIONS="${BENCH_SESSIONS:-8}"
SIZE="${BENCH_SIZE:-20000}"
DRAIN_TIMEOUT="${BENCH_DRAIN_TIMEOUT:-900}"
SENDER="bench-sender@bench.test"
RCPT="bench@bench.test"
for v in MESSAGES SESSIONS SIZE DRAIN_TIMEOUT; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "bench: $v must be a positive integer (got '${!v}')" >&2; exit 2; }
done

bash test/interop/install-deps.sh >/dev/null
SMTP_SOURCE=/usr/sbin/smtp-source
SMTP_SINK=/usr/sbin/smtp-sink
for b in "$SMTP_SOURCE" "$SMTP_SINK"; do
  [ -x "$b" ] || { echo "bench: $b missing (postfix package)" >&2; exit 1; }
done
[ -f core/cli/postern.js ] || { echo "bench: core/cli/postern.js missing" >&2; exit 1; }

WORK="$(mktemp -d /tmp/postern-bench-XXXXXX)"
SINK_PID=""
POSTERN_PID=""
cleanup() {
  local rc=$?
  if [ -n "$SINK_PID" ] && kill -0 "$SINK_PID" 2>/dev/null; then kill "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" 2>/dev/null || true; fi
  if [ -n "$POSTERN_PID" ] && kill -0 "$POSTERN_PID" 2>/dev/null; then
    kill -TERM "$POSTERN_PID" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$POSTERN_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$POSTERN_PID" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -f "$WORK/postern.log" ]; then
    echo "bench: failed; last lines of the Postern log ($WORK/postern.log):" >&2
    tail -n 20 "$WORK/postern.log" >&2 || true
  fi
  if [ "${BENCH_KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
    echo "bench: temp dir kept at $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
now() { date +%s.%N; }
rate() { awk -v n="$1" -v s="$2" -v e="$3" 'BEGIN { d = e - s; if (d <= 0) d = 0.000001; printf "%.0f", n / d }'; }

# run_source NAME PORT: drives PORT with smtp-source; prints elapsed seconds.
run_source() {
  local name="$1" port="$2" t0 t1
  t0="$(now)"
  if ! "$SMTP_SOURCE" -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" -f "$SENDER" -t "$RCPT" "127.0.0.1:$port" \
      >"$WORK/source-$name.out" 2>&1; then
    echo "bench: smtp-source against $name failed:" >&2
    tail -n 20 "$WORK/source-$name.out" >&2
    return 1
  fi
  t1="$(now)"
  if [ -s "$WORK/source-$name.out" ]; then
    echo "bench: smtp-source against $name reported problems:" >&2
    tail -n 20 "$WORK/source-$name.out" >&2
    return 1
  fi
  awk -v s="$t0" -v e="$t1" 'BEGIN { printf "%.3f", e - s }'
}

echo "bench: $MESSAGES messages of $SIZE bytes over $SESSIONS sessions to each target"

# --- smtp-sink: the ceiling (accepts and discards) ---
SINK_PORT="$(free_port)"
(cd "$WORK" && exec "$SMTP_SINK" -u nobody "127.0.0.1:$SINK_PORT" 256) >"$WORK/sink.log" 2>&1 &
SINK_PID=$!
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$SINK_PORT") 2>/dev/null && break; sleep 0.1; done
SINK_SECS="$(run_source smtp-sink "$SINK_PORT")"
kill "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" 2>/dev/null || true; SINK_PID=""
SINK_RATE="$(rate "$MESSAGES" 0 "$SINK_SECS")"
echo "bench: smtp-sink  $MESSAGES messages in ${SINK_SECS}s"

# --- Postern with its normal durable settings ---
export POSTERN_DATA_DIR="$WORK/data"
POSTERN_SMTP_PORT="$(free_port)"
POSTERN_ADMIN_PORT="$(free_port)"
while [ "$POSTERN_ADMIN_PORT" = "$POSTERN_SMTP_PORT" ]; do POSTERN_ADMIN_PORT="$(free_port)"; done
export POSTERN_SMTP_PORT POSTERN_ADMIN_PORT
export POSTERN_SMTP_HOST=127.0.0.1 POSTERN_ADMIN_HOST=127.0.0.1 POSTERN_LOG_FORMAT=json
export POSTERN_IMAP_PORT=0 POSTERN_IMAPS_PORT=0   # the shipped config enables IMAP; keep its standard ports free
mkdir -p "$POSTERN_DATA_DIR"
node core/cli/postern.js serve >"$WORK/postern.log" 2>&1 &
POSTERN_PID=$!
ready=0
for _ in $(seq 1 200); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$POSTERN_ADMIN_PORT/healthz" 2>/dev/null; then ready=1; break; fi
  kill -0 "$POSTERN_PID" 2>/dev/null || { echo "bench: postern serve exited during startup" >&2; exit 1; }
  sleep 0.1
done
[ "$ready" = 1 ] || { echo "bench: /healthz not up within 20 s" >&2; exit 1; }
node core/cli/postern.js user add bench --address "$RCPT" >/dev/null

POSTERN_SECS="$(run_source postern "$POSTERN_SMTP_PORT")"
POSTERN_RATE="$(rate "$MESSAGES" 0 "$POSTERN_SECS")"
echo "bench: postern    $MESSAGES messages in ${POSTERN_SECS}s (each acknowledged only once durable)"

RATIO="$(awk -v p="$POSTERN_SECS" -v s="$SINK_SECS" 'BEGIN { printf "%.2f", s / p }')"
echo "postern: $POSTERN_RATE msg/s  smtp-sink: $SINK_RATE msg/s  ratio: $RATIO"

# --- the archive must eventually hold every message ---
status_field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[sys.argv[1]][sys.argv[2]])' "$1" "$2"; }
t0="$(now)"
deadline=$(( $(date +%s) + DRAIN_TIMEOUT ))
while :; do
  status="$(node core/cli/postern.js status --json)"
  depth="$(status_field intake depth <<<"$status")"
  [ "$depth" = 0 ] && break
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "bench: intake still holds $depth messages after ${DRAIN_TIMEOUT}s" >&2
    exit 1
  fi
  sleep 1
done
archived="$(status_field archive messages <<<"$status")"
drain_secs="$(awk -v s="$t0" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }')"
echo "bench: intake drained ${drain_secs}s after the run; archive holds $archived messages"
if [ "$archived" != "$MESSAGES" ]; then
  echo "bench: expected $MESSAGES archived messages, found $archived" >&2
  exit 1
fi

kill -TERM "$POSTERN_PID"
rc=0; wait "$POSTERN_PID" || rc=$?
POSTERN_PID=""
[ "$rc" = 0 ] || { echo "bench: postern serve exited $rc on SIGTERM" >&2; exit 1; }
