// What a VM looks like (kernel, initramfs, topology, channels, limits) and
// the QEMU command line that makes it. Pure data + pure functions, so the
// command line is unit-testable without QEMU.
#pragma once

#include "core/result.hpp"
#include "core/topology.hpp"

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace ktstr {

enum class Accel { kKvm, kTcg };

const char* accel_name(Accel a);  // "kvm" / "tcg"
Result<Accel> parse_accel(const std::string& s);

// $KTSTR_QEMU when set (a QEMU binary to use instead; tests put a fake one
// there), else "qemu-system-x86_64" from PATH.
std::string default_qemu_binary();

struct VmConfig {
  std::string kernel_image;
  std::string initramfs;
  Topology topology;
  unsigned memory_mb = 256;          // split evenly across NUMA nodes
  std::string cmdline_extra;         // appended to the kernel command line
  bool verbose_console = false;      // loglevel=7, no "quiet", ktstr.verbose=1
  std::vector<std::string> ports;    // virtio-serial port names, e.g. "ktstr.control"
  std::chrono::seconds no_output_timeout{30};  // neither console nor any port wrote
  std::chrono::seconds overall_timeout{600};
  // Under KVM, no output at all on console or ports this long after QEMU
  // starts means KVM cannot run the guest (see kernel_cmdline: earlyprintk
  // makes the decompressor print at once).
  std::chrono::milliseconds kvm_first_output_limit{5000};
  std::string work_dir;              // console.txt, qemu.log, sockets; empty: a temporary directory
  bool keep_work_dir = false;        // only for a temporary work_dir
  std::string qemu_binary = default_qemu_binary();

  // Snapshots (snapshot.hpp): with a directory set, a TCG VM is restored
  // from the snapshot for its configuration instead of booting, or, when
  // there is none, saves one the moment the guest opens `snapshot_ready_port`
  // (the agent then waits for its job). Empty: always boot.
  std::string snapshot_dir;
  std::string snapshot_ready_port;
  // Added to the kernel command line of an attempt that may be snapshotted:
  // it asks the guest for work worth doing once, before the snapshot point,
  // rather than in every run (part of the snapshot's key like all the argv).
  std::string snapshot_cmdline_extra;

  // Guest output is untrusted: caps on what the host keeps.
  size_t console_tail_bytes = 64 * 1024;       // kept in memory (VmOutcome::console_tail)
  size_t max_console_bytes = 64 * 1024 * 1024; // console.txt stops growing here
  size_t max_port_bytes = 256 * 1024 * 1024;   // per port; beyond it data is dropped
};

// Where the host end of each channel lives: UNIX sockets in the work dir.
std::string console_socket_path(const std::string& work_dir);
std::string port_socket_path(const std::string& work_dir, size_t port_index);
std::string console_log_path(const std::string& work_dir);  // <work_dir>/console.txt

// The kernel command line for `cfg`.
std::string kernel_cmdline(const VmConfig& cfg);

// Memory per NUMA node in MiB: memory_mb / nodes rounded down to 2 MiB.
unsigned memory_per_node_mb(const VmConfig& cfg);

// The full argv (argv[0] is cfg.qemu_binary). QEMU connects as a client to
// sockets the host already listens on (see Vm), so there is no start-up race.
std::vector<std::string> qemu_argv(const VmConfig& cfg, Accel accel);

// TCG's threading: "single" by default (all vCPUs on one host thread):
// multi-threaded TCG lets a vCPU run stale code while the kernel patches
// itself (static keys via int3), seen here as random "Oops: int3" in 2 of 11
// boots; single was no slower on 2 host cores. KTSTR_TCG_THREAD=multi opts in.
std::string tcg_thread_mode();

}  // namespace ktstr
