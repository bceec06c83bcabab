// core/verifier_stats: the BPF_LOG_STATS summary parsed from real logs
// captured from `ktstr verifier` runs (tests/data/verifier/) and from
// malformed lines; the table, the JSON and the comparison.
#include "core/fs.hpp"
#include "core/verifier_stats.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ktstr {
namespace {

std::string data(const std::string& name) {
  auto text = read_file(std::string(KTSTR_SOURCE_DIR) + "/tests/data/verifier/" + name);
  EXPECT_TRUE(text) << name;
  return text ? *text : "";
}

TEST(VerifierStats, ParsesTheKernelSummary) {
  auto st = parse_verifier_stats(
      "verification time 1523 usec\n"
      "stack depth 0+16+8\n"
      "processed 85 insns (limit 1000000) max_states_per_insn 2 total_states 6 peak_states 5 mark_read 3\n");
  EXPECT_EQ(st.verification_time_us, 1523u);
  EXPECT_EQ(st.stack_depth, "0+16+8");
  EXPECT_EQ(st.processed_insns, 85u);
  EXPECT_EQ(st.insn_limit, 1000000u);
  EXPECT_EQ(st.max_states_per_insn, 2u);
  EXPECT_EQ(st.total_states, 6u);
  EXPECT_EQ(st.peak_states, 5u);
  EXPECT_EQ(st.mark_read, 3u);
}

TEST(VerifierStats, RealLogOn73) {
  // scx-ktstr's dispatch program (a static subprogram too) loaded on
  // Debian's 7.3.4 kernel: the stack per subprogram on lines of its own.
  auto st = parse_verifier_stats(data("scx_ktstr_dispatch_7.3.log"));
  EXPECT_EQ(st.verification_time_us, 53106u);
  EXPECT_EQ(st.stack_max, 16u);
  EXPECT_EQ(st.subprogs, 2u);
  EXPECT_EQ(st.stack_depth, "40+0");
  EXPECT_EQ(st.processed_insns, 114u);
  EXPECT_EQ(st.insn_limit, 1000000u);
  EXPECT_EQ(st.max_states_per_insn, 2u);
  EXPECT_EQ(st.total_states, 12u);
  EXPECT_EQ(st.peak_states, 12u);
  EXPECT_EQ(st.mark_read, 0u);
  EXPECT_EQ(verifier_stats_error(data("scx_ktstr_dispatch_7.3.log")), "");
}

TEST(VerifierStats, RealLogOn617) {
  // The same program on 6.17.13: the stack as "40+0" on one line.
  auto st = parse_verifier_stats(data("scx_ktstr_dispatch_6.17.log"));
  EXPECT_EQ(st.verification_time_us, 43277u);
  EXPECT_EQ(st.stack_depth, "40+0");
  EXPECT_FALSE(st.stack_max);
  EXPECT_FALSE(st.subprogs);
  EXPECT_EQ(st.processed_insns, 99u);
  EXPECT_EQ(st.total_states, 10u);
  EXPECT_EQ(st.peak_states, 10u);
  EXPECT_EQ(st.mark_read, 5u);
}

TEST(VerifierStats, RejectedProgramKeepsItsNumbersAndError) {
  // scx-ktstr with .rodata fail_verify = 1: the kernel still prints the
  // summary after the error.
  for (const char* file : {"scx_ktstr_fail_verify_7.3.log", "scx_ktstr_fail_verify_6.17.log"}) {
    std::string log = data(file);
    auto st = parse_verifier_stats(log);
    EXPECT_EQ(st.processed_insns, 12u) << file;
    EXPECT_EQ(st.total_states, 0u) << file;
    EXPECT_TRUE(st.verification_time_us) << file;
    EXPECT_EQ(verifier_stats_error(log), "R3 unbounded memory access, make sure to bounds check any such access")
        << file;
  }
  EXPECT_EQ(verifier_stats_error(""), "");
}

TEST(VerifierStats, OlderKernelWithoutMarkRead) {
  auto st = parse_verifier_stats("processed 12 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1\n");
  EXPECT_EQ(st.processed_insns, 12u);
  EXPECT_EQ(st.peak_states, 1u);
  EXPECT_FALSE(st.mark_read);
  EXPECT_FALSE(st.verification_time_us);
  EXPECT_TRUE(st.stack_depth.empty());
}

TEST(VerifierStats, MalformedLinesAreIgnored) {
  auto st = parse_verifier_stats(
      "verification time usec\n"
      "verification time 12 msec\n"
      "stack depth 0+x\n"
      "stack depth max\n"
      "subprog x (f) main stack 8\n"
      "subprog 0 (f) main insns_self 3 stack\n"
      "processed many insns\n"
      "processed 99999999999999999999999 insns (limit 1)\n"
      "processed 7 insns (limit 1000000 max_states_per_insn total_states 3x peak_states -1 mark_read\n"
      "R1 invalid mem access 'scalar'\n");
  EXPECT_FALSE(st.verification_time_us);
  EXPECT_TRUE(st.stack_depth.empty());
  EXPECT_FALSE(st.stack_max);
  EXPECT_FALSE(st.subprogs);
  EXPECT_EQ(st.processed_insns, 7u);  // the one well-formed count
  EXPECT_FALSE(st.insn_limit);
  EXPECT_FALSE(st.max_states_per_insn);
  EXPECT_FALSE(st.peak_states);
  EXPECT_FALSE(st.mark_read);
  EXPECT_FALSE(st.total_states);  // "3x" is not a number
  EXPECT_FALSE(parse_verifier_stats("").processed_insns);
  EXPECT_FALSE(parse_verifier_stats(std::string(1000, '\n')).total_states);
}

TEST(VerifierStats, UnknownKeysAndLastOccurrence) {
  auto st = parse_verifier_stats(
      "processed 1 insns (limit 10) total_states 1\n"
      "  processed 5 insns (limit 10) new_counter 4 total_states 2 peak_states 2\r\n");
  EXPECT_EQ(st.processed_insns, 5u);
  EXPECT_EQ(st.total_states, 2u);
  EXPECT_EQ(st.peak_states, 2u);
}

VerifierProgram prog(std::string name, uint64_t insns, uint64_t states, bool loaded = true) {
  VerifierProgram p;
  p.name = std::move(name);
  p.section = "struct_ops/" + p.name;
  p.type = "struct_ops";
  p.attach = "enqueue";
  p.loaded = loaded;
  p.stats.processed_insns = insns;
  p.stats.total_states = states;
  p.stats.peak_states = states;
  p.stats.verification_time_us = 100;
  p.xlated_insns = insns / 2;
  p.jited_bytes = insns * 4;
  if (!loaded) p.error = "BPF program load failed: Permission denied";
  return p;
}

TEST(VerifierStats, TableAndJson) {
  VerifierReport r;
  r.path = "scx.bpf.o";
  r.kernel = "7.3.4";
  r.programs = {prog("ktstr_enqueue", 85, 6), prog("ktstr_dispatch", 200, 12, false)};
  r.programs[1].log_tail = "R1 invalid mem access 'scalar'\n";
  std::string table = render_verifier_table(r);
  EXPECT_NE(table.find("program"), std::string::npos);
  EXPECT_NE(table.find("ktstr_enqueue"), std::string::npos);
  EXPECT_NE(table.find("85"), std::string::npos);
  EXPECT_NE(table.find("ktstr_dispatch (failed)"), std::string::npos);
  EXPECT_NE(table.find("program 'ktstr_dispatch' did not load: BPF program load failed"), std::string::npos);
  EXPECT_NE(table.find("R1 invalid mem access"), std::string::npos);
  EXPECT_EQ(table.find("not loaded"), std::string::npos);
  // Programs after the failure: one line, not one error each.
  VerifierProgram later = prog("ktstr_exit", 0, 0, false);
  later.reached = false;
  later.error = "the object's load stopped at an earlier failure (Permission denied)";
  r.programs.push_back(later);
  r.programs.push_back(later);
  table = render_verifier_table(r);
  EXPECT_NE(table.find("ktstr_exit (not loaded)"), std::string::npos);
  EXPECT_NE(table.find("2 programs were not loaded: libbpf stops"), std::string::npos);
  EXPECT_EQ(table.find("'ktstr_exit' did not load"), std::string::npos);
  EXPECT_FALSE(to_json(r)["programs"][2]["reached"].get<bool>());
  r.programs.resize(2);
  EXPECT_FALSE(r.ok());
  auto j = to_json(r);
  EXPECT_FALSE(j["ok"].get<bool>());
  EXPECT_EQ(j["programs"][0]["verified_insns"], 85);
  EXPECT_EQ(j["programs"][0]["attach"], "enqueue");
  EXPECT_FALSE(j["programs"][0].contains("error"));
  EXPECT_EQ(j["programs"][1]["error"], "BPF program load failed: Permission denied");
  EXPECT_TRUE(j["programs"][0]["mark_read"].is_null());
  r.programs.pop_back();
  EXPECT_TRUE(r.ok());
  r.errors.push_back("object 0: no result");
  EXPECT_FALSE(r.ok());
}

TEST(VerifierStats, VerifiedInsnsFallsBackToProgInfo) {
  VerifierProgram p;
  p.verified_insns = 40;
  EXPECT_EQ(verified_insns(p), 40u);
  p.stats.processed_insns = 41;
  EXPECT_EQ(verified_insns(p), 41u);
}

TEST(VerifierStats, CompareMatchesByNameAndComputesDeltas) {
  VerifierReport a, b;
  a.path = "old.bpf.o";
  b.path = "new.bpf.o";
  a.programs = {prog("enq", 100, 10), prog("gone", 5, 1)};
  b.programs = {prog("enq", 130, 7), prog("added", 9, 2)};
  auto deltas = compare_verifier_reports(a, b);
  ASSERT_EQ(deltas.size(), 3u);
  EXPECT_EQ(deltas[0].name, "enq");
  EXPECT_TRUE(deltas[0].a && deltas[0].b);
  EXPECT_TRUE(deltas[1].a && !deltas[1].b);
  EXPECT_TRUE(!deltas[2].a && deltas[2].b);
  auto j = verifier_compare_json(a, b);
  EXPECT_EQ(j["deltas"][0]["verified_insns"]["delta"], 30);
  EXPECT_EQ(j["deltas"][0]["total_states"]["delta"], -3);
  EXPECT_EQ(j["deltas"][0]["in"], "both");
  EXPECT_EQ(j["deltas"][1]["in"], "a");
  EXPECT_TRUE(j["deltas"][1]["verified_insns"]["delta"].is_null());
  std::string text = render_verifier_compare(a, b);
  EXPECT_NE(text.find("+30"), std::string::npos);
  EXPECT_NE(text.find("-3"), std::string::npos);
  EXPECT_NE(text.find("gone (only a)"), std::string::npos);
  EXPECT_NE(text.find("added (only b)"), std::string::npos);
}

TEST(VerifierStats, CompareWithItselfIsAllZero) {
  VerifierReport a;
  a.programs = {prog("x", 10, 1), prog("y", 20, 2)};
  auto j = verifier_compare_json(a, a);
  for (const auto& d : j["deltas"]) {
    EXPECT_EQ(d["verified_insns"]["delta"], 0);
    EXPECT_EQ(d["xlated_insns"]["delta"], 0);
    EXPECT_EQ(d["jited_bytes"]["delta"], 0);
  }
}

}  // namespace
}  // namespace ktstr
