// How `ktstr kernel` shows kernels and kernel builds: the JSON of a cached
// kernel and of a build, and a build's progress line.
#pragma once

#include "core/records.hpp"
#include "core/result.hpp"
#include "kbuild/kernel_build.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace ktstr::kbuild {

// A cached kernel as `kernel list --json` and `kernel fetch --json` print it.
nlohmann::json kernel_json(const KernelRecord& k);
// Back from that JSON (a worker gets its kernel so, run/worker.hpp); strict:
// no id or image, or a field of the wrong type, is an error.
Result<KernelRecord> kernel_from_json(std::string_view text);
// A build's result as `kernel build --json` prints it.
nlohmann::json kernel_build_json(const KernelBuildResult& r);
// "kernel build: compile, 1234/~2000 objects, 3m05s".
std::string kernel_build_progress_text(const KernelBuildProgress& p);
// "3m05s", or "42s" under a minute.
std::string minutes_seconds(double seconds);

}  // namespace ktstr::kbuild
