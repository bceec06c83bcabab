/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ktstr's crash probes (auto-repro): programs that record the arguments of
 * the functions on a crash chain into one ring buffer, for the agent's probe
 * runner (guest/agent/probes.cpp) to keep per task and report.
 *
 * Design:
 * - One object, opened several times by the runner, each time with only some
 *   programs autoloaded: the kprobe instance (kprobe.multi + single kprobe +
 *   the fallback trigger kprobe; it owns `events` and `kprobe_funcs`), the
 *   tp_btf trigger instance (fails to load where the tracepoint is missing,
 *   e.g. 6.17: ESRCH), and one fentry/fexit instance per struct_ops target
 *   (a tracing program has exactly one attach target). Later instances share
 *   `events` through bpf_map__reuse_fd.
 * - Kernel functions are told apart by their attach cookie (an index into
 *   `kprobe_funcs`, which holds the argument kinds). That avoids resolving
 *   addresses through /proc/kallsyms, which takes seconds under TCG; the ip
 *   (bpf_get_func_ip) is still recorded.
 * - fentry/fexit attach to the struct_ops wrapper `name(u64 *ctx)`: the real
 *   arguments are the u64 array its first argument points to. The instance's
 *   .rodata says which target it is and the kinds of its arguments.
 * - Everything is read with CO-RE probe reads from untrusted pointers, so
 *   the same object verifies on 6.17 and 7.3; fields a kernel may lack are
 *   guarded with bpf_core_field_exists().
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "probes_common.h"

char _license[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, KTSTR_PROBE_RINGBUF_BYTES);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KTSTR_PROBE_MAX_FUNCS);
	__type(key, u32);
	__type(value, struct ktstr_probe_func);
} kprobe_funcs SEC(".maps");

/* fentry/fexit instances: set by the runner before load. */
const volatile unsigned int fentry_func_id = ~0u;
const volatile struct ktstr_probe_func fentry_func = {};

/* Drops inside BPF (ring buffer full), read by the runner. */
unsigned long long ringbuf_drops = 0;

static __always_inline bool kernel_pointer(u64 v)
{
	return v >= 0xff00000000000000ULL; /* 5-level paging starts here */
}

static __always_inline void decode_task(struct ktstr_probe_arg *a, struct task_struct *t)
{
	const struct cpumask *mask;

	a->task.pid = BPF_CORE_READ(t, pid);
	BPF_CORE_READ_STR_INTO(&a->task.comm, t, comm);
	a->task.nr_cpus_allowed = BPF_CORE_READ(t, nr_cpus_allowed);
	mask = BPF_CORE_READ(t, cpus_ptr);
	if (mask)
		bpf_core_read(&a->task.cpus_mask, sizeof(a->task.cpus_mask), &mask->bits);
	a->task.dsq_id = ~0ULL;
	if (bpf_core_field_exists(t->scx.dsq)) {
		struct scx_dispatch_q *dsq = BPF_CORE_READ(t, scx.dsq);
		if (dsq)
			a->task.dsq_id = BPF_CORE_READ(dsq, id);
	}
	if (bpf_core_field_exists(t->scx.slice))
		a->task.slice = BPF_CORE_READ(t, scx.slice);
	if (bpf_core_field_exists(t->scx.dsq_vtime))
		a->task.vtime = BPF_CORE_READ(t, scx.dsq_vtime);
	if (bpf_core_field_exists(t->scx.weight))
		a->task.weight = BPF_CORE_READ(t, scx.weight);
	if (bpf_core_field_exists(t->scx.flags))
		a->task.flags = BPF_CORE_READ(t, scx.flags);
}

static __always_inline void decode_exit_info(struct ktstr_probe_event *e, struct ktstr_probe_arg *a,
					     struct scx_exit_info *ei)
{
	const char *reason;

	a->exit_kind = BPF_CORE_READ(ei, kind);
	if (e->reason[0])
		return; /* one reason per event */
	e->exit_kind = a->exit_kind;
	reason = BPF_CORE_READ(ei, reason);
	if (reason)
		bpf_probe_read_kernel_str(e->reason, sizeof(e->reason), reason);
}

static __always_inline void decode_arg(struct ktstr_probe_event *e, struct ktstr_probe_arg *a,
				       u32 kind, u64 raw)
{
	a->raw = raw;
	a->kind = kind;
	if (kind == KTSTR_ARG_NONE || kind == KTSTR_ARG_SCALAR || !kernel_pointer(raw))
		return;
	a->decoded = 1;
	if (kind == KTSTR_ARG_TASK)
		decode_task(a, (struct task_struct *)raw);
	else if (kind == KTSTR_ARG_RQ)
		a->cpu = BPF_CORE_READ((struct rq *)raw, cpu);
	else if (kind == KTSTR_ARG_DSQ)
		a->dsq_id = BPF_CORE_READ((struct scx_dispatch_q *)raw, id);
	else if (kind == KTSTR_ARG_EXIT_INFO)
		decode_exit_info(e, a, (struct scx_exit_info *)raw);
	else
		a->decoded = 0;
}

