// ktstr-frame-dump: print a guest frame stream as "<type> <json>" lines, or
// encode one frame from JSON. A debugging aid; ktstr itself decodes in-process.
//
//   ktstr-frame-dump [FILE]            decode FILE (default stdin)
//   ktstr-frame-dump --encode TYPE     read JSON on stdin, write one frame
#include "guest/proto/messages.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
#include <string>
#include <fcntl.h>
#include <unistd.h>

using namespace ktstr::proto;

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: ktstr-frame-dump [FILE]\n"
               "       ktstr-frame-dump --encode TYPE < payload.json > frame.bin\n");
  return 2;
}

int encode(const std::string& type_name) {
  for (uint16_t raw = 1; raw < 64; ++raw) {
    auto type = static_cast<MsgType>(raw);
    if (!is_known_msg_type(raw) || msg_type_name(type) != type_name) continue;
    std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) {
      std::fprintf(stderr, "ktstr-frame-dump: error: stdin is not valid JSON\n");
      return 2;
    }
    std::string frame = encode_frame(type, dump_json(j));
    if (frame.empty()) {
      std::fprintf(stderr, "ktstr-frame-dump: error: payload exceeds %u bytes\n", kMaxPayload);
      return 2;
    }
    std::fwrite(frame.data(), 1, frame.size(), stdout);
    return 0;
  }
  std::fprintf(stderr, "ktstr-frame-dump: error: unknown message type '%s'\n", type_name.c_str());
  return 2;
}

void print_diagnostics(FrameDecoder& decoder) {
  for (const std::string& d : decoder.take_diagnostics())
    std::fprintf(stderr, "ktstr-frame-dump: warning: %s\n", d.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--encode") == 0) return encode(argv[2]);
  if (argc > 2 || (argc == 2 && argv[1][0] == '-' && argv[1][1] != '\0')) return usage();
  int in = STDIN_FILENO;
  if (argc == 2 && std::strcmp(argv[1], "-") != 0) {
    in = ::open(argv[1], O_RDONLY | O_CLOEXEC);
    if (in < 0) {
      std::fprintf(stderr, "ktstr-frame-dump: error: cannot open '%s': %s\n", argv[1],
                   std::strerror(errno));
      return 2;
    }
  }
  FrameDecoder decoder;
  char chunk[65536];
  auto drain = [&] {
    while (auto frame = decoder.next()) {
      std::string line = msg_type_name(frame->type) + " " + frame->payload + "\n";
      std::fwrite(line.data(), 1, line.size(), stdout);
      std::fflush(stdout);
    }
    print_diagnostics(decoder);
  };
  // read(2), not fread: frames from a live socket or FIFO print as they come.
  for (;;) {
    ssize_t n = ::read(in, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    decoder.feed(chunk, static_cast<size_t>(n));
    drain();
  }
  bool clean = decoder.finish();
  drain();
  return clean && decoder.stats().frames_bad == 0 ? 0 : 1;
}
