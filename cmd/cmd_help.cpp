// `ktstr help [cmd]` and `ktstr version`.
#include "cmd/commands.hpp"
#include "core/result.hpp"

#include <cstdio>

#ifndef KTSTR_VERSION
#define KTSTR_VERSION "0.0.0"
#endif

namespace ktstr::cmd {

int cmd_version(Context&, const std::vector<std::string>&) {
  std::printf("ktstr version %s\n", KTSTR_VERSION);
  return kExitOk;
}

int cmd_help(Context& ctx, const std::vector<std::string>& args) {
  if (args.empty()) {
    std::printf("usage: ktstr [--version] [-v] [--help] <command> [<args>]\n\ncommands:\n");
    for (auto& c : commands()) std::printf("   %-10s %s\n", c.name, c.summary);
    std::printf("\nSee 'ktstr help <command>' or 'man ktstr-<command>' for a command's options.\n");
    return kExitOk;
  }
  const Command* c = find_command(args[0]);
  if (!c) {
    auto close = similar_commands(args[0]);
    throw Fatal(Error("no help for '" + args[0] + "': it is not a ktstr command",
                      close.empty() ? "see 'ktstr help' for the list of commands"
                                    : "did you mean '" + close.front() + "'?"));
  }
  if (c->fn == cmd_help || c->fn == cmd_version) {
    std::printf("usage: ktstr %s\n\n%s\n", c->name, c->summary);
    return kExitOk;
  }
  return c->fn(ctx, {"--help"});
}

}  // namespace ktstr::cmd
