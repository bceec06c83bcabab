#!/usr/bin/env python3
"""Print the BTF prototypes of kfuncs in each kernel given, as a table.

    bpf/kfunc-sigs.py [--bpftool PATH] KFUNC[,KFUNC...] VMLINUX...

For every kfunc it prints the public prototype (what a BPF program calls)
and its variants: `<name>_impl` (the full prototype of a KF_IMPLICIT_ARGS
kfunc, 7.1+), `<name>___suffix` (versions the kernel keeps side by side) and
`__<name>_impl`. A kernel without the kfunc shows "absent". The vmlinux ELF
files are the ones the kernel cache keeps
(~/.cache/ktstr/artifacts/kernels/<id>/vmlinux); `ktstr kernel list` names
them. Use it to check the declarations in include/scx_common.bpf.h against
every kernel series ktstr offers.
"""
import argparse
import os
import re
import subprocess
import sys

HEAD = re.compile(r"^\[(\d+)\] (\S+) '([^']*)'(.*)$")
MEMBER = re.compile(r"^\t'([^']*)' type_id=(\d+)")


def load_btf(bpftool, vmlinux):
    """{type id: {kind, name, attrs, members}} from `bpftool btf dump` (raw)."""
    out = subprocess.run([bpftool, "btf", "dump", "file", vmlinux], check=True,
                         capture_output=True, text=True).stdout
    types, cur = {}, None
    for line in out.splitlines():
        m = HEAD.match(line)
        if m:
            cur = {"kind": m[2], "name": m[3], "members": [],
                   "attrs": dict(re.findall(r"(\w+)=(-?\w+)", m[4]))}
            types[int(m[1])] = cur
        elif cur is not None:
            mm = MEMBER.match(line)
            if mm:
                cur["members"].append((mm[1], int(mm[2])))
    return types


def type_name(types, tid):
    if tid == 0:
        return "void"
    t = types[tid]
    if t["kind"] == "PTR":
        return type_name(types, int(t["attrs"]["type_id"])) + " *"
    if t["kind"] in ("CONST", "VOLATILE", "RESTRICT", "TYPE_TAG"):
        return type_name(types, int(t["attrs"]["type_id"]))
    if t["kind"] in ("STRUCT", "UNION"):
        return t["kind"].lower() + " " + t["name"]
    if t["kind"] in ("ENUM", "ENUM64"):
        return "enum " + t["name"]
    return t["name"]


def prototype(types, func):
    proto = types[int(func["attrs"]["type_id"])]
    params = ", ".join(f"{type_name(types, tid)} {name}".replace("* ", "*")
                       for name, tid in proto["members"])
    ret = type_name(types, int(proto["attrs"]["ret_type_id"]))
    return f"{ret} {func['name']}({params})"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bpftool", default=os.path.join(here, "..", "build", "tools", "bin", "bpftool"))
    ap.add_argument("kfuncs", help="comma-separated kfunc names")
    ap.add_argument("vmlinux", nargs="+")
    args = ap.parse_args()
    names = [n for n in args.kfuncs.split(",") if n]
    for vmlinux in args.vmlinux:
        types = load_btf(args.bpftool, vmlinux)
        funcs = {t["name"]: t for t in types.values() if t["kind"] == "FUNC"}
        print(f"== {vmlinux}")
        for name in names:
            variant = re.compile(re.escape(name) + r"(_impl|___\w+)|__" + re.escape(name) + "_impl")
            found = sorted(f for f in funcs if f == name or variant.fullmatch(f))
            if name not in funcs:
                print(f"  {name}: absent")
            for f in found:
                print("  " + prototype(types, funcs[f]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
