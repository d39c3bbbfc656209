// Store protection: warm() bounds its concurrency and its rate; the
// cache-wide max_concurrent_loads bounds every loader call.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <latch>
#include <memory>
#include <numeric>
#include <rtcache/rtcache.hpp>
#include <thread>
#include <vector>

#include "support/catch.hpp"
#include "support/fake_store.hpp"

using namespace std::chrono_literals;
using rtcache::test::spin_until;

namespace {

/// Counts loader calls in progress and remembers the most seen at once.
struct ConcurrencyProbe {
  std::atomic<int> running{0};
  std::atomic<int> peak{0};
  std::atomic<int> calls{0};

  void enter() {
    calls.fetch_add(1);
    const int now = running.fetch_add(1) + 1;
    int seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
    // Give the other threads a chance to pile up.
    for (int i = 0; i < 50; ++i) std::this_thread::yield();
  }
  void leave() { running.fetch_sub(1); }
};

}  // namespace

TEST_CASE("warm loads every missing key with at most max_concurrency loader calls at once") {
  ConcurrencyProbe probe;
  auto cache = rtcache::make_cache<int, int>(rtcache::Options{.capacity = 256, .seed = 1},
                                             [&](const int& k) {
                                               probe.enter();
                                               probe.leave();
                                               return k;
                                             });
  (void)cache.get(0);  // already cached
  std::vector<int> keys(100);
  std::iota(keys.begin(), keys.end(), 0);
  const rtcache::WarmReport report = cache.warm(keys, rtcache::WarmOptions{.max_concurrency = 3});
  CHECK(report.loaded == 99);
  CHECK(report.already_cached == 1);
  CHECK(report.failed == 0);
  CHECK(probe.calls.load() == 100);
  CHECK(probe.peak.load() <= 3);
  CHECK(cache.size() == 100);
}

TEST_CASE("warm paces its loads on the cache's clock") {
  auto clock = std::make_shared<rtcache::ManualClock>();
  std::atomic<int> loads{0};
  auto cache = rtcache::make_cache<int, int>(
      rtcache::Options{.capacity = 64, .seed = 1, .clock = clock}, [&](const int& k) {
        loads.fetch_add(1);
        return k;
      });
  std::thread warmer([&] {
    const auto report =
        cache.warm(std::vector<int>{1, 2, 3, 4},
                   rtcache::WarmOptions{.max_concurrency = 1, .max_loads_per_second = 2.0});
    CHECK(report.loaded == 4);
  });
  // One load at once, then one every 500 ms of the manual clock.
  clock->wait_for_sleepers(1);
  CHECK(loads.load() == 1);
  clock->advance(500ms);
  spin_until([&] { return loads.load() == 2; });
  clock->wait_for_sleepers(1);
  CHECK(loads.load() == 2);
  clock->advance(1s);  // one step covers both remaining slots
  warmer.join();
  CHECK(loads.load() == 4);
}

TEST_CASE("warm refuses a zero rate and zero concurrency") {
  auto cache = rtcache::make_cache<int, int>(rtcache::Options{.capacity = 8},
                                             [](const int& k) { return k; });
  CHECK_THROWS_WITH(
      cache.warm(std::vector<int>{1}, rtcache::WarmOptions{.max_loads_per_second = 0.0}),
      "rtcache::WarmOptions: max_loads_per_second must be greater than 0 (got 0.000000)");
  CHECK_THROWS_WITH(cache.warm(std::vector<int>{1}, rtcache::WarmOptions{.max_concurrency = 0}),
                    "rtcache::WarmOptions: max_concurrency must be at least 1 (got 0)");
}

TEST_CASE("max_concurrent_loads bounds loader calls across all keys and threads") {
  ConcurrencyProbe probe;
  auto cache = rtcache::make_cache<int, int>(
      rtcache::Options{.capacity = 1024, .seed = 1, .max_concurrent_loads = 2}, [&](const int& k) {
        probe.enter();
        probe.leave();
        return k;
      });
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) (void)cache.get(t * 1000 + i);
    });
  }
  for (auto& t : threads) t.join();
  CHECK(probe.calls.load() == 400);
  CHECK(probe.peak.load() <= 2);
}

TEST_CASE("a loader may use the cache for other keys even when the load bound is 1") {
  std::function<int(const int&)> body;
  auto cache = rtcache::make_cache<int, int>(
      rtcache::Options{.capacity = 8, .seed = 1, .max_concurrent_loads = 1},
      [&](const int& k) { return body(k); });
  body = [&](const int& k) { return k == 0 ? *cache.get(1) + 100 : k; };
  CHECK(cache.get(0) == std::optional<int>(101));
}

TEST_CASE("a loader may read a key whose load waits for the load bound") {
  // The bound is 1 and the loader of 1 holds it. Another thread misses 2
  // and claims it, then waits for the bound; then the loader of 1 asks for
  // 2. It must not wait for that thread, which waits for it: loads started
  // from inside a loader are not counted, and run there.
  std::function<int(const int&)> body;
  auto cache = rtcache::make_cache<int, int>(
      rtcache::Options{.capacity = 8, .seed = 1, .max_concurrent_loads = 1},
      [&](const int& k) { return body(k); });
  std::latch loading_1(1);
  std::atomic<int> loads_of_2{0};
  body = [&](const int& k) {
    if (k == 2) {
      loads_of_2.fetch_add(1);
      return 2;
    }
    loading_1.count_down();
    spin_until([&] { return cache.pending_count() == 2; });  // 2 is claimed
    return *cache.get(2) + 100;
  };
  auto first = std::async(std::launch::async, [&] { return cache.get(1); });
  loading_1.wait();
  auto second = std::async(std::launch::async, [&] { return cache.get(2); });
  CHECK(rtcache::test::finishes(first, "get(1)") == std::optional<int>(102));
  CHECK(rtcache::test::finishes(second, "get(2)") == std::optional<int>(2));
  CHECK(loads_of_2.load() == 1);  // one load of 2, shared
  CHECK(cache.pending_count() == 0);
}
