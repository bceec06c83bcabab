/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx-ktstr: ktstr's fixture sched_ext scheduler.
 *
 * Design: a plain global FIFO. ops.enqueue appends every task to one custom
 * dispatch queue (KTSTR_DSQ_ID, created in the sleepable ops.init) and
 * ops.dispatch moves the head of that queue to the CPU asking for work. A
 * custom DSQ is needed because the kernel only calls ops.dispatch when the
 * built-in global DSQ is empty, so a scheduler that only used SCX_DSQ_GLOBAL
 * would never run its own dispatch code.
 *
 * Where the kernel does not let BPF create a DSQ (Debian's 7.1: see
 * scx_common.bpf.h; bpf_ksym_exists(scx_bpf_create_dsq) is false), the same
 * object runs on SCX_DSQ_GLOBAL instead: ops.init creates nothing, ops.enqueue
 * inserts into the global queue, and ops.dispatch, called whenever a CPU runs
 * dry, has nothing to move but still crashes on demand. `stall` then holds
 * tasks back in ops.enqueue (never inserted, they starve the same way), and
 * `degrade` only shortens the slice.
 *
 * Tests make it misbehave on purpose. The host writes globals in the running
 * scheduler's maps (ktstr-mapwrite .bss <var> <value>):
 *   crash   - the next ops.dispatch calls scx_bpf_error(): exit kind 1025.
 *   stall   - ops.dispatch stops draining the queue; queued tasks starve and
 *             the kernel watchdog ejects the scheduler (timeout_ms below).
 *   degrade - scheduling gets worse but stays alive: a short slice and only
 *             every KTSTR_DEGRADE_EVERY-th dispatch call makes progress.
 *   slow    - every dispatch first burns a bounded busy loop.
 *   hog_cpus - a CPU mask: a CPU whose bit is set never preempts the task it
 *             runs. Its ops.dispatch moves nothing while that task is still
 *             runnable, so the kernel keeps it running (ENQ_LAST is not set)
 *             and the tasks that can run only there wait, without a context
 *             switch on that CPU; the other CPUs go on. A higher class that
 *             takes the CPU at the end of a slice (the kernel then enqueues
 *             the task) gives it back: ops.enqueue puts the task the CPU
 *             keeps (hog_pid) at the head of its local DSQ. A no-preemption bug
 *             the workload checks must catch (tests/vm/specs/checks_fail.toml);
 *             clearing the bit ends it at the next slice expiry. Only with our
 *             own DSQ: on SCX_DSQ_GLOBAL the kernel feeds the CPUs itself.
 * The loader sets two read-only switches before load, for testing the
 * verifier-failure path (normal runs keep them false, and the verifier prunes
 * the guarded code because .rodata is frozen and known at load time):
 *   fail_verify - an unbounded map-value access the verifier rejects.
 *   verify_loop - a loop the verifier walks iteration by iteration before an
 *                 out-of-bounds access: a long, repetitive rejection log.
 *
 * ops.exit copies the kernel's exit record (kind, reason, message and the
 * debug dump) into .bss where the loader, polling the mmap'ed map, prints it
 * the way scx tools do. ops.dump adds this scheduler's state to that dump.
 */
#include "scx_common.bpf.h"
#include "scx_ktstr_common.h"

char _license[] SEC("license") = "GPL";

#define KTSTR_DEGRADE_EVERY 4
#define KTSTR_SLOW_LOOPS 100000
#define KTSTR_TABLE_LEN 64

/* Load-time switches (.rodata), set by the loader only to test failures. */
const volatile bool fail_verify;
const volatile bool verify_loop;

/* Run-time switches (.bss), written by the host while the scheduler runs. */
bool crash;
bool stall;
bool degrade;
bool slow;
__u64 hog_cpus;

/* Counters shown in the dump (__u64: the C++ skeleton knows no u64). */
__u64 nr_enqueued;
__u64 nr_dispatched;
__u64 ktstr_alloc_count;
__u64 degrade_cnt;
__u64 slow_cnt;

/* The task each hogged CPU keeps (see hog_cpus above). */
int hog_pid[64]; /* int: the C++ skeleton knows no s32 */

/* Scratch table for the verifier-failure paths. */
__u64 ktstr_table[KTSTR_TABLE_LEN];

struct ktstr_exit_info exit_info;

/* Whether this kernel lets BPF create our DSQ (see the top of the file). */
#define ktstr_own_dsq() bpf_ksym_exists(scx_bpf_create_dsq)

/* Tasks queued on our DSQ; -1 when the kernel cannot tell BPF. */
static __always_inline s32 ktstr_nr_queued(void)
{
	if (ktstr_own_dsq() && bpf_ksym_exists(scx_bpf_dsq_nr_queued))
		return scx_bpf_dsq_nr_queued(KTSTR_DSQ_ID);
	return -1;
}

/* Per-task context: allocated in ops.init_task, counted in ktstr_alloc_count. */
struct ktstr_task_ctx {
	u64 enqueues;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ktstr_task_ctx);
} ktstr_task_ctxs SEC(".maps");

static long ktstr_slow_step(u64 index, void *ctx)
{
	(*(u64 *)ctx)++;
	return 0;
}

