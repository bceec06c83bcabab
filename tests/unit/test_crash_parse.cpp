// core/crash_parse, core/sched_exit, core/verifier_log against real captures
// from the fixture scheduler (tests/data/sched_output/).
#include "core/crash_parse.hpp"
#include "core/fs.hpp"
#include "core/verifier_log.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <random>
#include <utility>
#include <vector>

using namespace ktstr;

namespace {

std::string data(const std::string& rel) {
  auto text = read_file(std::string(KTSTR_SOURCE_DIR) + "/tests/data/sched_output/" + rel);
  EXPECT_TRUE(text) << rel << ": " << (text ? "" : text.error().msg);
  return text ? *text : std::string();
}

bool has_frame(const SchedExit& e, const std::string& fn) {
  return std::any_of(e.backtrace.begin(), e.backtrace.end(), [&](auto& f) { return f.function == fn; });
}

const char* kCrashMsg = "bpf/scx_ktstr.bpf.c:115: ktstr: host-triggered crash";

void expect_fixture_crash(const SchedExit& e, const std::string& kernel) {
  EXPECT_EQ(e.kind, kScxExitErrorBpf);
  EXPECT_EQ(e.reason, "scx_bpf_error");
  EXPECT_EQ(e.msg, kCrashMsg);
  EXPECT_EQ(e.source_location, "bpf/scx_ktstr.bpf.c:115");
  EXPECT_EQ(e.failing_prog, "ktstr_dispatch");
  EXPECT_EQ(e.summary(), std::string("scx_bpf_error (") + kCrashMsg + ")");
  EXPECT_TRUE(has_frame(e, "scx_bpf_error_bstr"));
  EXPECT_TRUE(has_frame(e, "bpf__sched_ext_ops_dispatch"));
  if (kernel == "7.3") {
    EXPECT_TRUE(has_frame(e, "do_pick_task_scx"));
    EXPECT_TRUE(has_frame(e, "scx_exit_bstr"));
    EXPECT_EQ(e.backtrace.front().function, "scx_exit_bstr");
  } else {
    EXPECT_TRUE(has_frame(e, "balance_scx"));
    EXPECT_TRUE(has_frame(e, "scx_kf_exit"));
    EXPECT_FALSE(has_frame(e, "do_pick_task_scx"));
  }
  auto prog = std::find_if(e.backtrace.begin(), e.backtrace.end(), [](auto& f) { return !f.bpf_tag.empty(); });
  ASSERT_NE(prog, e.backtrace.end());
  EXPECT_EQ(prog->bpf_prog, "ktstr_dispatch");
  EXPECT_EQ(prog->bpf_tag.size(), 16u);
  EXPECT_EQ(prog->function, "bpf_prog_" + prog->bpf_tag + "_ktstr_dispatch");
}

}  // namespace

class CapturedCrash : public ::testing::TestWithParam<std::string> {};

TEST_P(CapturedCrash, SchedLogGivesKindReasonMessageFramesAndState) {
  const std::string k = GetParam();
  auto e = parse_sched_log(data(k + "/crash/sched.log"));
  ASSERT_TRUE(e) << e.error().msg;
  expect_fixture_crash(*e, k);
  EXPECT_EQ(e->backtrace.size(), 9u);
  EXPECT_EQ(e->exit_line, std::string("EXIT: scx_bpf_error (") + kCrashMsg + ")");
  EXPECT_EQ(e->scheduler_state.rfind("ktstr scheduler state: stall=0 crash=1", 0), 0u) << e->scheduler_state;
  EXPECT_NE(e->scheduler_state.find("ktstr_alloc_count="), std::string::npos);
  EXPECT_EQ(e->scheduler_state.find("CPU states"), std::string::npos);
  EXPECT_EQ(e->scheduler_state.find("Backtrace"), std::string::npos);
  EXPECT_NE(e->dump.find("CPU states"), std::string::npos);
  EXPECT_EQ(e->dump.find("===="), std::string::npos);
  EXPECT_EQ(e->dump.find("EXIT:"), std::string::npos);
  if (k == "7.3") {
    EXPECT_EQ(e->trigger, "init[169] triggered exit kind 1025 on CPU 1:");
    EXPECT_EQ(e->exit_cpu, 1);
  } else {
    EXPECT_EQ(e->trigger, "init[207] triggered exit kind 1025:");
    EXPECT_EQ(e->exit_cpu, -1);
  }
}

