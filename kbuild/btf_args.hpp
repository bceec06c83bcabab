// Argument kinds of kernel functions, from a kernel's vmlinux BTF: what the
// guest's probe runner can decode at each argument (struct task_struct * ->
// "task", struct rq * -> "rq", struct scx_dispatch_q * -> "dsq",
// struct scx_exit_info * -> "exit_info", integers -> "scalar", else "none").
#pragma once

#include "core/result.hpp"

#include <map>
#include <string>
#include <vector>

namespace ktstr::kbuild {

struct BtfArg {
  std::string name;  // parameter name, "" when BTF has none
  std::string kind;  // task | rq | dsq | exit_info | scalar | none
  bool operator==(const BtfArg&) const = default;
};

struct BtfProbeArgs {
  // Each function BTF knows (BTF_KIND_FUNC -> FUNC_PROTO); the rest are absent.
  std::map<std::string, std::vector<BtfArg>> functions;
  // Each function-pointer member of struct sched_ext_ops (the callbacks a
  // struct_ops scheduler implements), by member name; empty when the kernel
  // has no sched_ext.
  std::map<std::string, std::vector<BtfArg>> ops;
};

// Parses the vmlinux once. Error when the file cannot be parsed.
Result<BtfProbeArgs> btf_probe_args(const std::string& vmlinux_path, const std::vector<std::string>& functions);
// The same, functions only.
Result<std::map<std::string, std::vector<BtfArg>>> btf_function_args(const std::string& vmlinux_path,
                                                                     const std::vector<std::string>& functions);

}  // namespace ktstr::kbuild
