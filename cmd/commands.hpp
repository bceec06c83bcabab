// The command table, like git.c's cmd_struct: one row per built-in, with what
// it needs set up before it runs. cmd/main.cpp dispatches from it.
#pragma once

#include "db/store.hpp"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace ktstr::cmd {

enum Needs : unsigned {
  kNeedsNothing = 0,
  kNeedsStore = 1u << 0,   // open (and migrate) the store first
};

struct Context {
  std::string argv0;               // how ktstr was invoked
  std::string command;             // the built-in being run
  int verbosity = 0;
  std::unique_ptr<db::Store> store;  // opened by kNeedsStore or by store()

  // The store, opened on first use (so bad arguments never touch it);
  // throws Fatal when it cannot be opened.
  db::Store& open_store();
};

using CommandFn = int (*)(Context&, const std::vector<std::string>& args);

// A command's command line, for `ktstr completion`: the command builds its
// CLI::App as it does to parse (options bound to storage that lives for the
// call) and hands it to `use`: once with sub "" for its own App (whose
// CLI11 subcommands are its subcommands), once per subcommand it parses
// with an App of its own (`bisect list`).
using AppUse = std::function<void(const std::string& sub, const CLI::App& app)>;
using DescribeFn = void (*)(const AppUse& use);

struct Command {
  const char* name;
  CommandFn fn;
  unsigned needs;
  const char* summary;
  DescribeFn describe = nullptr;  // none: no options to complete
};

// All built-ins, in the order `ktstr help` lists them.
const std::vector<Command>& commands();
const Command* find_command(const std::string& name);

// Built-ins (one thin file each).
int cmd_test(Context&, const std::vector<std::string>&);
int cmd_kernel_entry(Context&, const std::vector<std::string>&);
int cmd_help(Context&, const std::vector<std::string>&);
int cmd_version(Context&, const std::vector<std::string>&);
int cmd_pin(Context&, const std::vector<std::string>&);
int cmd_crash(Context&, const std::vector<std::string>&);
int cmd_doctor(Context&, const std::vector<std::string>&);
int cmd_bisect(Context&, const std::vector<std::string>&);
int cmd_run_unit(Context&, const std::vector<std::string>&);
int cmd_worker(Context&, const std::vector<std::string>&);
int cmd_runs(Context&, const std::vector<std::string>&);
int cmd_verifier(Context&, const std::vector<std::string>&);
int cmd_repro(Context&, const std::vector<std::string>&);
int cmd_gauntlet(Context&, const std::vector<std::string>&);
int cmd_completion(Context&, const std::vector<std::string>&);

// Their command lines (see DescribeFn).
void describe_test(const AppUse&);
void describe_kernel(const AppUse&);
void describe_repro(const AppUse&);
void describe_pin(const AppUse&);
void describe_crash(const AppUse&);
void describe_bisect(const AppUse&);
void describe_gauntlet(const AppUse&);
void describe_runs(const AppUse&);
void describe_verifier(const AppUse&);
void describe_doctor(const AppUse&);
void describe_completion(const AppUse&);

// Names close to `name` (edit distance or prefix), for "did you mean".
std::vector<std::string> similar_commands(const std::string& name);

}  // namespace ktstr::cmd
