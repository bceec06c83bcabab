// A verifier job (JOB version 4, `ktstr verifier`): each BPF object is
// opened with libbpf, every program gets its own log buffer at log_level
// BPF_LOG_STATS, the object is loaded (programs verified, nothing attached)
// and one VERIFIER_RESULT per object reports each program's log and
// bpf_prog_info sizes. The host parses the logs (core/verifier_stats.hpp).
#pragma once

#include "guest/proto/messages.hpp"

#include <functional>
#include <string>

namespace ktstr::agent {

using VerifierLogFn = std::function<void(const std::string& level, const std::string& text)>;

// Loads the object at `path` and describes what the verifier said. Never
// throws; an object libbpf cannot open or load is a result, not an error.
proto::VerifierResultMsg verify_object(uint32_t index, const std::string& path, const VerifierLogFn& log);

// Shortens the logs until the payload fits in one frame.
void fit_payload(proto::VerifierResultMsg& msg);

// The last `max_bytes` of `text`, cut at a line start when one is near.
std::string log_tail(const std::string& text, size_t max_bytes);

}  // namespace ktstr::agent
