#!/usr/bin/env bash
# The test suite: set everything up, make sure a sched_ext kernel is cached
# (VM tests need one), then run every CTest test but those labelled `slow`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${KTSTR_BUILD_DIR:-$ROOT/build}
"$ROOT/scripts/setup.sh" "$BUILD"
"$ROOT/scripts/ensure-kernel.sh" "$BUILD" --with-6.17
exec ctest --test-dir "$BUILD" --output-on-failure -j"$(nproc)" -LE slow "$@"
