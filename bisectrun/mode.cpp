#include "bisectrun/mode.hpp"

namespace ktstr::bisectrun {

Expect BisectMode::expect(Role r) const {
  const bool shows_normally = r == Role::BadEnd || r == Role::Culprit;
  return shows_normally != fixed_ ? Expect::Shows : Expect::Clean;
}

Check BisectMode::check(Role r, Phase phase) const {
  Check c;
  c.expect = expect(r);
  if (c.expect == Expect::Shows) {
    c.runs = bound_;
    c.one_per_boot = true;
    c.stop_at_hit = true;
    c.counts_search_runs = r == Role::Culprit;
  } else {
    c.runs = confirm_;
    c.one_per_boot = r == Role::Culprit;
    c.stop_at_hit = phase != Phase::Verify;
  }
  return c;
}

Phase confirm_phase(Role end) { return end == Role::BadEnd ? Phase::ConfirmBad : Phase::ConfirmGood; }

}  // namespace ktstr::bisectrun