TEST_P(CapturedCrash, TraceDumpMatchesTheSchedLog) {
  const std::string k = GetParam();
  const std::string trace = data(k + "/crash/trace.txt");
  std::string dump = extract_trace_dump(trace);
  EXPECT_EQ(dump.find("sched_ext_dump"), std::string::npos);
  EXPECT_EQ(dump.find("sched_ext_event"), std::string::npos);
  EXPECT_NE(dump.find("triggered exit kind 1025"), std::string::npos);
  EXPECT_EQ(trace_exit_kind(trace), k == "7.3" ? std::optional<int64_t>(1025) : std::nullopt);

  auto t = parse_trace_dump(trace);
  ASSERT_TRUE(t) << t.error().msg;
  expect_fixture_crash(*t, k);
  auto log = parse_sched_log(data(k + "/crash/sched.log"));
  ASSERT_TRUE(log);
  EXPECT_EQ(t->backtrace, log->backtrace);
  EXPECT_EQ(t->scheduler_state, log->scheduler_state);
  EXPECT_EQ(t->trigger, log->trigger);
}

TEST_P(CapturedCrash, DmesgGivesReasonMessageAndBacktrace) {
  const std::string k = GetParam();
  auto d = parse_dmesg_exit(data(k + "/crash/dmesg.txt"));
  ASSERT_TRUE(d) << d.error().msg;
  expect_fixture_crash(*d, k);
  auto log = parse_sched_log(data(k + "/crash/sched.log"));
  ASSERT_TRUE(log);
  EXPECT_EQ(d->backtrace, log->backtrace);
  EXPECT_TRUE(d->scheduler_state.empty());
}

TEST_P(CapturedCrash, MergeFillsGapsFromLaterSources) {
  const std::string k = GetParam();
  auto d = parse_dmesg_exit(data(k + "/crash/dmesg.txt"));
  auto t = parse_trace_dump(data(k + "/crash/trace.txt"));
  ASSERT_TRUE(d && t);
  SchedExit exit_line_only;  // what a log cut before its dump gives
  exit_line_only.reason = "scx_bpf_error";
  exit_line_only.msg = "preferred message";
  SchedExit m = merge_exits({exit_line_only, *d, *t});
  EXPECT_EQ(m.msg, "preferred message");
  EXPECT_EQ(m.kind, kScxExitErrorBpf);
  EXPECT_EQ(m.backtrace, d->backtrace);
  EXPECT_EQ(m.scheduler_state, t->scheduler_state);  // dmesg has none
  EXPECT_EQ(m.failing_prog, "ktstr_dispatch");
  EXPECT_TRUE(m.source_location.empty());

  auto all = exit_from_captures(data(k + "/crash/sched.log"), data(k + "/crash/trace.txt"), data(k + "/crash/dmesg.txt"));
  ASSERT_TRUE(all);
  expect_fixture_crash(*all, k);
  EXPECT_FALSE(exit_from_captures("", "", ""));
  // The pipeline passes the dump already extracted from the trace.
  auto extracted = exit_from_captures("", extract_trace_dump(data(k + "/crash/trace.txt")), "");
  ASSERT_TRUE(extracted) << extracted.error().msg;
  expect_fixture_crash(*extracted, k);
}

TEST_P(CapturedCrash, StallIsKind1026WithTheWatchdogBacktrace) {
  const std::string k = GetParam();
  for (auto& e : {parse_sched_log(data(k + "/stall/sched.log")), parse_trace_dump(data(k + "/stall/trace.txt")),
                  parse_dmesg_exit(data(k + "/stall/dmesg.txt"))}) {
    ASSERT_TRUE(e) << e.error().msg;
    EXPECT_EQ(e->kind, kScxExitErrorStall);
    EXPECT_TRUE(e->is_stall());
    EXPECT_EQ(e->reason, "runnable task stall");
    EXPECT_NE(e->msg.find("] failed to run for "), std::string::npos) << e->msg;
    EXPECT_TRUE(has_frame(*e, "scx_watchdog_workfn"));
    EXPECT_TRUE(e->failing_prog.empty());
    EXPECT_TRUE(e->source_location.empty());
  }
  auto e = parse_sched_log(data(k + "/stall/sched.log"));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->msg, k == "7.3" ? "init[122] failed to run for 5.044s" : "kcompactd0[51] failed to run for 6.712s");
  EXPECT_EQ(e->scheduler_state.rfind("ktstr scheduler state: stall=1", 0), 0u);
  EXPECT_EQ(signature_of(*e).message, "TASK[N] failed to run for Ns");
}

