// ktstr-mapwrite <map-name-suffix> <var> <value>: write a BPF global variable
// of the running scheduler from inside the guest (static binary).
#include "guest/scheduler/mapwrite.hpp"

#include <cstdio>
#include <ctime>
#include <string>

int main(int argc, char** argv) {
  using namespace ktstr;
  if (argc != 4) {
    std::fprintf(stderr,
                 "usage: ktstr-mapwrite <map-name-suffix> <var> <value>\n"
                 "  e.g. ktstr-mapwrite .bss crash 1\n");
    return kExitUsage;
  }
  auto report_error = [](const Error& e) {
    std::fprintf(stderr, "ktstr-mapwrite: error: %s\n", e.msg.c_str());
    if (!e.hint.empty()) std::fprintf(stderr, "hint: %s\n", e.hint.c_str());
  };
  auto value = mapwrite::parse_value(argv[3]);
  if (!value) {
    report_error(value.error());
    return kExitUsage;
  }
  auto done = mapwrite::write_map_var(argv[1], argv[2], *value);
  if (!done) {
    report_error(done.error());
    return kExitTestFailed;
  }
  // CLOCK_MONOTONIC, as the loader's exit line: crash-to-exit latency.
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  std::printf("ktstr-mapwrite: %s.%s = %lld (was %llu; map id %u, offset %u, size %u) at %.6f\n",
              done->map_name.c_str(), done->slot.name.c_str(), static_cast<long long>(*value),
              static_cast<unsigned long long>(done->old_value), done->map_id, done->slot.offset,
              done->slot.size, double(now.tv_sec) + double(now.tv_nsec) / 1e9);
  return kExitOk;
}
