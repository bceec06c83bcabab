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
#include <mutex>

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

std::string trimmed_file(const std::string& path) {
  auto s = read_file(path, 4096);
  if (!s) return "";
  std::string v = *s;
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  return v;
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

Result<Accel> choose_accel(const std::string& cache_dir, const std::string& dev_kvm) {
  static std::once_flag logged;
  auto say = [&](Accel a, const std::string& why) {
    // Falling back to TCG is worth one visible line (runs are slower);
    // using KVM is the normal case.
    std::call_once(logged, [&] {
      if (a == Accel::kKvm) spdlog::info("using KVM{}", why);
      else spdlog::warn("using TCG{}: VMs run slower than under KVM", why);
    });
    return a;
  };
  if (const char* forced = std::getenv("KTSTR_ACCEL"); forced && *forced) {
    auto a = parse_accel(forced);
    if (!a) return fail(a.error().context("KTSTR_ACCEL"));
    return say(*a, std::string(" (KTSTR_ACCEL=") + forced + ")");
  }
  if (::access(dev_kvm.c_str(), F_OK) != 0) return say(Accel::kTcg, " (no " + dev_kvm + ")");

  utsname u{};
  ::uname(&u);
  std::string boot_id = trimmed_file("/proc/sys/kernel/random/boot_id");
  std::string cache_path = cache_dir + "/kvm-probe.json";
  if (auto cached = read_file(cache_path, 64 * 1024)) {
    auto j = nlohmann::json::parse(*cached, nullptr, false);
    if (j.is_object() && j.value("boot_id", "") == boot_id && j.value("kernel_release", "") == u.release &&
        j.value("device", "") == dev_kvm &&
        j.contains("kvm_works") && j["kvm_works"].is_boolean()) {
      bool works = j["kvm_works"].get<bool>();
      return say(works ? Accel::kKvm : Accel::kTcg, works ? "" : " (no working KVM)");
    }
  }
  bool works = kvm_probe(dev_kvm);
  nlohmann::json j = {{"boot_id", boot_id}, {"kernel_release", u.release}, {"device", dev_kvm}, {"kvm_works", works}};
  if (make_dirs(cache_dir)) {
    if (auto w = write_file_atomic(cache_path, j.dump(2) + "\n"); !w)
      spdlog::debug("cannot cache the kvm probe: {}", w.error().msg);
  }
  return say(works ? Accel::kKvm : Accel::kTcg, works ? "" : " (no working KVM)");
}

}  // namespace ktstr