INSTANTIATE_TEST_SUITE_P(Kernels, CapturedCrash, ::testing::Values("7.3", "6.17"),
                         [](auto& info) { return info.param == "7.3" ? std::string("v7_3") : std::string("v6_17"); });

TEST(CrashSignature, SameCrashOnTwoKernelsIsOneSignatureAndStallsDiffer) {
  auto c73 = parse_sched_log(data("7.3/crash/sched.log"));
  auto c617 = parse_sched_log(data("6.17/crash/sched.log"));
  auto s73 = parse_sched_log(data("7.3/stall/sched.log"));
  auto s617 = parse_sched_log(data("6.17/stall/sched.log"));
  ASSERT_TRUE(c73 && c617 && s73 && s617);
  Signature a = signature_of(*c73), b = signature_of(*c617);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.key(), b.key());
  EXPECT_EQ(a.kind, 1025);
  EXPECT_EQ(a.message, "scx_ktstr.bpf.c:N: ktstr: host-triggered crash");
  EXPECT_EQ(a.source, "scx_ktstr.bpf.c:115");
  EXPECT_EQ(a.bpf_prog, "ktstr_dispatch");
  // One string: key() returns a new one each call, and iterators of two
  // temporaries make no range (g++ happened to pass, clang's build did not).
  const std::string key = a.key();
  EXPECT_EQ(key.size(), 16u);
  EXPECT_TRUE(std::all_of(key.begin(), key.end(), ::isxdigit)) << key;
  // Different stalled tasks and durations: still one stall signature.
  EXPECT_EQ(signature_of(*s73), signature_of(*s617));
  EXPECT_NE(signature_of(*s73).key(), a.key());
  // Each field takes part in the key.
  for (int field = 0; field < 4; ++field) {
    Signature c = a;
    if (field == 0) c.kind = 1024;
    if (field == 1) c.message += "!";
    if (field == 2) c.bpf_prog = "ktstr_enqueue";
    if (field == 3) c.source = "scx_ktstr.bpf.c:116";
    EXPECT_NE(c.key(), a.key()) << field;
  }
}

TEST(CrashSignature, MaskVolatile) {
  EXPECT_EQ(mask_volatile("kworker/u16:1[40] failed to run for 5.044s"), "TASK[N] failed to run for Ns");
  EXPECT_EQ(mask_volatile("cpu 3 addr 0xffff8880deadbeef pid=-12"), "cpu N addr 0xN pid=-N");
  EXPECT_EQ(mask_volatile("tag d7950aacb84e72d7 in scx_ktstr2 u16"), "tag X in scx_ktstr2 u16");
  EXPECT_EQ(mask_volatile("x.bpf.c:115: bad dsq 12345678"), "x.bpf.c:N: bad dsq N");
  EXPECT_EQ(mask_volatile("invalid (arr[3])"), "invalid (TASK[N])");  // documented: any word[N]
  EXPECT_EQ(mask_volatile(""), "");
}

TEST(CrashParse, FramesAndSourceLocations) {
  auto f = parse_backtrace_frame("  ? foo_bar.isra.0+0x1a/0x30 [scx_mod]");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->function, "foo_bar.isra.0");
  EXPECT_EQ(f->offset, "+0x1a/0x30");
  EXPECT_TRUE(f->bpf_tag.empty());
  EXPECT_FALSE(parse_backtrace_frame("ktstr scheduler state: stall=0"));
  EXPECT_FALSE(parse_backtrace_frame("foo+0xzz/0x10"));
  EXPECT_FALSE(parse_backtrace_frame("+0x1/0x2"));
  EXPECT_FALSE(parse_backtrace_frame(""));
  EXPECT_EQ(source_location_of("src/bpf/main.bpf.c:424: ktstr: x"), "src/bpf/main.bpf.c:424");
  EXPECT_EQ(source_location_of("main.bpf.c:424"), "main.bpf.c:424");
  EXPECT_EQ(source_location_of("ktstr: host-triggered crash"), "");
  EXPECT_EQ(source_location_of("a b.c:1: x"), "");
  EXPECT_EQ(source_location_of("x.c:12a: y"), "");
  EXPECT_EQ(source_location_of("/home/a b/x.bpf.c:7: y"), "/home/a b/x.bpf.c:7");
  EXPECT_EQ(source_location_of("/home/a/x y.bpf.c:7: y"), "");
  EXPECT_EQ(source_location_of("bad value: 3"), "");
}

