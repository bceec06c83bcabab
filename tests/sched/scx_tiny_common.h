/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared between scx_tiny.bpf.c and its loader scx_tiny.cpp: the exit record
 * ops.exit writes into .bss and the loader reads through the mmap'ed skeleton.
 * Fixed-size fields only, so BPF and C++ agree on the layout.
 */
#ifndef KTSTR_SCX_TINY_COMMON_H
#define KTSTR_SCX_TINY_COMMON_H

#ifndef __VMLINUX_H__
#include <stdint.h>
typedef int32_t tiny_s32;
typedef int64_t tiny_s64;
#else
typedef s32 tiny_s32;
typedef s64 tiny_s64;
#endif

#define TINY_EXIT_REASON_LEN 128
#define TINY_EXIT_MSG_LEN 1024
/* sched_ext_ops.exit_dump_len and the size of our copy of the dump. */
#define TINY_EXIT_DUMP_LEN 16384

/* The one vtime-ordered dispatch queue, created in ops.init. */
#define TINY_DSQ_ID 0x7479ULL

/* Default time slice; the loader's --slice-us overrides it. */
#define TINY_SLICE_DFL_NS 5000000ULL

/* scx_exit_kind: kinds at or above this mean the kernel ejected us. */
#define TINY_EXIT_ERROR 1024

struct tiny_exit_info {
	/* Written last, atomically: non-zero means the strings are complete. */
	tiny_s32 kind;
	tiny_s32 pad;
	tiny_s64 exit_code;
	char reason[TINY_EXIT_REASON_LEN];
	char msg[TINY_EXIT_MSG_LEN];
	char dump[TINY_EXIT_DUMP_LEN];
};

#endif /* KTSTR_SCX_TINY_COMMON_H */
