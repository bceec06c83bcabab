// `ktstr pin`: a regression test from a recorded crash. The test replays the
// crash's scheduler, topology, scenario and map writes, expects the error,
// and pins the stable part of its message (a literal) and its source
// location with the line number generalized (a regex).
#pragma once

#include "core/records.hpp"
#include "core/result.hpp"
#include "core/spec.hpp"

#include <string>
#include <string_view>

namespace ktstr {

// Escape PCRE2 metacharacters so the text matches literally.
std::string regex_escape(std::string_view text);

// The message without its "FILE:LINE: " prefix and without volatile
// numbers: the longest number-free stretch ("ktstr: host-triggered crash").
std::string stable_message_part(std::string_view msg);

// The regex pinning the source location and message: the file by its name in
// any directory, line numbers and other numbers as \d+
// ("(?:[^\s:]*/)?\bscx_ktstr\.bpf\.c:\d+: ktstr: host-triggered crash"), so
// the same scheduler built in another checkout still matches.
std::string pinned_regex(std::string_view msg);

// The regression test for `crash`, named `name` (empty: "<test>_regression").
Result<TestSpec> pin_spec(const CrashRecord& crash, const std::string& name);

}  // namespace ktstr
