// CLOCK: exact victims on short, hand-computed sequences.

#include <rtcache/policy/clock.hpp>
#include <vector>

#include "support/catch.hpp"
#include "support/policy_harness.hpp"

using Harness = rtcache::test::PolicyHarness<rtcache::policy::Clock>;
using Keys = std::vector<int>;

TEST_CASE("CLOCK gives referenced entries a second chance") {
  Harness h(3);
  for (int k : {1, 2, 3}) h.get(k);
  CHECK(h.get(1));
  // Hand at 1 (referenced): cleared and sent round; 2 is the victim.
  h.get(4);
  CHECK(h.take_evicted() == Keys{2});
  CHECK(h.order() == Keys{3, 4, 1});
  CHECK(h.get(3));
  CHECK(h.get(4));
  // 3 and 4 are cleared and sent round; 1 lost its bit on the last pass.
  h.get(5);
  CHECK(h.take_evicted() == Keys{1});
  CHECK(h.order() == Keys{5, 3, 4});
  h.get(6);
  CHECK(h.take_evicted() == Keys{5});
  CHECK(h.check());
}

TEST_CASE("CLOCK never picks the entry just inserted while another is resident") {
  // Classic CLOCK evicts before it inserts: with every bit set, the hand
  // clears them all and comes back to the first entry.
  Harness h(2);
  h.get(1);
  h.get(2);
  CHECK(h.get(1));
  CHECK(h.get(2));
  h.get(3);
  CHECK(h.take_evicted() == Keys{1});
  h.get(4);
  CHECK(h.take_evicted() == Keys{2});
  CHECK(h.check());
}

TEST_CASE("CLOCK with a capacity of one keeps the newest entry") {
  Harness h(1);
  h.get(1);
  CHECK(h.get(1));
  h.get(2);
  CHECK(h.take_evicted() == Keys{1});
  h.get(3);
  CHECK(h.take_evicted() == Keys{2});
}

TEST_CASE("CLOCK counts a replacement as a reference") {
  Harness h(2);
  h.get(1);
  h.get(2);
  h.put(1, 100);
  h.get(3);
  CHECK(h.take_evicted() == Keys{2});
}
