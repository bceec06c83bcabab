#!/bin/sh
# A stand-in for qemu-system-x86_64 (tests only; select it with KTSTR_QEMU).
# With `-accel kvm` on its argv it behaves like QEMU on a host where KVM
# cannot run a real kernel, then hangs like QEMU does (the guest is paused,
# QEMU does not exit):
#   KTSTR_FAKE_QEMU_KVM=error  (default) print QEMU's KVM failure text
#   KTSTR_FAKE_QEMU_KVM=silent print nothing
# and appends "kvm <pid>" to $KTSTR_FAKE_QEMU_MARKER (when set), so a test
# can count KVM attempts and check the process is gone.
# Any other accelerator: exec the real QEMU with the same argv.
kvm=0
prev=
for a in "$@"; do
  if [ "$prev" = "-accel" ]; then
    case "$a" in kvm|kvm,*) kvm=1 ;; esac
  fi
  prev=$a
done
if [ "$kvm" = 0 ]; then
  exec "${KTSTR_FAKE_QEMU_REAL:-qemu-system-x86_64}" "$@"
fi
if [ -n "$KTSTR_FAKE_QEMU_MARKER" ]; then
  echo "kvm $$" >> "$KTSTR_FAKE_QEMU_MARKER"
fi
if [ "${KTSTR_FAKE_QEMU_KVM:-error}" = error ]; then
  # What QEMU 7.2 printed on the reporter's host (accel/kvm/kvm-all.c).
  cat >&2 <<'TEXT'
KVM internal error. Suberror: 1
extra data[0]: 0x0000000000000000
extra data[1]: 0x0000000000000030
emulation failure
RAX=0000000000000000 RBX=0000000000000000 RCX=0000000000000000 RDX=0000000000000000
RIP=0000000001000000 RFL=00010046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0
TEXT
fi
exec sleep 3600
