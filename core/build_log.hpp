// What a user needs to see of a failed build's log (kernel builds,
// scheduler builds): the lines that report an error, else how it ended.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ktstr {

// The first `max_lines` lines that report an error (a compiler's or
// linker's "error", "fatal:", make's "*** "), each cut at 300 characters;
// when none does, the log's last `max_lines` non-blank lines. Each line ends
// with '\n'; "" for an empty log.
std::string build_error_excerpt(std::string_view log, size_t max_lines);

}  // namespace ktstr
