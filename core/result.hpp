// Result<T>: recoverable errors are returned, not thrown (as ccache's
// util/expected.hpp). Only give-up errors throw `Fatal`, caught once in main.
#pragma once

#include <tl/expected.hpp>

#include <stdexcept>
#include <string>
#include <utility>

namespace ktstr {

// An error a user can read: `msg` follows git's CodingGuidelines (lowercase,
// no trailing period, says what failed first); `hint` is an optional fix.
struct Error {
  std::string msg;
  std::string hint;

  Error() = default;
  Error(std::string m, std::string h = {}) : msg(std::move(m)), hint(std::move(h)) {}

  // Prefix context: Error("x").context("loading 'a'") -> "loading 'a': x".
  Error context(const std::string& what) const { return Error(what + ": " + msg, hint); }

  bool operator==(const Error&) const = default;
};

template <typename T>
using Result = tl::expected<T, Error>;

using Status = tl::expected<void, Error>;

inline tl::unexpected<Error> fail(std::string msg, std::string hint = {}) {
  return tl::unexpected<Error>(Error(std::move(msg), std::move(hint)));
}
inline tl::unexpected<Error> fail(Error e) { return tl::unexpected<Error>(std::move(e)); }

// Exit statuses shared by every command (DESIGN.md).
enum ExitCode : int { kExitOk = 0, kExitTestFailed = 1, kExitUsage = 2 };

// A give-up error: thrown, caught once in main, printed as
// "ktstr: error: <msg>" + "hint: <hint>", exit status `code`.
class Fatal : public std::runtime_error {
 public:
  Fatal(Error e, int code = kExitUsage)
      : std::runtime_error(e.msg), error_(std::move(e)), code_(code) {}
  const Error& error() const { return error_; }
  int code() const { return code_; }

 private:
  Error error_;
  int code_;
};

// Unwrap or give up: for call sites where no recovery makes sense.
template <typename T>
T value_or_die(Result<T> r) {
  if (!r) throw Fatal(r.error());
  return std::move(*r);
}
inline void value_or_die(Status r) {
  if (!r) throw Fatal(r.error());
}

}  // namespace ktstr
