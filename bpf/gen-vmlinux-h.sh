#!/bin/sh
# Regenerate bpf/include/vmlinux.h from a kernel's BTF.
#   bpf/gen-vmlinux-h.sh <bzImage|vmlinux> [bpftool]
# A vmlinux ELF (e.g. the one the ktstr kernel cache extracts) is used as is;
# from a bzImage the zstd-compressed vmlinux is cut out at the zstd frame
# magic (28 b5 2f fd) and decompressed. The committed header comes from
# Debian's 7.3.4+deb13-cloud-amd64; one object serves 6.17 too via CO-RE.
set -eu
image=${1:?usage: gen-vmlinux-h.sh <bzImage|vmlinux> [bpftool]}
here=$(cd "$(dirname "$0")" && pwd)
bpftool=${2:-$here/../build/tools/bin/bpftool}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ "$(head -c 4 "$image" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
	vmlinux=$image
else
	offset=$(LC_ALL=C grep -obUaP '\x28\xb5\x2f\xfd' "$image" | head -n 1 | cut -d: -f1)
	[ -n "$offset" ] || { echo "gen-vmlinux-h.sh: no zstd frame in '$image'" >&2; exit 1; }
	vmlinux=$tmp/vmlinux
	# zstd complains about the bzImage tail after the frame; the ELF is complete.
	tail -c +$((offset + 1)) "$image" | zstd -dc > "$vmlinux" 2>/dev/null || true
	[ "$(head -c 4 "$vmlinux" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] ||
		{ echo "gen-vmlinux-h.sh: no vmlinux ELF inside '$image'" >&2; exit 1; }
fi
"$bpftool" btf dump file "$vmlinux" format c > "$tmp/vmlinux.h"
mv "$tmp/vmlinux.h" "$here/include/vmlinux.h"
echo "wrote $here/include/vmlinux.h ($(wc -l < "$here/include/vmlinux.h") lines)"
