// SIEVE: exact victims on short, hand-computed sequences (checked against the
// evict-then-insert order of the paper's pseudo code).

#include <rtcache/policy/sieve.hpp>
#include <vector>

#include "support/catch.hpp"
#include "support/policy_harness.hpp"

using Harness = rtcache::test::PolicyHarness<rtcache::policy::Sieve>;
using Keys = std::vector<int>;

TEST_CASE("SIEVE's hand skips visited entries and stays where it stopped") {
  Harness h(3);
  for (int k : {1, 2, 3}) h.get(k);
  CHECK(h.get(1));
  // The hand starts at the oldest, 1: visited, so cleared; 2 is the victim,
  // and the hand stays on 3.
  h.get(4);
  CHECK(h.take_evicted() == Keys{2});
  h.get(5);
  CHECK(h.take_evicted() == Keys{3});
  CHECK(h.get(1));
  CHECK(h.get(4));
  // Hand on 4: visited, cleared; 5 is the victim; the hand reaches the newest
  // entry and wraps to the oldest.
  h.get(6);
  CHECK(h.take_evicted() == Keys{5});
  // From the oldest: 1 is cleared, 4 was cleared already.
  h.get(7);
  CHECK(h.take_evicted() == Keys{4});
  CHECK(h.order() == Keys{6, 1, 7});
  CHECK(h.check());
}

TEST_CASE("SIEVE keeps visited entries in place, unlike CLOCK") {
  Harness h(4);
  for (int k : {1, 2, 3, 4}) h.get(k);
  CHECK(h.get(2));
  CHECK(h.get(3));
  h.get(5);  // 1 is unvisited: it goes, the hand stays on 2
  CHECK(h.take_evicted() == Keys{1});
  h.get(6);  // 2 and 3 cleared, 4 goes; the hand stays on 5
  CHECK(h.take_evicted() == Keys{4});
  h.get(7);  // 5 was never visited
  CHECK(h.take_evicted() == Keys{5});
  CHECK(h.order() == Keys{6, 2, 3, 7});
  CHECK(h.check());
}

TEST_CASE("SIEVE's hand follows an erased entry") {
  Harness h(4);
  for (int k : {1, 2, 3, 4}) h.get(k);
  CHECK(h.get(1));
  h.get(5);  // 1 cleared, 2 evicted, the hand on 3
  CHECK(h.take_evicted() == Keys{2});
  h.erase(3);  // the hand moves on to 4
  h.get(6);    // room: no eviction
  CHECK(h.take_evicted().empty());
  h.get(7);  // 4 is where the hand is, and unvisited (1 would go next)
  CHECK(h.take_evicted() == Keys{4});
  CHECK(h.check());
}

TEST_CASE("SIEVE with a capacity of one keeps the newest entry") {
  Harness h(1);
  h.get(1);
  CHECK(h.get(1));
  h.get(2);
  CHECK(h.take_evicted() == Keys{1});
  h.get(3);
  CHECK(h.take_evicted() == Keys{2});
}
