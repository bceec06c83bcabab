#!/usr/bin/env bash
# The main job: set everything up, then run the recipe's crash demo in a VM
# (tests/demo/crash_demo.toml). The demo's test fails on purpose: that failure
# is the crash report. A failing status proves nothing by itself, so the demo
# succeeds only when the crash it demonstrates was recorded in the store with
# the expected signature (scx_bpf_error, "ktstr: host-triggered crash");
# anything else (a watchdog, a boot failure, another crash, no crash) fails.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${KTSTR_BUILD_DIR:-$ROOT/build}
KTSTR=$BUILD/bin/ktstr
"$ROOT/scripts/setup.sh" "$BUILD"
"$ROOT/scripts/ensure-kernel.sh" "$BUILD"

out=$(mktemp "${TMPDIR:-/tmp}/ktstr-demo.XXXXXX")
trap 'rm -f "$out"' EXIT
status=0
"$KTSTR" test "$ROOT/tests/demo/crash_demo.toml" "$@" | tee "$out" || status=${PIPESTATUS[0]}

fail() {
  echo "demo: error: $*" >&2
  echo "hint: the report above shows what happened instead; 'ktstr doctor' shows the host's set-up" >&2
  exit 1
}
[[ $status -eq 1 ]] || fail "'ktstr test' exited with status $status, not 1 (the demo's expected crash)"
crash_id=$(sed -n 's/^crash \([0-9a-f]\{6,\}\) recorded$/\1/p' "$out" | tail -n 1)
[[ -n $crash_id ]] || fail "the run did not record a crash"
record=$("$KTSTR" crash show "$crash_id" --json)
grep -Eq '"kind": *1025[,}]' <<<"$record" || fail "crash $crash_id is not an scx_bpf_error exit (kind 1025)"
grep -Eq '"message": *"[^"]*ktstr: host-triggered crash"' <<<"$record" ||
  fail "crash $crash_id does not carry the demo's signature 'ktstr: host-triggered crash'"
grep -Eq '"test": *"crash_demo"' <<<"$record" || fail "crash $crash_id was not recorded for the test 'crash_demo'"
echo "demo: the failure above is the intended crash, recorded as $crash_id with its signature; see 'ktstr crash list'" >&2
