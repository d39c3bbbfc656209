// Issue 7, found while modelling refresh-ahead for the fuzzer: warm() must not
// use up an entry's refresh. warm() probes each key with the lock-free hit
// path; on an entry that is due for refresh, that probe claims the entry's
// one refresh (its refresh_started flag) and then drops it, so no later hit
// refreshes the entry: refresh-ahead is off for it until it expires and a
// get has to load it synchronously.

#include <chrono>
#include <memory>
#include <rtcache/rtcache.hpp>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/fake_store.hpp"
#include "support/manual_executor.hpp"

using namespace std::chrono_literals;
using rtcache::test::FakeStore;
using rtcache::test::ManualExecutor;
using rtcache::test::StoreLoader;

TEST_CASE("warm() over an entry due for refresh does not stop the next hit from refreshing it") {
  auto clock = std::make_shared<rtcache::ManualClock>();
  ManualExecutor executor;
  FakeStore<> store;
  store.set(1, "v1");
  rtcache::ReadThroughCache<int, std::string, StoreLoader<>> cache(
      rtcache::Options{.capacity = 8,
                       .seed = 1,
                       .expire_after_write = 60s,
                       .refresh_after = 10s,
                       .clock = clock,
                       .executor = executor.executor()},
      StoreLoader<>{&store});
  REQUIRE(cache.get(1) == std::optional<std::string>("v1"));
  clock->advance(11s);  // due for refresh, not expired
  store.set(1, "v2");

  const auto report = cache.warm(std::vector<int>{1});
  CHECK(report.already_cached == 1);

  // A get now is a hit that starts the refresh.
  CHECK(cache.get(1) == std::optional<std::string>("v1"));
  CHECK(cache.stats().refreshes == 1);
  executor.run_all();
  CHECK(cache.get(1) == std::optional<std::string>("v2"));
}
