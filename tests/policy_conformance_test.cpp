// The conformance suite every eviction policy passes: the shard's capacity is
// respected, victims are always resident entries, erase and reinsert work,
// and the policy's own invariants hold after every step, including on random
// operation sequences checked against a simple model of the resident set.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <rtcache/concepts.hpp>
#include <rtcache/policy/clock.hpp>
#include <rtcache/policy/fifo.hpp>
#include <rtcache/policy/lru.hpp>
#include <rtcache/policy/s3fifo.hpp>
#include <rtcache/policy/sieve.hpp>
#include <rtcache/policy/w_tinylfu.hpp>
#include <set>
#include <tuple>
#include <vector>

#include "support/catch.hpp"
#include "support/policy_harness.hpp"

using rtcache::test::PolicyHarness;

using AllPolicies = std::tuple<rtcache::policy::Lru, rtcache::policy::Fifo, rtcache::policy::Clock,
                               rtcache::policy::Sieve, rtcache::policy::S3Fifo,
                               rtcache::policy::WTinyLfu, rtcache::policy::WTinyLfuClock>;

namespace {

// The resident keys, as the policy enumerates them, must be exactly the
// harness's, each once.
template <class Harness>
bool enumerates_residents(const Harness& h) {
  std::vector<int> keys = h.order();
  if (keys.size() != h.size()) return false;
  std::sort(keys.begin(), keys.end());
  if (std::adjacent_find(keys.begin(), keys.end()) != keys.end()) return false;
  for (int k : keys) {
    if (!h.contains(k)) return false;
  }
  return true;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("a policy satisfies the EvictionPolicy concept", "[policy]", AllPolicies) {
  STATIC_REQUIRE(rtcache::EvictionPolicy<TestType>);
}

TEMPLATE_LIST_TEST_CASE("an empty policy has no victim", "[policy]", AllPolicies) {
  for (std::size_t capacity : {1u, 2u, 10u}) {
    PolicyHarness<TestType> h(capacity);
    CHECK(h.evict_one() == -1);
    CHECK(h.check());
    h.get(1);
    h.erase(1);
    CHECK(h.evict_one() == -1);
    CHECK(h.check());
  }
}

TEMPLATE_LIST_TEST_CASE("the capacity is respected at every step, even for tiny shards", "[policy]",
                        AllPolicies) {
  for (std::size_t capacity : {1u, 2u, 3u, 4u, 5u, 7u, 10u, 64u}) {
    CAPTURE(capacity);
    PolicyHarness<TestType> h(capacity);
    for (int k = 0; k < 400; ++k) {
      // New keys, with every third access a repeat of a recent key.
      h.get(k % 3 == 0 ? k / 2 : k);
      REQUIRE(h.size() <= capacity);
      REQUIRE(h.check());
    }
    CHECK(h.size() == capacity);
    CHECK(enumerates_residents(h));
  }
}

TEMPLATE_LIST_TEST_CASE("every victim leaves, and the policy can then be emptied", "[policy]",
                        AllPolicies) {
  PolicyHarness<TestType> h(8);
  for (int k = 0; k < 40; ++k) h.get(k);
  const std::vector<int> evicted = h.take_evicted();
  CHECK(evicted.size() == 32);
  for (int k : evicted) CHECK_FALSE(h.contains(k));
  // Draining by eviction returns each resident exactly once.
  std::set<int> drained;
  while (h.size() > 0) {
    const int victim = h.evict_one();
    REQUIRE(victim != -1);
    CHECK(drained.insert(victim).second);
    REQUIRE(h.check());
  }
  CHECK(drained.size() == 8);
  CHECK(h.evict_one() == -1);
}

TEMPLATE_LIST_TEST_CASE("erase and reinsert", "[policy]", AllPolicies) {
  PolicyHarness<TestType> h(4);
  for (int k = 1; k <= 4; ++k) h.get(k);
  REQUIRE(h.check());
  CHECK(h.erase(2));
  CHECK(h.erase(4));
  CHECK_FALSE(h.erase(4));
  CHECK(h.size() == 2);
  REQUIRE(h.check());
  CHECK(enumerates_residents(h));
  // Room was made by the erasures: reinserting evicts nothing.
  CHECK_FALSE(h.get(2));
  CHECK_FALSE(h.get(4));
  CHECK(h.take_evicted().empty());
  CHECK(h.size() == 4);
  REQUIRE(h.check());
  for (int k = 1; k <= 4; ++k) CHECK(h.get(k));
  // Erase everything, then fill again.
  for (int k = 1; k <= 4; ++k) CHECK(h.erase(k));
  CHECK(h.size() == 0);
  REQUIRE(h.check());
  for (int k = 10; k < 20; ++k) h.get(k);
  CHECK(h.size() == 4);
  CHECK(h.check());
}

TEMPLATE_LIST_TEST_CASE("replacing a value keeps the entry resident in its place", "[policy]",
                        AllPolicies) {
  for (std::size_t capacity : {1u, 3u, 16u}) {
    PolicyHarness<TestType> h(capacity);
    for (int k = 0; k < 20; ++k) {
      h.get(k);
      h.put(k, k + 100);  // replaces the entry just inserted (if it was admitted)
      REQUIRE(h.check());
      REQUIRE(h.size() <= capacity);
    }
    for (int k = 0; k < 20; ++k) {
      if (h.contains(k)) CHECK(h.entry(k).value == k + 100);
    }
    CHECK(enumerates_residents(h));
  }
}

TEMPLATE_LIST_TEST_CASE("erasing the entries the policy points at", "[policy]", AllPolicies) {
  // Hands, pending entries and segment boundaries must follow removals: erase
  // the next victim, the newest entry and an entry that was just hit.
  PolicyHarness<TestType> h(5);
  for (int k = 0; k < 30; ++k) {
    h.get(k);
    if (k % 4 == 0) h.get(k - 1);
    REQUIRE(h.check());
    if (k % 5 == 0) {
      const std::vector<int> order = h.order();
      REQUIRE_FALSE(order.empty());
      h.erase(order.front());
      REQUIRE(h.check());
    }
    if (k % 7 == 0) {
      h.erase(k);
      REQUIRE(h.check());
    }
  }
  CHECK(enumerates_residents(h));
}

TEMPLATE_LIST_TEST_CASE("random operation sequences agree with a model of the resident set",
                        "[policy]", AllPolicies) {
  for (std::size_t capacity : {1u, 2u, 3u, 6u, 17u, 50u}) {
    CAPTURE(capacity);
    PolicyHarness<TestType> h(capacity, /*seed=*/capacity);
    std::set<int> model;  // what must be resident
    std::mt19937 random(static_cast<std::uint32_t>(1000 + capacity));
    const int key_space = static_cast<int>(capacity) * 3 + 2;
    std::uniform_int_distribution<int> key(0, key_space - 1);
    std::uniform_int_distribution<int> op(0, 99);
    for (int step = 0; step < 3000; ++step) {
      const int k = key(random);
      const int o = op(random);
      if (o < 70) {
        const bool hit = h.get(k);
        CHECK(hit == (model.count(k) == 1));
        model.insert(k);
      } else if (o < 85) {
        h.put(k, step);
        model.insert(k);
      } else {
        CHECK(h.erase(k) == (model.erase(k) == 1));
      }
      for (int victim : h.take_evicted()) {
        // A victim was resident (the harness checked the entry) and is gone.
        REQUIRE(model.erase(victim) == 1);
      }
      REQUIRE(h.size() == model.size());
      REQUIRE(h.size() <= capacity);
      REQUIRE(h.check());
      for (int m : model) REQUIRE(h.contains(m));
    }
    CHECK(enumerates_residents(h));
  }
}

TEMPLATE_LIST_TEST_CASE("the same seed gives the same victims", "[policy]", AllPolicies) {
  PolicyHarness<TestType> a(20, 99);
  PolicyHarness<TestType> b(20, 99);
  std::mt19937 random(5);
  std::uniform_int_distribution<int> key(0, 80);
  for (int step = 0; step < 5000; ++step) {
    const int k = key(random);
    CHECK(a.get(k) == b.get(k));
  }
  CHECK(a.take_evicted() == b.take_evicted());
}

TEMPLATE_LIST_TEST_CASE("an in-place update acts on the policy as a replacement does", "[policy]",
                        AllPolicies) {
  // The cache rewrites small values in place and calls on_update(e) where it
  // would otherwise call on_replace(old, fresh): the same random sequence,
  // with writes done one way in one harness and the other way in the other,
  // must evict the same keys in the same order.
  for (std::size_t capacity : {1u, 3u, 16u, 100u}) {
    PolicyHarness<TestType> replaced(capacity, 7);
    PolicyHarness<TestType> updated(capacity, 7);
    std::mt19937 random(static_cast<unsigned>(capacity));
    const int keys = static_cast<int>(capacity) * 3 + 2;
    for (int step = 0; step < 4000; ++step) {
      const int key = static_cast<int>(random() % static_cast<unsigned>(keys));
      switch (random() % 8) {
        case 0:
        case 1:
        case 2:
          replaced.put(key, step);
          updated.update(key, step);
          break;
        case 3:
          replaced.erase(key);
          updated.erase(key);
          break;
        default:
          CHECK(replaced.get(key) == updated.get(key));
          break;
      }
      REQUIRE(replaced.take_evicted() == updated.take_evicted());
      REQUIRE(updated.check());
    }
    CHECK(replaced.order() == updated.order());
  }
}
