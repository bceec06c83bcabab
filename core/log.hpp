// Logging: one spdlog logger on stderr. Levels: warn by default, -v info,
// -vv debug. Other libraries' logs (libbpf) are routed here.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace ktstr::log {

void setup(int verbosity);
// Print "ktstr: error: <msg>" and "hint: <hint>" on stderr, as main does.
void print_error(const std::string& msg, const std::string& hint);

}  // namespace ktstr::log
