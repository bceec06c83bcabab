#include "guest/agent/probes.hpp"

#include "guest/agent/util.hpp"
#include "ktstr_probes.skel.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstring>
#include <functional>
#include <fcntl.h>
#include <map>
#include <set>
#include <unistd.h>
#include <unordered_set>

namespace ktstr::agent {

namespace {

constexpr uint64_t kTriggerTailNs = uint64_t(kProbeTriggerTailMs) * 1000000;
constexpr size_t kMaxDiscovered = 256;
constexpr unsigned kProgramPollMs = 10;  // new struct_ops programs, while the scheduler loads

// libbpf's last warning, for error messages (its output would otherwise go to
// the console as verifier logs).
// Thread-local: the kernel side and the programs load on threads of their own.
thread_local std::string g_libbpf_last;

int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[512];
  int n = std::vsnprintf(buf, sizeof buf, fmt, args);
  if (n > 0) {
    std::string line(buf, std::min<size_t>(size_t(n), sizeof buf - 1));
    while (!line.empty() && line.back() == '\n') line.pop_back();
    if (line.rfind("libbpf: ", 0) == 0) line.erase(0, 8);
    if (!line.empty()) g_libbpf_last = line;
  }
  return 0;
}

std::string bpf_error(const char* what, int err) {
  std::string text = std::string(what) + ": " + errno_text(err < 0 ? -err : err);
  if (!g_libbpf_last.empty()) text += " (libbpf: " + g_libbpf_last.substr(0, 200) + ")";
  g_libbpf_last.clear();
  return text;
}

// Whether struct_ops program `prog` implements sched_ext_ops member
// `member`: its name ends in "_<member>" ("ktstr_dispatch" -> dispatch).
bool implements_member(const std::string& prog, const std::string& member) {
  return !member.empty() && member.size() < prog.size() &&
         prog.compare(prog.size() - member.size(), member.size(), member) == 0 &&
         prog[prog.size() - member.size() - 1] == '_';
}

// A plan's argument kinds ("task", "rq", ...) as the BPF side reads them.
ktstr_probe_func kinds_from_names(const std::vector<std::string>& kinds) {
  ktstr_probe_func f{};
  for (const std::string& kind : kinds)
    if (f.nr_args < KTSTR_PROBE_MAX_ARGS) f.kinds[f.nr_args++] = uint8_t(probe_arg_kind_from_name(kind));
  return f;
}

// Only the named programs load in this instance of the object.
void autoload_only(ktstr_probes* skel, std::initializer_list<bpf_program*> progs) {
  bpf_program* p = nullptr;
  bpf_object__for_each_program(p, skel->obj) bpf_program__set_autoload(p, false);
  for (bpf_program* keep : progs) bpf_program__set_autoload(keep, true);
}

uint32_t btf_arg_kind(const btf* b, uint32_t type_id) {
  const btf_type* t = btf__type_by_id(b, type_id);
  for (int hops = 0; t && hops < 16 && (btf_is_mod(t) || btf_is_typedef(t)); ++hops)
    t = btf__type_by_id(b, t->type);
  if (!t) return KTSTR_ARG_NONE;
  if (btf_is_int(t) || btf_is_enum(t) || btf_is_enum64(t)) return KTSTR_ARG_SCALAR;
  if (!btf_is_ptr(t)) return KTSTR_ARG_NONE;
  t = btf__type_by_id(b, t->type);
  for (int hops = 0; t && hops < 16 && (btf_is_mod(t) || btf_is_typedef(t)); ++hops)
    t = btf__type_by_id(b, t->type);
  if (!t || !btf_is_struct(t)) return KTSTR_ARG_NONE;
  std::string name = btf__name_by_offset(b, t->name_off) ?: "";
  if (name == "task_struct") return KTSTR_ARG_TASK;
  if (name == "rq") return KTSTR_ARG_RQ;
  if (name == "scx_dispatch_q") return KTSTR_ARG_DSQ;
  if (name == "scx_exit_info") return KTSTR_ARG_EXIT_INFO;
  return KTSTR_ARG_NONE;
}

// Kinds of a FUNC_PROTO's parameters from `first` on.
ktstr_probe_func proto_kinds(const btf* b, const btf_type* proto, int first) {
  ktstr_probe_func f{};
  if (!proto || !btf_is_func_proto(proto)) return f;
  const btf_param* params = btf_params(proto);
  int n = btf_vlen(proto);
  for (int i = first; i < n && f.nr_args < KTSTR_PROBE_MAX_ARGS; ++i)
    f.kinds[f.nr_args++] = uint8_t(btf_arg_kind(b, params[i].type));
  return f;
}

}  // namespace

std::vector<std::string> find_traceable(const std::string& path, const std::vector<std::string>& wanted,
                                        size_t max_bytes) {
  std::unordered_set<std::string> want(wanted.begin(), wanted.end()), found;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string line;
  char buf[65536];
  size_t total = 0;
  auto take = [&] {
    // "name", "name [module]", or "name+0x10 ..." never; cut at the first blank.
    size_t end = line.find_first_of(" \t");
    std::string name = line.substr(0, end);
    if (want.count(name)) found.insert(name);
    line.clear();
  };
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    total += size_t(n);
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] == '\n') take();
      else if (line.size() < 512) line += buf[i];
    }
    if (total >= max_bytes || found.size() == want.size()) break;
  }
  if (!line.empty()) take();
  ::close(fd);
  std::vector<std::string> out;
  for (const std::string& name : wanted)
    if (found.count(name) && std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  return out;
}

