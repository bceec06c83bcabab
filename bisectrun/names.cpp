#include "bisectrun/names.hpp"

#include <initializer_list>

namespace ktstr::bisectrun {
namespace {

// The enum value whose name is `text`, among `all`.
template <typename E, typename Name>
std::optional<E> parse_name(const std::string& text, std::initializer_list<E> all, Name name) {
  for (E e : all)
    if (text == name(e)) return e;
  return std::nullopt;
}

constexpr const char* kRevertPrefix = "revert-";

}  // namespace

const char* target_kind_name(TargetKind k) {
  switch (k) {
    case TargetKind::Sched: return "sched";
    case TargetKind::KernelRange: return "kernel-range";
    case TargetKind::KernelRepo: return "kernel-repo";
  }
  return "?";
}

std::optional<TargetKind> parse_target_kind(const std::string& text) {
  return parse_name(text, {TargetKind::Sched, TargetKind::KernelRange, TargetKind::KernelRepo}, target_kind_name);
}

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::ConfirmBad: return "confirm-bad";
    case Phase::ConfirmGood: return "confirm-good";
    case Phase::Search: return "search";
    case Phase::Verify: return "verify";
  }
  return "?";
}

std::optional<Phase> parse_phase(const std::string& text) {
  return parse_name(text, {Phase::ConfirmBad, Phase::ConfirmGood, Phase::Search, Phase::Verify}, phase_name);
}

const char* session_state_name(SessionState s) {
  switch (s) {
    case SessionState::Running: return "running";
    case SessionState::Found: return "found";
    case SessionState::NotFound: return "not-found";
    case SessionState::Failed: return "failed";
  }
  return "?";
}

std::optional<SessionState> parse_session_state(const std::string& text) {
  return parse_name(text, {SessionState::Running, SessionState::Found, SessionState::NotFound, SessionState::Failed},
                    session_state_name);
}

std::string revert_key(const std::string& culprit) { return kRevertPrefix + culprit; }

std::optional<std::string> reverted_commit(const std::string& key) {
  const std::string prefix = kRevertPrefix;
  if (key.rfind(prefix, 0) != 0) return std::nullopt;
  return key.substr(prefix.size());
}

}  // namespace ktstr::bisectrun
