// `ktstr completion`'s scripts, generated from the command table
// (commands.cpp) and each command's own CLI::App (Command::describe), so an
// option is written down once, where the command parses it. What an
// option's value is comes from its type name: KERNEL (cached kernels), CRASH
// (crash ids), SPEC (spec files, *.toml, and directories), FILE, DIR; any
// other value gets no completion. Kernels and crashes are read when the user
// presses TAB, by `ktstr completion --values kernels|crashes`.
#pragma once

#include <string>
#include <vector>

namespace ktstr::cmd {

enum class ValueKind { kNone, kKernel, kCrash, kSpec, kFile, kDir, kCommand };

struct CompletionOption {
  std::vector<std::string> names;  // "-j", "--jobs"
  bool takes_value = false;
  ValueKind value = ValueKind::kNone;
  std::string help;
};

struct CompletionCommand {
  std::string key;                       // "test", "kernel fetch": the words after ktstr
  std::string help;
  std::vector<CompletionOption> options;
  ValueKind positional = ValueKind::kNone;  // its first positional argument's
  std::vector<std::string> subcommands;  // "fetch", "add", ... (their keys: key + " " + name)
};

// Every command of the table, each followed by its subcommands.
std::vector<CompletionCommand> completion_model();

std::string bash_completion(const std::vector<CompletionCommand>& model);
std::string zsh_completion(const std::vector<CompletionCommand>& model);
std::string fish_completion(const std::vector<CompletionCommand>& model);

}  // namespace ktstr::cmd
