/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx_tiny: a second, deliberately small sched_ext scheduler for ktstr's own
 * tests. ktstr runs it as an *external* scheduler given by path: a dynamically
 * linked loader that needs shared libraries in the guest.
 *
 * Design: global weighted virtual time (the idea of CFS in a few lines).
 *  - ops.enable starts each task at the current global vtime.
 *  - ops.enqueue inserts the task into one custom DSQ (TINY_DSQ_ID) ordered
 *    by p->scx.dsq_vtime. A task that slept long is clamped to at most one
 *    slice behind vtime_now, so sleeping does not bank unlimited credit.
 *  - ops.dispatch moves the DSQ's lowest-vtime task to the asking CPU.
 *  - ops.running advances vtime_now to the running task's vtime.
 *  - ops.stopping charges the time used, scaled by 100/weight: a task of
 *    weight 200 ages half as fast as one of weight 100 and so runs twice
 *    as long.
 * The DSQ is custom because vtime insertion into built-in DSQs is refused,
 * and the kernel calls ops.dispatch only when SCX_DSQ_GLOBAL is empty.
 *
 * Knobs: .rodata slice_ns (set by the loader from --slice-us) and the .bss
 * switch fail_now: the host writes 1 into it and the next dispatch calls
 * scx_bpf_error("tiny: told to fail"), ejecting the scheduler (exit kind
 * 1025). Only dispatch, so every crash fails in the same program (the
 * failing program is part of the crash signature). ops.dump prints "scx_tiny state: ..." into the exit dump;
 * ops.exit copies the exit record to .bss for the loader.
 */
#include "scx_common.bpf.h"
#include "scx_tiny_common.h"

char _license[] SEC("license") = "GPL";

void scx_bpf_dsq_insert_vtime(struct task_struct *p, u64 dsq_id, u64 slice, u64 vtime,
			      u64 enq_flags) __ksym __weak;

/* Load-time setting (.rodata): the time slice in ns. */
const volatile __u64 slice_ns = TINY_SLICE_DFL_NS;

/* Run-time switch (.bss), written by the host to crash the scheduler. */
bool fail_now;

/* State shown in the dump (__u64: the C++ skeleton has no u64). */
__u64 vtime_now;
__u64 nr_enqueued;
__u64 nr_dispatched;

struct tiny_exit_info exit_info;

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
