/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Layout shared by bpf/probes.bpf.c and the agent's probe runner
 * (guest/agent/probes.cpp): one ring buffer record per probe hit, with up to
 * KTSTR_PROBE_MAX_ARGS decoded arguments. Plain C, fixed-size types only.
 */
#pragma once

#define KTSTR_PROBE_MAX_ARGS 6
#define KTSTR_PROBE_COMM_LEN 16
#define KTSTR_PROBE_REASON_LEN 128
#define KTSTR_PROBE_MAX_FUNCS 256          /* entries of the kprobe arg-kind map */
#define KTSTR_PROBE_RINGBUF_BYTES (1 << 20)
/* Attach cookie bit: this kprobe is the fallback trigger. */
#define KTSTR_PROBE_COOKIE_TRIGGER 0x80000000u

enum ktstr_probe_event_kind {
	KTSTR_EV_KPROBE = 1,
	KTSTR_EV_FENTRY = 2,
	KTSTR_EV_FEXIT = 3,
	KTSTR_EV_TRIGGER = 4,
};

enum ktstr_probe_arg_kind {
	KTSTR_ARG_NONE = 0,
	KTSTR_ARG_SCALAR = 1,
	KTSTR_ARG_TASK = 2,
	KTSTR_ARG_RQ = 3,
	KTSTR_ARG_DSQ = 4,
	KTSTR_ARG_EXIT_INFO = 5,
};

/* Arg kinds of one probed function, indexed by the attach cookie. */
struct ktstr_probe_func {
	unsigned char kinds[KTSTR_PROBE_MAX_ARGS];
	unsigned char nr_args;
	unsigned char pad;
};

struct ktstr_probe_task {
	int pid;
	unsigned int weight;
	unsigned long long cpus_mask; /* first 64 bits of cpus_ptr */
	unsigned long long dsq_id;    /* ~0 when the task is on no DSQ */
	unsigned long long slice;
	unsigned long long vtime;
	unsigned int flags;
	unsigned int nr_cpus_allowed;
	char comm[KTSTR_PROBE_COMM_LEN];
};

struct ktstr_probe_arg {
	unsigned long long raw;
	unsigned int kind;   /* enum ktstr_probe_arg_kind */
	int cpu;             /* KTSTR_ARG_RQ: rq->cpu */
	unsigned long long dsq_id;  /* KTSTR_ARG_DSQ */
	unsigned int exit_kind;     /* KTSTR_ARG_EXIT_INFO */
	unsigned int decoded;       /* 1 when the pointer was readable */
	struct ktstr_probe_task task;
};

struct ktstr_probe_event {
	unsigned long long t_ns;     /* bpf_ktime_get_ns */
	unsigned long long ip;       /* bpf_get_func_ip */
	unsigned long long ret;      /* fexit */
	unsigned int func_id;        /* cookie / target index; ~0 unknown */
	unsigned int cpu;
	int pid;
	unsigned int kind;           /* enum ktstr_probe_event_kind */
	unsigned int nr_args;
	unsigned int exit_kind;      /* trigger, or first exit_info argument */
	char comm[KTSTR_PROBE_COMM_LEN];
	char reason[KTSTR_PROBE_REASON_LEN];
	struct ktstr_probe_arg args[KTSTR_PROBE_MAX_ARGS];
};