void BPF_STRUCT_OPS(ktstr_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct ktstr_task_ctx *tctx;
	u64 slice = SCX_SLICE_DFL;

	if (fail_verify) {
		/* Unbounded index into a 64-entry table: rejected by the verifier. */
		u32 index = bpf_get_prandom_u32();

		ktstr_table[0] += ktstr_table[index];
	}

	tctx = bpf_task_storage_get(&ktstr_task_ctxs, p, 0, 0);
	if (tctx)
		tctx->enqueues++;
	__sync_fetch_and_add(&nr_enqueued, 1);
	if (degrade)
		slice = SCX_SLICE_DFL / 8;
	if (ktstr_own_dsq()) {
		s32 cpu = scx_bpf_task_cpu(p);

		/* Not on a wakeup: only the task the CPU kept, put back while runnable. */
		if (cpu >= 0 && cpu < 64 && (hog_cpus & (1ULL << cpu)) && hog_pid[cpu] == p->pid &&
		    !(enq_flags & SCX_ENQ_WAKEUP)) {
			scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice, enq_flags | SCX_ENQ_HEAD);
			return;
		}
		scx_bpf_dsq_insert(p, KTSTR_DSQ_ID, slice, enq_flags);
		return;
	}
	/* No DSQ of our own: a stalled scheduler holds its tasks here. */
	if (!stall)
		scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, slice, enq_flags);
}

void BPF_STRUCT_OPS(ktstr_dispatch, s32 cpu, struct task_struct *prev)
{
	if (verify_loop) {
		u32 i;

		/* The verifier walks all iterations (i is precise: it indexes). */
#pragma clang loop unroll(disable)
		for (i = 0; i < 256; i++)
			ktstr_table[i & (KTSTR_TABLE_LEN - 1)] += i;
		ktstr_opaque(i); /* i == 256: index 2 MiB in, past all of .bss */
		ktstr_table[0] += ktstr_table[i << 10];
	}

	if (crash) {
		scx_bpf_error("ktstr: host-triggered crash");
		return;
	}
	if (stall)
		return;
	/* A hogged CPU keeps @prev while it is runnable: no dispatch at all. */
	if (cpu >= 0 && cpu < 64 && (hog_cpus & (1ULL << cpu)) && prev &&
	    (prev->scx.flags & SCX_TASK_QUEUED)) {
		hog_pid[cpu] = prev->pid;
		return;
	}
	if (slow) {
		u64 steps = 0;

		bpf_loop(KTSTR_SLOW_LOOPS, ktstr_slow_step, &steps, 0);
		__sync_fetch_and_add(&slow_cnt, 1);
	}
	/* On SCX_DSQ_GLOBAL the kernel feeds the CPUs itself. */
	if (!ktstr_own_dsq())
		return;
	if (degrade && (__sync_fetch_and_add(&degrade_cnt, 1) % KTSTR_DEGRADE_EVERY)) {
		/* Skip this round but ask again, so queued tasks still run. */
		if (ktstr_nr_queued() != 0)
			scx_bpf_kick_cpu(cpu, 0);
		return;
	}
	if (scx_bpf_dsq_move_to_local(KTSTR_DSQ_ID))
		__sync_fetch_and_add(&nr_dispatched, 1);
}

s32 BPF_STRUCT_OPS(ktstr_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	if (!bpf_task_storage_get(&ktstr_task_ctxs, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE))
		return -12; /* -ENOMEM */
	__sync_fetch_and_add(&ktstr_alloc_count, 1);
	return 0;
}

void BPF_STRUCT_OPS(ktstr_dump, struct scx_dump_ctx *dctx)
{
	scx_bpf_dump("ktstr scheduler state: stall=%d crash=%d degrade=%d slow=%d hog_cpus=0x%llx\n",
		     stall, crash, degrade, slow, hog_cpus);
	scx_bpf_dump("  rodata: fail_verify=%d verify_loop=%d\n", fail_verify, verify_loop);
	scx_bpf_dump("  enqueued=%llu dispatched=%llu queued=%d\n", nr_enqueued, nr_dispatched,
		     ktstr_nr_queued());
	scx_bpf_dump("  ktstr_alloc_count=%llu degrade_cnt=%llu slow_cnt=%llu\n",
		     ktstr_alloc_count, degrade_cnt, slow_cnt);
}

s32 BPF_STRUCT_OPS_SLEEPABLE(ktstr_init)
{
	if (!ktstr_own_dsq())
		return 0;
	return scx_bpf_create_dsq(KTSTR_DSQ_ID, -1);
}

void BPF_STRUCT_OPS(ktstr_exit, struct scx_exit_info *ei)
{
	exit_info.exit_cpu = -1;
	if (bpf_core_field_exists(ei->exit_cpu))
		exit_info.exit_cpu = ei->exit_cpu;
	exit_info.exit_code = ei->exit_code;
	bpf_probe_read_kernel_str(exit_info.reason, sizeof(exit_info.reason), ei->reason);
	bpf_probe_read_kernel_str(exit_info.msg, sizeof(exit_info.msg), ei->msg);
	if (ei->dump) {
		long len = bpf_probe_read_kernel_str(exit_info.dump, sizeof(exit_info.dump), ei->dump);

		exit_info.dump_len = len > 0 ? len - 1 : 0;
	}
	/* Publish last: the loader reads the strings once kind is non-zero. */
	__sync_val_compare_and_swap(&exit_info.kind, 0, ei->kind);
}

SEC(".struct_ops.link")
struct sched_ext_ops ktstr_ops = {
	.enqueue = (void *)ktstr_enqueue,
	.dispatch = (void *)ktstr_dispatch,
	.init_task = (void *)ktstr_init_task,
	.dump = (void *)ktstr_dump,
	.init = (void *)ktstr_init,
	.exit = (void *)ktstr_exit,
	/* Short watchdog so a `stall` run ends in seconds, not the default 30 s. */
	.timeout_ms = 5000,
	.name = "ktstr",
};