static __always_inline struct ktstr_probe_event *new_event(u32 kind, u32 func_id, u64 ip)
{
	struct ktstr_probe_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		__sync_fetch_and_add(&ringbuf_drops, 1);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->t_ns = bpf_ktime_get_ns();
	e->ip = ip;
	e->func_id = func_id;
	e->cpu = bpf_get_smp_processor_id();
	e->pid = bpf_get_current_pid_tgid() & 0xffffffff;
	e->kind = kind;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return e;
}

static __always_inline void fill_args(struct ktstr_probe_event *e, const struct ktstr_probe_func *f,
				      const u64 *raw)
{
	u32 n = f->nr_args;

	if (n > KTSTR_PROBE_MAX_ARGS)
		n = KTSTR_PROBE_MAX_ARGS;
	e->nr_args = n;
#pragma unroll
	for (int i = 0; i < KTSTR_PROBE_MAX_ARGS; i++)
		if (i < n)
			decode_arg(e, &e->args[i], f->kinds[i], raw[i]);
}

static __always_inline int on_kprobe(struct pt_regs *ctx)
{
	u64 cookie = bpf_get_attach_cookie(ctx);
	u32 id = cookie & ~KTSTR_PROBE_COOKIE_TRIGGER;
	u32 kind = (cookie & KTSTR_PROBE_COOKIE_TRIGGER) ? KTSTR_EV_TRIGGER : KTSTR_EV_KPROBE;
	struct ktstr_probe_func *f = bpf_map_lookup_elem(&kprobe_funcs, &id);
	struct ktstr_probe_event *e;
	u64 raw[KTSTR_PROBE_MAX_ARGS];

	e = new_event(kind, f ? id : ~0u, bpf_get_func_ip(ctx));
	if (!e)
		return 0;
	raw[0] = PT_REGS_PARM1(ctx);
	raw[1] = PT_REGS_PARM2(ctx);
	raw[2] = PT_REGS_PARM3(ctx);
	raw[3] = PT_REGS_PARM4(ctx);
	raw[4] = PT_REGS_PARM5(ctx);
	raw[5] = PT_REGS_PARM6(ctx);
	if (f)
		fill_args(e, f, raw);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("kprobe.multi")
int probe_kprobe_multi(struct pt_regs *ctx)
{
	return on_kprobe(ctx);
}

SEC("kprobe")
int probe_kprobe(struct pt_regs *ctx)
{
	return on_kprobe(ctx);
}

/* 7.3: trace_sched_ext_exit(sch, kind). */
SEC("tp_btf/sched_ext_exit")
int probe_trigger_tp(u64 *ctx)
{
	struct scx_sched *sch = (struct scx_sched *)ctx[0];
	struct ktstr_probe_event *e = new_event(KTSTR_EV_TRIGGER, ~0u, 0);

	if (!e)
		return 0;
	e->exit_kind = (u32)ctx[1];
	if (bpf_core_field_exists(sch->exit_info)) {
		struct scx_exit_info *ei = BPF_CORE_READ(sch, exit_info);
		const char *reason = ei ? BPF_CORE_READ(ei, reason) : NULL;
		if (reason)
			bpf_probe_read_kernel_str(e->reason, sizeof(e->reason), reason);
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

static __always_inline int on_bpf_prog(u64 *ctx, u32 kind)
{
	struct ktstr_probe_func f = fentry_func;
	struct ktstr_probe_event *e;
	u64 raw[KTSTR_PROBE_MAX_ARGS] = {};
	u64 inner = 0;

	e = new_event(kind, fentry_func_id, bpf_get_func_ip(ctx));
	if (!e)
		return 0;
	/* The wrapper's only argument points at the real argument array. */
	if (bpf_get_func_arg(ctx, 0, &inner) == 0 && kernel_pointer(inner)) {
		u32 n = f.nr_args > KTSTR_PROBE_MAX_ARGS ? KTSTR_PROBE_MAX_ARGS : f.nr_args;
		bpf_probe_read_kernel(raw, n * sizeof(u64), (void *)inner);
		fill_args(e, &f, raw);
	}
	if (kind == KTSTR_EV_FEXIT)
		bpf_get_func_ret(ctx, &e->ret);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("fentry")
int probe_fentry(u64 *ctx)
{
	return on_bpf_prog(ctx, KTSTR_EV_FENTRY);
}

SEC("fexit")
int probe_fexit(u64 *ctx)
{
	return on_bpf_prog(ctx, KTSTR_EV_FEXIT);
}
