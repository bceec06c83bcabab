#!/usr/bin/env bash
# Make sure the ktstr cache holds the kernels the demo and the VM tests use:
# the default sched_ext kernel (newest 7.3/7.2/6.17 the archive lists) and,
# for the test suite, a 6.17 kernel (no sched_ext_exit tracepoint: the
# repro fallback path). Usage: ensure-kernel.sh BUILD [--with-6.17]
set -euo pipefail
BUILD=$1
KTSTR=$BUILD/bin/ktstr
list=$("$KTSTR" kernel list --json)
if ! grep -q '"sched_ext": *true' <<<"$list"; then
  "$KTSTR" kernel fetch
  list=$("$KTSTR" kernel list --json)
fi
if [[ ${2:-} == --with-6.17 ]] && ! grep -q '"version": *"6\.17\.' <<<"$list"; then
  "$KTSTR" kernel fetch 6.17
fi