std::vector<ExitPathFunction> exit_kind_functions(const btf* b, size_t max) {
  std::vector<ExitPathFunction> out;
  if (!b) return out;
  std::vector<int> enum_ids;
  for (int kind : {int(BTF_KIND_ENUM), int(BTF_KIND_ENUM64)}) {
    int id = btf__find_by_name_kind(b, "scx_exit_kind", kind);
    if (id > 0) enum_ids.push_back(id);
  }
  if (enum_ids.empty()) return out;
  auto is_exit_kind = [&](uint32_t id) {
    const btf_type* t = btf__type_by_id(b, id);
    for (int hops = 0; t && hops < 16 && (btf_is_mod(t) || btf_is_typedef(t)); ++hops) {
      id = t->type;
      t = btf__type_by_id(b, id);
    }
    return t && std::find(enum_ids.begin(), enum_ids.end(), int(id)) != enum_ids.end();
  };
  const uint32_t n = btf__type_cnt(b);
  for (uint32_t id = 1; id < n && out.size() < max; ++id) {
    const btf_type* fn = btf__type_by_id(b, id);
    if (!fn || !btf_is_func(fn)) continue;
    const btf_type* proto = btf__type_by_id(b, fn->type);
    if (!proto || !btf_is_func_proto(proto)) continue;
    const btf_param* params = btf_params(proto);
    for (int i = 0; i < btf_vlen(proto); ++i) {
      if (params[i].type == 0 || !is_exit_kind(params[i].type)) continue;
      const char* name = btf__name_by_offset(b, fn->name_off);
      if (name && *name) out.push_back({name, i});
      break;
    }
  }
  return out;
}

struct KernelProbeObject {
  ktstr_probes* obj = nullptr;
  int events_fd = -1, funcs_fd = -1;
  std::string tracepoint;  // the trigger asked for ("" = none)
  bool with_trigger = false;  // tp_btf/<tracepoint> loaded
  std::string tp_error;    // why it did not
  int err = 0;             // nothing loaded: -errno, and `error`
  std::string error;
  uint64_t load_ms = 0;
  ~KernelProbeObject() {
    if (obj) ktstr_probes__destroy(obj);
    for (int fd : {events_fd, funcs_fd})
      if (fd >= 0) ::close(fd);
  }
};

namespace {

// Shares the ring buffer and the kprobe arg map with a new instance.
int share_maps(const KernelProbeObject& k, ktstr_probes* skel) {
  int err = bpf_map__reuse_fd(skel->maps.events, k.events_fd);
  if (!err) err = bpf_map__reuse_fd(skel->maps.kprobe_funcs, k.funcs_fd);
  return err;
}

// Creates the shared maps as the opened object `o` declares them; 0 or
// -errno.
int create_shared_maps(KernelProbeObject& k, ktstr_probes* o) {
  auto create = [](const bpf_map* m) {
    LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = bpf_map__map_flags(m));
    return bpf_map_create(bpf_map__type(m), bpf_map__name(m), bpf_map__key_size(m), bpf_map__value_size(m),
                          bpf_map__max_entries(m), &opts);
  };
  k.events_fd = create(o->maps.events);
  int err = k.events_fd < 0 ? -errno : 0;
  if (!err) {
    k.funcs_fd = create(o->maps.kprobe_funcs);
    if (k.funcs_fd < 0) err = -errno;
  }
  return err;
}

// One object load for kprobe.multi and the tp_btf trigger (each load parses
// the kernel's BTF and verifies its programs: the bulk of the attach time
// under TCG). A tracepoint this kernel lacks fails the load (6.17: ESRCH):
// then again without it. The shared maps are made first, and `maps_made`
// is told: other instances can use them while this one still loads.
void load_kernel_object(KernelProbeObject& k, const std::function<void()>& maps_made) {
  uint64_t t0 = monotonic_ns();
  k.with_trigger = !k.tracepoint.empty();
  int err = 0;
  for (;;) {
    k.obj = ktstr_probes__open();
    err = k.obj ? 0 : -errno;
    if (err) break;
    ktstr_probes* o = k.obj;
    if (k.events_fd < 0) {
      err = create_shared_maps(k, o);
      if (err) {
        k.error = bpf_error("creating the probe maps", err);
        break;
      }
      if (maps_made) maps_made();
    }
    if (k.with_trigger) autoload_only(o, {o->progs.probe_kprobe_multi, o->progs.probe_trigger_tp});
    else autoload_only(o, {o->progs.probe_kprobe_multi});
    err = share_maps(k, o);
    if (!err && k.with_trigger && k.tracepoint != "sched_ext_exit")
      err = bpf_program__set_attach_target(o->progs.probe_trigger_tp, 0, k.tracepoint.c_str());
    if (!err) err = ktstr_probes__load(o);
    if (!err || !k.with_trigger) break;
    k.tp_error = bpf_error(("loading tp_btf/" + k.tracepoint).c_str(), err);
    ktstr_probes__destroy(o);
    k.obj = nullptr;
    k.with_trigger = false;
  }
  k.err = err;
  if (err && k.error.empty()) k.error = bpf_error("loading the probe object", err);
  k.load_ms = (monotonic_ns() - t0) / 1000000;
}

}  // namespace

