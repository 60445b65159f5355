#!/usr/bin/env bash
# Runs the whole unit, protocol, conformance, crash and fault (root: tmpfs mounts) tier with Node's test runner (via tsx).
# Node 20 does not expand globs itself, so the file list is built here.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc --noEmit -p .
mapfile -t files < <(find test/unit test/protocol test/conformance test/crash test/fault -name '*.test.ts' 2>/dev/null | sort)
if [ "${#files[@]}" -eq 0 ]; then echo "no test files found" >&2; exit 1; fi
exec node --import tsx --test --test-concurrency=2 --test-timeout=300000 "${files[@]}"
