#!/usr/bin/env bash
# Sets up everything ktstr needs on a Debian 12 machine, idempotently:
# packages (bookworm + bookworm-backports), a static libbpf >= 1.5 built from
# Debian's source package into the build tree, bpftool, and the CMake build.
# Usage: scripts/setup.sh [--sanitize] [BUILD_DIR]   (default: build)
#   --sanitize: configure BUILD_DIR with ASan+UBSan (KTSTR_SANITIZE, the tree
#   scripts/test.sh tests; the guest's binaries stay plain).
# The archive host is never written down: it is read from the system's apt
# configuration at run time.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SANITIZE=OFF
if [[ ${1:-} == --sanitize ]]; then SANITIZE=ON; shift; fi
BUILD=${1:-$ROOT/build}
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
TOOLS=$BUILD/tools
LIBBPF_VERSION=1.5.0-3

PKGS=(build-essential cmake ninja-build pkg-config git dpkg-dev
  libcli11-dev libspdlog-dev libfmt-dev libsqlite3-dev sqlite3 libpcre2-dev
  libtomlplusplus-dev nlohmann-json3-dev libexpected-dev libarchive-dev
  libzstd-dev liblzma-dev zlib1g-dev liblz4-dev libssl-dev libelf-dev
  libgit2-dev libxxhash-dev libgtest-dev libgmock-dev libcap-dev libxml2-dev
  clang-16 llvm-16 libclang-rt-16-dev qemu-system-x86 dwarves ccache
  flex bison bc cpio kmod lz4  # `ktstr kernel build` (kernel make, lz4 image)
  zsh fish  # the tests of `ktstr completion` load its scripts in them
  slurmctld slurmd slurm-client munge)  # `--executor slurm` and its one-node test cluster

log() { printf 'setup: %s\n' "$*" >&2; }

# --- 1. packages ------------------------------------------------------------
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${#missing[@]} packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. a private apt state for newer suites (download only) -----------------
mirror_uri() {
  local u=""
  if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
    u=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources)
  fi
  if [[ -z $u && -f /etc/apt/sources.list ]]; then
    u=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
  fi
  [[ -n $u ]] || { echo "setup: error: no Debian archive found in the apt configuration" >&2; exit 2; }
  printf '%s\n' "$u"
}
APT_DIR=$TOOLS/apt
private_apt() {
  local key=/usr/share/keyrings/debian-archive-keyring.gpg uri
  uri=$(mirror_uri)
  mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
  cat > "$APT_DIR/sources.list" <<SRC
deb [signed-by=$key] $uri bookworm-backports main
deb-src [signed-by=$key] $uri trixie main
SRC
  APT_OPTS=(-o "Dir::Etc::sourcelist=$APT_DIR/sources.list" -o Dir::Etc::sourceparts=/dev/null
    -o "Dir::State::Lists=$APT_DIR/lists" -o "Dir::Cache=$APT_DIR/cache" -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  if [[ ! -f $APT_DIR/updated ]]; then
    log "reading bookworm-backports and trixie source indexes"
    apt-get "${APT_OPTS[@]}" update -qq
    touch "$APT_DIR/updated"
  fi
}

# --- 3. bpftool 7.5 (bookworm-backports, built for bookworm) -----------------
if [[ ! -x $TOOLS/bin/bpftool ]]; then
  private_apt
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get "${APT_OPTS[@]}" download -qq bpftool/bookworm-backports)
  dpkg-deb -x "$tmp"/bpftool_*.deb "$tmp/x"
  mkdir -p "$TOOLS/bin"
  install -m755 "$tmp/x/usr/sbin/bpftool" "$TOOLS/bin/bpftool.new"
  mv "$TOOLS/bin/bpftool.new" "$TOOLS/bin/bpftool"
  rm -rf "$tmp"
  log "bpftool: $("$TOOLS/bin/bpftool" version | head -1)"
fi

# --- 4. libbpf 1.5 static, from Debian's trixie source package ----------------
LIBBPF=$TOOLS/libbpf
if [[ ! -f $LIBBPF/lib64/libbpf.a && ! -f $LIBBPF/lib/libbpf.a ]]; then
  private_apt
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get "${APT_OPTS[@]}" source --download-only -qq "libbpf=$LIBBPF_VERSION" >/dev/null)
  (cd "$tmp" && dpkg-source --no-check -x libbpf_*.dsc src >/dev/null)
  log "building libbpf $LIBBPF_VERSION (static)"
  make -s -C "$tmp/src/src" BUILD_STATIC_ONLY=y PREFIX="$LIBBPF.tmp" LIBDIR="$LIBBPF.tmp/lib" \
    OBJDIR="$tmp/obj" -j"$(nproc)" install >/dev/null
  rm -rf "$LIBBPF"; mv "$LIBBPF.tmp" "$LIBBPF"
  rm -rf "$tmp"
fi

# --- 5. configure and build ----------------------------------------------------
# The plain tree uses the default compiler (g++ on Debian, what users build
# with; CC/CXX choose another). The sanitizer tree, which CI builds cold, is
# built with clang++-16: it compiles our files with ASan+UBSan in 0.75x the
# CPU time of g++ 12 (measured side by side on ten files), and the suite sees a
# second compiler's warnings (-Werror in CI).
COMPILERS=()
if [[ $SANITIZE == ON ]]; then
  COMPILERS=(-DCMAKE_C_COMPILER="$(command -v clang-16)" -DCMAKE_CXX_COMPILER="$(command -v clang++-16)")
fi
if [[ ! -f $BUILD/build.ninja ]]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKTSTR_SANITIZE=$SANITIZE \
    "${COMPILERS[@]}" -DKTSTR_TOOLS_DIR="$TOOLS" ${CI:+-DKTSTR_WERROR=ON} >/dev/null
elif ! grep -q "^KTSTR_SANITIZE:BOOL=$SANITIZE\$" "$BUILD/CMakeCache.txt" ||
  { ((${#COMPILERS[@]})) && ! grep -qx "CMAKE_CXX_COMPILER:[A-Z]*=${COMPILERS[1]#*=}" "$BUILD/CMakeCache.txt"; }; then
  echo "setup: error: '$BUILD' was configured with another KTSTR_SANITIZE or compiler (want $SANITIZE${COMPILERS:+, ${COMPILERS[1]#*=}})" >&2
  echo "hint: use another build directory, or remove '$BUILD'" >&2
  exit 2
fi
build_start=$SECONDS
cmake --build "$BUILD" -- -j"$(nproc)" >"$BUILD/build.log" 2>&1 || {
  tail -50 "$BUILD/build.log" >&2
  echo "setup: error: the build failed (full log: $BUILD/build.log)" >&2
  exit 2
}
log "built '$BUILD' in $((SECONDS - build_start)) s"
