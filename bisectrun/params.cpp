#include "bisectrun/params.hpp"

#include "core/seed.hpp"

namespace ktstr::bisectrun {

nlohmann::json BisectOptions::to_json() const {
  nlohmann::json j = {{"confidence", confidence},     {"max_runs", max_runs},
                      {"fixed", fixed},               {"confirm_runs", confirm_runs},
                      {"verify_culprit", verify_culprit}, {"memory_mb", memory_mb}};
  if (seed) j["seed"] = *seed;
  return j;
}

std::optional<uint64_t> BisectOptions::step_seed(int64_t seq) const {
  if (!seed) return std::nullopt;
  return seed_at(*seed, static_cast<uint64_t>(seq));
}

BisectOptions BisectOptions::from_json(const nlohmann::json& j) {
  BisectOptions o;
  o.confidence = j.value("confidence", o.confidence);
  o.max_runs = j.value("max_runs", o.max_runs);
  o.fixed = j.value("fixed", o.fixed);
  o.confirm_runs = j.value("confirm_runs", o.confirm_runs);
  o.verify_culprit = j.value("verify_culprit", o.verify_culprit);
  o.memory_mb = j.value("memory_mb", o.memory_mb);
  if (j.contains("seed") && j["seed"].is_number_unsigned()) o.seed = j["seed"].get<uint64_t>();
  return o;
}

nlohmann::json SessionParams::to_json() const {
  return {{"target", target.to_json()}, {"signature", signature.to_json()}, {"options", options.to_json()},
          {"spec_file", spec_file}};
}

Result<SessionParams> SessionParams::from_json(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("target") || !j.contains("signature"))
    return fail("the bisect session's parameters are not readable");
  SessionParams p;
  auto target = TargetParams::from_json(j["target"]);
  if (!target) return tl::unexpected(target.error());
  p.target = *target;
  auto sig = BisectSignature::from_json(j["signature"]);
  if (!sig) return tl::unexpected(sig.error());
  p.signature = *sig;
  p.options = BisectOptions::from_json(j.value("options", nlohmann::json::object()));
  p.spec_file = j.value("spec_file", "");
  return p;
}

}  // namespace ktstr::bisectrun
