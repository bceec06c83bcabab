// Table entry for `ktstr kernel`; the command itself is cmd_kernel.cpp.
#include "cmd/commands.hpp"

namespace ktstr::cmd {

int cmd_kernel(const std::vector<std::string>& args);

int cmd_kernel_entry(Context&, const std::vector<std::string>& args) { return cmd_kernel(args); }

}  // namespace ktstr::cmd