void KernelProbeObjectDeleter::operator()(KernelProbeObject* k) const { delete k; }

PreloadedProbes preload_kernel_probes(const std::string& tracepoint) {
  libbpf_set_print(libbpf_print);
  PreloadedProbes k(new KernelProbeObject);
  k->tracepoint = tracepoint;
  load_kernel_object(*k, nullptr);
  return k;
}

std::string preload_summary(const KernelProbeObject& k) {
  if (k.err) return k.error;
  return "kprobe.multi" + std::string(k.with_trigger ? " and tp_btf/" + k.tracepoint : "") + " loaded in " +
         std::to_string(k.load_ms) + " ms" + (k.tp_error.empty() ? "" : " (" + k.tp_error + ")");
}

struct ProbeRunner::Impl {
  struct Target {
    std::string name;
    std::string source;
    ktstr_probe_func func{};
  };
  // The ring buffer and the arg-kind map, made before any object loads and
  // shared by every instance, so the scheduler's programs can be probed
  // while the kernel object still loads on its own thread.
  // kprobe.multi, the tp_btf trigger and the shared maps (the ring buffer
  // and the arg-kind map): preloaded, or loaded by attach_kernel.
  std::unique_ptr<KernelProbeObject> kernel;
  ktstr_probes* single_obj = nullptr;   // probe_kprobe, loaded only when a single kprobe is needed
  bool single_tried = false;
  std::vector<ktstr_probes*> fentry_objs;
  std::vector<bpf_link*> links;         // the kernel side's (its thread)
  std::vector<bpf_link*> fentry_links;  // the scheduler programs' (the main thread)
  ring_buffer* rb = nullptr;
  std::vector<std::string> kfunc_names;  // index = attach cookie
  std::map<uint32_t, int> trigger_kind_arg;  // trigger kprobe cookie -> its enum scx_exit_kind argument
  std::string trigger_name;              // func of tp_btf trigger events
  std::vector<Target> targets;           // index = fentry_func_id
  std::set<uint32_t> seen_prog_ids;
  uint32_t baseline_id = 0;
  btf* vmlinux = nullptr;
  std::once_flag vmlinux_once;  // both threads may ask

  ~Impl() {
    if (rb) ring_buffer__free(rb);
    for (bpf_link* l : links) bpf_link__destroy(l);
    for (bpf_link* l : fentry_links) bpf_link__destroy(l);
    for (ktstr_probes* o : fentry_objs) ktstr_probes__destroy(o);
    if (single_obj) ktstr_probes__destroy(single_obj);
    if (vmlinux) btf__free(vmlinux);
  }

  static int on_event(void* ctx, void* data, size_t size);

  const btf* vmlinux_btf() {
    std::call_once(vmlinux_once, [this] { vmlinux = btf__load_vmlinux_btf(); });
    return vmlinux;
  }

  // Shares the ring buffer and the kprobe arg map with a new instance.
  int reuse_maps(ktstr_probes* skel) { return share_maps(*kernel, skel); }

  // probe_kprobe (single kprobes: the fallback when kprobe.multi fails, and
  // the fallback triggers), in an instance of its own loaded on first use:
  // the common path never pays for verifying it. Null when it cannot load.
  bpf_program* single_kprobe(std::string& error) {
    if (!single_tried) {
      single_tried = true;
      single_obj = ktstr_probes__open();
      int err = single_obj ? 0 : -errno;
      if (!err) {
        autoload_only(single_obj, {single_obj->progs.probe_kprobe});
        err = reuse_maps(single_obj);
        if (!err) err = ktstr_probes__load(single_obj);
      }
      if (err) {
        error = bpf_error("loading the single-kprobe program", err);
        if (single_obj) ktstr_probes__destroy(single_obj);
        single_obj = nullptr;
      }
    }
    if (!single_obj && error.empty()) error = "the single-kprobe program did not load";
    return single_obj ? single_obj->progs.probe_kprobe : nullptr;
  }

  // Argument kinds of a struct_ops program: the BPF_PROG inner function
  // "____<name>" when its BTF kept it, else the sched_ext_ops member whose
  // name ends the program's ("ktstr_dispatch" -> dispatch): from the plan
  // (the host read the kernel's BTF), else from this kernel's BTF.
  ktstr_probe_func bpf_prog_kinds(const btf* prog_btf, const std::string& name,
                                  const std::vector<proto::ProbeFunction>& ops_args) {
    if (prog_btf) {
      int id = btf__find_by_name_kind(prog_btf, ("____" + name).c_str(), BTF_KIND_FUNC);
      if (id > 0) {
        const btf_type* fn = btf__type_by_id(prog_btf, id);
        return proto_kinds(prog_btf, btf__type_by_id(prog_btf, fn->type), 1);  // skip ctx
      }
    }
    const proto::ProbeFunction* member = nullptr;
    for (const proto::ProbeFunction& m : ops_args)
      if (implements_member(name, m.name) && (!member || m.name.size() > member->name.size())) member = &m;
    if (member) return kinds_from_names(member->args);
    if (!vmlinux_btf()) return {};
    int ops_id = btf__find_by_name_kind(vmlinux, "sched_ext_ops", BTF_KIND_STRUCT);
    if (ops_id <= 0) return {};
    const btf_type* ops = btf__type_by_id(vmlinux, ops_id);
    const btf_member* m = btf_members(ops);
    const btf_type* best = nullptr;
    size_t best_len = 0;
    for (int i = 0; i < btf_vlen(ops); ++i) {
      std::string member = btf__name_by_offset(vmlinux, m[i].name_off) ?: "";
      if (member.size() <= best_len || !implements_member(name, member)) continue;
      const btf_type* t = btf__type_by_id(vmlinux, m[i].type);
      if (t && btf_is_ptr(t)) {
        best = btf__type_by_id(vmlinux, t->type);
        best_len = member.size();
      }
    }
    return best ? proto_kinds(vmlinux, best, 0) : ktstr_probe_func{};
  }
};

