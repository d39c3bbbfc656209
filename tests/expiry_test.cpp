// Expire-after-write TTLs, per cache and per entry, on a manual clock.

#include <chrono>
#include <memory>
#include <rtcache/rtcache.hpp>
#include <string>

#include "support/catch.hpp"
#include "support/fake_store.hpp"

using namespace std::chrono_literals;
using rtcache::test::FakeStore;
using rtcache::test::StoreLoader;
using rtcache::test::StoreWriter;

namespace {
using Cache = rtcache::ReadThroughCache<int, std::string, StoreLoader<>, StoreWriter<>>;
}

TEST_CASE("an entry is served until its TTL runs out, then loaded again") {
  auto clock = std::make_shared<rtcache::ManualClock>();
  FakeStore<> store;
  store.set(1, "one");
  Cache cache(rtcache::Options{.capacity = 8, .seed = 1, .expire_after_write = 10s, .clock = clock},
              StoreLoader<>{&store}, StoreWriter<>{&store});
  CHECK(cache.get(1) == std::optional<std::string>("one"));
  clock->advance(9s);
  CHECK(cache.get(1) == std::optional<std::string>("one"));
  CHECK(cache.get_if_present(1) == std::optional<std::string>("one"));
  CHECK(store.reads() == 1);

  store.set(1, "uno");
  clock->advance(1s);  // exactly 10 s after the load: expired
  CHECK(cache.get_if_present(1) == std::nullopt);
  CHECK(cache.get(1) == std::optional<std::string>("uno"));
  CHECK(store.reads() == 2);
  CHECK(cache.stats().expirations == 1);  // reclaimed when the miss found it
}

TEST_CASE("a put restarts the TTL") {
  auto clock = std::make_shared<rtcache::ManualClock>();
  FakeStore<> store;
  Cache cache(rtcache::Options{.capacity = 8, .seed = 1, .expire_after_write = 10s, .clock = clock},
              StoreLoader<>{&store}, StoreWriter<>{&store});
  cache.put(1, "a");
  clock->advance(8s);
  cache.put(1, "b");
  clock->advance(8s);
  CHECK(cache.get_if_present(1) == std::optional<std::string>("b"));
  clock->advance(2s);
  CHECK(cache.get_if_present(1) == std::nullopt);
}

TEST_CASE("a loader can give an entry its own TTL") {
  auto clock = std::make_shared<rtcache::ManualClock>();
  int loads = 0;
  auto cache = rtcache::make_cache<int, std::string>(
      rtcache::Options{.capacity = 8, .seed = 1, .expire_after_write = 60s, .clock = clock},
      [&](const int& key) -> std::optional<rtcache::Loaded<std::string>> {
        ++loads;
        if (key == 1) return rtcache::Loaded<std::string>{"short", 3, 5s};
        return rtcache::Loaded<std::string>{"default", 4, {}};
      });
  CHECK(cache.get_versioned(1) == std::optional<rtcache::Versioned<std::string>>({"short", 3}));
  CHECK(cache.get(2) == std::optional<std::string>("default"));
  clock->advance(5s);
  CHECK(cache.get_if_present(1) == std::nullopt);                           // its own 5 s
  CHECK(cache.get_if_present(2) == std::optional<std::string>("default"));  // the cache's 60 s
  clock->advance(55s);
  CHECK(cache.get_if_present(2) == std::nullopt);
  CHECK(loads == 2);
}

TEST_CASE("an expired entry evicted to make room is reported as expired") {
  auto clock = std::make_shared<rtcache::ManualClock>();
  std::vector<rtcache::RemovalCause> causes;
  // LRU, so that the victim is the expired entry 1 (W-TinyLFU might refuse 3).
  auto cache = rtcache::make_cache<int, int, rtcache::policy::Lru>(
      rtcache::Options{
          .capacity = 2, .shards = 1, .seed = 1, .expire_after_write = 1s, .clock = clock},
      [](const int& k) { return k; }, rtcache::NoWriter{},
      rtcache::CacheHooks<int, int>{
          .on_removal = [&](const int&, const int&, rtcache::RemovalCause cause) {
            causes.push_back(cause);
          }});
  (void)cache.get(1);
  (void)cache.get(2);
  clock->advance(2s);
  (void)cache.get(3);  // evicts an expired entry
  REQUIRE(causes.size() == 1);
  CHECK(causes[0] == rtcache::RemovalCause::kExpired);
  CHECK(cache.stats().evictions == 0);
  CHECK(cache.stats().expirations == 1);
}
