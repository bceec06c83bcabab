#!/usr/bin/env bash
# The test suite: set everything up, make sure a sched_ext kernel is cached
# (VM tests need one), then run every CTest test but those labelled `slow`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${KTSTR_BUILD_DIR:-$ROOT/build}
"$ROOT/scripts/setup.sh" "$BUILD"
"$ROOT/scripts/ensure-kernel.sh" "$BUILD" --with-6.17
status=0
ctest --test-dir "$BUILD" --output-on-failure -j"$(nproc)" -LE slow "$@" || status=$?

# --- sanitizers and fuzzing (fuzz/README.md) ----------------------------------
# The unit tests once more, built with ASan+UBSan (KTSTR_SANITIZE=ON) in
# <build>-asan, and a short smoke run of each libFuzzer target (clang-16) built
# in <build>-fuzz. Both trees configure once and rebuild incrementally.
# KTSTR_SANITIZE=0 skips this block.
if [[ ${KTSTR_SANITIZE:-1} != 0 ]]; then
  build_tree() {  # build_tree DIR: build, show the log's tail on failure
    cmake --build "$1" -- -j"$(nproc)" >"$1/build.log" 2>&1 || {
      tail -50 "$1/build.log" >&2
      echo "test: error: building '$1' failed (full log: $1/build.log)" >&2
      exit 2
    }
  }
  ASAN_BUILD=$BUILD-asan
  if [[ ! -f $ASAN_BUILD/build.ninja ]]; then
    cmake -S "$ROOT" -B "$ASAN_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKTSTR_SANITIZE=ON \
      -DKTSTR_TOOLS_DIR="$BUILD/tools" ${CI:+-DKTSTR_WERROR=ON} >/dev/null
  fi
  build_tree "$ASAN_BUILD"
  # Two unit tests run ktstr with the static fixture scheduler, which cannot be
  # linked with ASan (-static); they run in the main tree above.
  ctest --test-dir "$ASAN_BUILD" --output-on-failure -j"$(nproc)" -L unit \
    -E '^(NeedsSchedExt\.KernelWithoutSchedExtIsRefusedBeforeBoot|BisectBadInput\.FlagsAndKernelCommits)$' || status=1

  FUZZ_BUILD=$BUILD-fuzz
  if command -v clang++-16 >/dev/null &&
     [[ -f $(clang++-16 -print-runtime-dir)/libclang_rt.fuzzer-x86_64.a ]]; then
    if [[ ! -f $FUZZ_BUILD/build.ninja ]]; then
      CC=clang-16 CXX=clang++-16 cmake -S "$ROOT/fuzz" -B "$FUZZ_BUILD" -G Ninja >/dev/null
    fi
    build_tree "$FUZZ_BUILD"
    ctest --test-dir "$FUZZ_BUILD" --output-on-failure -j"$(nproc)" -L fuzz || status=1
  elif [[ ${CI:-} == true ]]; then
    echo "test: error: clang-16 with libFuzzer not found, the fuzz smoke tests cannot run" >&2
    echo "hint: apt-get install clang-16 libclang-rt-16-dev (scripts/setup.sh installs them)" >&2
    status=1
  else
    echo "test: skipping the fuzz smoke tests: clang-16 with libFuzzer not found" >&2
  fi
fi
exit $status
