#include "cmd/commands.hpp"

#include <algorithm>

namespace ktstr::cmd {

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"test", cmd_test, kNeedsNothing, "run test specs in VMs and report", describe_test},
      {"kernel", cmd_kernel_entry, kNeedsNothing, "manage the kernel cache (fetch, add, build, list, rm, gc)",
       describe_kernel},
      {"repro", cmd_repro, kNeedsNothing, "replay a recorded crash with probes attached", describe_repro},
      {"pin", cmd_pin, kNeedsNothing, "write a regression test from a crash signature", describe_pin},
      {"crash", cmd_crash, kNeedsNothing, "browse recorded crashes (list, show)", describe_crash},
      {"bisect", cmd_bisect, kNeedsNothing, "find the commit where a crash signature appears (list, log, resume)",
       describe_bisect},
      {"gauntlet", cmd_gauntlet, kNeedsNothing, "run a spec over topologies x kernels x scheduler arguments (a grid)",
       describe_gauntlet},
      {"runs", cmd_runs, kNeedsNothing, "browse stored runs and compare their stats (list, show, compare)",
       describe_runs},
      {"verifier", cmd_verifier, kNeedsNothing, "show the BPF verifier's statistics per program of a scheduler",
       describe_verifier},
      {"run-unit", cmd_run_unit, kNeedsNothing, "run one unit of a job array (what --executor slurm submits)"},
      {"worker", cmd_worker, kNeedsNothing, "run one unit of work and print its runs (what ktstr's workers run)"},
      {"doctor", cmd_doctor, kNeedsNothing, "check this host: QEMU, KVM, kernels, store, BPF tools", describe_doctor},
      {"completion", cmd_completion, kNeedsNothing, "print a shell completion script (bash, zsh, fish)",
       describe_completion},
      {"help", cmd_help, kNeedsNothing, "show help for ktstr or one command"},
      {"version", cmd_version, kNeedsNothing, "print the version"},
  };
  return table;
}

const Command* find_command(const std::string& name) {
  for (auto& c : commands())
    if (name == c.name) return &c;
  return nullptr;
}

namespace {

// Optimal string alignment distance: Levenshtein plus adjacent
// transpositions, so "tset" is one typo away from "test".
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

std::vector<std::string> similar_commands(const std::string& name) {
  std::vector<std::pair<size_t, std::string>> scored;
  for (auto& c : commands()) {
    std::string n = c.name;
    size_t d = edit_distance(name, n);
    bool prefix = name.size() >= 2 && n.rfind(name, 0) == 0;
    // Like git's help.c: allow more typos in longer names.
    size_t limit = std::max<size_t>(1, std::min<size_t>(2, n.size() / 3));
    if (prefix || d <= limit) scored.emplace_back(prefix ? 0 : d, n);
  }
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (auto& [d, n] : scored) out.push_back(n);
  return out;
}

}  // namespace ktstr::cmd