// One scheduler built from different directories: __FILE__ (and so the
// message and source location) differs, the signature does not.
SchedExit bpf_error(const std::string& msg) {
  auto e = parse_sched_log("EXIT: scx_bpf_error (" + msg + ")\n");
  EXPECT_TRUE(e) << msg;
  return e ? *e : SchedExit{};
}

TEST(CrashSignature, SourceDirectoryDoesNotMatter) {
  const std::vector<std::string> builds = {
      "/home/u/scx/scheds/c/scx_foo.bpf.c:123: foo: bad cpu 7",   // absolute
      "/tmp/bisect-4f2a/wt/scheds/c/scx_foo.bpf.c:123: foo: bad cpu 3",  // another checkout
      "scheds/c/scx_foo.bpf.c:123: foo: bad cpu 1",               // relative, from the repo root
      "../scx/scheds/c/scx_foo.bpf.c:123: foo: bad cpu 0",        // relative, from beside it
      "scx_foo.bpf.c:123: foo: bad cpu 2",                        // built in its own directory
      "/home/John Smith/src 2/scx_foo.bpf.c:123: foo: bad cpu 5", // spaces in an absolute path
  };
  const Signature first = signature_of(bpf_error(builds[0]));
  EXPECT_EQ(first.message, "scx_foo.bpf.c:N: foo: bad cpu N");
  EXPECT_EQ(first.source, "scx_foo.bpf.c:123");
  for (const std::string& msg : builds) {
    SchedExit e = bpf_error(msg);
    // The parsed exit keeps the path as printed (reports show it).
    EXPECT_EQ(e.source_location, msg.substr(0, msg.find(":123") + 4)) << msg;
    EXPECT_EQ(signature_of(e), first) << msg;
    EXPECT_EQ(signature_of(e).key(), first.key()) << msg;
  }
  // What still tells crashes apart: the file name, the line, the message.
  EXPECT_NE(signature_of(bpf_error("/home/u/scx/scheds/c/scx_bar.bpf.c:123: foo: bad cpu 7")).key(), first.key());
  EXPECT_NE(signature_of(bpf_error("/home/u/scx/scheds/c/scx_foo.bpf.c:124: foo: bad cpu 7")).key(), first.key());
  EXPECT_NE(signature_of(bpf_error("/home/u/scx/scheds/c/scx_foo.bpf.c:123: foo: bad dsq 7")).key(), first.key());
  // Digits in the directories are not masked into the message.
  EXPECT_EQ(signature_of(bpf_error("/tmp/build-2/x.bpf.c:9: boom")).message, "x.bpf.c:N: boom");
}

TEST(CrashSignature, WithoutSourceDir) {
  EXPECT_EQ(without_source_dir("/a/b/x.bpf.c:12: m"), "x.bpf.c:12: m");
  EXPECT_EQ(without_source_dir("/a/b/x.bpf.c:12"), "x.bpf.c:12");
  EXPECT_EQ(without_source_dir("x.bpf.c:12: m"), "x.bpf.c:12: m");
  // Only a leading FILE:LINE is touched; a task name with '/' is not a file.
  EXPECT_EQ(without_source_dir("kworker/u16:1[40] failed to run for 5.044s"), "kworker/u16:1[40] failed to run for 5.044s");
  EXPECT_EQ(without_source_dir("see /a/b/x.bpf.c:12"), "see /a/b/x.bpf.c:12");
  EXPECT_EQ(without_source_dir("a b/x.bpf.c:12: m"), "a b/x.bpf.c:12: m");  // spaces: only in absolute paths
  EXPECT_EQ(without_source_dir("/a/x.bpf.c:N: m"), "/a/x.bpf.c:N: m");
  EXPECT_EQ(without_source_dir("/a/x.bpf.c:N: m", /*masked_line=*/true), "x.bpf.c:N: m");
  EXPECT_EQ(without_source_dir(""), "");
}

