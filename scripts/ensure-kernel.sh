#!/usr/bin/env bash
# Fetch the default sched_ext kernel into the ktstr cache unless one is there.
set -euo pipefail
BUILD=$1
KTSTR=$BUILD/bin/ktstr
if ! "$KTSTR" kernel list --json | grep -q '"sched_ext": *true'; then
  "$KTSTR" kernel fetch
fi
