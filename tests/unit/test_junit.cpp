// JUnit XML (run/junit.hpp) for crafted runs and cells, read back with a
// real XML parser (libxml2) and validated against tests/data/junit/junit.xsd,
// the Ant/Jenkins dialect CI reads. The schema checks:
//   - the root is <testsuites> with tests, failures, errors, skipped (counts:
//     non-negative integers) and time (seconds: a non-negative decimal);
//   - each <testsuite> has a non-empty name, the same counts and time, and
//     an optional timestamp YYYY-MM-DDTHH:MM:SS (no zone);
//   - each <testcase> has a non-empty name and classname and a time;
//   - a testcase holds at most one of <skipped> (optional message), <error>
//     or <failure> (message and type required, text only), then at most one
//     <system-out> and one <system-err> (text only), in that order;
//   - no other element or attribute appears.
// What it cannot say is checked here with XPath: the counts add up to the
// cases, names are unique per suite, text and attributes read back as
// given (escaped, forbidden characters replaced by U+FFFD).
// Through the real binary: a --junit path that cannot be written is status
// 2 with an error line and a hint, before a store is opened or a VM boots.
#include "run/junit.hpp"
#include "run/repeat_run.hpp"
#include "core/fs.hpp"
#include "core/report.hpp"
#include "core/subprocess.hpp"

#include <gtest/gtest.h>
#include <libxml/parser.h>
#include <libxml/xmlschemas.h>
#include <libxml/xpath.h>

#include <memory>

