// Writes seed inputs for fuzz_frame: frame streams made by the real encoder
// (encode_message) from messages like those an agent sends in a run, plus a
// few damaged streams. Each file starts with the chunking byte fuzz_frame
// reads first. With PROBE_DIR, also the probe payloads for fuzz_probe_payload
// (selector byte 0 = PROBE_SETUP, 1 = PROBE_EVENTS, then the JSON).
// Usage: fuzz_seed_frames FRAME_DIR [PROBE_DIR]
#include "guest/proto/messages.hpp"

#include <cstdio>
#include <fstream>
#include <string>

using namespace ktstr::proto;

namespace {

void write(const std::string& dir, const std::string& name, char chunking, const std::string& stream) {
  std::ofstream out(dir + "/" + name, std::ios::binary);
  out << chunking << stream;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr, "usage: fuzz_seed_frames FRAME_DIR [PROBE_DIR]\n");
    return 2;
  }
  std::string dir = argv[1];

  HelloMsg hello{.agent_version = kAgentVersion, .kernel_release = "7.3.1-cloud-amd64", .boot_ms = 412};
  StageMsg stage{.stage = stage::kWorkersStarted, .t_ms = 1310};
  TopologyMsg topo{.cpus_online = "0-3", .cpus = 4, .llc_groups = {"0-1", "2-3"}, .numa_nodes = {"0-3"},
                   .smt_groups = {"0", "1", "2", "3"}};
  WorkerMsg worker{.cgroup = "cg0", .index = 1, .pid = 231, .iterations = 81234, .cpu_time_ns = 2990000000,
                   .wall_ns = 3000000000, .migrations = 12, .max_gap_ns = 4100000, .cpus_used = {0, 2}};
  DoneMsg done{.ok = true};
  write(dir, "run_ok", 0,
        encode_message(hello) + encode_message(stage) + encode_message(topo) + encode_message(worker) +
            encode_message(done));

  SchedStartedMsg started{.pid = 200, .t_ms = 900};
  SchedStateMsg state{.state = "enabled", .ops = "ktstr", .t_ms = 950};
  SchedOutputMsg output{.stream = "stderr",
                        .text = "EXIT: scx_bpf_error (bpf/scx_ktstr.bpf.c:115: ktstr: host-triggered crash)\n",
                        .truncated = false,
                        .t_ms = 2100};
  SchedExitedMsg exited{.pid = 200, .exit_code = 1, .signal = 0, .stopped_by_agent = false, .t_ms = 2110};
  KernelLogMsg dmesg{.source = "dmesg",
                     .text = "sched_ext: BPF scheduler \"ktstr\" disabled (runtime error)\n",
                     .truncated = true,
                     .t_ms = 2120};
  MapWriteResultMsg mw{.map = ".bss", .var = "crash", .value = 1, .ok = true, .resolved_map = "scx_ktst.bss",
                       .t_ms = 1500};
  MonitorMsg mon{.t_ms = 1400, .nr_running = {1, 2, 0, 1}, .events = {{"SCX_EV_SELECT_CPU_FALLBACK", 3}},
                 .dsq_depth = 2, .sched_state = "enabled"};
  write(dir, "sched_crash", 3,
        encode_message(started) + encode_message(state) + encode_message(mw) + encode_message(mon) +
            encode_message(output) + encode_message(exited) + encode_message(dmesg));

  ProbeSetupMsg setup;
  setup.t_ms = 800;
  setup.traceable = {"scx_exit", "do_pick_task_scx"};
  setup.untraceable = {{"scx_bpf_error_bstr", "not in available_filter_functions"}};
  setup.kprobes_attached = {"do_pick_task_scx"};
  setup.fentry_attached = {"ktstr_dispatch"};
  setup.trigger = {.name = "sched_ext_exit", .kind = "tp_btf", .status = "attached"};
  ProbeEventsMsg events;
  events.trigger_fired = true;
  events.trigger_t_ns = 5000;
  events.trigger_pid = 17;
  events.trigger_cpu = 1;
  events.exit_kind = 1025;
  events.exit_reason = "scx_bpf_error";
  ProbeEvent ev{.t_ns = 4000, .cpu = 1, .pid = 17, .comm = "kworker/1:0", .func = "ktstr_dispatch",
                .kind = "fentry", .ip = 0xffffffffc0001234, .source = "bpf/scx_ktstr.bpf.c:98"};
  ProbeArg arg{.kind = "task", .raw = 0xffff888004d3a000};
  arg.task = ProbeTask{.pid = 17, .comm = "kworker/1:0", .cpus = "0-3", .dsq_id = 3, .slice = 20000000,
                       .vtime = 100, .weight = 100, .flags = 0x44};
  ev.args = {arg, ProbeArg{.kind = "rq", .raw = 1, .cpu = 1}};
  events.events = {ev};
  events.events_total = 1;
  events.per_task_history = {{"17", 1}};
  write(dir, "probes", 1, encode_message(setup) + encode_message(events));
  if (argc == 3) {
    write(argv[2], "setup", 0, dump_json(nlohmann::json(setup)));
    write(argv[2], "events", 1, dump_json(nlohmann::json(events)));
    ProbeSetupMsg fallback = setup;
    fallback.trigger = {.name = "scx_kf_exit", .kind = "kprobe", .status = "attached",
                        .fallback_from = "sched_ext_exit", .fallback_error = "attach failed: -2"};
    fallback.kprobe_failures = {{"scx_dsq_move", "-22"}};
    write(argv[2], "setup_fallback", 0, dump_json(nlohmann::json(fallback)));
    ProbeEventsMsg many = events;
    ProbeEvent other = ev;
    other.pid = 31;
    other.t_ns = 4500;
    other.kind = "fexit";
    other.ret = 7;
    other.args = {ProbeArg{.kind = "exit_info", .raw = 9, .exit_kind = 1025, .exit_reason = "scx_bpf_error"},
                  ProbeArg{.kind = "dsq", .raw = 3, .dsq_id = 3}};
    many.events = {ev, other, ev};
    many.events_total = 3;
    many.per_task_history = {{"17", 2}, {"31", 1}};
    write(argv[2], "events_two_tasks", 1, dump_json(nlohmann::json(many)));
  }

  JobMsg job;
  job.topology = "1n2l2c1t";
  job.scheduler.path = "/bin/scx-ktstr";
  job.map_writes = {{.map = ".bss", .var = "crash", .value = 1, .after_ms = 500}};
  job.probes = ProbePlan{};
  job.probes->kernel_functions = {{"scx_exit", {"exit_info"}}};
  write(dir, "job", 0, encode_message(job));

  // Damage: garbage around frames, a flipped payload bit, a truncated tail.
  std::string log = encode_message(LogMsg{.level = "info", .text = "agent up"});
  std::string bad = log;
  bad[bad.size() - 2] ^= 0x10;
  write(dir, "damaged", 2, "noise KTS" + log + "\x01\x02" + bad + log + log.substr(0, 20));
  return 0;
}
