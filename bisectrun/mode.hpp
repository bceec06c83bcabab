// What --fixed inverts, in one place. A bisect looks for the commit where
// the signature starts (normal) or stops (--fixed) appearing; the session's
// phases ask which commits must show it and how each is checked, never which
// mode they run in.
//
// Normal: the signature shows at the bad (new) end and at the culprit, not
// at the good (old) ends nor at the culprit's parents. --fixed: the reverse,
// it shows at the old end and at the fix's parents, not at the new end nor at
// the fix.
#pragma once

#include "bisectrun/names.hpp"

#include <vector>

namespace ktstr::bisectrun {

// The commits a session checks besides the search's.
enum class Role { BadEnd, GoodEnd, Culprit, Parent };

enum class Expect { Shows, Clean };

// How one commit is checked.
struct Check {
  Expect expect = Expect::Clean;
  int runs = 0;               // at most this many runs (besides the search's, see below)
  bool one_per_boot = false;  // each run boots alone, else they share one boot
  bool stop_at_hit = false;   // the first hit ends the check
  // The search's own verdicts at the commit count: it asks a culprit that
  // must show the signature to show it before naming it (bisect/search.hpp).
  bool counts_search_runs = false;
  bool ok(int hits) const { return expect == Expect::Shows ? hits > 0 : hits == 0; }
};

class BisectMode {
 public:
  // confirm_runs: clean runs asked of a commit that must stay clean;
  // reproduce_bound: runs a commit that must show the signature gets to show it.
  BisectMode(bool fixed, int confirm_runs, int reproduce_bound)
      : fixed_(fixed), confirm_(confirm_runs), bound_(reproduce_bound) {}

  // The one place the mode inverts: what `r` must do.
  Expect expect(Role r) const;
  // Before the search: the end that must show the signature (the bad end is
  // a candidate, so the search asks for it itself), then the ends that must
  // stay clean.
  Role showing_end() const { return expect(Role::BadEnd) == Expect::Shows ? Role::BadEnd : Role::GoodEnd; }
  Role clean_end() const { return showing_end() == Role::BadEnd ? Role::GoodEnd : Role::BadEnd; }
  // The check of `r` in `phase`. Shows: up to reproduce_bound runs, one per
  // boot, until the first hit. Clean: confirm_runs runs sharing a boot (the
  // culprit's: one per boot); a hit ends a confirmation (it ends the bisect),
  // a verification runs them all.
  Check check(Role r, Phase phase) const;

 private:
  bool fixed_;
  int confirm_, bound_;
};

// The phase of an end's confirmation runs.
Phase confirm_phase(Role end);

}  // namespace ktstr::bisectrun