ProbeRunner::ProbeRunner(proto::ProbePlan plan, ProbeSink sink, std::string tracing_dir, PreloadedProbes preloaded)
    : plan_(std::move(plan)),
      sink_(std::move(sink)),
      tracing_dir_(std::move(tracing_dir)),
      preloaded_(std::move(preloaded)),
      impl_(std::make_unique<Impl>()),
      history_(plan_.history_per_task, plan_.max_events) {
  libbpf_set_print(libbpf_print);
}

ProbeRunner::~ProbeRunner() {
  settled_.store(true, std::memory_order_release);
  if (program_thread_.joinable()) program_thread_.join();
  if (kernel_thread_.joinable()) kernel_thread_.join();  // start() never got to the program thread
}

void ProbeRunner::log(const std::string& level, const std::string& text) {
  if (std::this_thread::get_id() != owner_thread_) {  // one of the attach threads
    std::lock_guard<std::mutex> lock(logs_mutex_);
    deferred_logs_.emplace_back(level, text);
    return;
  }
  if (sink_.log) sink_.log(level, "probes: " + text);
}

void ProbeRunner::take_baseline() {
  // Every program loaded from now on may be the scheduler's (ours are not
  // struct_ops: poll_programs passes over them).
  uint32_t id = 0;
  while (bpf_prog_get_next_id(id, &id) == 0) impl_->baseline_id = id;
}

void ProbeRunner::start() {
  take_baseline();
  // While the scheduler loads and the workload starts, the probes' own work
  // (ftrace patching takes the tracing locks the scheduler session needs
  // too) would hold the crashed run's pace back: launch() does it later.
  if (plan_.probes_during_workload) return;
  if (plan_.kernel_probes_parallel) kernel_thread_ = std::thread([this] { attach_kernel(); });
  else attach_kernel();
  program_thread_ = std::thread([this] { watch_programs(); });
}

void ProbeRunner::launch() {
  if (!plan_.probes_during_workload || launched_) return;
  launched_ = true;
  kernel_thread_ = std::thread([this] { attach_kernel(); });
  program_thread_ = std::thread([this] { watch_programs(); });
}

void ProbeRunner::watch_programs() {
  // The scheduler loads its programs before it attaches: polling while it
  // loads probes each as it appears. Once it has settled, one poll as soon
  // as the shared maps exist (while the kernel side may still be loading),
  // then one after the kernel side is done.
  for (;;) {
    bool settled = settled_.load(std::memory_order_acquire);
    poll_programs();
    if (settled && (maps_ready_.load(std::memory_order_acquire) || kernel_done_.load(std::memory_order_acquire)))
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(kProgramPollMs));
  }
  if (kernel_thread_.joinable()) kernel_thread_.join();
  poll_programs();
  ready_ms_ = boottime_ms();
  threads_done_.store(true, std::memory_order_release);
}

void ProbeRunner::scheduler_settled() { settled_.store(true, std::memory_order_release); }

int ProbeRunner::Impl::on_event(void* ctx, void* data, size_t size) {
  auto* self = static_cast<ProbeRunner*>(ctx);
  if (self->events_sent_) return 0;
  if (size < sizeof(ktstr_probe_event)) {
    self->history_.count_dropped(1);
    return 0;
  }
  ktstr_probe_event raw;
  std::memcpy(&raw, data, sizeof raw);
  Impl& impl = *self->impl_;
  std::string func, source;
  bool matched = true;
  if (raw.kind == KTSTR_EV_TRIGGER) {
    // A kprobe trigger carries its cookie; the tp_btf one carries ~0u.
    bool from_kprobe = raw.func_id < impl.kfunc_names.size();
    func = from_kprobe ? impl.kfunc_names[raw.func_id] : impl.trigger_name;
    if (!self->trigger_) {
      TriggerHit hit{raw.t_ns, raw.pid, raw.cpu, raw.exit_kind,
                     std::string(raw.reason, strnlen(raw.reason, sizeof raw.reason))};
      if (auto k = impl.trigger_kind_arg.find(raw.func_id);
          from_kprobe && k != impl.trigger_kind_arg.end() && k->second < int(raw.nr_args) && !hit.exit_kind)
        hit.exit_kind = uint32_t(raw.args[k->second].raw);
      self->trigger_ = hit;
      self->trigger_seen_ns_ = monotonic_ns();
    }
  } else if (raw.kind == KTSTR_EV_KPROBE) {
    matched = raw.func_id < impl.kfunc_names.size();
    if (matched) func = impl.kfunc_names[raw.func_id];
  } else {
    matched = raw.func_id < impl.targets.size();
    if (matched) {
      func = impl.targets[raw.func_id].name;
      source = impl.targets[raw.func_id].source;
    }
  }
  if (!matched) {
    self->history_.count_unmatched();
    func = "?";
  }
  self->history_.add(to_proto_event(raw, func, source));
  return 0;
}

