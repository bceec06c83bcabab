// libFuzzer target: the host-side decoders of the probe frames a guest sends
// after an auto-repro run. The first input byte picks PROBE_SETUP or
// PROBE_EVENTS, the rest is the frame payload. It goes through what the host
// does with it: parse_payload (guest/proto, as cmd/collector.cpp), then
// parse_probe_setup / parse_probe_events (core/repro_payloads.cpp), their
// JSON form and the rendering of the events (core/repro.hpp); and, for
// comparison, the strict decoders of guest/proto/probe_messages.cpp.
#include "core/repro.hpp"
#include "guest/proto/messages.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

using namespace ktstr;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  proto::Frame f;
  f.type = (data[0] & 1) ? proto::MsgType::ProbeEvents : proto::MsgType::ProbeSetup;
  f.payload.assign(reinterpret_cast<const char*>(data + 1), size - 1);

  auto j = proto::parse_payload(f, f.type);
  if (!j) return 0;
  std::vector<std::string> problems;
  ReproResult r;
  r.crash_id = "fuzz";
  r.outcome = "same";
  if (f.type == proto::MsgType::ProbeSetup) {
    r.setup = parse_probe_setup(*j, &problems);
    (void)to_json(*r.setup).dump();
    (void)proto::decode_payload<proto::ProbeSetupMsg>(f);
  } else {
    r.events = parse_probe_events(*j, &problems);
    if (r.events->events.size() > kMaxProbeEvents) std::abort();
    uint64_t t0 = r.events->events.empty() ? 0 : r.events->events.front().t_ns;
    for (const ProbeEvent& e : r.events->events) {
      (void)to_json(e).dump();
      (void)render_probe_event(e, t0, {"a", "b"});
    }
    r.stitched = stitch_events(r.events->events, r.events->trigger_pid, 64);
    (void)proto::decode_payload<proto::ProbeEventsMsg>(f);
  }
  r.accounting = account_probes(r.targets, r.setup, r.events, r.stitched.size());
  (void)describe_trigger(r.setup, r.events);
  (void)render_repro(r);
  (void)to_json(r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (problems.size() > 64) std::abort();
  return 0;
}