TEST(CrashSignature, StoredSignaturesUpgradeToTheSameKey) {
  // What the store holds for the fixture's crash from before directories
  // were dropped, upgraded, keys as a fresh parse does now.
  auto c73 = parse_sched_log(data("7.3/crash/sched.log"));
  ASSERT_TRUE(c73);
  Signature stored{kScxExitErrorBpf, "bpf/scx_ktstr.bpf.c:N: ktstr: host-triggered crash", "ktstr_dispatch",
                   "bpf/scx_ktstr.bpf.c:115"};
  EXPECT_NE(stored.key(), signature_of(*c73).key());
  EXPECT_EQ(upgrade_stored_signature(stored), signature_of(*c73));
  EXPECT_EQ(upgrade_stored_signature(stored).key(), signature_of(*c73).key());
  // Signatures without a file keep their key (stalls stay grouped as before).
  auto s73 = parse_sched_log(data("7.3/stall/sched.log"));
  ASSERT_TRUE(s73);
  EXPECT_EQ(upgrade_stored_signature(signature_of(*s73)).key(), signature_of(*s73).key());
}

TEST(CrashParse, LibbpfErrorLine) {
  // The cause comes first; what failed because of it follows.
  EXPECT_EQ(libbpf_error_line("starting\nlibbpf: failed to open system Kconfig\n"
                              "libbpf: failed to load object 'scx_hz'\n"
                              "libbpf: failed to load BPF skeleton 'scx_hz': -EINVAL\n"),
            "libbpf: failed to open system Kconfig");
  // A benign warning before the real error is skipped.
  EXPECT_EQ(libbpf_error_line("libbpf: struct_ops foo: member bar not found in kernel, skipping it\n"
                              "scx_x: libbpf: prog 'x_init': BPF program load failed: -EACCES\n"),
            "libbpf: prog 'x_init': BPF program load failed: -EACCES");
  EXPECT_EQ(libbpf_error_line("libbpf: something odd\n"), "libbpf: something odd");
  EXPECT_EQ(libbpf_error_line("no libbpf here\n"), "");
}

TEST(CrashParse, OtherSchedulersAndPrefixedExitLines) {
  // scx_utils style: "Error: EXIT: ..." and no dump at all.
  auto e = parse_sched_log("starting\nError: EXIT: scx_bpf_error (src/bpf/main.bpf.c:424: boom 7)\n");
  ASSERT_TRUE(e) << e.error().msg;
  EXPECT_EQ(e->kind, kScxExitErrorBpf);
  EXPECT_EQ(e->msg, "src/bpf/main.bpf.c:424: boom 7");
  EXPECT_EQ(e->source_location, "src/bpf/main.bpf.c:424");
  auto u = parse_sched_log("EXIT: unregistered from user space\n");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->kind, kScxExitUnreg);
  EXPECT_TRUE(u->msg.empty());
  EXPECT_EQ(u->summary(), "unregistered from user space");
  auto odd = parse_sched_log("EXIT: something new (detail (nested))\n");
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->reason, "something new");
  EXPECT_EQ(odd->msg, "detail (nested)");
  EXPECT_EQ(odd->kind, -1);
}

TEST(CrashParse, TruncatedOutputKeepsWhatItHas) {
  std::string log = data("7.3/crash/sched.log");
  size_t cut = log.find("  do_pick_task_scx");
  ASSERT_NE(cut, std::string::npos);
  auto e = parse_sched_log(log.substr(0, cut));
  ASSERT_TRUE(e) << e.error().msg;
  EXPECT_EQ(e->kind, kScxExitErrorBpf);
  EXPECT_EQ(e->msg, kCrashMsg);
  EXPECT_EQ(e->backtrace.size(), 4u);
  EXPECT_EQ(e->failing_prog, "ktstr_dispatch");
  EXPECT_TRUE(e->exit_line.empty());
}

