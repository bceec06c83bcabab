/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Minimal sched_ext declarations for ktstr's BPF programs: the kfuncs we call
 * (all __weak so one object loads on kernels lacking some of them) and the
 * struct_ops / printf-style macros. Written for ktstr; only what we use.
 */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

/*
 * kfuncs, with the prototype BPF programs call on every kernel series ktstr
 * offers (6.16 ... 7.3; bpf/kfunc-sigs.py prints them from the cached
 * kernels' BTF). 7.1+ give most of them an implicit trailing
 * `struct bpf_prog_aux *aux` (KF_IMPLICIT_ARGS): BTF keeps the public
 * prototype under the plain name and the full one under `<name>_impl`.
 *
 * Debian's 7.1 is the exception for scx_bpf_create_dsq and
 * scx_bpf_dsq_nr_queued: their public prototype keeps the aux argument and
 * the `_impl` twin is missing, so its verifier rejects any program that
 * calls them ("cannot find function scx_bpf_create_dsq_impl in BTF"), with
 * any declaration. Declared as below, libbpf leaves them unresolved there
 * (the prototype differs; __weak makes that no error), bpf_ksym_exists()
 * reads false, and the verifier drops the guarded call before checking it.
 * So callers of these two guard them with bpf_ksym_exists().
 */
s32 scx_bpf_create_dsq(u64 dsq_id, s32 node) __ksym __weak;
s32 scx_bpf_dsq_nr_queued(u64 dsq_id) __ksym __weak;
void scx_bpf_dsq_insert(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym __weak;
bool scx_bpf_dsq_move_to_local(u64 dsq_id) __ksym __weak;
void scx_bpf_kick_cpu(s32 cpu, u64 flags) __ksym __weak;
void scx_bpf_error_bstr(char *fmt, unsigned long long *data, u32 data__sz) __ksym __weak;
void scx_bpf_dump_bstr(char *fmt, unsigned long long *data, u32 data__sz) __ksym __weak;

/* One BPF program per sched_ext_ops member; ".s" makes it sleepable. */
#define BPF_STRUCT_OPS(name, args...) SEC("struct_ops/" #name) BPF_PROG(name, ##args)
#define BPF_STRUCT_OPS_SLEEPABLE(name, args...) SEC("struct_ops.s/" #name) BPF_PROG(name, ##args)

/*
 * The *_bstr kfuncs take a format plus an array of u64 arguments. Pack the
 * variadic arguments with libbpf's ___bpf_fill (as BPF_SEQ_PRINTF does).
 */
#define ktstr_bstr_call(kfunc, fmt, args...)                                   \
	({                                                                     \
		static char ___fmt[] = fmt;                                    \
		unsigned long long ___param[___bpf_narg(args)];                \
		_Pragma("GCC diagnostic push")                                 \
		_Pragma("GCC diagnostic ignored \"-Wint-conversion\"")         \
		___bpf_fill(___param, args);                                   \
		_Pragma("GCC diagnostic pop")                                  \
		kfunc(___fmt, ___param, sizeof(___param));                     \
	})

#define ktstr_stringify_(x) #x
#define ktstr_stringify(x) ktstr_stringify_(x)

/*
 * scx_bpf_error() with a "FILE:LINE: " prefix, so the exit message names the
 * source line (the build maps __FILE__ to a path relative to the project).
 */
#define scx_bpf_error(fmt, args...)                                            \
	ktstr_bstr_call(scx_bpf_error_bstr,                                    \
			__FILE__ ":" ktstr_stringify(__LINE__) ": " fmt, ##args)

/* A line in the exit dump (ops.dump / dump_cpu / dump_task). */
#define scx_bpf_dump(fmt, args...) ktstr_bstr_call(scx_bpf_dump_bstr, fmt, ##args)

/* Hide a value from the compiler so it cannot fold or drop the code using it. */
#define ktstr_opaque(x) asm volatile("" : "+r"(x))
