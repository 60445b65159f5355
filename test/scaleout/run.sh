#!/usr/bin/env bash
# Scale-out tier: the postgres-s3 storage backend against real engines on 127.0.0.1, never mocks.
# Installs them (idempotent), starts ONE private PostgreSQL 15 cluster and ONE single-node Ceph (mon, memstore
# OSD, RADOS Gateway) for the whole tier, exports their coordinates (POSTERN_TEST_PG_URL, POSTERN_TEST_PG_DIR,
# POSTERN_TEST_S3_ENDPOINT, POSTERN_TEST_S3_ACCESS_KEY, POSTERN_TEST_S3_SECRET_KEY, POSTERN_TEST_S3_REGION,
# POSTERN_TEST_CEPH_CONF; see test/scaleout/engines.ts), runs each test file, and always stops the engines.
# Exits non-zero when a test fails or the engines do not come up (their logs' tails are printed then).
#   npm run test:scaleout
#   POSTERN_KEEP_TMP=1 npm run test:scaleout   # keep the engines' directories (data, logs) for inspection
set -euo pipefail
cd "$(dirname "$0")/../.."

t0=$SECONDS
bash test/scaleout/install-deps.sh
echo "test/scaleout/run.sh: dependencies ready after $((SECONDS - t0)) s"

# Node 20 does not expand globs and runs 0 tests when given no files: list them explicitly.
files=(
  test/scaleout/engines.test.ts
  test/scaleout/conformance.test.ts
  test/scaleout/migrate.test.ts
  test/scaleout/nodes.test.ts
  test/scaleout/faults.test.ts
  test/scaleout/object-lock.test.ts
  test/scaleout/shared-archive.test.ts
)
for f in "${files[@]}"; do
  [ -f "$f" ] || { echo "test/scaleout/run.sh: missing test file $f" >&2; exit 1; }
done

ENGINES_DIR="$(mktemp -d "${TMPDIR:-/tmp}/postern-scaleout-XXXXXX")"
ENV_FILE="$ENGINES_DIR.env"
launch() { npx tsx test/scaleout/launch.ts "$@"; }
stop_engines() {
  local rc=$?
  trap - EXIT INT TERM
  launch down "$ENGINES_DIR" || rc=1
  rm -f "$ENV_FILE"
  exit "$rc"
}
trap stop_engines EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t1=$SECONDS
if ! launch up "$ENGINES_DIR" "$ENV_FILE"; then
  echo "test/scaleout/run.sh: the engines did not come up" >&2
  exit 1
fi
echo "test/scaleout/run.sh: engines up after $((SECONDS - t1)) s"
set -a
# shellcheck source=/dev/null
. "$ENV_FILE"
set +a

# The timeout bounds each file as a whole (Node 20 runs a file as one test).
status=0
npx tsx --test --test-concurrency=1 --test-timeout=300000 "${files[@]}" || status=$?
if [ "$status" -ne 0 ]; then
  echo "test/scaleout/run.sh: tests failed; engine logs:" >&2
  launch logs "$ENGINES_DIR" >&2 || true
fi
exit "$status"
