// Every policy inside a real ReadThroughCache, with threads: lock-free hits
// (straight into the policy for CLOCK, SIEVE, S3-FIFO and FIFO, through the
// read buffer for LRU and W-TinyLFU) racing with loads, writes, invalidations
// and evictions. Values stay right, the capacity holds, and each shard's
// policy agrees with its table afterwards. Meant to run under TSan as well.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <random>
#include <rtcache/policy/clock.hpp>
#include <rtcache/policy/fifo.hpp>
#include <rtcache/policy/lru.hpp>
#include <rtcache/policy/s3fifo.hpp>
#include <rtcache/policy/sieve.hpp>
#include <rtcache/policy/w_tinylfu.hpp>
#include <rtcache/rtcache.hpp>
#include <thread>
#include <tuple>
#include <vector>

#include "support/catch.hpp"

using AllPolicies = std::tuple<rtcache::policy::Lru, rtcache::policy::Fifo, rtcache::policy::Clock,
                               rtcache::policy::Sieve, rtcache::policy::S3Fifo,
                               rtcache::policy::WTinyLfu, rtcache::policy::WTinyLfuClock>;

TEMPLATE_LIST_TEST_CASE("a policy keeps the cache consistent under concurrent use", "[policy]",
                        AllPolicies) {
  constexpr std::size_t kCapacity = 64;
  constexpr std::uint64_t kKeys = 200;
  auto cache = rtcache::make_cache<std::uint64_t, std::uint64_t, TestType>(
      rtcache::Options{.capacity = kCapacity, .shards = 4, .seed = 11},
      [](const std::uint64_t& k) { return k * 3; },
      [](const std::uint64_t&, const std::uint64_t&) {});
  std::atomic<bool> wrong{false};
  std::atomic<bool> over{false};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 random(t + 1);
      for (int i = 0; i < 20'000; ++i) {
        // Skewed keys: a hot few are hit all the time, the rest churn.
        const std::uint64_t k = (random() % 4 == 0) ? random() % kKeys : random() % 16;
        const auto op = random() % 100;
        if (op < 85) {
          if (cache.get(k) != k * 3) wrong = true;
        } else if (op < 95) {
          cache.put(k, k * 3);
        } else {
          cache.invalidate(k);
        }
        if (cache.size() > kCapacity) over = true;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK_FALSE(wrong);
  CHECK_FALSE(over);
  CHECK(cache.size() <= kCapacity);
  CHECK(cache.check_shards(
      [](const auto& policy, std::size_t resident) { return policy.check_invariants(resident); }));
}
