#!/usr/bin/env bash
# The test suite: set everything up, make sure a sched_ext kernel is cached
# (VM tests need one), then run every CTest test but those labelled `slow`;
# then the unit tests again under ASan+UBSan and a smoke run of each fuzz target.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${KTSTR_BUILD_DIR:-$ROOT/build}
# Each phase says how long it took (CI logs show where the time goes).
phase_start=$SECONDS
phase_done() {
  echo "test: $1 took $((SECONDS - phase_start)) s (total $SECONDS s)" >&2
  phase_start=$SECONDS
}
"$ROOT/scripts/setup.sh" "$BUILD"
phase_done "set-up and build"
"$ROOT/scripts/ensure-kernel.sh" "$BUILD" --with-6.17
phase_done "kernels"

# --- sanitizers and fuzzing (fuzz/README.md): built while the VMs run ---------
# The unit tests once more, built with ASan+UBSan (KTSTR_SANITIZE=ON) in
# <build>-asan, and each libFuzzer target (clang-16) built in <build>-fuzz.
# VM tests run one at a time, so one core is idle most of the suite: the two
# trees build there, at the lowest priority (nice 19), and run afterwards.
# Both trees configure once and rebuild incrementally. KTSTR_SANITIZE=0 skips them.
SANITIZE=${KTSTR_SANITIZE:-1}
ASAN_BUILD=$BUILD-asan
FUZZ_BUILD=$BUILD-fuzz
have_libfuzzer() {
  command -v clang++-16 >/dev/null &&
    [[ -f $(clang++-16 -print-runtime-dir)/libclang_rt.fuzzer-x86_64.a ]]
}
build_tree() {  # build_tree DIR: build, keep the log in DIR/build.log
  nice -n 19 cmake --build "$1" -- -j"$(nproc)" >"$1/build.log" 2>&1
}
build_sanitizer_trees() {
  if [[ ! -f $ASAN_BUILD/build.ninja ]]; then
    cmake -S "$ROOT" -B "$ASAN_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKTSTR_SANITIZE=ON \
      -DKTSTR_TOOLS_DIR="$BUILD/tools" ${CI:+-DKTSTR_WERROR=ON} >/dev/null
  fi
  build_tree "$ASAN_BUILD" || return 1
  if have_libfuzzer; then
    if [[ ! -f $FUZZ_BUILD/build.ninja ]]; then
      CC=clang-16 CXX=clang++-16 cmake -S "$ROOT/fuzz" -B "$FUZZ_BUILD" -G Ninja >/dev/null
    fi
    build_tree "$FUZZ_BUILD" || return 2
  fi
}
background=""
if [[ $SANITIZE != 0 ]]; then
  mkdir -p "$ASAN_BUILD" "$FUZZ_BUILD"
  set -m  # the background build gets its own process group, stopped as a whole
  build_sanitizer_trees &
  background=$!
  set +m
  trap '[[ -n $background ]] && kill -- -"$background" 2>/dev/null; wait' EXIT
fi

status=0
ctest --test-dir "$BUILD" --output-on-failure -j"$(nproc)" -LE slow "$@" || status=$?
phase_done "main test suite"

if [[ -n $background ]]; then
  built=0
  wait "$background" || built=$?
  background=""
  if ((built)); then
    tree=$ASAN_BUILD; ((built == 2)) && tree=$FUZZ_BUILD
    tail -50 "$tree/build.log" >&2
    echo "test: error: building '$tree' failed (full log: $tree/build.log)" >&2
    exit 2
  fi
  phase_done "waiting for the sanitizer and fuzz builds"
  # Two unit tests run ktstr with the static fixture scheduler, which cannot be
  # linked with ASan (-static); they run in the main tree above.
  ctest --test-dir "$ASAN_BUILD" --output-on-failure -j"$(nproc)" -L unit \
    -E '^(NeedsSchedExt\.KernelWithoutSchedExtIsRefusedBeforeBoot|BisectBadInput\.FlagsAndKernelCommits)$' || status=1
  phase_done "sanitizer unit tests"
  if have_libfuzzer; then
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
