// With a weigher, capacity bounds the total weight; a value heavier than its
// shard's share is not cached.

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <rtcache/rtcache.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

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

// Weighted caches and the default policy (W-TinyLFU). The capacity is in
// weight, so it says nothing of how many entries a shard will hold: the
// sketch and the history of departed keys are sized by the entries as they
// come, and the window and the protected segment are shares of the weight.

namespace {

using Sketch = rtcache::detail::FrequencySketch;

// Values of `value_size` bytes, weighed in bytes.
auto byte_weighted_cache(std::size_t capacity, std::size_t value_size) {
  return rtcache::make_cache<int, std::string>(
      rtcache::Options{.capacity = capacity, .shards = 1, .seed = 1},
      [value_size](const int&) { return std::string(value_size, 'x'); },
      [](const int&, const std::string&) {},
      rtcache::CacheHooks<int, std::string>{
          .weigher = [](const int&, const std::string& v) { return v.size(); }});
}

}  // namespace

TEST_CASE("a weighted cache sizes its sketch and history by its entries, not its weight") {
  auto cache = byte_weighted_cache(std::size_t{1} << 30, 1000);
  const auto sized_for = [&](std::size_t entries) {
    return cache.check_shards([entries](const auto& p, std::size_t) {
      return p.sized_for() == entries &&
             p.sketch().block_count() == Sketch::block_count_for(entries) &&
             p.history_slots() == std::decay_t<decltype(p)>::history_slots_for(entries);
    });
  };
  CHECK(sized_for(256));  // not 2^30
  for (int k = 0; k < 256; ++k) REQUIRE(cache.get(k));
  CHECK(sized_for(256));
  REQUIRE(cache.get(256));
  CHECK(sized_for(512));  // outgrown: twice as many
  for (int k = 257; k < 5000; ++k) REQUIRE(cache.get(k));
  CHECK(cache.size() == 5000);
  CHECK(sized_for(8192));
  CHECK(cache.check_shards([](const auto& p, std::size_t n) { return p.check_invariants(n); }));
}

// Lock-free readers may still count in a replaced sketch table: it waits
// for the epochs like a replaced bucket array, and is then freed (ASan
// reports it as a leak otherwise, or a use after free if freed too soon).
TEST_CASE("a weighted cache frees its outgrown sketch tables") {
  auto cache = byte_weighted_cache(std::size_t{1} << 30, 10);
  for (int k = 0; k < 4097; ++k) REQUIRE(cache.get(k));  // the last growth: at 4097 entries
  CHECK(cache.check_shards([](const auto& p, std::size_t) { return p.has_retired(); }));
  for (int k = 4097; k < 6000; ++k) REQUIRE(cache.get(k));
  CHECK(cache.check_shards([](const auto& p, std::size_t) { return !p.has_retired(); }));
}

