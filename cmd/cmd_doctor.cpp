// `ktstr doctor`: print what a bug report needs (host, QEMU, KVM verdict,
// kernels, store, BPF tools) and a hint for each problem. The logic is in
// doctor.cpp; this is the command line.
#include "cmd/cli.hpp"
#include "cmd/commands.hpp"
#include "run/doctor.hpp"
#include "core/fs.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

namespace ktstr::cmd {
using namespace ktstr::runner;

namespace {

// The command line: what cmd_doctor parses and completion reads.
struct DoctorCli {
  bool json = false;
  CLI::App app{"Check this host for ktstr: host kernel, QEMU, /dev/kvm and the accelerator verdict, cached\n"
               "kernels, the store, libbpf/bpftool/clang. Each problem gets a hint. Exit status 1 when a\n"
               "problem blocks running tests (no QEMU, no sched_ext kernel), else 0.",
               "ktstr doctor"};
  DoctorCli() { app.add_flag("--json", json, "print one JSON object"); }
};

}  // namespace

void describe_doctor(const AppUse& use) { DoctorCli cli; use("", cli.app); }

int cmd_doctor(Context&, const std::vector<std::string>& args) {
  DoctorCli cli;
  if (!parse_command_line(cli.app, args, "doctor")) return kExitOk;
  auto report = collect_doctor(cache_dir());
  if (cli.json) {
    std::cout << doctor_json(report).dump(2) << "\n";
  } else {
    std::cout << render_doctor(report);
  }
  return doctor_exit_status(report);
}

}  // namespace ktstr::cmd
