#include "guest/vm/accel.hpp"

#include "core/fs.hpp"

#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <cstring>
#include <atomic>
#include <ctime>

namespace ktstr {
namespace {

constexpr uint64_t kGuestMemSize = 0x200000;  // 2 MiB, identity-mapped by one large page
constexpr uint64_t kPml4 = 0x1000, kPdpt = 0x2000, kPd = 0x3000, kCode = 0x4000;
constexpr uint16_t kProbePort = 0x10;
constexpr uint8_t kProbeValue = 43;

// mov rax, 42; add rax, 1; mov dx, 0x10; out dx, al; hlt
constexpr uint8_t kProbeCode[] = {0x48, 0xc7, 0xc0, 0x2a, 0x00, 0x00, 0x00, 0x48, 0x83, 0xc0,
                                  0x01, 0x66, 0xba, 0x10, 0x00, 0xee, 0xf4};

void set_segment(kvm_segment& s, uint16_t selector, uint8_t type, bool code) {
  s = {};
  s.base = 0;
  s.limit = 0xffffffff;
  s.selector = selector;
  s.type = type;
  s.present = 1;
  s.dpl = 0;
  s.s = 1;
  s.g = 1;
  s.l = code ? 1 : 0;
  s.db = code ? 0 : 1;
}

// Runs in the forked child: only system calls, no allocation. Returns 0 when
// the guest ran as expected.
int probe_in_child(const char* dev_kvm) {
  int kvm = ::open(dev_kvm, O_RDWR | O_CLOEXEC);
  if (kvm < 0) return 10;
  if (::ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) return 11;
  int vm = ::ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) return 12;
  (void)::ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000UL);
  void* mem = ::mmap(nullptr, kGuestMemSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
  if (mem == MAP_FAILED) return 13;
  auto* bytes = static_cast<uint8_t*>(mem);
  auto* pml4 = reinterpret_cast<uint64_t*>(bytes + kPml4);
  auto* pdpt = reinterpret_cast<uint64_t*>(bytes + kPdpt);
  auto* pd = reinterpret_cast<uint64_t*>(bytes + kPd);
  constexpr uint64_t kPresentWrite = 0x3, kPageSize = 0x80;
  pml4[0] = kPdpt | kPresentWrite;
  pdpt[0] = kPd | kPresentWrite;
  pd[0] = 0 | kPresentWrite | kPageSize;
  std::memcpy(bytes + kCode, kProbeCode, sizeof kProbeCode);

  kvm_userspace_memory_region region{};
  region.slot = 0;
  region.guest_phys_addr = 0;
  region.memory_size = kGuestMemSize;
  region.userspace_addr = reinterpret_cast<uint64_t>(mem);
  if (::ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) return 14;
  int vcpu = ::ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) return 15;
  int run_size = ::ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size <= 0) return 16;
  auto* run = static_cast<kvm_run*>(::mmap(nullptr, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0));
  if (run == MAP_FAILED) return 17;

  kvm_sregs sregs{};
  if (::ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) return 18;
  sregs.cr3 = kPml4;
  sregs.cr4 = 1u << 5;                                // PAE
  sregs.cr0 = 0x80050033;                             // PG, AM, WP, NE, ET, MP, PE
  sregs.efer = (1u << 8) | (1u << 10);                // LME, LMA
  set_segment(sregs.cs, 8, 11, true);                 // execute/read, accessed
  set_segment(sregs.ds, 16, 3, false);                // read/write, accessed
  sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
  if (::ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) return 19;
  kvm_regs regs{};
  regs.rip = kCode;
  regs.rflags = 2;
  regs.rsp = kGuestMemSize;
  if (::ioctl(vcpu, KVM_SET_REGS, &regs) < 0) return 20;

  bool saw_out = false;
  for (int step = 0; step < 4; ++step) {
    if (::ioctl(vcpu, KVM_RUN, 0) < 0) return 21;
    switch (run->exit_reason) {
      case KVM_EXIT_IO: {
        const auto* data = reinterpret_cast<const uint8_t*>(run) + run->io.data_offset;
        if (run->io.direction != KVM_EXIT_IO_OUT || run->io.port != kProbePort || run->io.size != 1 ||
            *data != kProbeValue)
          return 22;
        saw_out = true;
        break;
      }
      case KVM_EXIT_HLT:
        return saw_out ? 0 : 23;
      default:
        return 24;  // KVM_EXIT_SHUTDOWN (triple fault), FAIL_ENTRY, INTERNAL_ERROR, ...
    }
  }
  return 25;
}

// One line per process about the accelerator: the info line for KVM, and at
// most one warning for TCG (a later fallback may still warn after "using KVM").
std::atomic<bool> g_said_kvm{false};
std::atomic<bool> g_warned{false};

std::string trimmed_file(const std::string& path) {
  auto s = read_file(path, 4096);
  if (!s) return "";
  std::string v = *s;
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  return v;
}

struct HostBoot {
  std::string boot_id, kernel_release;
};

HostBoot host_boot() {
  utsname u{};
  ::uname(&u);
  return {trimmed_file("/proc/sys/kernel/random/boot_id"), u.release};
}

}  // namespace