namespace ktstr::runner {
namespace {

const std::string kU = "\xEF\xBF\xBD";  // U+FFFD

// A run as a worker hands it back, rendered as the parent renders it.
WorkerRun worker_run(const RunResult& r) {
  WorkerRun w;
  w.result = to_json(r);
  w.line = render_summary_line(r);
  w.failure = r.passed ? "" : render_failure(r, {});
  w.outline = outline_of(r);
  return w;
}

RunResult run_of(const std::string& test, bool passed, double wall_s, const std::string& log) {
  RunResult r;
  r.test_name = test;
  r.scheduler = "scx-ktstr";
  r.topology = "1n1l2c1t";
  r.passed = passed;
  r.wall_s = wall_s;
  r.sched = SchedulerRun{};
  r.sched->name = "scx-ktstr";
  r.sched->log = log;
  if (!passed) {
    r.reason = "worker starved";
    r.failure_kind = "check";
    r.failed_check = "not_starved";
  }
  return r;
}

// A scheduler crash whose message and log hold every XML special and
// characters XML 1.0 forbids.
RunResult crashed_run() {
  RunResult r = run_of("crashy", false, 2.5, "start\x01 \x1b[31mred\x1b[0m <&>\"' \xff\xfe end\n");
  r.failure_kind = "scheduler_died";
  r.failed_check.clear();
  r.reason = "scheduler died: <&>\"'";
  SchedExit e;
  e.kind = 1025;
  e.reason = "scx_bpf_error";
  e.msg = "bpf/scx_x.bpf.c:7: bad <&>\"' \x07 thing";
  r.exit = e;
  return r;
}

TestSpec spec_of(const std::string& name, const std::string& file) {
  TestSpec s;
  s.name = name;
  s.source_file = file;
  return s;
}

CellResult cell(size_t test, const std::string& name, Verdict v, const std::string& detail) {
  CellResult c;
  c.at.test = test;
  c.test = name;
  c.kernel_ref = "7.3";
  c.kernel_version = "7.3.4+deb13-cloud-amd64";
  c.topology = "1n2l4c2t";
  c.sched_args = {"--slice", "5 ms"};
  c.sched_args_from_spec = false;
  c.verdict = v;
  c.detail = detail;
  c.wall_s = 3;
  return c;
}

// The report: two tests of a.toml (a pass, a crash), a --repeat 3 test of
// dir/b.toml whose repetitions came back out of order and one never ran.
JunitReport tests_report() {
  JunitReport report{1767225600, {}};
  TestSpec steady = spec_of("steady", "a.toml"), crashy = spec_of("crashy", "a.toml");
  TestSpec rep = spec_of("rep", "dir/b.toml");
  add_test_runs(report, steady, {worker_run(run_of("steady", true, 4.25, "attached\n"))}, 1);
  add_test_runs(report, crashy, {worker_run(crashed_run())}, 1);
  RunResult r2 = run_of("rep", false, 1.5, ""), r1 = run_of("rep", true, 1.0, "");
  r1.repetition = 1;
  r2.repetition = 2;
  add_test_runs(report, rep, {worker_run(r2), worker_run(r1)}, 3);
  return report;
}

using Doc = std::unique_ptr<xmlDoc, decltype(&xmlFreeDoc)>;

Doc parse(const std::string& xml) {
  return Doc(xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "junit.xml", nullptr, XML_PARSE_NONET),
             xmlFreeDoc);
}

// 0 when `doc` is valid against the schema; libxml2 prints what is not.
int validate(xmlDoc* doc) {
  const std::string xsd = std::string(KTSTR_SOURCE_DIR) + "/tests/data/junit/junit.xsd";
  xmlSchemaParserCtxtPtr pctx = xmlSchemaNewParserCtxt(xsd.c_str());
  xmlSchemaPtr schema = xmlSchemaParse(pctx);
  xmlSchemaFreeParserCtxt(pctx);
  if (!schema) return -1;
  xmlSchemaValidCtxtPtr vctx = xmlSchemaNewValidCtxt(schema);
  int rc = xmlSchemaValidateDoc(vctx, doc);
  xmlSchemaFreeValidCtxt(vctx);
  xmlSchemaFree(schema);
  return rc;
}

// An XPath expression's value as a string (string(), count(), ...).
std::string xpath(xmlDoc* doc, const std::string& expr) {
  xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
  xmlXPathObjectPtr obj = xmlXPathEvalExpression(reinterpret_cast<const xmlChar*>(expr.c_str()), ctx);
  std::string out = "<xpath error>";
  if (obj) {
    xmlChar* s = xmlXPathCastToString(obj);
    out = reinterpret_cast<const char*>(s);
    xmlFree(s);
    xmlXPathFreeObject(obj);
  }
  xmlXPathFreeContext(ctx);
  return out;
}

// The counts of every suite and of the root add up to their cases.
void expect_counts_add_up(xmlDoc* doc) {
  const int suites = std::stoi(xpath(doc, "count(/testsuites/testsuite)"));
  for (int i = 1; i <= suites; ++i) {
    const std::string s = "/testsuites/testsuite[" + std::to_string(i) + "]";
    EXPECT_EQ(xpath(doc, s + "/@tests"), xpath(doc, "count(" + s + "/testcase)")) << s;
    EXPECT_EQ(xpath(doc, s + "/@failures"), xpath(doc, "count(" + s + "/testcase/failure)")) << s;
    EXPECT_EQ(xpath(doc, s + "/@errors"), xpath(doc, "count(" + s + "/testcase/error)")) << s;
    EXPECT_EQ(xpath(doc, s + "/@skipped"), xpath(doc, "count(" + s + "/testcase/skipped)")) << s;
    EXPECT_DOUBLE_EQ(std::stod(xpath(doc, s + "/@time")), std::stod(xpath(doc, "sum(" + s + "/testcase/@time)")));
    EXPECT_EQ(xpath(doc, "count(" + s + "/testcase[@name = preceding-sibling::testcase/@name])"), "0") << s;
  }
  for (const char* a : {"tests", "failures", "errors", "skipped"})
    EXPECT_EQ(xpath(doc, std::string("/testsuites/@") + a), xpath(doc, std::string("sum(//testsuite/@") + a + ")"))
        << a;
}

TEST(Junit, TestRunsValidateAndReadBack) {
  const std::string xml = render_junit(tests_report());
  Doc doc = parse(xml);
  ASSERT_TRUE(doc) << xml;
  EXPECT_EQ(validate(doc.get()), 0) << xml;
  expect_counts_add_up(doc.get());
  EXPECT_EQ(xpath(doc.get(), "/testsuites/@tests"), "5");
  EXPECT_EQ(xpath(doc.get(), "/testsuites/@failures"), "2");
  EXPECT_EQ(xpath(doc.get(), "/testsuites/@skipped"), "1");
  EXPECT_EQ(xpath(doc.get(), "/testsuites/testsuite[1]/@name"), "a.toml");
  EXPECT_EQ(xpath(doc.get(), "/testsuites/testsuite[2]/@name"), "dir/b.toml");
  EXPECT_EQ(xpath(doc.get(), "string(//testcase[@name='steady']/@classname)"), "a");
  EXPECT_EQ(xpath(doc.get(), "string(//testcase[@name='steady']/@time)"), "4.250");
  EXPECT_EQ(xpath(doc.get(), "string(//testcase[@name='steady']/system-out)"), "attached\n");
  // The repetitions in order, the one that never ran skipped.
  EXPECT_EQ(xpath(doc.get(), "string(/testsuites/testsuite[2]/testcase[1]/@name)"), "rep#1");
  EXPECT_EQ(xpath(doc.get(), "count(//testcase[@name='rep#1']/*)"), "0");
  EXPECT_EQ(xpath(doc.get(), "string(//testcase[@name='rep#2']/failure/@type)"), "not_starved");
  EXPECT_EQ(xpath(doc.get(), "count(//testcase[@name='rep#3']/skipped)"), "1");
  EXPECT_EQ(xpath(doc.get(), "string(/testsuites/testsuite[1]/@timestamp)").size(), 19u);
}

TEST(Junit, FailureIsTheBugSummaryAndTheReportEscaped) {
  const RunResult r = crashed_run();
  Doc doc = parse(render_junit(tests_report()));
  ASSERT_TRUE(doc);
  const std::string f = "//testcase[@name='crashy']/failure";
  // The report's first line, specials and all; the BEL in the exit message
  // (a character XML 1.0 forbids) read back as U+FFFD.
  EXPECT_EQ(xpath(doc.get(), "string(" + f + "/@message)"),
            "BUG SUMMARY: scx_bpf_error (bpf/scx_x.bpf.c:7: bad <&>\"' " + kU + " thing)");
  EXPECT_EQ(xpath(doc.get(), "string(" + f + "/@type)"), "scheduler_died");
  std::string report = render_failure(r, {});
  for (size_t at = 0; (at = report.find('\x07', at)) != std::string::npos;) report.replace(at, 1, kU);
  for (size_t at = 0; (at = report.find_first_of("\x01\x1b", at)) != std::string::npos;) report.replace(at, 1, kU);
  for (size_t at = 0; (at = report.find_first_of("\xff\xfe", at)) != std::string::npos;) report.replace(at, 1, kU);
  EXPECT_EQ(xpath(doc.get(), "string(" + f + ")"), report);
  EXPECT_EQ(xpath(doc.get(), "string(//testcase[@name='crashy']/system-out)"),
            "start" + kU + " " + kU + "[31mred" + kU + "[0m <&>\"' " + kU + kU + " end\n");
}

TEST(Junit, GauntletCellsNameTheirAxes) {
  std::vector<TestSpec> specs = {spec_of("t1", "tests/g.toml"), spec_of("t2", "tests/h.toml")};
  std::vector<CellResult> cells = {cell(0, "t1", Verdict::kPass, ""), cell(0, "t1", Verdict::kCrash, "abc"),
                                   cell(1, "t2", Verdict::kSkip, "no sched_ext"), cell(1, "t2", Verdict::kSkip, "error"),
                                   cell(1, "t2", Verdict::kFail, "max_gap_ms")};
  cells[1].topology = "1n1l2c1t";
  cells[1].report = "BUG SUMMARY: scx_bpf_error (x)\nthe report\n";
  cells[2].reason = "kernel 6.1 has no sched_ext";
  cells[3].reason = "the worker died";
  cells[3].sched_args_from_spec = true;
  cells[4].reason = "gap 300 ms > 200 ms";
  cells[4].kernel_ref = "";
  const std::string xml = render_junit(gauntlet_junit(0, specs, cells));
  Doc doc = parse(xml);
  ASSERT_TRUE(doc) << xml;
  EXPECT_EQ(validate(doc.get()), 0) << xml;
  expect_counts_add_up(doc.get());
  EXPECT_EQ(xpath(doc.get(), "count(//testsuite/@timestamp)"), "0");
  EXPECT_EQ(xpath(doc.get(), "string(//testsuite[1]/testcase[1]/@name)"), "t1 [7.3 1n2l4c2t --slice '5 ms']");
  EXPECT_EQ(xpath(doc.get(), "string(//testsuite[1]/testcase[2]/failure/@message)"), "BUG SUMMARY: scx_bpf_error (x)");
  EXPECT_EQ(xpath(doc.get(), "string(//testsuite[1]/testcase[2]/failure/@type)"), "crash");
  EXPECT_EQ(xpath(doc.get(), "string(//testsuite[2]/testcase[1]/skipped/@message)"),
            "no sched_ext: kernel 6.1 has no sched_ext");
  EXPECT_EQ(xpath(doc.get(), "string(//testsuite[2]/testcase[2]/@name)"), "t2 [7.3 1n2l4c2t]");
  EXPECT_EQ(xpath(doc.get(), "string(//testsuite[2]/testcase[2]/error/@message)"), "the worker died");
  EXPECT_EQ(xpath(doc.get(), "string(//testsuite[2]/testcase[3]/@name)"), "t2 [7.3.4 1n2l4c2t --slice '5 ms']");
  EXPECT_EQ(xpath(doc.get(), "string(//testsuite[2]/testcase[3]/failure/@message)"), "gap 300 ms > 200 ms");
}

// The schema is in force: documents CI could not read fail it.
TEST(Junit, TheSchemaRejectsWhatCiCannotRead) {
  const std::string head = "<?xml version=\"1.0\"?>\n<testsuites tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"0\" "
                           "time=\"1\"><testsuite name=\"s\" tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"0\" "
                           "time=\"1\">";
  const std::string tail = "</testsuite></testsuites>\n";
  Doc good = parse(head + "<testcase name=\"n\" classname=\"c\" time=\"1\"/>" + tail);
  ASSERT_TRUE(good);
  EXPECT_EQ(validate(good.get()), 0);
  for (const std::string bad : {"<testcase name=\"n\" time=\"1\"/>", "<testcase name=\"n\" classname=\"c\" time=\"-1\"/>",
                                "<testcase name=\"n\" classname=\"c\" time=\"1\"><failure/></testcase>",
                                "<testcase name=\"n\" classname=\"c\" time=\"1\"><system-out/><skipped/></testcase>"}) {
    Doc doc = parse(head + bad + tail);
    ASSERT_TRUE(doc) << bad;
    EXPECT_GT(validate(doc.get()), 0) << bad;
  }
}

TEST(Junit, EscapingKeepsUtf8AndReplacesWhatXmlForbids) {
  EXPECT_EQ(xml_escape("a<b>&\"c'", false), "a&lt;b&gt;&amp;&quot;c&apos;");
  EXPECT_EQ(xml_escape("l1\nl2\tx\r", false), "l1\nl2\tx&#13;");
  EXPECT_EQ(xml_escape("l1\nl2\tx\r", true), "l1&#10;l2&#9;x&#13;");
  EXPECT_EQ(xml_escape("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", false), "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(xml_escape(std::string("\x00\x08\x0B\x0C\x1F", 5), false), kU + kU + kU + kU + kU);
  // A lone continuation byte, a truncated sequence, an overlong '/', a
  // surrogate, U+FFFE.
  EXPECT_EQ(xml_escape("\x80", false), kU);
  EXPECT_EQ(xml_escape("\xE2\x82", false), kU + kU);
  EXPECT_EQ(xml_escape("\xC0\xAF", false), kU + kU);
  EXPECT_EQ(xml_escape("\xED\xA0\x80", false), kU + kU + kU);
  EXPECT_EQ(xml_escape("\xEF\xBF\xBE", false), kU + kU + kU);
}

TEST(Junit, PathsThatCannotBeWrittenAreErrorsWithHints) {
  auto d = TempDir::create("ktstr-junit");
  ASSERT_TRUE(d);
  EXPECT_TRUE(check_junit_path(d->path() + "/j.xml"));
  EXPECT_TRUE(check_junit_path("j.xml"));
  for (const std::string& bad : {std::string("/nonexistent-dir/x.xml"), d->path(), d->path() + "/", std::string()}) {
    auto st = check_junit_path(bad);
    ASSERT_FALSE(st) << bad;
    EXPECT_NE(st.error().msg.find("--junit"), std::string::npos) << st.error().msg;
    EXPECT_FALSE(st.error().hint.empty()) << bad;
  }
  ASSERT_TRUE(write_junit(d->path() + "/j.xml", tests_report()));
  Doc doc = parse(*read_file(d->path() + "/j.xml"));
  ASSERT_TRUE(doc);
  EXPECT_EQ(validate(doc.get()), 0);
}

// `ktstr test|gauntlet --junit /nonexistent-dir/x.xml`: status 2, an error
// line and a hint, and nothing opened (no store) or booted.
TEST(JunitCli, AnUnwritablePathIsStatus2BeforeAnythingRuns) {
  auto d = TempDir::create("ktstr-junit-cli");
  ASSERT_TRUE(d);
  const std::string spec = d->path() + "/j.toml";
  ASSERT_TRUE(write_file_atomic(spec, "[[test]]\nname = \"j_eevdf\"\nduration_s = 1\n"));
  const std::string ktstr = std::string(KTSTR_BINARY_DIR) + "/bin/ktstr";
  for (const std::string cmd : {"test", "gauntlet"}) {
    SpawnOptions o;
    o.env_extra = {"KTSTR_CACHE_DIR=" + d->path() + "/cache"};
    auto r = run({ktstr, cmd, "--junit", "/nonexistent-dir/x.xml", spec}, o, std::chrono::seconds(30));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 2) << cmd << "\n" << r->err;
    EXPECT_EQ(r->err.rfind("ktstr: error: ", 0), 0u) << r->err;
    EXPECT_NE(r->err.find("/nonexistent-dir"), std::string::npos) << r->err;
    EXPECT_NE(r->err.find("\nhint: "), std::string::npos) << r->err;
    EXPECT_TRUE(r->out.empty()) << r->out;
    EXPECT_FALSE(path_exists(d->path() + "/cache")) << cmd;
  }
}

}  // namespace
}  // namespace ktstr::runner
