/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx_hz: a sched_ext scheduler for ktstr's own tests that reads the kernel's
 * configuration through libbpf's `__kconfig` externs, as real schedulers do
 * (CONFIG_HZ for tick-based slices, CONFIG_SMP, ...). libbpf resolves them at
 * load time from /boot/config-$(uname -r) or /proc/config.gz; without either
 * the load fails ("failed to open system Kconfig"), so this scheduler runs in
 * a ktstr guest only if ktstr put the kernel's config there.
 *
 * Design: the kernel's default global FIFO (SCX_DSQ_GLOBAL) with a slice of
 * four ticks, computed from CONFIG_HZ in ops.init. ops.init also publishes
 * the value it read in .bss (hz_seen) for the loader to print.
 */
#include "scx_common.bpf.h"

char _license[] SEC("license") = "GPL";

/* A strong extern: loading fails when libbpf cannot find the value. */
extern unsigned int CONFIG_HZ __kconfig;

/* Published for the loader (__u64: the C++ skeleton has no u64). */
__u64 hz_seen;
__u64 slice_ns;

void BPF_STRUCT_OPS(hz_enqueue, struct task_struct *p, u64 enq_flags)
{
	scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, slice_ns, enq_flags);
}

s32 BPF_STRUCT_OPS_SLEEPABLE(hz_init)
{
	hz_seen = CONFIG_HZ;
	slice_ns = CONFIG_HZ ? 4 * (1000000000ULL / CONFIG_HZ) : 20000000ULL;
	return 0;
}

SEC(".struct_ops.link")
struct sched_ext_ops hz_ops = {
	.enqueue = (void *)hz_enqueue,
	.init = (void *)hz_init,
	.name = "hz",
};
