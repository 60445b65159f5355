#!/usr/bin/env bash
# SMTP intake benchmark: Postfix's smtp-source drives Postern and, in the same run, Postfix's
# smtp-sink (a receiver that stores nothing) as the ceiling. Postern runs with its normal durable
# settings (config defaults, a fresh data dir, one user whose address is the recipient, so every
# message is archived). Each case runs BENCH_ROUNDS times, alternating which target goes first, and
# prints min / median / max of:
#   - durable ingest: messages/s until smtp-source finishes (Postern answers 250 only once durable),
#     and the ratio Postern / smtp-sink per round;
#   - end-to-end archiving: messages/s from the start of the run until the intake has drained (every
#     message archived), against the same round's smtp-sink rate.
# Postern runs as deployed (deploy/systemd): the compiled tree of `npm run build`, built into the temp dir
# first (BENCH_SOURCES=1 runs the TypeScript sources through tsx instead, as `npm start` does). A warm-up
# run (BENCH_WARMUP messages, untimed, archived and indexed before the first timed run) brings the server
# to steady state (JIT-compiled code, open database files), as a long-running gateway is.
# After each Postern run the search index (shipped config: plugin on) catches up before the next run
# starts, so no run shares the machine with the indexer's catch-up (not counted in any rate).
# At the end it checks that the archive holds every message sent.
#
#   npm run bench:smtp
#   BENCH_MESSAGES=3000 BENCH_SESSIONS=8 npm run bench:smtp       # quick run
#
# Environment (defaults in brackets):
#   BENCH_MESSAGES [5000]     messages per run (smtp-source -m)
#   BENCH_CASES    ["8 32 32d"] sessions per case (smtp-source -s); a trailing d reuses each
#                             connection for many messages (smtp-source -d), otherwise one per message
#   BENCH_ROUNDS   [3]        runs per case and target
#   BENCH_SESSIONS            a single case, one round unless BENCH_ROUNDS says otherwise (quick profiling)
#   BENCH_SIZE     [20000]    message size in bytes (smtp-source -l)
#   BENCH_DRAIN_TIMEOUT [900] seconds to wait for the intake to drain after a run
#   BENCH_WARMUP   [1000]     untimed warm-up messages sent to Postern first (0: none)
#   BENCH_SOURCES=1           run the TypeScript sources (tsx) instead of the compiled tree
#   BENCH_KEEP=1              keep the temp dir (data dir and server log)
#   POSTERN_NODE_ARGS         extra node arguments for the server (e.g. --cpu-prof)
# Only 127.0.0.1 is used; nothing listens on port 25.
set -euo pipefail
cd "$(dirname "$0")/../.."

MESSAGES="${BENCH_MESSAGES:-5000}"
if [ -n "${BENCH_SESSIONS:-}" ] && [ -z "${BENCH_CASES:-}" ]; then
  CASES="$BENCH_SESSIONS"; ROUNDS="${BENCH_ROUNDS:-1}"   # the quick form of earlier versions
else
  CASES="${BENCH_CASES:-8 32 32d}"; ROUNDS="${BENCH_ROUNDS:-3}"
fi
SIZE="${BENCH_SIZE:-20000}"
DRAIN_TIMEOUT="${BENCH_DRAIN_TIMEOUT:-900}"
SENDER="bench-sender@bench.test"
RCPT="bench@bench.test"
WARMUP="${BENCH_WARMUP:-1000}"
[[ "$WARMUP" =~ ^[0-9]+$ ]] || { echo "bench: BENCH_WARMUP must be a non-negative integer (got '$WARMUP')" >&2; exit 2; }
for v in MESSAGES ROUNDS SIZE DRAIN_TIMEOUT; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "bench: $v must be a positive integer (got '${!v}')" >&2; exit 2; }
done
for c in $CASES; do
  [[ "$c" =~ ^[1-9][0-9]*d?$ ]] || { echo "bench: BENCH_CASES entries are session counts, optionally followed by d (got '$c')" >&2; exit 2; }
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