namespace {
uint64_t ms_since(uint64_t from) { return (monotonic_ns() - from) / 1000000; }
}  // namespace

// One attach_kernel run: the kernel side's object, the plan's kernel
// functions as kprobes, then the trigger.
struct ProbeRunner::KernelAttach {
  explicit KernelAttach(ProbeRunner& runner)
      : r(runner),
        impl(*runner.impl_),
        plan(runner.plan_),
        setup(runner.setup_),
        filter_path(runner.tracing_dir_ + "/available_filter_functions") {
    for (const proto::ProbeFunction& f : plan.kernel_functions) wanted.push_back(f.name);
    have_list = ::access(filter_path.c_str(), R_OK) == 0;
  }

  const uint64_t t0 = monotonic_ns();
  ProbeRunner& r;
  Impl& impl;
  const proto::ProbePlan& plan;
  proto::ProbeSetupMsg& setup;
  std::vector<std::string> wanted;
  const std::string filter_path;
  bool have_list = false;
  // available_filter_functions is slow to read (the kernel formats every
  // traceable symbol; see bench/README.md), so it is read only when
  // kprobe.multi over every wanted name fails and the names must be sorted.
  bool classified = false;
  std::string tp_error;       // why the kernel object has no tp_btf trigger
  bool with_trigger = false;  // it has one

  void classify(const std::vector<std::string>& traceable) {
    auto is_traceable = [&](const std::string& n) {
      return std::find(traceable.begin(), traceable.end(), n) != traceable.end();
    };
    for (const proto::ProbeFunction& f : plan.kernel_functions) {
      if (is_traceable(f.name)) setup.traceable.push_back(f.name);
      else setup.untraceable.push_back({f.name, "not traceable"});
    }
    classified = true;
  }

  std::vector<std::string> scan() {
    uint64_t s0 = monotonic_ns();
    std::vector<std::string> traceable = have_list ? find_traceable(filter_path, wanted) : wanted;
    if (!have_list) r.log("warn", "cannot read '" + filter_path + "': attaching every function blindly");
    setup.timing_ms["filter_scan"] = ms_since(s0);
    return traceable;
  }

  // The kernel side's object: the one the agent loaded before its job
  // (preload_kernel_probes) when it asked for this trigger, else loaded now
  // (then with the fallback triggers when the tracepoint is missing). Once
  // the shared maps exist, the scheduler's programs can be probed
  // (poll_programs), even while this object still loads. False when it
  // failed (recorded in the setup).
  bool load() {
    // Arg kinds by cookie: the plan's functions (fallback triggers follow).
    for (size_t i = 0; i < plan.kernel_functions.size(); ++i) impl.kfunc_names.push_back(plan.kernel_functions[i].name);
    auto maps_made = [this] {
      impl.rb = ring_buffer__new(impl.kernel->events_fd, &Impl::on_event, &r, nullptr);
      if (!impl.rb) r.log("warn", bpf_error("creating the ring buffer reader", errno));
      r.maps_ready_.store(true, std::memory_order_release);
    };
    if (r.preloaded_ && !r.preloaded_->err && r.preloaded_->tracepoint == plan.trigger.tracepoint) {
      impl.kernel.reset(r.preloaded_.release());
      setup.timing_ms["kernel_preloaded"] = 1;
      maps_made();
    } else {
      impl.kernel = std::make_unique<KernelProbeObject>();
      impl.kernel->tracepoint = plan.trigger.tracepoint;
      load_kernel_object(*impl.kernel, maps_made);
      setup.timing_ms["kernel_load"] = impl.kernel->load_ms;
    }
    r.preloaded_.reset();
    tp_error = impl.kernel->tp_error;
    with_trigger = impl.kernel->with_trigger;
    if (impl.kernel->err) {
      std::string why = impl.kernel->error;
      r.log("warn", why);
      classify(scan());
      for (const std::string& n : setup.traceable) setup.kprobe_failures.push_back({n, why});
      setup.trigger.error = why;
      return false;
    }
    for (size_t i = 0; i < plan.kernel_functions.size() && i < KTSTR_PROBE_MAX_FUNCS; ++i) {
      ktstr_probe_func f = kinds_from_names(plan.kernel_functions[i].args);
      uint32_t key = uint32_t(i);
      bpf_map__update_elem(impl.kernel->obj->maps.kprobe_funcs, &key, sizeof key, &f, sizeof f, BPF_ANY);
    }
    return true;
  }

