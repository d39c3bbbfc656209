// FIFO: exact victims on short, hand-computed sequences.

#include <rtcache/policy/fifo.hpp>
#include <vector>

#include "support/catch.hpp"
#include "support/policy_harness.hpp"

using Harness = rtcache::test::PolicyHarness<rtcache::policy::Fifo>;
using Keys = std::vector<int>;

TEST_CASE("FIFO evicts in insertion order, whatever the hits") {
  Harness h(3);
  for (int k : {1, 2, 3}) h.get(k);
  CHECK(h.get(1));
  CHECK(h.get(1));
  h.get(4);
  CHECK(h.take_evicted() == Keys{1});
  CHECK(h.get(2));
  h.get(5);
  CHECK(h.take_evicted() == Keys{2});
  h.get(6);
  CHECK(h.take_evicted() == Keys{3});
  CHECK(h.order() == Keys{4, 5, 6});
}

TEST_CASE("FIFO keeps a replaced entry in its place") {
  Harness h(3);
  for (int k : {1, 2, 3}) h.get(k);
  h.put(1, 100);
  CHECK(h.order() == Keys{1, 2, 3});
  h.get(4);
  CHECK(h.take_evicted() == Keys{1});
  h.erase(3);
  h.get(5);
  h.get(6);
  CHECK(h.take_evicted() == Keys{2});
  CHECK(h.order() == Keys{4, 5, 6});
  CHECK(h.check());
}
