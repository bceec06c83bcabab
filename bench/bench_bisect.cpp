// Benchmark (prints figures; not a test; no VMs): the real bisect search
// (bisect/search.hpp) against simulated histories, next to baselines
// implemented here: git bisect with a run script that tries each commit 1, 3
// or 5 times (bad when any try shows the signature; a different crash counts
// as good, as the script would see it), and syzkaller's policy (10 runs per
// commit, bad at 2 or more crashes of any kind).
//
// A history: a chain of N candidates (the good end below index 0, the bad end
// N - 1), a culprit drawn uniformly, 3 % of commits failing to build (Skip,
// always; never the bad end, which the user saw crash), every run showing a
// different crash (Other) with probability 5 %, otherwise the signature with
// probability p at commits the culprit reaches and never elsewhere. One row
// uses a DAG with merges instead of a chain. Every policy sees the same
// histories (same seed). A run is one test of one commit; a build failure
// costs one run too.
//
// Boots. On TCG a run that boots its own VM costs about 7.9 s and a further
// run in the same VM about 3.5 s (`ktstr-bench-vm`, --repeat), so a run in a
// shared boot costs kRepeatCost of a fresh one. "boots" counts VMs booted and
// "cost" is boots * (1 - kRepeatCost) + runs * kRepeatCost, in fresh runs:
// the baselines run each commit's tries in one boot (as ktstr would run
// them); "ours" boots once per run (one at a time) and "ours-batch" shares a
// boot between the runs bisect/batch.hpp plans for one commit.
//
// Targets: ours >= 98 % right for p >= 0.3 with mean runs at most half of
// syzkaller's; for p = 1 at most ceil(log2 N) + 2 runs.
#include "bisect/batch.hpp"
#include "bisect/graph.hpp"
#include "bisect/search.hpp"
#include "core/splitmix64.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <vector>

using namespace ktstr::bisect;

