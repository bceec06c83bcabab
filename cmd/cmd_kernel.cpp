// `ktstr kernel fetch|add|list|rm`: the kernel cache from the command line.
// Parsing only; the work is in kbuild/ (kernel_cache, debian_fetch).
#include "cmd/cli.hpp"
#include "cmd/commands.hpp"
#include "core/fs.hpp"
#include "core/result.hpp"
#include "db/store.hpp"
#include "run/progress.hpp"
#include "kbuild/kernel_build.hpp"
#include "kbuild/kernel_cache.hpp"
#include "kbuild/kernel_report.hpp"
#include "core/local_time.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <iostream>

namespace ktstr::cmd {
using namespace ktstr::runner;

namespace {

const char* kKernelFooter =
    "REF (for rm, and --kernel elsewhere): an id, a unique id prefix, a version\n"
    "(7.3.4, or 6.17 for the newest 6.17.x cached) or a name.";

const std::vector<std::string> kSubcommands = {"fetch", "add", "build", "list", "rm", "gc"};

void progress_line(const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); }

// "sched_ext_dump,sched_ext_exit" -> "dump,exit": the prefix is in the header.
std::string short_tracepoints(const std::vector<std::string>& tps) {
  std::string out;
  for (auto& t : tps) {
    std::string s = t.rfind("sched_ext_", 0) == 0 ? t.substr(10) : t;
    out += (out.empty() ? "" : ",") + s;
  }
  return out.empty() ? "-" : out;
}

void print_record(const KernelRecord& k, bool json) {
  if (json) {
    std::cout << kbuild::kernel_json(k).dump(2) << "\n";
    return;
  }
  std::cout << fmt::format("{} {} (sched_ext: {}, tracepoints: {})\n", k.id, k.version,
                           k.sched_ext ? "yes" : "no", short_tracepoints(k.tracepoints));
}

int list_kernels(db::Store& store, bool json) {
  auto all = value_or_die(kbuild::list_kernels_checked(store, true));
  if (json) {
    nlohmann::json arr = nlohmann::json::array();
    for (auto& h : all) {
      auto j = kbuild::kernel_json(h.record);
      j["corrupt"] = h.corrupt;
      j["problem"] = h.problem;
      arr.push_back(std::move(j));
    }
    std::cout << arr.dump(2) << "\n";
    return kExitOk;
  }
  if (all.empty()) {
    std::cout << "no kernels cached (add one with 'ktstr kernel fetch' or 'ktstr kernel add PATH')\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"ID", "VERSION", "NAME", "SCHED_EXT", "TRACEPOINTS (sched_ext_*)", "SOURCE"}};
  for (auto& h : all) {
    auto& k = h.record;
    std::string source = k.source;
    if (h.corrupt) source += "  CORRUPT (" + h.problem + ")";
    rows.push_back({k.id, k.version, k.name.empty() ? "-" : k.name, k.sched_ext ? "yes" : "no",
                    short_tracepoints(k.tracepoints), source});
  }
  std::cout << render_table(rows);
  size_t corrupt = static_cast<size_t>(std::count_if(all.begin(), all.end(), [](auto& h) { return h.corrupt; }));
  if (corrupt)
    std::fprintf(stderr, "hint: re-add a CORRUPT kernel ('ktstr kernel add PATH' or 'fetch') or remove it with 'ktstr kernel rm ID'\n");
  return kExitOk;
}

// On a terminal one updating line; otherwise a line per phase and one a minute.
class BuildProgressView {
 public:
  explicit BuildProgressView(bool json) : tty_(::isatty(STDERR_FILENO) != 0 && !json), json_(json), line_(tty_) {}
  void operator()(const kbuild::KernelBuildProgress& p) {
    if (tty_) return line_.update(kbuild::kernel_build_progress_text(p));
    if (json_) return;
    if (p.phase != last_phase_ || p.elapsed - last_print_ >= 60) {
      std::fprintf(stderr, "%s\n", kbuild::kernel_build_progress_text(p).c_str());
      last_phase_ = p.phase;
      last_print_ = p.elapsed;
    }
  }
  void clear() { line_.clear(); }

 private:
  bool tty_;
  bool json_;
  Progress line_;
  std::string last_phase_;
  double last_print_ = 0;
};

int build_kernel(db::Store& store, const kbuild::KernelBuildRequest& req, bool json) {
  BuildProgressView view(json);
  auto r = value_or_die(kbuild::build_kernel(store, req, [&](const kbuild::KernelBuildProgress& p) { view(p); }));
  view.clear();
  for (const auto& d : r.dropped)
    std::fprintf(stderr, "warning: kconfig did not keep %s (an unmet dependency or an unknown option)\n", d.c_str());
  if (json) {
    std::cout << kbuild::kernel_build_json(r).dump(2) << "\n";
    return r.ok ? kExitOk : kExitTestFailed;
  }
  if (!r.ok) {
    std::fprintf(stderr, "ktstr: error: the kernel build failed after %s\n%s", kbuild::minutes_seconds(r.seconds).c_str(),
                 r.error_excerpt.c_str());
    std::fprintf(stderr, "hint: the whole log is '%s'\n", r.log_path.c_str());
    return kExitTestFailed;
  }
  std::cout << fmt::format("{} {} ({}, {})\n", r.kernel.id, r.kernel.version, r.kernel.source,
                           r.cached ? "cached: nothing built" : "built in " + kbuild::minutes_seconds(r.seconds));
  return kExitOk;
}

// The command line: what cmd_kernel parses and completion reads.
struct KernelCli {
  CLI::App app{"Manage the kernel cache: Debian kernels with sched_ext, or any bzImage.", "ktstr kernel"};
  std::string fetch_version;
  bool fetch_json = false;
  std::string add_path, add_config, add_name;
  bool add_json = false;
  kbuild::KernelBuildRequest build_req;
  bool build_json_out = false;
  size_t gc_keep = 0;
  bool list_json = false;
  std::string rm_ref;
  CLI::App *fetch, *add, *build, *gc, *list, *rm;

  KernelCli() {
    app.footer(kKernelFooter);
    app.require_subcommand(1);

    fetch = app.add_subcommand("fetch", "download a Debian cloud kernel with sched_ext and cache it");
    fetch->add_option("VERSION", fetch_version,
                      "7.3 (newest 7.3.x) or 7.3.4 (that version); default: newest of 7.3, 7.2, 6.17");
    fetch->add_flag("--json", fetch_json, "print the cached kernel as JSON");

    add = app.add_subcommand("add", "register a bzImage (idempotent)");
    add->add_option("PATH", add_path, "the kernel image (bzImage / vmlinuz)")->required()->type_name("FILE");
    add->add_option("--config", add_config, "its .config (default: config or config-<version> beside it)")
        ->type_name("FILE");
    add->add_option("--name", add_name, "a name to refer to it by");
    add->add_flag("--json", add_json, "print the cached kernel as JSON");

    build = app.add_subcommand("build", "build a kernel for ktstr from a source tree or a git commit, and cache it");
    build->add_option("--source", build_req.source_dir, "a kernel source tree (built out of tree; never written to)")
        ->type_name("DIR");
    build->add_option("--repo", build_req.repo, "a git repository holding a kernel tree (with --commit)")
        ->type_name("DIR");
    build->add_option("--commit", build_req.commit, "the revision of --repo to build (checked out under the cache)");
    build->add_option("--config", build_req.config_fragment, "a config fragment applied on top of ktstr's")
        ->type_name("FILE");
    build->add_option("--jobs,-j", build_req.jobs, "parallel make jobs (default: the number of CPUs)");
    build->add_option("--name", build_req.name, "a name to refer to the kernel by");
    build->add_flag("--json", build_json_out, "print the result as JSON");

    gc = app.add_subcommand("gc", "remove built kernels but the newest N, and unused build directories");
    gc->add_option("--keep", gc_keep, "how many built kernels to keep")->required();

    list = app.add_subcommand("list", "list cached kernels, flagging CORRUPT entries");
    list->add_flag("--json", list_json, "print a JSON array");

    rm = app.add_subcommand("rm", "remove a cached kernel's files and record");
    rm->add_option("REF", rm_ref, "id, unique id prefix, version or name")->required()->type_name("KERNEL");
  }
};

}  // namespace

void describe_kernel(const AppUse& use) { KernelCli cli; use("", cli.app); }

int cmd_kernel(db::Store& store, const std::vector<std::string>& args) {
  KernelCli c;
  if (args.empty())
    throw Fatal(Error("kernel: a subcommand is required",
                      "use fetch, add, build, list, rm or gc; see 'ktstr kernel --help'"));
  const bool known = std::find(kSubcommands.begin(), kSubcommands.end(), args[0]) != kSubcommands.end();
  if (!known && args[0].rfind('-', 0) != 0)
    throw Fatal(Error("kernel: '" + args[0] + "' is not a kernel command", "use fetch, add, build, list, rm or gc"));
  if (!parse_command_line(c.app, args, "kernel")) return kExitOk;

  if (*c.fetch) {
    auto k = value_or_die(kbuild::fetch_debian_kernel(store, c.fetch_version, progress_line));
    print_record(k, c.fetch_json);
  } else if (*c.add) {
    kbuild::AddOptions opts;
    opts.config_path = c.add_config;
    opts.name = c.add_name;
    auto k = value_or_die(kbuild::add_kernel(store, c.add_path, opts));
    print_record(k, c.add_json);
  } else if (*c.build) {
    if (c.build_req.source_dir.empty() == c.build_req.repo.empty())
      throw Fatal(Error("kernel build: give either --source DIR or --repo DIR --commit REV",
                        "see 'ktstr kernel build --help'"));
    if (!c.build_req.repo.empty() && c.build_req.commit.empty())
      throw Fatal(Error("kernel build: --repo needs --commit", "give the revision to build, e.g. --commit HEAD"));
    if (c.build_req.repo.empty() && !c.build_req.commit.empty())
      throw Fatal(Error("kernel build: --commit needs --repo", "give the repository with --repo DIR"));
    return build_kernel(store, c.build_req, c.build_json_out);
  } else if (*c.gc) {
    auto removed = value_or_die(kbuild::gc_kernel_builds(store, c.gc_keep));
    for (const auto& what : removed) std::cout << "removed " << what << "\n";
    if (removed.empty()) std::cout << "nothing to remove\n";
  } else if (*c.list) {
    return list_kernels(store, c.list_json);
  } else if (*c.rm) {
    auto k = value_or_die(kbuild::remove_kernel(store, c.rm_ref));  // with its build directories
    std::cout << fmt::format("removed {} {}\n", k.id, k.version);
  }
  return kExitOk;
}

int cmd_kernel(const std::vector<std::string>& args) {
  auto store = value_or_die(db::Store::open(cache_dir()));
  return cmd_kernel(*store, args);
}

}  // namespace ktstr::cmd
