#!/usr/bin/env bash
# The test suite: set everything up in a tree built with ASan+UBSan, make sure
# a sched_ext kernel is cached (VM tests need one), run every CTest test but
# those labelled `slow`, then a smoke run of each fuzz target.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# Each phase says how long it took (CI logs show where the time goes).
phase_start=$SECONDS
phase_done() {
  echo "test: $1 took $((SECONDS - phase_start)) s (total $SECONDS s)" >&2
  phase_start=$SECONDS
}

# --- one tree, built with ASan+UBSan (KTSTR_SANITIZE=ON) ----------------------
# Everything that runs on the host is instrumented: the unit tests, and the
# ktstr that the VM tests drive, so the sanitizers watch the whole pipeline;
# the guest's binaries stay plain (cmake/ktstr_guest.cmake). One tree instead
# of a plain one plus a sanitized copy of the unit tests: every file compiles
# once. KTSTR_SANITIZE=0 tests the plain tree in build/ instead.
SANITIZE=${KTSTR_SANITIZE:-1}
if [[ $SANITIZE != 0 ]]; then
  BUILD=${KTSTR_BUILD_DIR:-$ROOT/build-asan}
  "$ROOT/scripts/setup.sh" --sanitize "$BUILD"
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
else
  BUILD=${KTSTR_BUILD_DIR:-$ROOT/build}
  "$ROOT/scripts/setup.sh" "$BUILD"
fi
phase_done "set-up and build"
"$ROOT/scripts/ensure-kernel.sh" "$BUILD" --with-6.17
phase_done "kernels"

# --- fuzzing (fuzz/README.md): built while the VMs run -------------------------
# Each libFuzzer target (clang-16) is built in <root>/build-fuzz. VM tests run
# one at a time, so a core is often idle during the suite: the tree builds
# there, at the lowest priority (nice 19), and its smoke tests run afterwards.
FUZZ_BUILD=$ROOT/build-fuzz
have_libfuzzer() {
  command -v clang++-16 >/dev/null &&
    [[ -f $(clang++-16 -print-runtime-dir)/libclang_rt.fuzzer-x86_64.a ]]
}
build_fuzz_tree() {  # the log stays in build-fuzz/build.log
  if [[ ! -f $FUZZ_BUILD/build.ninja ]]; then
    CC=clang-16 CXX=clang++-16 cmake -S "$ROOT/fuzz" -B "$FUZZ_BUILD" -G Ninja >/dev/null
  fi
  nice -n 19 cmake --build "$FUZZ_BUILD" -- -j"$(nproc)" >"$FUZZ_BUILD/build.log" 2>&1
}
background=""
if [[ $SANITIZE != 0 ]] && have_libfuzzer; then
  mkdir -p "$FUZZ_BUILD"
  set -m  # the background build gets its own process group, stopped as a whole
  build_fuzz_tree &
  background=$!
  set +m
  trap '[[ -n $background ]] && kill -- -"$background" 2>/dev/null; wait' EXIT
fi

status=0
ctest --test-dir "$BUILD" --output-on-failure -j"$(nproc)" -LE slow "$@" || status=$?
phase_done "main test suite"

if [[ $SANITIZE != 0 ]]; then
  if [[ -n $background ]]; then
    built=0
    wait "$background" || built=$?
    background=""
    if ((built)); then
      tail -50 "$FUZZ_BUILD/build.log" >&2
      echo "test: error: building '$FUZZ_BUILD' failed (full log: $FUZZ_BUILD/build.log)" >&2
      exit 2
    fi
    phase_done "waiting for the fuzz build"
    ctest --test-dir "$FUZZ_BUILD" --output-on-failure -j"$(nproc)" -L fuzz || status=1
    phase_done "fuzz smoke tests"
  elif [[ ${CI:-} == true ]]; then
    echo "test: error: clang-16 with libFuzzer not found, the fuzz smoke tests cannot run" >&2
    echo "hint: apt-get install clang-16 libclang-rt-16-dev (scripts/setup.sh installs them)" >&2
    status=1
  else
    echo "test: skipping the fuzz smoke tests: clang-16 with libFuzzer not found" >&2
  fi
fi
exit $status