bool kvm_probe(const std::string& dev_kvm) {
  if (::access(dev_kvm.c_str(), R_OK | W_OK) != 0) return false;
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::_exit(probe_in_child(dev_kvm.c_str()));
  }
  // A vCPU that spins instead of exiting must not hang us: give it 5 s.
  int st = 0;
  bool exited = false;
  for (int waited_ms = 0; waited_ms < 5000; ++waited_ms) {
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) {
      exited = r == pid;
      break;
    }
    ::usleep(1000);
  }
  if (!exited) {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
  }
  bool ok = exited && WIFEXITED(st) && WEXITSTATUS(st) == 0;
  spdlog::debug("kvm probe of '{}': {}", dev_kvm,
                ok ? "works" : (exited && WIFEXITED(st) ? "failed, step " + std::to_string(WEXITSTATUS(st))
                                                         : std::string("did not finish")));
  return ok;
}

std::string accel_cache_path(const std::string& cache_dir) { return cache_dir + "/kvm-probe.json"; }

std::optional<AccelVerdict> read_accel_verdict(const std::string& cache_dir) {
  auto text = read_file(accel_cache_path(cache_dir), 64 * 1024);
  if (!text) return std::nullopt;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object() || !j.contains("kvm_works") || !j["kvm_works"].is_boolean()) return std::nullopt;
  AccelVerdict v;
  v.kvm_works = j["kvm_works"].get<bool>();
  auto str = [&](const char* key) { return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : ""; };
  v.decided_by = str("decided_by");
  if (v.decided_by.empty()) v.decided_by = kDecidedByProbe;  // written before verdicts had evidence
  v.evidence = str("evidence");
  v.boot_id = str("boot_id");
  v.kernel_release = str("kernel_release");
  v.device = str("device");
  if (j.contains("decided_at") && j["decided_at"].is_number_integer()) v.decided_at = j["decided_at"].get<int64_t>();
  auto here = host_boot();
  v.this_boot = v.boot_id == here.boot_id && v.kernel_release == here.kernel_release;
  return v;
}

Status record_accel_verdict(const std::string& cache_dir, AccelVerdict v) {
  auto here = host_boot();
  v.boot_id = here.boot_id;
  v.kernel_release = here.kernel_release;
  if (v.device.empty()) v.device = "/dev/kvm";
  v.decided_at = static_cast<int64_t>(::time(nullptr));
  nlohmann::json j = {{"boot_id", v.boot_id},       {"kernel_release", v.kernel_release},
                      {"device", v.device},         {"kvm_works", v.kvm_works},
                      {"decided_by", v.decided_by}, {"evidence", v.evidence},
                      {"decided_at", v.decided_at}};
  if (auto made = make_dirs(cache_dir); !made) return made;
  return write_file_atomic(accel_cache_path(cache_dir), j.dump(2) + "\n");
}

bool accel_forced() {
  const char* forced = std::getenv("KTSTR_ACCEL");
  return forced && *forced;
}

std::string kvm_fallback_warning(const std::string& evidence) {
  return "KVM cannot boot the kernel here (" + evidence + "); using TCG (slower) for this host boot";
}

void warn_kvm_fallback(const std::string& evidence) {
  if (!g_warned.exchange(true)) {
    spdlog::warn("{}", kvm_fallback_warning(evidence));
  } else {
    spdlog::info("{}", kvm_fallback_warning(evidence));
  }
}

Result<Accel> choose_accel(const std::string& cache_dir, const std::string& dev_kvm) {
  auto say = [&](Accel a, const std::string& why) {
    // Falling back to TCG is worth one visible line (runs are slower);
    // using KVM is the normal case.
    if (a == Accel::kKvm && !g_said_kvm.exchange(true)) spdlog::info("using KVM{}", why);
    if (a == Accel::kTcg && !g_warned.exchange(true)) spdlog::warn("using TCG{}: VMs run slower than under KVM", why);
    return a;
  };
  if (accel_forced()) {
    const char* forced = std::getenv("KTSTR_ACCEL");
    auto a = parse_accel(forced);
    if (!a) return fail(a.error().context("KTSTR_ACCEL"));
    return say(*a, std::string(" (KTSTR_ACCEL=") + forced + ")");
  }
  const char* test_probe = std::getenv("KTSTR_TEST_KVM_PROBE");
  bool pretend_probe = test_probe && std::string(test_probe) == "pass";
  if (!pretend_probe && ::access(dev_kvm.c_str(), F_OK) != 0) return say(Accel::kTcg, " (no " + dev_kvm + ")");

  if (auto cached = read_accel_verdict(cache_dir); cached && cached->this_boot && cached->device == dev_kvm) {
    if (cached->kvm_works) return say(Accel::kKvm, cached->decided_by == kDecidedByBoot ? "" : " (probe passed)");
    if (cached->decided_by == kDecidedByBoot) {
      if (!g_warned.exchange(true)) spdlog::warn("{}", kvm_fallback_warning(cached->evidence));
      return Accel::kTcg;
    }
    return say(Accel::kTcg, " (no working KVM: " + cached->evidence + ")");
  }
  AccelVerdict v;
  v.device = dev_kvm;
  v.decided_by = kDecidedByProbe;
  if (pretend_probe) {
    v.kvm_works = true;
    v.evidence = "KTSTR_TEST_KVM_PROBE=pass (tests only)";
  } else {
    v.kvm_works = kvm_probe(dev_kvm);
    v.evidence = v.kvm_works ? "the KVM ioctl probe ran a tiny guest" : "the KVM ioctl probe failed on " + dev_kvm;
  }
  if (auto w = record_accel_verdict(cache_dir, v); !w) spdlog::debug("cannot cache the kvm probe: {}", w.error().msg);
  return say(v.kvm_works ? Accel::kKvm : Accel::kTcg, v.kvm_works ? " (probe passed)" : " (no working KVM)");
}

}  // namespace ktstr
