#include <cstdlib>
#include "guest/vm/vm_config.hpp"

namespace ktstr {
namespace {

// QEMU option values separate keys with ',': a literal comma is written ",,".
std::string opt_escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

}  // namespace

const char* accel_name(Accel a) { return a == Accel::kKvm ? "kvm" : "tcg"; }

Result<Accel> parse_accel(const std::string& s) {
  if (s == "kvm") return Accel::kKvm;
  if (s == "tcg") return Accel::kTcg;
  return fail("unknown accelerator '" + s + "'", "use 'kvm' or 'tcg'");
}

std::string default_qemu_binary() {
  const char* q = std::getenv("KTSTR_QEMU");
  return q && *q ? q : "qemu-system-x86_64";
}

std::string console_socket_path(const std::string& work_dir) { return work_dir + "/console.sock"; }

std::string port_socket_path(const std::string& work_dir, size_t port_index) {
  return work_dir + "/port" + std::to_string(port_index) + ".sock";
}

std::string console_log_path(const std::string& work_dir) { return work_dir + "/console.txt"; }

std::string kernel_cmdline(const VmConfig& cfg) {
  // panic=-1: a panic reboots at once, and -no-reboot turns that into a QEMU exit.
  // earlyprintk: an early console on ttyS0 from setup_arch, which replays the
  // kernel's first lines ("Linux version ...") because it comes before
  // "quiet" on the line (early parameters are parsed in order: keep it first).
  // Under KVM that is a fraction of a second after QEMU starts (firmware and
  // zstd decompression), so silence under KVM is evidence
  // (VmConfig::kvm_first_output_limit). Under TCG far later (bench/README.md).
  std::string s = "console=ttyS0 earlyprintk=serial,ttyS0 panic=-1 rdinit=/init";
  if (cfg.verbose_console) {
    s += " loglevel=7 ktstr.verbose=1";
  } else {
    s += " quiet loglevel=4";
  }
  if (!cfg.cmdline_extra.empty()) s += " " + cfg.cmdline_extra;
  return s;
}

unsigned memory_per_node_mb(const VmConfig& cfg) {
  unsigned nodes = cfg.topology.nodes ? cfg.topology.nodes : 1;
  return (cfg.memory_mb / nodes) & ~1u;
}

std::string tcg_thread_mode() {
  const char* t = std::getenv("KTSTR_TCG_THREAD");
  return t && std::string(t) == "multi" ? "multi" : "single";
}

std::vector<std::string> qemu_argv(const VmConfig& cfg, Accel accel) {
  const Topology& t = cfg.topology;
  std::vector<std::string> a = {cfg.qemu_binary, "-nodefaults", "-no-user-config", "-display", "none",
                                "-no-reboot"};
  if (accel == Accel::kKvm) {
    a.insert(a.end(), {"-accel", "kvm", "-cpu", "host"});
  } else {
    a.insert(a.end(), {"-accel", "tcg,thread=" + tcg_thread_mode(), "-cpu", "max"});
  }

  // NUMA nodes need one memory backend each, and their sizes must add up to -m.
  unsigned per_node = memory_per_node_mb(cfg);
  unsigned total_mb = t.nodes > 1 ? per_node * t.nodes : cfg.memory_mb;
  a.insert(a.end(), {"-m", std::to_string(total_mb) + "M"});

  // One socket per LLC: under TCG, dies do not split the L3 but sockets do.
  a.insert(a.end(), {"-smp", std::to_string(t.cpus()) + ",sockets=" + std::to_string(t.llcs) +
                                 ",cores=" + std::to_string(t.cores_per_llc) +
                                 ",threads=" + std::to_string(t.threads_per_core)});
  if (t.nodes > 1) {
    for (unsigned n = 0; n < t.nodes; ++n) {
      std::string id = "m" + std::to_string(n);
      a.insert(a.end(), {"-object", "memory-backend-ram,id=" + id + ",size=" + std::to_string(per_node) + "M"});
      a.insert(a.end(), {"-numa", "node,nodeid=" + std::to_string(n) + ",cpus=" +
                                      cpu_range(n * t.cpus_per_node(), t.cpus_per_node()) + ",memdev=" + id});
    }
  }

  a.insert(a.end(), {"-kernel", cfg.kernel_image, "-initrd", cfg.initramfs, "-append", kernel_cmdline(cfg)});

  // The console goes to a socket the host reads, so the host sees output as
  // it happens and bounds what it stores.
  a.insert(a.end(), {"-chardev", "socket,id=con,path=" + opt_escape(console_socket_path(cfg.work_dir)), "-serial",
                     "chardev:con"});
  if (!cfg.ports.empty()) {
    a.insert(a.end(), {"-device", "virtio-serial-pci,id=vser0"});
    for (size_t i = 0; i < cfg.ports.size(); ++i) {
      std::string id = "port" + std::to_string(i);
      a.insert(a.end(), {"-chardev", "socket,id=" + id + ",path=" + opt_escape(port_socket_path(cfg.work_dir, i))});
      a.insert(a.end(), {"-device", "virtserialport,bus=vser0.0,id=v" + id + ",chardev=" + id + ",name=" + opt_escape(cfg.ports[i])});
    }
  }
  return a;
}

}  // namespace ktstr
