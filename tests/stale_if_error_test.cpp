// Stale-if-error: when the load of an expired key fails, the expired value is
// served for up to the grace period, and the stats say so.

#include <chrono>
#include <memory>
#include <rtcache/rtcache.hpp>
#include <string>

#include "support/catch.hpp"
#include "support/fake_store.hpp"

using namespace std::chrono_literals;
using rtcache::test::FakeStore;
using rtcache::test::StoreError;
using rtcache::test::StoreLoader;

TEST_CASE("an expired value is served while the store fails, within the grace period") {
  auto clock = std::make_shared<rtcache::ManualClock>();
  FakeStore<> store;
  store.set(1, "v1");
  rtcache::ReadThroughCache<int, std::string, StoreLoader<>> cache(
      rtcache::Options{.capacity = 8,
                       .seed = 1,
                       .expire_after_write = 10s,
                       .stale_if_error = 60s,
                       .clock = clock},
      StoreLoader<>{&store});
  REQUIRE(cache.get(1) == std::optional<std::string>("v1"));
  store.fail_reads(true);

  clock->advance(10s);  // expired; the store is down
  CHECK(cache.get(1) == std::optional<std::string>("v1"));
  CHECK(cache.stats().stale_served == 1);
  CHECK(cache.get_if_present(1) == std::nullopt);  // get_if_present never serves stale

  clock->advance(59s);  // 69 s: 59 s past expiry, still within the 60 s grace
  CHECK(cache.get(1) == std::optional<std::string>("v1"));
  CHECK(cache.stats().stale_served == 2);

  clock->advance(1s);  // the grace period is over: the error reaches the caller
  CHECK_THROWS_AS(cache.get(1), StoreError);
  CHECK(cache.size() == 0);

  store.fail_reads(false);
  store.set(1, "v2");
  CHECK(cache.get(1) == std::optional<std::string>("v2"));
}

TEST_CASE("without stale_if_error an expired key's load failure propagates") {
  auto clock = std::make_shared<rtcache::ManualClock>();
  FakeStore<> store;
  store.set(1, "v1");
  rtcache::ReadThroughCache<int, std::string, StoreLoader<>> cache(
      rtcache::Options{.capacity = 8, .seed = 1, .expire_after_write = 10s, .clock = clock},
      StoreLoader<>{&store});
  REQUIRE(cache.get(1));
  store.fail_reads(true);
  clock->advance(10s);
  CHECK_THROWS_AS(cache.get(1), StoreError);
  CHECK(cache.stats().stale_served == 0);
}