TEST(CrashParse, GarbageGivesErrorsNotCrashes) {
  EXPECT_FALSE(parse_sched_log(""));
  EXPECT_FALSE(parse_sched_log(data("7.3/fail_verify/sched.log")));
  EXPECT_FALSE(parse_trace_dump(data("7.3/fail_verify/trace.txt")));
  EXPECT_FALSE(parse_dmesg_exit(data("7.3/fail_verify/dmesg.txt")));
  EXPECT_FALSE(parse_dump_text("DEBUG DUMP\n====\n"));
  EXPECT_FALSE(parse_dmesg_exit("sched_ext: BPF scheduler \"x"));
  auto cut = parse_sched_log("x[1] triggered exit kind ");
  EXPECT_FALSE(cut);
  // An "EXIT: " line with nothing after it (found by fuzz_crash_parse: it threw).
  for (const char* bare : {"EXIT: ", "scx-ktstr: EXIT: \n", "EXIT:  \r\n"}) {
    Result<SchedExit> e = fail("not parsed");
    EXPECT_NO_THROW(e = parse_sched_log(bare)) << bare;
    ASSERT_TRUE(e) << bare;
    EXPECT_EQ(e->exit_line, "EXIT:");
    EXPECT_EQ(e->reason, "");
    EXPECT_EQ(e->kind, -1);
  }
  // Random bytes and random slices of real captures never throw.
  std::mt19937 rng(42);
  std::string real = data("6.17/crash/sched.log") + data("6.17/crash/dmesg.txt") + data("6.17/crash/trace.txt");
  for (int i = 0; i < 300; ++i) {
    std::string junk(rng() % 400, '\0');
    for (auto& c : junk) c = static_cast<char>(rng() % 256);
    size_t a = rng() % real.size(), len = rng() % 3000;
    std::string slice = real.substr(a, len);
    for (const std::string* s : {&junk, &slice}) {
      EXPECT_NO_THROW({
        (void)parse_sched_log(*s);
        (void)parse_trace_dump(*s);
        (void)parse_dmesg_exit(*s);
        (void)mask_volatile(*s);
        (void)collapse_verifier_log(*s, 20);
        (void)verifier_error_line(*s);
      });
    }
  }
}

TEST(VerifierLog, RecognisesFailuresAndFindsTheFinalError) {
  EXPECT_TRUE(looks_like_verifier_failure(data("7.3/fail_verify/sched.log")));
  EXPECT_TRUE(looks_like_verifier_failure(data("6.17/fail_verify/sched.log")));
  EXPECT_TRUE(looks_like_verifier_failure(data("7.3/verify_loop/sched.log")));
  EXPECT_FALSE(looks_like_verifier_failure(data("7.3/crash/sched.log")));
  const std::string unbounded = "R3 unbounded memory access, make sure to bounds check any such access";
  EXPECT_EQ(verifier_error_line(data("7.3/fail_verify/sched.log")), unbounded);
  EXPECT_EQ(verifier_error_line(data("6.17/fail_verify/sched.log")), unbounded);
  EXPECT_EQ(verifier_error_line(data("7.3/verify_loop/sched.log")),
            "invalid access to map value, value_size=34504 off=2097200 size=8");
  EXPECT_EQ(verifier_error_line(""), "");
}

TEST(VerifierLog, CollapsesTheVerifiedLoop) {
  const std::string log = data("7.3/verify_loop/sched.log");
  const size_t in_lines = static_cast<size_t>(std::count(log.begin(), log.end(), '\n'));
  ASSERT_GT(in_lines, 3000u);
  std::string c = collapse_verifier_log(log, 200);
  const size_t out_lines = static_cast<size_t>(std::count(c.begin(), c.end(), '\n'));
  EXPECT_LE(out_lines, 200u);
  EXPECT_NE(c.find("similar lines omitted"), std::string::npos);
  EXPECT_NE(c.find("invalid access to map value, value_size=34504 off=2097200 size=8"), std::string::npos);
  EXPECT_NE(c.find("-- BEGIN PROG LOAD LOG --"), std::string::npos);  // head kept
  EXPECT_NE(c.find("scx-ktstr: failed to load BPF programs"), std::string::npos);  // tail kept
  EXPECT_NE(c.find("R1=0 R2=0"), std::string::npos);  // the first iteration is shown
  // Without a line budget only the repetition goes, and the rest stays.
  std::string full = collapse_verifier_log(log, 0);
  EXPECT_LT(std::count(full.begin(), full.end(), '\n'), 400);
  EXPECT_NE(full.find("Suggestion:"), std::string::npos);
  // A tight budget still keeps the final error line.
  std::string tight = collapse_verifier_log(log, 10);
  EXPECT_NE(tight.find("invalid access to map value"), std::string::npos) << tight;
  // Short logs are unchanged.
  const std::string short_log = data("6.17/fail_verify/sched.log");
  EXPECT_EQ(collapse_verifier_log(short_log), short_log);
}