# run_source NAME PORT CASE: drives PORT with smtp-source; prints elapsed seconds.
run_source() {
  local name="$1" port="$2" case="$3" t0 t1 sessions reuse=()
  sessions="${case%d}"
  [ "$sessions" != "$case" ] && reuse=(-d)
  t0="$(now)"
  if ! "$SMTP_SOURCE" "${reuse[@]}" -s "$sessions" -m "$MESSAGES" -l "$SIZE" -f "$SENDER" -t "$RCPT" "127.0.0.1:$port" \
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

# spread "v1 v2 …": min / median / max
spread() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%s / %s / %s", v[1], m, v[NR] }'; }

echo "bench: $MESSAGES messages of $SIZE bytes per run; cases (sessions, d = connection reuse): $CASES; $ROUNDS rounds"
echo "bench: machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

# --- smtp-sink: the ceiling (accepts and discards) ---
SINK_PORT="$(free_port)"
(cd "$WORK" && exec "$SMTP_SINK" -u nobody "127.0.0.1:$SINK_PORT" 256) >"$WORK/sink.log" 2>&1 &
SINK_PID=$!
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$SINK_PORT") 2>/dev/null && break; sleep 0.1; done

# --- Postern with its normal durable settings ---
export POSTERN_DATA_DIR="$WORK/data"
POSTERN_SMTP_PORT="$(free_port)"
POSTERN_ADMIN_PORT="$(free_port)"
while [ "$POSTERN_ADMIN_PORT" = "$POSTERN_SMTP_PORT" ]; do POSTERN_ADMIN_PORT="$(free_port)"; done
export POSTERN_SMTP_PORT POSTERN_ADMIN_PORT
export POSTERN_SMTP_HOST=127.0.0.1 POSTERN_ADMIN_HOST=127.0.0.1 POSTERN_LOG_FORMAT=json
export POSTERN_IMAP_PORT=0 POSTERN_IMAPS_PORT=0   # the shipped config enables IMAP; keep its standard ports free
mkdir -p "$POSTERN_DATA_DIR"
POSTERN_CLI=core/cli/postern.js
if [ "${BENCH_SOURCES:-0}" != 1 ]; then
  node deploy/build.mjs --no-check --out "$WORK/dist" >"$WORK/build.log" 2>&1 || { echo "bench: build failed:" >&2; tail -n 20 "$WORK/build.log" >&2; exit 1; }
  POSTERN_CLI="$WORK/dist/core/cli/postern.js"
fi
echo "bench: postern runs $([ "$POSTERN_CLI" = core/cli/postern.js ] && echo 'from the TypeScript sources (tsx)' || echo 'the compiled tree (npm run build)')"
node ${POSTERN_NODE_ARGS:-} "$POSTERN_CLI" serve >"$WORK/postern.log" 2>&1 &
POSTERN_PID=$!
ready=0
for _ in $(seq 1 200); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$POSTERN_ADMIN_PORT/healthz" 2>/dev/null; then ready=1; break; fi
  kill -0 "$POSTERN_PID" 2>/dev/null || { echo "bench: postern serve exited during startup" >&2; exit 1; }
  sleep 0.1
done
[ "$ready" = 1 ] || { echo "bench: /healthz not up within 20 s" >&2; exit 1; }
node "$POSTERN_CLI" user add bench --address "$RCPT" >/dev/null

status_field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[sys.argv[1]][sys.argv[2]])' "$1" "$2"; }
# The admin API with the server's token, by curl: the polls below run every fraction of a second while
# Postern archives, and a `postern` CLI process costs about a CPU-second to start, which would take a
# core from the server being measured. (`postern status` is still used once, at the end.)
api() { curl -fsS -H "authorization: Bearer $(cat "$POSTERN_DATA_DIR/admin.token")" "http://127.0.0.1:$POSTERN_ADMIN_PORT/api/v1/$1"; }
# The polls below read the JSON with bash patterns, not a python3 process per poll: on this machine kind
# `python3` is a pyenv shim costing ~0.4 CPU-seconds per start, which polled every 0.2 s took most of a
# core from the server while it archived (measured; it understated the end-to-end rate).
# wait_drained: blocks until the intake is empty; prints the time it happened.
wait_drained() {
  local deadline=$(( $(date +%s) + DRAIN_TIMEOUT )) depth s
  while :; do
    s="$(api status)"
    [[ "$s" =~ \"intake\":\{\"depth\":([0-9]+) ]] || { echo "bench: no intake depth in the status answer" >&2; exit 1; }
    depth="${BASH_REMATCH[1]}"
    [ "$depth" = 0 ] && break
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "bench: intake still holds $depth messages after ${DRAIN_TIMEOUT}s" >&2
      exit 1
    fi
    sleep 0.2
  done
  now
}

# wait_settled: blocks until the search index (when the plugin is on) has caught up and merged, so the
# next run (smtp-sink's included) starts on an idle server: the indexer catching up after a Postern run
# would otherwise slow the smtp-sink run that follows it and flatter the ratio. Not counted in any rate.
wait_settled() {
  local deadline=$(( $(date +%s) + DRAIN_TIMEOUT )) s
  while :; do
    s="$(api search/status 2>/dev/null)" || return 0   # no search plugin
    # The first "pending" is the whole index's (the per-user ones follow in "users").
    [[ "$s" =~ \"pending\":([0-9]+) ]] || { echo "bench: no pending count in the search status answer" >&2; exit 1; }
    [ "${BASH_REMATCH[1]}" = 0 ] && [[ ! "$s" =~ \"merging\":true ]] && return 0
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "bench: the search index still has work after ${DRAIN_TIMEOUT}s" >&2
      exit 1
    fi
    sleep 0.5
  done
}

SENT=0
if [ "$WARMUP" -gt 0 ]; then
  "$SMTP_SOURCE" -s 8 -m "$WARMUP" -l "$SIZE" -f "$SENDER" -t "$RCPT" "127.0.0.1:$POSTERN_SMTP_PORT" >"$WORK/source-warmup.out" 2>&1 \
    || { echo "bench: warm-up run failed:" >&2; tail -n 20 "$WORK/source-warmup.out" >&2; exit 1; }
  wait_drained >/dev/null
  wait_settled
  SENT=$WARMUP
  echo "bench: warm-up: $WARMUP messages sent, archived and indexed (untimed)"
fi
for case in $CASES; do
  sink_rates=""; postern_rates=""; ratios=""; e2e_rates=""; e2e_ratios=""
  for round in $(seq 1 "$ROUNDS"); do
    order="sink postern"; [ $((round % 2)) = 0 ] && order="postern sink"
    for who in $order; do
      if [ "$who" = sink ]; then
        secs="$(run_source smtp-sink "$SINK_PORT" "$case")"
        sink="$(rate "$MESSAGES" 0 "$secs")"
      else
        t0="$(now)"
        secs="$(run_source postern "$POSTERN_SMTP_PORT" "$case")"
        t_done="$(wait_drained)"
        wait_settled
        SENT=$((SENT + MESSAGES))
        postern="$(rate "$MESSAGES" 0 "$secs")"
        e2e="$(rate "$MESSAGES" "$t0" "$t_done")"
      fi
    done
    sink_rates+="$sink "; postern_rates+="$postern "; e2e_rates+="$e2e "
    ratios+="$(awk -v p="$postern" -v s="$sink" 'BEGIN { printf "%.2f", p / s }') "
    e2e_ratios+="$(awk -v p="$e2e" -v s="$sink" 'BEGIN { printf "%.2f", p / s }') "
    echo "bench: case $case round $round: smtp-sink $sink msg/s, postern $postern msg/s acknowledged, $e2e msg/s archived end to end"
  done
  echo "== -s ${case%d}$([ "${case%d}" != "$case" ] && echo ' -d (connection reuse)' || echo ' (new connection per message)'): min / median / max over $ROUNDS rounds"
  echo "  smtp-sink                 $(spread "$sink_rates") msg/s"
  echo "  postern durable ingest    $(spread "$postern_rates") msg/s   ratio $(spread "$ratios") x"
  echo "  postern end-to-end        $(spread "$e2e_rates") msg/s   ratio $(spread "$e2e_ratios") x (archived, vs smtp-sink)"
done
kill "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" 2>/dev/null || true; SINK_PID=""

# --- the archive must hold every message ---
archived="$(node "$POSTERN_CLI" status --json | status_field archive messages)"
echo "bench: archive holds $archived messages of $SENT sent"
if [ "$archived" != "$SENT" ]; then
  echo "bench: expected $SENT archived messages, found $archived" >&2
  exit 1
fi

kill -TERM "$POSTERN_PID"
rc=0; wait "$POSTERN_PID" || rc=$?
POSTERN_PID=""
[ "$rc" = 0 ] || { echo "bench: postern serve exited $rc on SIGTERM" >&2; exit 1; }
