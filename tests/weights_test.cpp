// With a weigher, capacity bounds the total weight; a value heavier than its
// shard's share is not cached.

#include <chrono>
#include <memory>
#include <rtcache/rtcache.hpp>
#include <string>

#include "support/catch.hpp"

namespace {

auto weighted_cache(std::size_t capacity) {
  return rtcache::make_cache<int, std::string>(
      rtcache::Options{.capacity = capacity, .shards = 1, .seed = 1},
      [](const int& k) { return std::string(static_cast<std::size_t>(k), 'x'); },
      [](const int&, const std::string&) {},
      rtcache::CacheHooks<int, std::string>{
          .weigher = [](const int&, const std::string& v) { return v.size(); }});
}

}  // namespace

TEST_CASE("the total weight never exceeds the capacity") {
  auto cache = weighted_cache(100);
  for (int k = 1; k <= 40; ++k) {
    REQUIRE(cache.get(k)->size() == static_cast<std::size_t>(k));
    REQUIRE(cache.weight() <= 100);
  }
  // A few values, not 40: of weights 1 to 40, at most 13 fit in 100
  // (1 + ... + 13 = 91). The cache accounts for each one it holds.
  std::size_t held = 0;
  std::size_t held_weight = 0;
  for (int k = 1; k <= 40; ++k) {
    if (cache.get_if_present(k)) {
      ++held;
      held_weight += static_cast<std::size_t>(k);
    }
  }
  CHECK(held <= 13);
  CHECK(held == cache.size());
  CHECK(held_weight == cache.weight());
  CHECK(cache.check_shards([](const auto& p, std::size_t n) { return p.check_invariants(n); }));
}

TEST_CASE("a value heavier than the capacity is returned but not cached") {
  auto cache = weighted_cache(10);
  CHECK(cache.get(50)->size() == 50);
  CHECK(cache.size() == 0);
  CHECK(cache.stats().rejected_oversized == 1);
  CHECK(cache.get(5)->size() == 5);
  CHECK(cache.size() == 1);
}

TEST_CASE("putting an oversized value drops the old one, which the store no longer holds") {
  auto cache = weighted_cache(10);
  REQUIRE(cache.get(4));
  cache.put(4, std::string(20, 'y'));
  CHECK(cache.get_if_present(4) == std::nullopt);
  CHECK(cache.weight() == 0);
}

// Weights and expiry times both sit in front of an entry only when the cache
// uses them: with both, each must still read back as written.
TEST_CASE("a cache with a weigher and a TTL keeps both per entry") {
  using namespace std::chrono_literals;
  auto clock = std::make_shared<rtcache::ManualClock>();
  int loads = 0;
  auto cache = rtcache::make_cache<int, std::string>(
      rtcache::Options{
          .capacity = 100, .shards = 1, .seed = 1, .expire_after_write = 10s, .clock = clock},
      [&](const int& k) {
        ++loads;
        return std::string(static_cast<std::size_t>(k), 'x');
      },
      [](const int&, const std::string&) {},
      rtcache::CacheHooks<int, std::string>{
          .weigher = [](const int&, const std::string& v) { return v.size(); }});
  CHECK(cache.get(30)->size() == 30);
  clock->advance(5s);
  CHECK(cache.get(20)->size() == 20);
  CHECK(cache.weight() == 50);
  clock->advance(5s);  // 30 is 10 s old: expired; 20 is 5 s old: fresh
  CHECK(cache.get_if_present(30) == std::nullopt);
  CHECK(cache.get_if_present(20)->size() == 20);
  CHECK(cache.get(30)->size() == 30);  // loaded again
  CHECK(loads == 3);
  CHECK(cache.weight() == 50);
  CHECK(cache.check_shards([](const auto& p, std::size_t n) { return p.check_invariants(n); }));
}

// With a weigher, a shard's capacity is weight, not entries: its table has no
// bucket ceiling and keeps doubling past the one the same capacity in entries
// would give (ceil(1000 * 8 / 9) = 889 buckets).
TEST_CASE("a cache with a weigher grows its table past the entry-count ceiling") {
  auto cache = rtcache::make_cache<int, std::string>(
      rtcache::Options{.capacity = 1000, .shards = 1, .seed = 1},
      [](const int& k) { return std::to_string(k); }, [](const int&, const std::string&) {},
      rtcache::CacheHooks<int, std::string>{
          .weigher = [](const int&, const std::string&) { return std::size_t{1}; }});
  for (int k = 0; k < 1000; ++k) REQUIRE(cache.get(k) == std::to_string(k));
  REQUIRE(cache.size() == 1000);
  const auto [buckets, ceiling] = cache.bucket_counts(0);
  CHECK(buckets == 1024);  // grew at 512 entries in 512 buckets
  CHECK(ceiling > 1024);
  for (int k = 0; k < 1000; ++k) REQUIRE(cache.get_if_present(k) == std::to_string(k));
}
