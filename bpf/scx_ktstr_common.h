/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared between scx_ktstr.bpf.c and the C++ loader: the exit record that
 * ops.exit fills in .bss and user space reads through the mmap'ed skeleton.
 * Fixed-size fields only, so both sides agree on the layout.
 */
#ifndef KTSTR_SCX_KTSTR_COMMON_H
#define KTSTR_SCX_KTSTR_COMMON_H

#ifndef __VMLINUX_H__
#include <stdint.h>
typedef int32_t ktstr_s32;
typedef int64_t ktstr_s64;
typedef uint32_t ktstr_u32;
#else
typedef s32 ktstr_s32;
typedef s64 ktstr_s64;
typedef u32 ktstr_u32;
#endif

#define KTSTR_EXIT_REASON_LEN 128
#define KTSTR_EXIT_MSG_LEN 1024
/* The kernel's exit dump (sched_ext_ops.exit_dump_len) and our copy of it. */
#define KTSTR_EXIT_DUMP_LEN 32768

/* The custom FIFO dispatch queue created in ops.init. */
#define KTSTR_DSQ_ID 0x6b74ULL

/* scx_exit_kind values user space needs (stable kernel ABI). */
#define KTSTR_EXIT_UNREG 64
#define KTSTR_EXIT_ERROR 1024

struct ktstr_exit_info {
	/* Written last (atomically): non-zero means the other fields are complete. */
	ktstr_s32 kind;
	/* CPU that triggered the exit, -1 when the kernel does not say (6.17). */
	ktstr_s32 exit_cpu;
	ktstr_s64 exit_code;
	ktstr_u32 dump_len;
	char reason[KTSTR_EXIT_REASON_LEN];
	char msg[KTSTR_EXIT_MSG_LEN];
	char dump[KTSTR_EXIT_DUMP_LEN];
};

#endif /* KTSTR_SCX_KTSTR_COMMON_H */
