#include "core/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstdio>

namespace ktstr::log {

void setup(int verbosity) {
  auto logger = spdlog::stderr_color_mt("ktstr");
  logger->set_pattern("ktstr: %^%l%$: %v");
  logger->set_level(verbosity >= 2 ? spdlog::level::debug
                    : verbosity == 1 ? spdlog::level::info
                                     : spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

void print_error(const std::string& msg, const std::string& hint) {
  std::fprintf(stderr, "ktstr: error: %s\n", msg.c_str());
  if (!hint.empty()) std::fprintf(stderr, "hint: %s\n", hint.c_str());
}

}  // namespace ktstr::log
