#!/usr/bin/env bash
# The main job: set everything up, then run the demo scenario in a VM.
# Idempotent; when nothing is left to set up it goes straight to the run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${KTSTR_BUILD_DIR:-$ROOT/build}
"$ROOT/scripts/setup.sh" "$BUILD"
"$ROOT/scripts/ensure-kernel.sh" "$BUILD"
exec "$BUILD/bin/ktstr" test "$ROOT/tests/ktstr/demo.toml" "$@"
