#include "kbuild/kernel_report.hpp"

#include <fmt/format.h>

namespace ktstr::kbuild {

nlohmann::json kernel_json(const KernelRecord& k) {
  return {{"id", k.id},
          {"version", k.version},
          {"name", k.name},
          {"source", k.source},
          {"image", k.image_path},
          {"config", k.config_path},
          {"vmlinux", k.vmlinux_path},
          {"image_sha256", k.image_sha256},
          {"image_size", k.image_size},
          {"sched_ext", k.sched_ext},
          {"tracepoints", k.tracepoints},
          {"added_at", k.added_at}};
}

Result<KernelRecord> kernel_from_json(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return fail("the kernel record is not a JSON object");
  try {
    KernelRecord k;
    k.id = j.at("id").get<std::string>();
    k.version = j.value("version", "");
    k.name = j.value("name", "");
    k.source = j.value("source", "");
    k.image_path = j.at("image").get<std::string>();
    k.config_path = j.value("config", "");
    k.vmlinux_path = j.value("vmlinux", "");
    k.image_sha256 = j.value("image_sha256", "");
    k.image_size = j.value("image_size", uint64_t{0});
    k.sched_ext = j.value("sched_ext", false);
    k.tracepoints = j.value("tracepoints", std::vector<std::string>{});
    k.added_at = j.value("added_at", int64_t{0});
    if (k.id.empty() || k.image_path.empty()) return fail("the kernel record names no kernel id or image");
    return k;
  } catch (const nlohmann::json::exception& e) {
    return fail(std::string("the kernel record is malformed: ") + e.what());
  }
}

std::string minutes_seconds(double seconds) {
  const long s = static_cast<long>(seconds);
  return s >= 60 ? fmt::format("{}m{:02}s", s / 60, s % 60) : fmt::format("{}s", s);
}

std::string kernel_build_progress_text(const KernelBuildProgress& p) {
  std::string s = "kernel build: " + p.phase;
  if (p.phase == "compile" || p.phase == "link") {
    s += p.estimate ? fmt::format(", {}/~{} objects", p.objects, p.estimate) : fmt::format(", {} objects", p.objects);
  } else if (p.phase == "waiting") {
    s += " for another build of this source";
  } else if (p.phase == "queued") {
    s += " behind another kernel build (KTSTR_BUILD_LOCK)";
  }
  return s + ", " + minutes_seconds(p.elapsed);
}

nlohmann::json kernel_build_json(const KernelBuildResult& r) {
  nlohmann::json j = {{"ok", r.ok}, {"cached", r.cached}, {"seconds", r.seconds}, {"log", r.log_path},
                      {"dropped_settings", r.dropped}};
  if (r.ok) {
    j["kernel"] = kernel_json(r.kernel);
    j["key"] = r.build.key;
    j["tree"] = r.build.tree_id;
    j["source"] = r.build.source;
    j["commit"] = r.build.commit_id;
    j["dirty"] = r.build.dirty;
    j["build_dir"] = r.build.build_dir;
    j["build_seconds"] = static_cast<double>(r.build.duration_ms) / 1000.0;
  } else {
    j["error_excerpt"] = r.error_excerpt;
  }
  return j;
}

}  // namespace ktstr::kbuild
