#!/bin/sh
# Builds build/scx_bisect from this checkout (the --build of ktstr bisect's
# tests). Usage: sh build.sh CLANG BPFTOOL BPF_INCLUDE LIBBPF_INCLUDE LIBBPF_A [CXX]
set -eu
CLANG=$1 BPFTOOL=$2 BPF_INCLUDE=$3 LIBBPF_INCLUDE=$4 LIBBPF_A=$5 CXX=${6:-c++}
mkdir -p build
"$CLANG" -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 -fms-extensions -Wno-microsoft-anon-tag \
  -I "$BPF_INCLUDE" -I . -I "$LIBBPF_INCLUDE" -c scx_tiny.bpf.c -o build/scx_tiny.bpf.o
"$BPFTOOL" gen skeleton build/scx_tiny.bpf.o name scx_tiny > build/scx_tiny.skel.h
"$CXX" -std=c++20 -O1 -I build -I . -I "$LIBBPF_INCLUDE" scx_tiny.cpp -o build/scx_bisect "$LIBBPF_A" -lelf -lz -lzstd
