// Kernel configs for `ktstr kernel build`: ktstr's own fragment
// (kbuild/ktstr.kconfig, compiled in), the user's fragment on top, and the
// check of the final .config for every option ktstr needs. Pure text work;
// running kconfig itself is kernel_build.cpp's.
#pragma once

#include "core/result.hpp"

#include <string>
#include <vector>

namespace ktstr::kbuild {

// One assignment: CONFIG_<symbol>=<value>; "# CONFIG_<symbol> is not set" is
// the value "n". Strings keep their quotes ("\"ktstr\"").
struct KconfigSetting {
  std::string symbol;  // without CONFIG_
  std::string value;
};

// A fragment or .config, in file order. Blank lines and comments other than
// "is not set" are skipped. Error (naming `origin` and the line number) for
// a line that is neither.
Result<std::vector<KconfigSetting>> parse_kconfig(const std::string& text, const std::string& origin);

// ktstr.kconfig as compiled into ktstr.
const std::string& ktstr_kconfig();

// Fragments merged in order, a later one overriding an earlier one's
// symbol (merge_config.sh's rule): the settings (first position of each
// symbol kept) and the text handed to kconfig as KCONFIG_ALLCONFIG.
struct MergedKconfig {
  std::vector<KconfigSetting> settings;
  std::vector<std::string> overridden;  // "CONFIG_X: y -> n" for each value a later fragment changed
  std::string text;
};
MergedKconfig merge_kconfig(const std::vector<std::vector<KconfigSetting>>& fragments);

// What a config says for `symbol` ("n" when unset or absent).
std::string kconfig_value(const std::vector<KconfigSetting>& config, const std::string& symbol);

// Options the final .config must have (=y) for ktstr's VM, agent, probes and
// sched_ext, with why.
struct RequiredOption {
  std::string symbol;
  std::string why;
};
const std::vector<RequiredOption>& required_kconfig_options();

// The required options a final .config lacks, in required_kconfig_options() order.
std::vector<RequiredOption> missing_required_options(const std::vector<KconfigSetting>& final_config);

// Settings of the merged fragments that the final .config does not carry
// (kconfig dropped them: unmet dependency, unknown symbol): "CONFIG_X=y (now n)".
std::vector<std::string> dropped_settings(const MergedKconfig& merged, const std::vector<KconfigSetting>& final_config);

// An error naming every missing required option, or ok. `tree` names the
// source in the message.
Status check_required_options(const std::vector<KconfigSetting>& final_config, const std::string& tree);

}  // namespace ktstr::kbuild