namespace {

constexpr double kOtherRate = 0.05;
constexpr double kSkipRate = 0.03;
BatchOptions g_batch;  // --max-batch, --min-asked
constexpr double kRepeatCost = 0.45;
constexpr int kConfirmRuns = 2;  // ktstr bisect --confirm-runs' default

// splitmix64: the same figures on every libc.
using Rng = ktstr::SplitMix64;

struct History {
  const CandidateGraph* graph;
  size_t culprit;
  std::vector<bool> broken;  // fails to build
  double p;
  // The verdict of one run at x, drawn from `rng`.
  Outcome run(size_t x, Rng& rng) const {
    if (broken[x]) return Outcome::Skip;
    if (rng.uniform() < kOtherRate) return Outcome::Other;
    if (graph->reaches(culprit, x) && rng.uniform() < p) return Outcome::Hit;
    return Outcome::Miss;
  }
};

struct Answer {
  std::vector<size_t> culprits;  // one: named; several: ambiguous; none: gave up
  int runs = 0;
  int boots = 0;
};

// ---- ours -------------------------------------------------------------------

SearchOptions g_options;  // --confidence, --p-deterministic, ...

// A run at a good end (outside the candidates): never the signature.
Outcome run_good_end(Rng& rng) { return rng.uniform() < kOtherRate ? Outcome::Other : Outcome::Miss; }

bool g_verify = true;  // --no-verify: the search alone

Answer run_ours(const History& h, Rng& rng, bool batched) {
  Search s(*h.graph, g_options);
  int boots = 0;
  bool good_confirmed = false;
  for (;;) {
    if (g_verify && !good_confirmed && s.evidence(h.graph->bad()).hit > 0) {
      // ktstr's confirm-good runs (bisectrun/session.cpp): once the bad end
      // showed the signature, kConfirmRuns runs at the good end in one boot.
      ++boots;
      for (int i = 0; i < kConfirmRuns; ++i) s.observe_good(run_good_end(rng));
      good_confirmed = true;
    }
    Next nx = s.next();
    if (nx.kind == Next::Kind::Done && g_verify && nx.reason == StopReason::ConfidenceReached) {
      // ktstr's verification (bisectrun/session.cpp): the culprit's own hit
      // is the search's; each parent gets kConfirmRuns fresh runs in one
      // boot, fed to the search, which goes on when they move the posterior.
      // (Counting the search's earlier clean runs at a parent instead saves
      // about two runs at p = 1 but names a p = 0.7 culprit wrongly 3-5 % of
      // the time rather than 0.2-1 %: those fresh runs are what catch a
      // flaky culprit's single miss.)
      const size_t best = s.best();
      std::vector<size_t> parents = h.graph->parents(best);
      if (parents.empty()) {
        ++boots;
        for (int i = 0; i < kConfirmRuns; ++i) s.observe_good(run_good_end(rng));
      }
      for (size_t parent : parents) {
        ++boots;
        for (int i = 0; i < kConfirmRuns; ++i) {
          Outcome o = h.run(parent, rng);
          s.observe(parent, o);
          if (o == Outcome::Skip) break;
        }
      }
      nx = s.next();
      if (nx.kind == Next::Kind::Run) continue;
    }
    if (nx.kind == Next::Kind::Done) {
      Answer a;
      a.runs = s.runs();
      a.boots = boots;
      if (nx.reason == StopReason::ConfidenceReached) a.culprits = {s.best()};
      else if (!s.ambiguous().empty()) a.culprits = s.ambiguous();
      return a;
    }
    int runs = batched ? plan_batch(s, nx.commit, g_batch) : 1;
    ++boots;
    for (int i = 0; i < runs; ++i) {
      Outcome o = h.run(nx.commit, rng);
      s.observe(nx.commit, o);
      if (o == Outcome::Skip) break;  // a commit that does not build runs nothing more
    }
  }
}

// ---- git bisect on a chain, with a verdict per commit -----------------------

// verdict(x, &runs): true bad, false good, nullopt skip.
using Verdict = std::function<std::optional<bool>(size_t, int*)>;

Answer run_git(size_t n, const Verdict& verdict) {
  // good end at -1, bad end n - 1 (given, not tested, as with git bisect start)
  long lo = -1, hi = static_cast<long>(n) - 1;
  std::vector<bool> skipped(n, false);
  Answer a;
  for (;;) {
    if (hi - lo <= 1) {
      a.culprits = {static_cast<size_t>(hi)};
      return a;
    }
    // the midpoint, or the nearest commit to it not skipped (git moves away
    // from skipped commits); none left: ambiguous like git
    long mid = lo + (hi - lo) / 2, pick = -1;
    for (long d = 0; d < hi - lo && pick < 0; ++d) {
      for (long c : {mid - d, mid + d}) {
        if (c > lo && c < hi && !skipped[c]) {
          pick = c;
          break;
        }
      }
    }
    if (pick < 0) {
      for (long c = lo + 1; c <= hi; ++c) a.culprits.push_back(static_cast<size_t>(c));
      return a;
    }
    ++a.boots;  // a commit's tries share one boot
    auto v = verdict(static_cast<size_t>(pick), &a.runs);
    if (!v) skipped[pick] = true;
    else if (*v) hi = pick;
    else lo = pick;
  }
}

Answer run_git_tries(const History& h, Rng& rng, int tries) {
  return run_git(h.graph->size(), [&](size_t x, int* runs) -> std::optional<bool> {
    for (int t = 0; t < tries; ++t) {
      ++*runs;
      Outcome o = h.run(x, rng);
      if (o == Outcome::Skip) return std::nullopt;
      if (o == Outcome::Hit) return true;  // the script stops at the first hit
    }
    return false;
  });
}

Answer run_syzkaller(const History& h, Rng& rng) {
  return run_git(h.graph->size(), [&](size_t x, int* runs) -> std::optional<bool> {
    int crashes = 0;
    for (int t = 0; t < 10; ++t) {
      ++*runs;
      Outcome o = h.run(x, rng);
      if (o == Outcome::Skip) return std::nullopt;
      if (o == Outcome::Hit || o == Outcome::Other) ++crashes;
    }
    return crashes >= 2;
  });
}

// ---- histories ----------------------------------------------------------------

CandidateGraph chain(size_t n) {
  std::vector<CommitNode> list;
  for (size_t i = 0; i < n; ++i)
    list.push_back({"c" + std::to_string(i), i ? std::vector<std::string>{"c" + std::to_string(i - 1)}
                                               : std::vector<std::string>{}});
  return *CandidateGraph::build(std::move(list), "c" + std::to_string(n - 1), false);
}

// A mainline with topic branches merged in: every 8th mainline commit merges a
// side branch of 1-6 commits forked a few commits earlier.
CandidateGraph dag(size_t n, Rng& rng) {
  std::vector<CommitNode> list;
  std::vector<std::string> mainline;
  size_t made = 0;
  auto name = [&] { return "d" + std::to_string(made++); };
  while (made < n) {
    std::string id = name();
    std::vector<std::string> parents;
    if (!mainline.empty()) parents.push_back(mainline.back());
    if (mainline.size() >= 4 && mainline.size() % 8 == 0 && made + 6 < n) {
      std::string fork = mainline[mainline.size() - 1 - rng.below(4)];
      size_t len = 1 + rng.below(6);
      std::string prev = fork;
      for (size_t i = 0; i < len; ++i) {
        std::string side = name();
        list.push_back({side, {prev}});
        prev = side;
      }
      parents.push_back(prev);
    }
    list.push_back({id, parents});
    mainline.push_back(id);
  }
  return *CandidateGraph::build(std::move(list), mainline.back(), false);
}

struct Row {
  std::string policy;
  size_t n = 0;
  double p = 0;
  int histories = 0, right = 0, ambiguous = 0, gave_up = 0, runs_max = 0;
  double runs_total = 0, boots_total = 0;
  double mean_runs() const { return runs_total / histories; }
  double mean_boots() const { return boots_total / histories; }
  double mean_cost() const { return mean_boots() * (1 - kRepeatCost) + mean_runs() * kRepeatCost; }
};

void add(Row& r, const Answer& a, const History& h) {
  ++r.histories;
  r.runs_total += a.runs;
  r.boots_total += a.boots;
  r.runs_max = std::max(r.runs_max, a.runs);
  if (a.culprits.size() == 1 && a.culprits[0] == h.culprit) ++r.right;
  else if (a.culprits.size() > 1 && std::count(a.culprits.begin(), a.culprits.end(), h.culprit)) ++r.ambiguous;
  else if (a.culprits.empty()) ++r.gave_up;
}

void print_header() {
  std::printf("%-10s %5s %5s %5s %7s %7s %7s %7s %7s %5s %7s %7s %7s %7s\n", "policy", "N", "p", "hist", "right%",
              "ambig%", "noans%", "wrong%", "runs", "max", "vs-syz", "boots", "cost", "cost/syz");
}

void print_row(const Row& r, const Row* syz) {
  double k = 100.0 / r.histories;
  int wrong = r.histories - r.right - r.ambiguous - r.gave_up;
  std::printf("%-10s %5zu %5.2f %5d %7.1f %7.1f %7.1f %7.1f %7.1f %5d", r.policy.c_str(), r.n, r.p,
              r.histories, k * r.right, k * r.ambiguous, k * r.gave_up, k * wrong, r.mean_runs(), r.runs_max);
  if (syz) std::printf(" %7.2f", r.mean_runs() / syz->mean_runs());
  else std::printf(" %7s", "");
  std::printf(" %7.1f %7.1f", r.mean_boots(), r.mean_cost());
  if (syz) std::printf(" %7.2f", r.mean_cost() / syz->mean_cost());
  std::printf("\n");
}

int usage(FILE* f) {
  std::fprintf(f,
               "usage: ktstr-bench-bisect [--histories N] [--seed S] [--sizes 16,256,4096]\n"
               "                          [--confidence X] [--p-deterministic X] [--p-alpha X] [--p-beta X]\n"
               "                          [--max-batch N] [--min-asked X] [--no-verify]\n"
               "\n"
               "Runs the bisect search and its baselines (git bisect x1/x3/x5, syzkaller)\n"
               "on simulated histories and prints accuracy and runs per policy, size N\n"
               "and reproduction rate p. No VMs. Defaults: 1000 histories, seed 1, the\n"
               "search's default options (the other flags override them). Ours includes\n"
               "ktstr's confirmation of the good end (two runs) and its verification (two\n"
               "runs at each parent of the culprit, fed to the search); --no-verify counts\n"
               "the search alone.\n");
  return f == stdout ? 0 : 2;
}

int bad_usage(const std::string& msg) {
  std::fprintf(stderr, "ktstr-bench-bisect: error: %s\nhint: see 'ktstr-bench-bisect --help'\n", msg.c_str());
  return 2;
}

bool parse_count(const char* s, long* out) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(s, &end, 10);
  if (errno || !end || *end || v <= 0) return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  long histories = 1000, seed = 1;
  std::vector<size_t> sizes{16, 256, 4096};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") return usage(stdout);
    if (a == "--no-verify") {
      g_verify = false;
      continue;
    }
    if (a == "--max-batch" || a == "--min-asked") {
      if (i + 1 >= argc) return bad_usage("option '" + a + "' needs a value");
      char* end = nullptr;
      double v = std::strtod(argv[++i], &end);
      if (!end || *end || !(v > 0) || (a == "--max-batch" && (v != std::floor(v) || v > 100)))
        return bad_usage("option '" + a + "' needs a positive number, not '" + argv[i] + "'");
      if (a == "--max-batch") g_batch.max_batch = static_cast<int>(v);
      else g_batch.min_asked = v;
      continue;
    }
    if (a == "--confidence" || a == "--p-deterministic" || a == "--p-beta" || a == "--p-alpha") {
      if (i + 1 >= argc) return bad_usage("option '" + a + "' needs a value");
      char* end = nullptr;
      double v = std::strtod(argv[++i], &end);
      if (!end || *end || !(v >= 0) || (a != "--p-beta" && a != "--p-alpha" && v > 1))
        return bad_usage("option '" + a + "' needs a number, not '" + argv[i] + "'");
      if (a == "--confidence") g_options.confidence = v;
      else if (a == "--p-deterministic") g_options.p_deterministic = v;
      else if (a == "--p-alpha") g_options.p_alpha = v;
      else g_options.p_beta = v;
      continue;
    }
    if (a == "--histories" || a == "--seed" || a == "--sizes") {
      if (i + 1 >= argc) return bad_usage("option '" + a + "' needs a value");
      const char* v = argv[++i];
      if (a == "--sizes") {
        sizes.clear();
        std::string list = v;
        size_t pos = 0;
        while (pos <= list.size()) {
          size_t comma = list.find(',', pos);
          if (comma == std::string::npos) comma = list.size();
          long n = 0;
          if (!parse_count(list.substr(pos, comma - pos).c_str(), &n) || n < 2 || n > 100000)
            return bad_usage("bad size list '" + list + "'");
          sizes.push_back(static_cast<size_t>(n));
          pos = comma + 1;
        }
      } else if (!parse_count(v, a == "--seed" ? &seed : &histories)) {
        return bad_usage("option '" + a + "' needs a positive number, not '" + v + "'");
      }
      continue;
    }
    return bad_usage("unknown argument '" + a + "'");
  }

  const std::vector<double> rates{1.0, 0.7, 0.3, 0.1};
  auto t0 = std::chrono::steady_clock::now();
  std::clock_t cpu0 = std::clock();
  print_header();
  for (size_t n : sizes) {
    CandidateGraph g = chain(n);
    int limit = 0;
    while ((size_t{1} << limit) < n) ++limit;
    for (double p : rates) {
      std::vector<Row> rows(6);
      const char* names[] = {"ours", "ours-batch", "git-x1", "git-x3", "git-x5", "syzkaller"};
      for (int k = 0; k < 6; ++k) rows[k] = Row{names[k], n, p};
      Rng hist_rng{static_cast<uint64_t>(seed) * 1000003 + n * 7 + static_cast<uint64_t>(p * 1000)};
      for (long i = 0; i < histories; ++i) {
        History h{&g, hist_rng.below(n), std::vector<bool>(n), p};
        for (size_t x = 0; x + 1 < n; ++x) h.broken[x] = hist_rng.uniform() < kSkipRate;
        uint64_t run_seed = hist_rng.next();
        Rng r0{run_seed}, rb{run_seed}, r1{run_seed}, r3{run_seed}, r5{run_seed}, rs{run_seed};
        add(rows[0], run_ours(h, r0, false), h);
        add(rows[1], run_ours(h, rb, true), h);
        add(rows[2], run_git_tries(h, r1, 1), h);
        add(rows[3], run_git_tries(h, r3, 3), h);
        add(rows[4], run_git_tries(h, r5, 5), h);
        add(rows[5], run_syzkaller(h, rs), h);
      }
      for (const Row& r : rows) print_row(r, &r == &rows[0] || &r == &rows[1] ? &rows[5] : nullptr);
      if (p == 1.0)
        std::printf("  p = 1 target: at most ceil(log2 N) + 2 = %d runs\n", limit + 2);
      std::fflush(stdout);
    }
  }
  // One DAG (merges): ours only (the git baselines here walk chains).
  {
    Rng dag_rng{static_cast<uint64_t>(seed) * 7919};
    CandidateGraph g = dag(256, dag_rng);
    for (double p : {1.0, 0.7}) {
      Row r{"ours-dag", g.size(), p};
      Rng hist_rng{static_cast<uint64_t>(seed) * 31 + static_cast<uint64_t>(p * 1000)};
      for (long i = 0; i < histories; ++i) {
        History h{&g, hist_rng.below(g.size()), std::vector<bool>(g.size()), p};
        for (size_t x = 0; x + 1 < g.size(); ++x) h.broken[x] = hist_rng.uniform() < kSkipRate;
        Rng r0{hist_rng.next()};
        add(r, run_ours(h, r0, false), h);
      }
      print_row(r, nullptr);
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("(%.1f s wall, %.1f s cpu)\n", secs, static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC);
  return 0;
}