  // One kprobe.multi link over those of the plan's functions in `names`.
  bpf_link* attach_multi(const std::vector<std::string>& names) {
    std::vector<const char*> syms;
    std::vector<__u64> cookies;
    for (size_t i = 0; i < plan.kernel_functions.size(); ++i)
      if (std::find(names.begin(), names.end(), plan.kernel_functions[i].name) != names.end()) {
        syms.push_back(plan.kernel_functions[i].name.c_str());
        cookies.push_back(i);
      }
    if (syms.empty()) return nullptr;
    LIBBPF_OPTS(bpf_kprobe_multi_opts, mopts, .syms = syms.data(), .cookies = cookies.data(),
                .cnt = syms.size());
    return bpf_program__attach_kprobe_multi_opts(impl.kernel->obj->progs.probe_kprobe_multi, nullptr, &mopts);
  }

  // One kprobe per traceable function (kprobe.multi failed).
  void attach_singles() {
    std::string single_error;
    bpf_program* single = impl.single_kprobe(single_error);
    for (size_t i = 0; i < plan.kernel_functions.size(); ++i) {
      const std::string& name = plan.kernel_functions[i].name;
      if (std::find(setup.traceable.begin(), setup.traceable.end(), name) == setup.traceable.end()) continue;
      if (!single) {
        setup.kprobe_failures.push_back({name, single_error});
        continue;
      }
      LIBBPF_OPTS(bpf_kprobe_opts, kopts, .bpf_cookie = i);
      bpf_link* l = bpf_program__attach_kprobe_opts(single, name.c_str(), &kopts);
      if (l) {
        impl.links.push_back(l);
        setup.kprobes_attached.push_back(name);
      } else {
        setup.kprobe_failures.push_back({name, bpf_error("attaching kprobe", errno)});
      }
    }
  }

  // Kernel functions: one kprobe.multi link over every wanted name, else
  // over the traceable ones, else one kprobe each.
  void attach_kprobes() {
    uint64_t k0 = monotonic_ns();
    if (!wanted.empty()) {
      if (bpf_link* all = attach_multi(wanted)) {
        impl.links.push_back(all);
        classify(wanted);
        setup.kprobes_attached = setup.traceable;
      }
    }
    if (!classified) {
      classify(scan());
      k0 = monotonic_ns();
      bpf_link* multi = setup.traceable.empty() ? nullptr : attach_multi(setup.traceable);
      if (multi) {
        impl.links.push_back(multi);
        setup.kprobes_attached = setup.traceable;
      } else if (!setup.traceable.empty()) {
        r.log("debug", bpf_error("kprobe.multi", errno) + "; attaching single kprobes");
        attach_singles();
      }
    }
    setup.timing_ms["kprobes"] = ms_since(k0);
  }

  // The trigger: tp_btf first, else the fallback kprobe.
  void attach_trigger() {
    uint64_t trig0 = monotonic_ns();
    proto::ProbeTriggerStatus& trig = setup.trigger;
    if (!plan.trigger.tracepoint.empty()) {
      bpf_link* l = nullptr;
      if (with_trigger) {
        l = bpf_program__attach(impl.kernel->obj->progs.probe_trigger_tp);
        if (!l) tp_error = bpf_error(("attaching tp_btf/" + plan.trigger.tracepoint).c_str(), -errno);
      }
      if (l) {
        impl.links.push_back(l);
        impl.trigger_name = plan.trigger.tracepoint;
        trig = {plan.trigger.tracepoint, "tp_btf", "attached", "", "", ""};
      } else {
        trig = {plan.trigger.tracepoint, "tp_btf", "failed", tp_error, "", ""};
      }
    }
    if (trig.status != "attached" && (!plan.trigger.fallback_kprobe.empty() || !plan.trigger.tracepoint.empty()))
      r.attach_fallback_triggers(have_list ? filter_path : "", tp_error);
    setup.timing_ms["trigger"] = ms_since(trig0);
  }
};

void ProbeRunner::attach_kernel() {
  struct Done {  // every way out: the program thread stops waiting for the maps
    std::atomic<bool>& flag;
    ~Done() { flag.store(true, std::memory_order_release); }
  } done{kernel_done_};
  KernelAttach a(*this);
  if (!a.load()) return;
  a.attach_kprobes();
  a.attach_trigger();
  const proto::ProbeTriggerStatus& trig = setup_.trigger;
  setup_.timing_ms["kernel_total"] = ms_since(a.t0);
  log("info", "kernel probes: " + std::to_string(setup_.kprobes_attached.size()) + " kprobes, trigger " +
                  trig.kind + " " + trig.status + " in " + std::to_string((monotonic_ns() - a.t0) / 1000000) +
                  " ms");
}