TEST_CASE("a weighted cache measures the policy's window in weight") {
  auto cache = byte_weighted_cache(100'000, 1000);  // 100 values fit
  CHECK(cache.check_shards([](const auto& p, std::size_t) {
    return p.window_capacity() == 1000 && p.protected_capacity() == 79'200;  // 1%, 80% of the rest
  }));
}

// With the window and protected segment counted in entries, 1% of 100,000
// was a window of 1000 entries that 100 values never filled: nothing
// reached the main space and every eviction took the window's oldest entry,
// so a scan of new keys flushed the hot ones.
TEST_CASE("a weighted cache keeps its frequently used values through a scan") {
  auto cache = byte_weighted_cache(100'000, 1000);
  for (int round = 0; round < 4; ++round) {
    for (int k = 0; k < 50; ++k) REQUIRE(cache.get(k));
  }
  for (int k = 1000; k < 3000; ++k) REQUIRE(cache.get(k));  // each used once
  int kept = 0;
  for (int k = 0; k < 50; ++k) kept += cache.get_if_present(k) ? 1 : 0;
  CHECK(kept >= 45);
  CHECK(cache.weight() <= 100'000);
  CHECK(cache.check_shards([](const auto& p, std::size_t n) { return p.check_invariants(n); }));
}

// Readers count hits in the sketch without the lock while a writer's
// inserts replace it (run under ThreadSanitizer and AddressSanitizer in CI).
TEST_CASE("hits race with a weighted shard's sketch growing") {
  auto cache = byte_weighted_cache(std::size_t{1} << 30, 8);
  for (int k = 0; k < 64; ++k) REQUIRE(cache.get(k));
  std::atomic<bool> done{false};
  std::atomic<std::size_t> misses{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      while (!done.load(std::memory_order_relaxed)) {
        for (int k = 0; k < 64; ++k) {
          if (!cache.get_if_present(k)) misses.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  for (int k = 64; k < 20'000; ++k) REQUIRE(cache.get(k));  // grows at 256, 512, ... 16,384
  done = true;
  for (auto& r : readers) r.join();
  CHECK(misses.load() == 0);
  CHECK(cache.check_shards([](const auto& p, std::size_t n) {
    return p.sized_for() == 32'768 && p.check_invariants(n);
  }));
}

// A weight of 0 takes no room: such entries never make others leave.
TEST_CASE("entries of weight 0 take no room") {
  auto cache = rtcache::make_cache<int, std::string>(
      rtcache::Options{.capacity = 10, .shards = 1, .seed = 1},
      [](const int& k) { return std::to_string(k); }, [](const int&, const std::string&) {},
      rtcache::CacheHooks<int, std::string>{
          .weigher = [](const int& k, const std::string&) { return k < 100 ? 0 : 5; }});
  for (int k = 0; k < 100; ++k) REQUIRE(cache.get(k));
  CHECK(cache.size() == 100);
  CHECK(cache.weight() == 0);
  REQUIRE(cache.get(100));
  REQUIRE(cache.get(101));
  CHECK(cache.size() == 102);  // nothing had to leave
  CHECK(cache.weight() == 10);
  REQUIRE(cache.get(102));  // now something must
  CHECK(cache.weight() <= 10);
  CHECK(cache.check_shards([](const auto& p, std::size_t n) { return p.check_invariants(n); }));
}

// A put that replaces a value by one of another weight moves the policy's
// size of the entry's region (window, probation, protected; small or main
// queue) by the difference; the invariant check compares each region's size
// with its entries' weights.
TEMPLATE_TEST_CASE("a replacement of another weight keeps the policy's sizes", "",
                   rtcache::DefaultPolicy, rtcache::policy::WTinyLfu, rtcache::policy::S3Fifo) {
  auto cache = rtcache::make_cache<int, std::string, TestType>(
      rtcache::Options{.capacity = 10'000, .shards = 1, .seed = 1},
      [](const int& k) { return std::string(10, static_cast<char>('a' + k % 26)); },
      [](const int&, const std::string&) {},
      rtcache::CacheHooks<int, std::string>{
          .weigher = [](const int&, const std::string& v) { return v.size(); }});
  for (int k = 0; k < 300; ++k) REQUIRE(cache.get(k));
  for (int k = 0; k < 300; k += 3) REQUIRE(cache.get(k));  // some move on (protected, main)
  for (int k = 0; k < 300; k += 2)
    cache.put(k, std::string(static_cast<std::size_t>(5 + k % 40), 'z'));
  CHECK(cache.check_shards([](const auto& p, std::size_t n) { return p.check_invariants(n); }));
  CHECK(cache.weight() <= 10'000);
}

// A weigher is user code and may throw. A throw must not leave a load
// registered (later gets of the key would wait for it for ever), nor leave a
// written key's old value cached once the store holds the new one.

TEST_CASE("a weigher that throws for a loaded value fails that load only") {
  int loads = 0;
  auto cache = rtcache::make_cache<int, std::string>(
      rtcache::Options{.capacity = 16, .shards = 1, .seed = 1},
      [&](const int&) { return std::string(++loads == 1 ? "boom" : "fine"); },
      [](const int&, const std::string&) {},
      rtcache::CacheHooks<int, std::string>{.weigher = [](const int&, const std::string& v) {
        if (v == "boom") throw std::runtime_error("weigher failed");
        return std::size_t{1};
      }});
  REQUIRE_THROWS_AS(cache.get(1), std::runtime_error);
  CHECK(cache.pending_count() == 0);
  // Loaded again, on this thread and on another one: nothing waits for the
  // failed load.
  CHECK(cache.get(1) == "fine");
  cache.invalidate(1);
  std::optional<std::string> elsewhere;
  std::thread([&] { elsewhere = cache.get(1); }).join();
  CHECK(elsewhere == "fine");
  CHECK(loads == 3);
}

TEST_CASE("a weigher that throws for a written value leaves the store's value to the next get") {
  std::map<int, std::string> store{{1, "old"}};
  auto cache = rtcache::make_cache<int, std::string>(
      rtcache::Options{.capacity = 16, .shards = 1, .seed = 1},
      [&](const int& k) { return store.at(k); },
      [&](const int& k, const std::string& v) { store[k] = v; },
      rtcache::CacheHooks<int, std::string>{.weigher = [](const int&, const std::string& v) {
        if (v == "boom") throw std::runtime_error("weigher failed");
        return std::size_t{1};
      }});
  REQUIRE(cache.get(1) == "old");
  REQUIRE_THROWS_AS(cache.put(1, "boom"), std::runtime_error);
  CHECK(store.at(1) == "boom");  // the writer ran: the store has the new value
  CHECK_FALSE(cache.get_if_present(1).has_value());
  // The next get loads the new value; its weigher throws again, and the value
  // is still never older than the store's.
  CHECK_THROWS_AS(cache.get(1), std::runtime_error);
  store[1] = "new";
  CHECK(cache.get(1) == "new");
  CHECK(cache.pending_count() == 0);
}

// Contract point 5 with a weigher: a put that makes a cached value heavier
// must not evict the value it has just written.
TEMPLATE_TEST_CASE("a put of a heavier value keeps the value it wrote", "", rtcache::DefaultPolicy,
                   rtcache::policy::WTinyLfu, rtcache::policy::S3Fifo, rtcache::policy::Lru,
                   rtcache::policy::Fifo, rtcache::policy::Clock, rtcache::policy::Sieve) {
  std::map<int, std::string> store{{1, "a"}, {2, "b"}};
  auto cache = rtcache::make_cache<int, std::string, TestType>(
      rtcache::Options{.capacity = 2, .shards = 1, .seed = 1},
      [&](const int& k) { return store.at(k); },
      [&](const int& k, const std::string& v) { store[k] = v; },
      rtcache::CacheHooks<int, std::string>{
          .weigher = [](const int&, const std::string& v) { return v.size(); }});
  SECTION("room made by evicting another key") {
    REQUIRE(cache.get(1) == "a");
    REQUIRE(cache.get(2) == "b");
    cache.put(1, "xx");  // weight 2, the whole capacity
    CHECK(cache.get_if_present(1) == "xx");
    CHECK_FALSE(cache.get_if_present(2).has_value());
  }
  SECTION("room made by the old value alone") {
    REQUIRE(cache.get(1) == "a");
    cache.put(1, "xx");
    CHECK(cache.get_if_present(1) == "xx");
  }
  CHECK(cache.weight() <= 2);
  CHECK(cache.check_shards([](const auto& p, std::size_t n) { return p.check_invariants(n); }));
}
