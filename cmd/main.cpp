// The ktstr front. `ktstr <cmd>` runs a built-in from the table in
// commands.cpp; `ktstr-<cmd>` (a link to this binary) behaves identically; an
// unknown `ktstr foo` runs `ktstr-foo` from this binary's directory or PATH,
// as git does.
#include "cmd/commands.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/subprocess.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

namespace ktstr::cmd {
namespace {

std::string basename_of(const std::string& p) {
  auto slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

void print_usage(FILE* out) {
  std::fprintf(out, "usage: ktstr [--version] [-v] [--help] <command> [<args>]\n\n");
  std::fprintf(out, "commands:\n");
  for (auto& c : commands()) std::fprintf(out, "   %-10s %s\n", c.name, c.summary);
  std::fprintf(out,
               "\n'ktstr help <command>' shows a command's options; 'ktstr <name>' also runs\n"
               "a 'ktstr-<name>' program found next to ktstr or on PATH.\n");
}

// Runs ktstr-<name> if it exists; returns only when it does not.
void exec_external(const std::string& name, const std::vector<std::string>& args) {
  std::string prog = "ktstr-" + name;
  std::string path = exe_dir() + "/" + prog;
  if (::access(path.c_str(), X_OK) != 0) path = find_in_path(prog);
  if (path.empty()) return;
  std::vector<char*> argv;
  argv.push_back(prog.data());
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execve(path.c_str(), argv.data(), environ);
  throw Fatal(Error("cannot run '" + path + "': " + std::strerror(errno)));
}

int run_builtin(const Command& c, Context& ctx, const std::vector<std::string>& args) {
  ctx.command = c.name;
  if (c.needs & kNeedsStore) ctx.open_store();
  return c.fn(ctx, args);
}

}  // namespace

db::Store& Context::open_store() {
  if (!store) {
    auto s = db::Store::open(cache_dir());
    if (!s) throw Fatal(s.error());
    store = std::move(*s);
  }
  return *store;
}

namespace {

int real_main(int argc, char** argv) {
  install_child_cleanup();
  Context ctx;
  ctx.argv0 = argc > 0 ? argv[0] : "ktstr";
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);

  if (const char* v = std::getenv("KTSTR_VERBOSE"); v && *v && std::strcmp(v, "0") != 0) ctx.verbosity = 1;

  // ktstr-test, ktstr-kernel, ...: the command is in the program name.
  std::string self = basename_of(ctx.argv0);
  if (self.rfind("ktstr-", 0) == 0) {
    std::string name = self.substr(6);
    if (const Command* c = find_command(name)) {
      log::setup(ctx.verbosity);
      return run_builtin(*c, ctx, args);
    }
  }

  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--version") {
      args = {"version"};
      i = 0;
      break;
    }
    if (a == "-h" || a == "--help") {
      print_usage(stdout);
      return kExitOk;
    }
    if (a == "-v" || a == "--verbose") {
      ++ctx.verbosity;
      continue;
    }
    if (a == "-vv") {
      ctx.verbosity += 2;
      continue;
    }
    if (!a.empty() && a[0] == '-')
      throw Fatal(Error("unknown option '" + a + "'", "see 'ktstr --help'"));
    break;
  }
  log::setup(ctx.verbosity);
  if (i >= args.size()) {
    print_usage(stderr);
    return kExitUsage;
  }
  std::string name = args[i];
  std::vector<std::string> rest(args.begin() + static_cast<long>(i) + 1, args.end());
  if (const Command* c = find_command(name)) return run_builtin(*c, ctx, rest);

  exec_external(name, rest);
  auto close = similar_commands(name);
  std::string hint;
  if (close.empty()) {
    hint = "see 'ktstr help' for the list of commands";
  } else {
    hint = "the most similar command" + std::string(close.size() > 1 ? "s are" : " is");
    for (auto& c : close) hint += " '" + c + "'";
  }
  throw Fatal(Error("'" + name + "' is not a ktstr command", hint));
}

}  // namespace
}  // namespace ktstr::cmd

int main(int argc, char** argv) {
  try {
    return ktstr::cmd::real_main(argc, argv);
  } catch (const ktstr::Fatal& f) {
    ktstr::log::print_error(f.error().msg, f.error().hint);
    return f.code();
  } catch (const std::exception& e) {
    ktstr::log::print_error(std::string("internal error: ") + e.what(),
                            "please report this with the command you ran");
    return ktstr::kExitUsage;
  }
}
