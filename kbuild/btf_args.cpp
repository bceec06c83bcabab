#include "kbuild/btf_args.hpp"

#include "kbuild/btf_info.hpp"

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace ktstr::kbuild {
namespace {

// Follows typedefs and qualifiers to the underlying type.
const struct btf_type* skip_mods(const struct btf* btf, __u32 id) {
  const struct btf_type* t = btf__type_by_id(btf, id);
  while (t && (btf_is_typedef(t) || btf_is_mod(t))) t = btf__type_by_id(btf, t->type);
  return t;
}

std::string kind_of(const struct btf* btf, __u32 type_id) {
  const struct btf_type* t = skip_mods(btf, type_id);
  if (!t) return "none";
  if (btf_is_int(t) || btf_is_enum(t) || btf_is_enum64(t)) return "scalar";
  if (!btf_is_ptr(t)) return "none";
  const struct btf_type* target = skip_mods(btf, t->type);
  if (!target || !btf_is_struct(target)) return "none";
  const char* name = btf__name_by_offset(btf, target->name_off);
  if (!name) return "none";
  std::string n = name;
  if (n == "task_struct") return "task";
  if (n == "rq") return "rq";
  if (n == "scx_dispatch_q") return "dsq";
  if (n == "scx_exit_info") return "exit_info";
  return "none";
}

std::vector<BtfArg> proto_args(const struct btf* btf, const struct btf_type* proto) {
  std::vector<BtfArg> args;
  const struct btf_param* p = btf_params(proto);
  for (__u16 i = 0; i < btf_vlen(proto); ++i) {
    const char* name = btf__name_by_offset(btf, p[i].name_off);
    // A zero type is the "..." of a variadic function.
    args.push_back({name ? name : "", p[i].type ? kind_of(btf, p[i].type) : "none"});
  }
  return args;
}

}  // namespace

Result<std::map<std::string, std::vector<BtfArg>>> btf_function_args(const std::string& vmlinux_path,
                                                                     const std::vector<std::string>& functions) {
  auto all = btf_probe_args(vmlinux_path, functions);
  if (!all) return tl::unexpected(all.error());
  return std::move(all->functions);
}

Result<BtfProbeArgs> btf_probe_args(const std::string& vmlinux_path, const std::vector<std::string>& functions) {
  route_libbpf_logs();
  std::unique_ptr<struct btf, void (*)(struct btf*)> btf(btf__parse_elf(vmlinux_path.c_str(), nullptr), btf__free);
  if (!btf) {
    int err = errno;
    return fail("cannot read BTF from '" + vmlinux_path + "': " + std::strerror(err));
  }
  BtfProbeArgs out;
  for (const auto& fn : functions) {
    __s32 id = btf__find_by_name_kind(btf.get(), fn.c_str(), BTF_KIND_FUNC);
    if (id < 0) continue;
    const struct btf_type* func = btf__type_by_id(btf.get(), id);
    const struct btf_type* proto = func ? btf__type_by_id(btf.get(), func->type) : nullptr;
    if (!proto || !btf_is_func_proto(proto)) continue;
    out.functions[fn] = proto_args(btf.get(), proto);
  }
  if (__s32 ops_id = btf__find_by_name_kind(btf.get(), "sched_ext_ops", BTF_KIND_STRUCT); ops_id > 0) {
    const struct btf_type* ops = btf__type_by_id(btf.get(), ops_id);
    const struct btf_member* m = btf_members(ops);
    for (__u16 i = 0; i < btf_vlen(ops); ++i) {
      const char* name = btf__name_by_offset(btf.get(), m[i].name_off);
      const struct btf_type* ptr = skip_mods(btf.get(), m[i].type);
      if (!name || !*name || !ptr || !btf_is_ptr(ptr)) continue;
      const struct btf_type* proto = skip_mods(btf.get(), ptr->type);
      if (proto && btf_is_func_proto(proto)) out.ops[name] = proto_args(btf.get(), proto);
    }
  }
  return out;
}

}  // namespace ktstr::kbuild
