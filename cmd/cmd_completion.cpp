// `ktstr completion bash|zsh|fish`: print a completion script for the
// shell (cmd/completion.hpp builds it from the command table). The scripts
// call `ktstr completion --values kernels|crashes` (plumbing, not in --help)
// for what the store holds when the user presses TAB.
#include "cmd/cli.hpp"
#include "cmd/commands.hpp"
#include "cmd/completion.hpp"
#include "core/fs.hpp"
#include "db/crashes.hpp"
#include "db/store.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <set>

namespace ktstr::cmd {
namespace {

// The command line: what cmd_completion parses and completion reads.
struct CompletionCli {
  std::string shell, values;
  CLI::App app{"print a shell completion script; load it with 'source <(ktstr completion bash)' (zsh: the same "
               "after compinit; fish: 'ktstr completion fish | source')",
               "ktstr completion"};
  CompletionCli() {
    app.add_option("shell", shell, "bash, zsh or fish")->check(CLI::IsMember({"bash", "zsh", "fish"}));
    app.add_option("--values", values, "print the cached kernels or the crash ids, one per line (what the scripts call)")
        ->check(CLI::IsMember({"kernels", "crashes"}))
        ->group("");  // plumbing: not in --help, not completed
  }
};

// The kernels' ids, versions and names, or the crash ids; nothing when
// there is no store yet (completion must not create one).
int print_values(const std::string& what) {
  if (!path_exists(cache_dir() + "/ktstr.db")) return kExitOk;
  auto store = value_or_die(db::Store::open(cache_dir()));
  std::set<std::string> seen;
  auto print = [&](const std::string& v) {
    if (!v.empty() && seen.insert(v).second) std::printf("%s\n", v.c_str());
  };
  if (what == "kernels") {
    for (auto& k : value_or_die(store->list_kernels())) {
      print(k.id);
      print(k.version);
      print(k.name);
    }
  } else {
    for (auto& c : value_or_die(db::list_crashes(*store))) print(c.id);
  }
  return kExitOk;
}

}  // namespace

void describe_completion(const AppUse& use) { CompletionCli cli; use("", cli.app); }

int cmd_completion(Context&, const std::vector<std::string>& argv) {
  CompletionCli cli;
  if (!parse_command_line(cli.app, argv, "completion")) return kExitOk;
  if (!cli.values.empty()) {
    if (!cli.shell.empty()) throw Fatal(Error("completion: give a shell or --values, not both"));
    return print_values(cli.values);
  }
  if (cli.shell.empty())
    throw Fatal(Error("completion: which shell?", "use 'ktstr completion bash', 'zsh' or 'fish'"));
  const std::vector<CompletionCommand> model = completion_model();
  const std::string script = cli.shell == "bash"  ? bash_completion(model)
                             : cli.shell == "zsh" ? zsh_completion(model)
                                                  : fish_completion(model);
  std::fputs(script.c_str(), stdout);
  return kExitOk;
}

}  // namespace ktstr::cmd
