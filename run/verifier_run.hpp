// `ktstr verifier`: the BPF objects of a scheduler (a .bpf.o, or a binary
// with embedded skeletons) loaded in one VM on the chosen kernel with the
// verifier's statistics on, turned into VerifierReports. A compare loads
// both files in the same boot.
#pragma once

#include "run/pipeline.hpp"
#include "core/records.hpp"
#include "core/result.hpp"
#include "core/verifier_stats.hpp"
#include "db/store.hpp"
#include "guest/proto/messages.hpp"

#include <optional>
#include <string>
#include <vector>

namespace ktstr::runner {

// A file given to `ktstr verifier`, read and checked before any VM boots.
struct VerifierInput {
  std::string path;
  std::vector<std::string> objects;  // the BPF objects' bytes, in file order
};

// Errors (exit 2): missing or unreadable file, not ELF, no BPF object inside.
Result<VerifierInput> read_verifier_input(const std::string& path);

struct VerifierRun {
  VerifierReport a;
  std::optional<VerifierReport> b;  // --compare
  std::string accel;
  double wall_s = 0;
  std::vector<std::string> diagnostics;  // the VM's end, guest warnings
};

// One VM on `kernel` that loads every object of `a` (and `b`). Host-side
// failures are errors; a VM that ends without a result leaves a report
// error saying how it ended.
Result<VerifierRun> run_verifier(db::Store& store, const KernelRecord& kernel, const VerifierInput& a,
                                 const VerifierInput* b, const PipelineOptions& opts);

// A guest's VERIFIER_RESULT as programs of a report (logs parsed here).
void add_verifier_result(VerifierReport& report, const proto::VerifierResultMsg& msg, uint32_t object);

}  // namespace ktstr::runner