TEST(VerifierLog, CountsOmittedLines) {
  std::string log;
  for (int i = 0; i < 10; ++i) log += "a " + std::to_string(i) + "\nb " + std::to_string(i * 3) + "\n";
  log += "final error\n";
  std::string c = collapse_verifier_log(log, 0);
  EXPECT_EQ(c, "a 0\nb 0\n... 16 similar lines omitted ...\na 9\nb 27\nfinal error\n");
}

// A huge capture (a long-running guest's dmesg, a chatty scheduler) must
// cost a few passes over the text, not a pass per line. Each parser's time
// on 5 MB of kernel messages with the crash in the middle is compared with a
// plain pass that counts the same lines: a linear parser stays within a
// constant factor of it (~10-100x, more under sanitizers); a parser that
// rescans the text per line would take hours. Best of three runs each.
TEST(CrashParse, HugeLogsCostAFewPassesOverTheText) {
  std::mt19937 rng(7);
  const std::string crash = data("7.3/crash/sched.log") + data("7.3/crash/dmesg.txt");
  std::string log;
  log.reserve(5'200'000);
  bool crash_added = false;
  for (size_t n = 0; log.size() < 5'000'000; ++n) {
    if (!crash_added && log.size() > 2'500'000) {
      log += crash;
      crash_added = true;
    }
    log += "[" + std::to_string(10 + n / 1000) + "." + std::to_string(100000 + n % 900000) + "] ";
    switch (rng() % 4) {
      case 0: log += "kworker/u16:" + std::to_string(rng() % 8) + "[" + std::to_string(rng() % 5000) + "]: work done\n"; break;
      case 1: log += "sched_ext: pid " + std::to_string(rng() % 5000) + " cpu " + std::to_string(rng() % 4) + "\n"; break;
      case 2: log += "libbpf: map 'x' at 0x" + std::to_string(rng()) + " ok\n"; break;
      default: log += "virtio_net virtio0 eth0: link up, tag d7950aacb84e72d7\n"; break;
    }
  }
  const std::string_view text = log;

  auto best_ms = [](auto&& run) {
    double best = 1e18;
    for (int i = 0; i < 3; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      run();
      best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  };
  size_t lines = 0;
  const double line_count_ms = best_ms([&] {
    lines = 0;
    for (size_t at = 0; (at = text.find('\n', at)) != std::string_view::npos; ++at) ++lines;
  });
  ASSERT_GT(lines, 50'000u);
  RecordProperty("line_count_ms", std::to_string(line_count_ms));
  // Generous: a constant factor over the line count, plus a floor for a
  // line count too fast for the clock.
  const double bound_ms = 1000 * line_count_ms + 2000;

  Result<SchedExit> from_log, from_dmesg;
  const std::vector<std::pair<const char*, std::function<void()>>> parsers = {
      {"parse_sched_log", [&] { from_log = parse_sched_log(text); }},
      {"parse_dmesg_exit", [&] { from_dmesg = parse_dmesg_exit(text); }},
      {"parse_trace_dump", [&] { (void)parse_trace_dump(text); }},
      {"exit_from_captures", [&] { (void)exit_from_captures(text, text, text); }},
      {"mask_volatile", [&] { (void)mask_volatile(text); }},
      {"libbpf_error_line", [&] { (void)libbpf_error_line(text); }},
      {"looks_like_verifier_failure", [&] { (void)looks_like_verifier_failure(text); }},
      {"verifier_error_line", [&] { (void)verifier_error_line(text); }},
      {"collapse_verifier_log", [&] { (void)collapse_verifier_log(text); }},
  };
  for (const auto& [name, run] : parsers) {
    const double ms = best_ms(run);
    RecordProperty(std::string(name) + "_ms", std::to_string(ms));  // in --gtest_output=xml
    EXPECT_LT(ms, bound_ms) << name << " took " << ms << " ms on " << lines << " lines; counting them took "
                            << line_count_ms << " ms";
  }
  // And the crash in the middle is still found.
  ASSERT_TRUE(from_log) << from_log.error().msg;
  EXPECT_EQ(from_log->kind, kScxExitErrorBpf);
  EXPECT_EQ(from_log->msg, kCrashMsg);
  EXPECT_EQ(from_log->failing_prog, "ktstr_dispatch");
  ASSERT_TRUE(from_dmesg) << from_dmesg.error().msg;
  EXPECT_EQ(from_dmesg->msg, kCrashMsg);
}