void ProbeRunner::attach_fallback_triggers(const std::string& filter_path, const std::string& tp_error) {
  Impl& impl = *impl_;
  // Candidates: the plan's (the crash's own exit frame) first, then the exit
  // path as the running kernel's BTF has it; only what ftrace can trace.
  // Every one attached is a trigger: the first to fire ends the capture.
  std::vector<std::string> names;
  std::map<std::string, int> kind_arg;
  if (!plan_.trigger.fallback_kprobe.empty()) names.push_back(plan_.trigger.fallback_kprobe);
  const btf* vm = impl.vmlinux_btf();
  for (const ExitPathFunction& f : exit_kind_functions(vm)) {
    kind_arg[f.name] = f.kind_arg;
    if (std::find(names.begin(), names.end(), f.name) == names.end()) names.push_back(f.name);
  }
  std::vector<std::string> traceable = filter_path.empty() ? names : find_traceable(filter_path, names);
  proto::ProbeTriggerStatus& trig = setup_.trigger;
  trig = {"", "kprobe", "failed", "", plan_.trigger.tracepoint, tp_error};
  std::vector<std::string> attached, errors;
  std::string single_error;
  bpf_program* single = names.empty() ? nullptr : impl.single_kprobe(single_error);
  if (!names.empty() && !single) errors.push_back(single_error);
  for (const std::string& name : names) {
    if (!single) break;
    if (attached.size() >= kMaxTriggerKprobes || impl.kfunc_names.size() >= KTSTR_PROBE_MAX_FUNCS) break;
    if (std::find(traceable.begin(), traceable.end(), name) == traceable.end()) {
      errors.push_back(name + ": not traceable");
      continue;
    }
    const uint32_t cookie = uint32_t(impl.kfunc_names.size());
    ktstr_probe_func f{};
    if (vm) {
      int id = btf__find_by_name_kind(vm, name.c_str(), BTF_KIND_FUNC);
      if (id > 0) f = proto_kinds(vm, btf__type_by_id(vm, btf__type_by_id(vm, id)->type), 0);
    }
    bpf_map__update_elem(impl.kernel->obj->maps.kprobe_funcs, &cookie, sizeof cookie, &f, sizeof f, BPF_ANY);
    LIBBPF_OPTS(bpf_kprobe_opts, kopts, .bpf_cookie = KTSTR_PROBE_COOKIE_TRIGGER | cookie);
    bpf_link* l = bpf_program__attach_kprobe_opts(single, name.c_str(), &kopts);
    if (!l) {
      errors.push_back(name + ": " + bpf_error("attaching kprobe", errno));
      continue;
    }
    impl.links.push_back(l);
    impl.kfunc_names.push_back(name);
    if (auto k = kind_arg.find(name); k != kind_arg.end()) impl.trigger_kind_arg[cookie] = k->second;
    attached.push_back(name);
  }
  auto join = [](const std::vector<std::string>& v, const char* sep) {
    std::string out;
    for (const std::string& x : v) out += (out.empty() ? "" : sep) + x;
    return out;
  };
  if (!attached.empty()) {
    trig.name = join(attached, ",");
    trig.status = "attached";
  } else {
    trig.name = names.empty() ? "" : names.front();
    trig.error = names.empty() ? "no sched_ext exit-path function in the plan or the kernel's BTF" : join(errors, "; ");
  }
  log("info", "fallback trigger kprobes: " + (attached.empty() ? "none" : trig.name) +
                  (errors.empty() ? "" : " (" + join(errors, "; ") + ")"));
}

void ProbeRunner::poll_programs() {
  Impl& impl = *impl_;
  if (!maps_ready_.load(std::memory_order_acquire) || setup_sent_) return;
  uint32_t id = impl.baseline_id;
  while (bpf_prog_get_next_id(id, &id) == 0) {
    if (!impl.seen_prog_ids.insert(id).second) continue;
    if (impl.seen_prog_ids.size() > 4 * kMaxDiscovered) break;
    int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0) continue;
    bpf_prog_info info{};
    bpf_func_info finfo{};
    bpf_line_info linfo{};
    info.nr_func_info = 1;
    info.func_info_rec_size = sizeof finfo;
    info.func_info = uint64_t(uintptr_t(&finfo));
    info.nr_line_info = 1;
    info.line_info_rec_size = sizeof linfo;
    info.line_info = uint64_t(uintptr_t(&linfo));
    uint32_t len = sizeof info;
    if (bpf_prog_get_info_by_fd(fd, &info, &len) != 0 || info.type != BPF_PROG_TYPE_STRUCT_OPS ||
        setup_.bpf_discovered.size() >= kMaxDiscovered) {
      ::close(fd);
      continue;
    }
    uint64_t t0 = monotonic_ns();
    struct AddTime {  // every path out of this program's iteration counts
      uint64_t t0;
      uint64_t& total;
      ~AddTime() { total += monotonic_ns() - t0; }
    } add_time{t0, programs_ns_};
    std::string name(info.name, strnlen(info.name, sizeof info.name));
    btf* prog_btf = info.btf_id ? btf__load_from_kernel_by_id(info.btf_id) : nullptr;
    std::string source;
    if (prog_btf) {
      // The full name (info.name is cut at 15 characters) and the first line.
      if (info.nr_func_info > 0 && finfo.type_id) {
        const btf_type* fn = btf__type_by_id(prog_btf, finfo.type_id);
        if (fn && btf_is_func(fn)) name = btf__name_by_offset(prog_btf, fn->name_off) ?: name;
      }
      if (info.nr_line_info > 0) {
        const char* file = btf__name_by_offset(prog_btf, linfo.file_name_off);
        if (file && *file) source = std::string(file) + ":" + std::to_string(BPF_LINE_INFO_LINE_NUM(linfo.line_col));
      }
    }
    setup_.bpf_discovered.push_back(name);
    bool wanted = plan_.bpf_programs.empty() ||
                  std::find(plan_.bpf_programs.begin(), plan_.bpf_programs.end(), name) != plan_.bpf_programs.end();
    if (!wanted || impl.targets.size() >= proto::kMaxProbePrograms) {
      if (prog_btf) btf__free(prog_btf);
      ::close(fd);
      continue;
    }
    Impl::Target target{name, source, impl.bpf_prog_kinds(prog_btf, name, plan_.ops_args)};
    if (prog_btf) btf__free(prog_btf);

    ktstr_probes* skel = ktstr_probes__open();
    int err = skel ? 0 : -errno;
    bpf_link *entry = nullptr, *exit = nullptr;
    if (!err) {
      autoload_only(skel, {skel->progs.probe_fentry, skel->progs.probe_fexit});
      skel->rodata->fentry_func_id = uint32_t(impl.targets.size());
      std::memcpy((void*)&skel->rodata->fentry_func, &target.func, sizeof target.func);
      err = impl.reuse_maps(skel);
      if (!err) err = bpf_program__set_attach_target(skel->progs.probe_fentry, fd, name.c_str());
      if (!err) err = bpf_program__set_attach_target(skel->progs.probe_fexit, fd, name.c_str());
      uint64_t load0 = monotonic_ns();
      if (!err) err = ktstr_probes__load(skel);
      program_load_ns_ += monotonic_ns() - load0;
    }
    if (!err && !(entry = bpf_program__attach(skel->progs.probe_fentry))) err = -errno;
    if (!err && !(exit = bpf_program__attach(skel->progs.probe_fexit))) err = -errno;
    if (err) {
      setup_.fentry_failures.push_back({name, bpf_error("attaching fentry/fexit", err)});
      if (entry) bpf_link__destroy(entry);
      if (skel) ktstr_probes__destroy(skel);
    } else {
      impl.fentry_links.push_back(entry);
      impl.fentry_links.push_back(exit);
      impl.fentry_objs.push_back(skel);
      impl.targets.push_back(std::move(target));
      setup_.fentry_attached.push_back(name);
      log("debug", "fentry/fexit on '" + name + "' (" + std::to_string(impl.targets.back().func.nr_args) +
                       " args) in " + std::to_string((monotonic_ns() - t0) / 1000000) + " ms");
    }
    ::close(fd);  // the links hold the target
  }
}

