// Negative caching: "not found" is cached for its own TTL, so a flood of
// lookups for a missing key reaches the store once.

#include <chrono>
#include <memory>
#include <rtcache/rtcache.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/catch.hpp"
#include "support/fake_store.hpp"

using namespace std::chrono_literals;
using rtcache::test::FakeStore;
using rtcache::test::StoreLoader;
using rtcache::test::StoreWriter;

namespace {
using Cache = rtcache::ReadThroughCache<int, std::string, StoreLoader<>, StoreWriter<>>;
}

TEST_CASE("without negative_ttl, every lookup of a missing key reaches the store") {
  FakeStore<> store;
  Cache cache(rtcache::Options{.capacity = 8, .seed = 1}, StoreLoader<>{&store},
              StoreWriter<>{&store});
  for (int i = 0; i < 5; ++i) CHECK(cache.get(404) == std::nullopt);
  CHECK(store.reads() == 5);
}

TEST_CASE("with negative_ttl, not found is cached until it expires") {
  auto clock = std::make_shared<rtcache::ManualClock>();
  FakeStore<> store;
  Cache cache(rtcache::Options{.capacity = 8, .seed = 1, .negative_ttl = 30s, .clock = clock},
              StoreLoader<>{&store}, StoreWriter<>{&store});
  std::vector<std::thread> flood;
  for (int t = 0; t < 8; ++t) {
    flood.emplace_back([&] {
      for (int i = 0; i < 100; ++i) CHECK(cache.get(404) == std::nullopt);
    });
  }
  for (auto& t : flood) t.join();
  CHECK(store.reads() == 1);
  CHECK(cache.get_if_present(404) == std::nullopt);
  CHECK(cache.size() == 1);  // the negative entry counts against capacity

  store.set(404, "created elsewhere");
  clock->advance(29s);
  CHECK(cache.get(404) == std::nullopt);  // still cached as missing
  clock->advance(1s);
  CHECK(cache.get(404) == std::optional<std::string>("created elsewhere"));
  CHECK(store.reads() == 2);
}

TEST_CASE("a put replaces a cached not found at once") {
  auto clock = std::make_shared<rtcache::ManualClock>();
  FakeStore<> store;
  Cache cache(rtcache::Options{.capacity = 8, .seed = 1, .negative_ttl = 30s, .clock = clock},
              StoreLoader<>{&store}, StoreWriter<>{&store});
  CHECK(cache.get(7) == std::nullopt);
  cache.put(7, "seven");
  CHECK(cache.get(7) == std::optional<std::string>("seven"));
  CHECK(store.reads() == 1);
}
