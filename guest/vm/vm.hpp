// Run one QEMU VM: listen on the channel sockets, start QEMU (argv only),
// pump console and virtio-serial ports through a poll() loop, enforce the
// watchdogs, and always kill and reap QEMU before returning.
#pragma once

#include "guest/vm/accel.hpp"
#include "guest/vm/vm_config.hpp"

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace ktstr {

// How a VM ended.
enum class VmEnd {
  kPoweredOff,        // the guest powered off ("reboot: Power down")
  kPanicked,          // kernel panic (panic=-1 + -no-reboot make QEMU exit)
  kRebooted,          // guest reboot or triple fault (-no-reboot makes QEMU exit)
  kWatchdogNoOutput,  // neither console nor any port wrote for no_output_timeout
  kWatchdogTimeout,   // overall_timeout passed
  kOutputLimit,       // the console outgrew max_console_bytes
  kQemuFailedToStart, // QEMU could not start or exited with an error before any guest output
  kQemuFailed,        // QEMU exited with an error (or a signal) after the guest started
  kInterrupted,       // Vm::request_stop()
};

const char* vm_end_name(VmEnd e);  // "powered_off", "watchdog_no_output", ...

struct VmOutcome {
  VmEnd end = VmEnd::kQemuFailedToStart;
  int qemu_status = -1;                      // shell-style: exit code or 128 + signal
  Accel accel = Accel::kTcg;
  std::chrono::milliseconds wall_time{0};    // QEMU start to exit
  std::optional<std::chrono::milliseconds> boot_time;  // QEMU start to the first port byte
  std::string console_tail;                  // at most VmConfig::console_tail_bytes, the newest
  size_t console_bytes = 0;                  // everything the console produced
  std::string console_path;                  // <work_dir>/console.txt; empty if the work dir is gone
  std::string qemu_log_tail;                 // QEMU's own stdout/stderr, last 16 KiB

  // KVM was tried first and abandoned: QEMU reported a KVM failure, or the
  // guest printed nothing within VmConfig::kvm_first_output_limit. The run
  // was then done again under TCG; everything above describes that TCG run.
  struct AbandonedKvm {
    std::string evidence;                    // e.g. `QEMU: "KVM internal error. Suberror: 1"`
    std::chrono::milliseconds after{0};      // QEMU start to the KVM attempt being ended
  };
  std::optional<AbandonedKvm> kvm_abandoned;

  // Snapshots (VmConfig::snapshot_dir): whether the guest was restored
  // instead of booted, whether this run saved a snapshot, how long the
  // restore (QEMU start to the agent waiting) or the save took, and why a
  // wanted snapshot was not used or not saved.
  bool restored = false;
  bool snapshot_saved = false;
  std::optional<std::chrono::milliseconds> snapshot_time;
  std::string snapshot_note;
};

// Lines on QEMU's stdout/stderr that say KVM cannot run this guest (QEMU then
// pauses the guest or exits). Returns the evidence text (`QEMU: "<line>"`),
// or empty when `line` is not one of them.
std::string kvm_failure_evidence(std::string_view line);

class Vm;

// Called from Vm::run()'s loop (same thread). They may call Vm::send() and
// Vm::request_stop().
struct VmCallbacks {
  // QEMU connected the host end of this port (the guest may not have opened it yet;
  // data sent now waits in the socket until it does).
  std::function<void(Vm&, const std::string& port)> on_port_connected;
  std::function<void(Vm&, const std::string& port, const char* data, size_t len)> on_port_data;
  std::function<void(Vm&, const char* data, size_t len)> on_console;
};

class Vm {
 public:
  Vm(VmConfig cfg, VmCallbacks callbacks, Accel accel);
  ~Vm();  // kills and reaps QEMU if it still runs
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  // Boot and run until QEMU exits or a watchdog fires. Call once. Errors are
  // host-side problems (sockets, work dir); QEMU failing is an outcome.
  // Under KVM (unless KTSTR_ACCEL forces it), a KVM failure before the guest
  // wrote to any port ends that QEMU at once and the VM is run again under
  // TCG: ports already announced by on_port_connected are not announced
  // again, and what was sent to them is sent again to the new QEMU, so
  // callers see one VM. on_console may see the abandoned attempt's output.
  // The verdict is recorded (accel.hpp) for this host boot.
  Result<VmOutcome> run();

  // Queue bytes for a port (by name); written as soon as the socket takes them.
  Status send(const std::string& port, std::string_view bytes);

  // End run() soon with VmEnd::kInterrupted.
  void request_stop();

  const VmConfig& config() const;
  pid_t qemu_pid() const;  // -1 when not running

  // From a callback while run() runs: the outcome so far (accel, time since
  // QEMU started, boot time, the console's newest bytes). `end` and
  // `qemu_status` are not known yet and keep their defaults. Lets a caller
  // act on results that arrive before the VM ends (a repeat job's finished
  // repetitions).
  VmOutcome so_far() const;

 private:
  Result<VmOutcome> attempt(Accel accel, bool may_fall_back);
  void record_kvm_boot(std::optional<std::chrono::milliseconds> boot_time);
  struct State;
  std::unique_ptr<State> state_;
};

// Build a Vm and run it; `accel` empty: choose_accel(cache_dir()).
Result<VmOutcome> run_vm(const VmConfig& cfg, VmCallbacks callbacks, std::optional<Accel> accel = std::nullopt);

}  // namespace ktstr
