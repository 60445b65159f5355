#!/usr/bin/env bash
# Interop tier: Postern against real peers (swaks, Postfix, promtool), all on 127.0.0.1.
# Installs the peers first (idempotent; skips apt when they are present), then runs each
# test file with Node's test runner through tsx. Exits non-zero when anything fails.
#   npm run test:interop
#   POSTERN_KEEP_TMP=1 npm run test:interop   # keep temp dirs for inspection
set -euo pipefail
cd "$(dirname "$0")/../.."

bash test/interop/install-deps.sh

if [ ! -f core/cli/postern.js ]; then
  echo "test/interop/run.sh: core/cli/postern.js is missing; nothing to test" >&2
  exit 1
fi

# Node 20 does not expand globs and runs 0 tests when given no files: list them explicitly.
files=(
  test/interop/swaks.test.ts
  test/interop/postfix.test.ts
  test/interop/postfix-attribution.test.ts
  test/interop/promtool.test.ts
  test/interop/prometheus.test.ts
  test/interop/grafana-dashboard.test.ts
  test/interop/systemd-notify.test.ts
  test/interop/compiled-build.test.ts
  test/interop/relay-postfix.test.ts
  test/interop/postfix-bcc-maps.test.ts
  test/interop/postfix-content-filter.test.ts
  test/interop/haraka.test.ts
  test/interop/exim.test.ts
  test/interop/dovecot-harness.test.ts
  test/interop/imap-imapflow.test.ts
  test/interop/imap-imaplib.test.ts
  test/interop/imap-curl.test.ts
  test/interop/imap-mutt.test.ts
  test/interop/imap-dovecot-parity.test.ts
  test/interop/imap-search-parity.test.ts
  test/interop/import-imap.test.ts
  test/interop/import-imap-batch.test.ts
  test/interop/import-pop3.test.ts
  test/interop/pop3-proxy.test.ts
  test/interop/export.test.ts
  test/interop/web-chromium.test.ts
  test/interop/ldap-directory.test.ts
)
for f in "${files[@]}"; do
  [ -f "$f" ] || { echo "test/interop/run.sh: missing test file $f" >&2; exit 1; }
done

# The timeout bounds each file as a whole (Node 20 runs a file as one test): a few files with many real
# peers take over 2 minutes on a loaded 2-core machine.
exec npx tsx --test --test-concurrency=1 --test-timeout=300000 "${files[@]}"
