// LRU: exact victims on short, hand-computed sequences.

#include <rtcache/policy/lru.hpp>
#include <vector>

#include "support/catch.hpp"
#include "support/policy_harness.hpp"

using Harness = rtcache::test::PolicyHarness<rtcache::policy::Lru>;
using Keys = std::vector<int>;

TEST_CASE("LRU evicts the least recently used entry") {
  Harness h(3);
  for (int k : {1, 2, 3}) CHECK_FALSE(h.get(k));
  CHECK(h.take_evicted().empty());
  CHECK(h.get(1));  // order: 2 3 1
  h.get(4);
  CHECK(h.take_evicted() == Keys{2});
  h.get(5);
  CHECK(h.take_evicted() == Keys{3});
  CHECK(h.get(4));  // order: 1 5 4
  h.get(6);
  CHECK(h.take_evicted() == Keys{1});
  CHECK(h.order() == Keys{5, 4, 6});
  CHECK(h.check());
}

TEST_CASE("LRU treats a replacement as a use, and an erasure frees a slot") {
  Harness h(3);
  for (int k : {1, 2, 3}) h.get(k);
  h.put(1, 10);  // order: 2 3 1
  CHECK(h.order() == Keys{2, 3, 1});
  h.get(4);
  CHECK(h.take_evicted() == Keys{2});
  h.erase(3);
  h.get(5);  // room: no eviction
  CHECK(h.take_evicted().empty());
  CHECK(h.order() == Keys{1, 4, 5});
  h.get(6);
  CHECK(h.take_evicted() == Keys{1});
  CHECK(h.check());
}

TEST_CASE("LRU with a capacity of one keeps the newest entry") {
  Harness h(1);
  h.get(1);
  h.get(2);
  h.get(3);
  CHECK(h.take_evicted() == Keys{1, 2});
  CHECK(h.order() == Keys{3});
}
