// Contract point 9: the cache never holds more than its capacity. Each shard
// holds an exact share of the capacity, so there is no slack at all.

#include <atomic>
#include <cstdint>
#include <random>
#include <rtcache/rtcache.hpp>
#include <thread>
#include <vector>

#include "support/catch.hpp"

namespace {

template <class Policy = rtcache::DefaultPolicy>
auto identity_cache(std::size_t capacity, std::size_t shards) {
  return rtcache::make_cache<std::uint64_t, std::uint64_t, Policy>(
      rtcache::Options{.capacity = capacity, .shards = shards, .seed = 7},
      [](const std::uint64_t& k) { return k; }, [](const std::uint64_t&, const std::uint64_t&) {});
}

template <class Cache>
bool consistent(const Cache& cache) {
  return cache.check_shards(
      [](const auto& policy, std::size_t resident) { return policy.check_invariants(resident); });
}

}  // namespace

TEST_CASE("size never exceeds capacity, whatever the shard count") {
  for (std::size_t shards : {1u, 2u, 8u}) {
    for (std::size_t capacity : {8u, 9u, 100u}) {
      auto cache = identity_cache(capacity, shards);
      for (std::uint64_t k = 0; k < 1000; ++k) {
        if (k % 3 == 0) {
          cache.put(k, k);
        } else {
          CHECK(cache.get(k) == k);
        }
        REQUIRE(cache.size() <= capacity);
      }
      CHECK(consistent(cache));
      CHECK(cache.stats().evictions == 1000 - cache.size());
    }
  }
}

TEST_CASE("a cache at capacity keeps its most recent keys under LRU") {
  auto cache = identity_cache<rtcache::policy::Lru>(4, 1);
  for (std::uint64_t k = 1; k <= 4; ++k) (void)cache.get(k);
  (void)cache.get(1);  // 2 is now the least recently used
  (void)cache.get(5);
  CHECK(cache.get_if_present(2) == std::nullopt);
  for (std::uint64_t k : {1u, 3u, 4u, 5u}) CHECK(cache.get_if_present(k) == k);
}

TEST_CASE("size stays within capacity under concurrent gets, puts and invalidations") {
  constexpr std::size_t kCapacity = 64;
  auto cache = identity_cache(kCapacity, 4);
  std::atomic<bool> over{false};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 random(t);
      for (int i = 0; i < 5000; ++i) {
        const std::uint64_t key = random() % 512;
        switch (random() % 4) {
          case 0:
            cache.put(key, key);
            break;
          case 1:
            cache.invalidate(key);
            break;
          default:
            (void)cache.get(key);
            break;
        }
        if (cache.size() > kCapacity) over = true;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK_FALSE(over.load());
  CHECK(consistent(cache));
}