void ProbeRunner::send_setup() {
  if (setup_sent_) return;
  scheduler_settled();
  if (program_thread_.joinable()) program_thread_.join();
  if (kernel_thread_.joinable()) kernel_thread_.join();
  {
    std::lock_guard<std::mutex> lock(logs_mutex_);
    for (auto& [level, text] : deferred_logs_)
      if (sink_.log) sink_.log(level, "probes: " + text);
    deferred_logs_.clear();
  }
  setup_sent_ = true;
  setup_.timing_ms["programs"] = programs_ns_ / 1000000;
  setup_.timing_ms["program_load"] = program_load_ns_ / 1000000;
  setup_.t_ms = ready_ms_ ? ready_ms_ : boottime_ms();  // when the probes were all set
  if (sink_.send) sink_.send(proto::encode_message(setup_));
}

void ProbeRunner::tick(bool may_send) {
  // The ring buffer is the threads' until they are done; it keeps what
  // fires meanwhile (1 MiB), and the history keeps the latest anyway.
  if (!setup_sent_) {
    if (!threads_done_.load(std::memory_order_acquire)) return;
    send_setup();
  }
  if (events_sent_ || !impl_->rb) return;
  ring_buffer__poll(impl_->rb, 0);
  if (may_send && trigger_ && monotonic_ns() >= trigger_seen_ns_ + kTriggerTailNs) send_events();
}

void ProbeRunner::finish() {
  send_setup();
  if (events_sent_) return;
  if (impl_->rb) ring_buffer__poll(impl_->rb, 0);
  send_events();
}

void ProbeRunner::send_events() {
  events_sent_ = true;
  proto::ProbeEventsMsg msg = history_.report(trigger_);
  for (ktstr_probes* o : {impl_->kernel ? impl_->kernel->obj : nullptr, impl_->single_obj})
    if (o && o->bss) msg.events_dropped += o->bss->ringbuf_drops;
  for (ktstr_probes* o : impl_->fentry_objs)
    if (o->bss) msg.events_dropped += o->bss->ringbuf_drops;
  // Fit one frame: drop the oldest events of other tasks first, then the
  // oldest of the triggering task's.
  std::string frame = proto::encode_message(msg);
  while (frame.empty() && !msg.events.empty()) {
    size_t first = 0;
    while (first < msg.events.size() && trigger_ && msg.events[first].pid == trigger_->pid) ++first;
    size_t rest = msg.events.size() - first;
    size_t begin = rest > 0 ? first : 0, count = std::max<size_t>(1, (rest > 0 ? rest : first) / 4);
    msg.events.erase(msg.events.begin() + long(begin), msg.events.begin() + long(begin + count));
    msg.events_dropped += count;
    msg.per_task_history.clear();
    for (const proto::ProbeEvent& e : msg.events) ++msg.per_task_history[std::to_string(e.pid)];
    frame = proto::encode_message(msg);
  }
  log("info", "events: " + std::to_string(msg.events.size()) + " kept of " + std::to_string(msg.events_total) +
                  ", trigger " + (msg.trigger_fired ? "fired" : "did not fire"));
  if (sink_.send && !frame.empty()) sink_.send(frame);
}

}  // namespace ktstr::agent
