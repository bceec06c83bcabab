/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx_tiny for `ktstr bisect`'s tests: tests/vm/test_bisect.cpp commits this
 * file, with scx_tiny.cpp, scx_tiny_common.h, build.sh and a generated
 * bisect_knobs.h, into a generated git repository, one knob change per
 * commit. The scheduler is tests/sched/scx_tiny.bpf.c plus two injected
 * crashes set by the knobs:
 *  - CRASH_PCT: at load, ops.init draws once; with probability CRASH_PCT %
 *    the scheduler calls scx_bpf_error("bisect: injected crash") at its
 *    CRASH_AFTER-th enqueue. The draw is splitmix64(ktstr_seed) when the
 *    loader set ktstr_seed from the run's KTSTR_SEED (so a seeded run, and a
 *    bisect with --seed, is the same every time), else bpf_get_prandom_u32().
 *  - OTHER_CRASH: scx_bpf_error("bisect: other crash") at the
 *    OTHER_AFTER-th enqueue (earlier than the injected one), every load.
 *  - BROKEN: the file does not compile.
 *  - CRASH_FROM_KERNEL (optional, a KERNEL_VERSION()): the injected crash
 *    is armed on every load on that kernel version or newer (the kernel
 *    version ladder test), read from libbpf's LINUX_KERNEL_VERSION.
 */
#include "scx_common.bpf.h"
#include "scx_tiny_common.h"
#include "bisect_knobs.h"

#if BROKEN
this commit does not build;
#endif

#ifndef CRASH_FROM_KERNEL
#define CRASH_FROM_KERNEL 0
#endif
#ifndef KERNEL_VERSION
#define KERNEL_VERSION(a, b, c) (((a) << 16) + ((b) << 8) + ((c) > 255 ? 255 : (c)))
#endif

extern int LINUX_KERNEL_VERSION __kconfig;

#define CRASH_AFTER 64
#define OTHER_AFTER 32

char _license[] SEC("license") = "GPL";

void scx_bpf_dsq_insert_vtime(struct task_struct *p, u64 dsq_id, u64 slice, u64 vtime,
			      u64 enq_flags) __ksym __weak;

/* Load-time setting (.rodata): the time slice in ns. */
const volatile __u64 slice_ns = TINY_SLICE_DFL_NS;

/*
 * Load-time (.rodata): the run's KTSTR_SEED, which scx_tiny.cpp sets when
 * the environment has one (it looks for these names in the skeleton).
 */
const volatile bool ktstr_seeded;
const volatile __u64 ktstr_seed;

/* Run-time switch (.bss), written by the host to crash the scheduler. */
bool fail_now;

/* State shown in the dump (__u64: the C++ skeleton has no u64). */
__u64 vtime_now;
__u64 nr_enqueued;
__u64 nr_dispatched;

struct tiny_exit_info exit_info;

/* Decided once per load in ops.init; counted in ops.enqueue. */
bool crash_armed;
__u64 nr_checked;

/* splitmix64 (core/splitmix64.hpp): consecutive seeds, as ktstr hands
 * to consecutive runs, give unrelated draws. */
static __u64 mix_seed(__u64 x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static bool vtime_before(u64 a, u64 b)
{
	return (s64)(a - b) < 0;
}

static bool tiny_check_fail(void)
{
	if (!fail_now)
		return false;
	scx_bpf_error("tiny: told to fail");
	return true;
}

void BPF_STRUCT_OPS(tiny_enqueue, struct task_struct *p, u64 enq_flags)
{
	u64 vtime = p->scx.dsq_vtime;

	if (tiny_check_fail())
		return;
	if (OTHER_CRASH || crash_armed) {
		__u64 n = __sync_fetch_and_add(&nr_checked, 1) + 1;

		if (OTHER_CRASH && n == OTHER_AFTER) {
			scx_bpf_error("bisect: other crash");
			return;
		}
		if (crash_armed && n == CRASH_AFTER) {
			scx_bpf_error("bisect: injected crash");
			return;
		}
	}
	/* Limit the credit a long sleeper gets to one slice. */
	if (vtime_before(vtime, vtime_now - slice_ns))
		vtime = vtime_now - slice_ns;
	__sync_fetch_and_add(&nr_enqueued, 1);
	scx_bpf_dsq_insert_vtime(p, TINY_DSQ_ID, slice_ns, vtime, enq_flags);
}

void BPF_STRUCT_OPS(tiny_dispatch, s32 cpu, struct task_struct *prev)
{
	if (tiny_check_fail())
		return;
	if (scx_bpf_dsq_move_to_local(TINY_DSQ_ID))
		__sync_fetch_and_add(&nr_dispatched, 1);
}

void BPF_STRUCT_OPS(tiny_running, struct task_struct *p)
{
	/* Racy across CPUs but monotonic enough: vtime_now only orders wakers. */
	if (vtime_before(vtime_now, p->scx.dsq_vtime))
		vtime_now = p->scx.dsq_vtime;
}

void BPF_STRUCT_OPS(tiny_stopping, struct task_struct *p, bool runnable)
{
	u64 used = slice_ns - p->scx.slice;

	/* p->scx.slice is what is left of the slice; it is 0 if it ran out. */
	if (p->scx.slice > slice_ns)
		used = 0;
	p->scx.dsq_vtime += used * 100 / (p->scx.weight ? p->scx.weight : 100);
}

void BPF_STRUCT_OPS(tiny_enable, struct task_struct *p)
{
	p->scx.dsq_vtime = vtime_now;
}

void BPF_STRUCT_OPS(tiny_dump, struct scx_dump_ctx *dctx)
{
	scx_bpf_dump("scx_tiny state: fail_now=%d slice_ns=%llu vtime_now=%llu\n", fail_now,
		     slice_ns, vtime_now);
	scx_bpf_dump("  enqueued=%llu dispatched=%llu queued=%d\n", nr_enqueued, nr_dispatched,
		     scx_bpf_dsq_nr_queued(TINY_DSQ_ID));
}

s32 BPF_STRUCT_OPS_SLEEPABLE(tiny_init)
{
	__u64 draw = ktstr_seeded ? mix_seed(ktstr_seed) : bpf_get_prandom_u32();

	crash_armed = draw % 100 < CRASH_PCT;
	if (CRASH_FROM_KERNEL && LINUX_KERNEL_VERSION >= CRASH_FROM_KERNEL)
		crash_armed = true;
	return scx_bpf_create_dsq(TINY_DSQ_ID, -1);
}

void BPF_STRUCT_OPS(tiny_exit, struct scx_exit_info *ei)
{
	exit_info.exit_code = ei->exit_code;
	bpf_probe_read_kernel_str(exit_info.reason, sizeof(exit_info.reason), ei->reason);
	bpf_probe_read_kernel_str(exit_info.msg, sizeof(exit_info.msg), ei->msg);
	if (ei->dump)
		bpf_probe_read_kernel_str(exit_info.dump, sizeof(exit_info.dump), ei->dump);
	/* Publish last: the loader reads the strings once kind is non-zero. */
	__sync_val_compare_and_swap(&exit_info.kind, 0, ei->kind);
}

SEC(".struct_ops.link")
struct sched_ext_ops tiny_ops = {
	.enqueue = (void *)tiny_enqueue,
	.dispatch = (void *)tiny_dispatch,
	.running = (void *)tiny_running,
	.stopping = (void *)tiny_stopping,
	.enable = (void *)tiny_enable,
	.dump = (void *)tiny_dump,
	.init = (void *)tiny_init,
	.exit = (void *)tiny_exit,
	.name = "tiny",
};
