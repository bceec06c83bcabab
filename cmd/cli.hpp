// Shared CLI11 parsing for the subcommands: help goes to stdout with status
// 0; a parse error becomes one git-style error line plus a hint (status 2).
#pragma once

#include "core/result.hpp"

#include <CLI/CLI.hpp>

#include <cctype>
#include <iostream>
#include <string>
#include <vector>

namespace ktstr::cmd {

// Parses `args` (the words after the command name). Returns false when help
// was printed and the command should return kExitOk.
inline bool parse_command_line(CLI::App& app, const std::vector<std::string>& args, const std::string& command) {
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them reversed
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();  // CLI11 shows the chosen subcommand's help
    return false;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return false;
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    // git style: lowercase first word, unless it is a name ("PATH is required").
    if (msg.size() > 1 && std::islower(static_cast<unsigned char>(msg[1])))
      msg[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(msg[0])));
    throw Fatal(Error(command + ": " + msg, "see 'ktstr " + command + " --help'"));
  }
  return true;
}

}  // namespace ktstr::cmd
