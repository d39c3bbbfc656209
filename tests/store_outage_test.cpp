// Issue 7, store outage: the loader fails for every call for a while. Every
// get of a key the cache cannot answer fails promptly with the store's error
// (no hang, no retry storm inside the cache), nothing wrong is cached, every
// thread waiting on a failing load is released with its error, and the cache
// serves again as soon as the store is back. With stale-if-error, expired
// entries keep answering within the grace period, to every waiter.
//
// "Promptly" is not timed: a get that hung would hang the test. Waits are on
// observable progress (the coalesced-wait counter), never on time.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <rtcache/rtcache.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/catch.hpp"
#include "support/fake_store.hpp"

using namespace std::chrono_literals;
using rtcache::test::FakeStore;
using rtcache::test::spin_until;
using rtcache::test::StoreError;
using rtcache::test::StoreLoader;
using rtcache::test::StoreWriter;

namespace {

using Cache = rtcache::ReadThroughCache<int, std::string, StoreLoader<>, StoreWriter<>>;

std::string value_of(int key) { return "v" + std::to_string(key); }

}  // namespace

TEST_CASE(
    "during an outage, gets of uncached keys fail with the store's error; cached keys still "
    "answer") {
  constexpr int kKeys = 32;
  constexpr int kCached = 16;
  constexpr int kThreads = 8;
  constexpr int kGetsPerThread = 300;
  FakeStore<> store;
  for (int k = 0; k < kKeys; ++k) store.set(k, value_of(k));
  Cache cache(rtcache::Options{.capacity = 64, .shards = 4, .seed = 1}, StoreLoader<>{&store},
              StoreWriter<>{&store});
  for (int k = 0; k < kCached; ++k) REQUIRE(cache.get(k) == value_of(k));
  const int reads_before = store.reads();

  store.fail_reads(true);
  std::atomic<int> errors{0};
  std::atomic<int> answers{0};
  std::atomic<int> wrong{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kGetsPerThread; ++i) {
          const int k = (i * 13 + t * 5) % kKeys;
          try {
            const auto v = cache.get(k);
            answers.fetch_add(1);
            if (k >= kCached || v != value_of(k)) wrong.fetch_add(1);
          } catch (const StoreError&) {
            errors.fetch_add(1);
            if (k < kCached) wrong.fetch_add(1);  // a cached key needs no store
          } catch (...) {
            wrong.fetch_add(1);
          }
        }
      });
    }
  }
  CHECK(wrong.load() == 0);
  CHECK(errors.load() + answers.load() == kThreads * kGetsPerThread);
  CHECK(errors.load() > 0);
  // Each failed get made at most one store call (coalesced gets share one).
  CHECK(store.reads() - reads_before <= errors.load());
  CHECK(static_cast<int>(cache.stats().load_failures) == store.reads() - reads_before);
  // Nothing wrong was cached, nothing is left pending.
  CHECK(cache.size() == kCached);
  for (int k = kCached; k < kKeys; ++k) CHECK(cache.get_if_present(k) == std::nullopt);
  CHECK(cache.pending_count() == 0);

  // The store comes back, with a change made while the cache could not read.
  store.fail_reads(false);
  store.set(kKeys - 1, "changed during the outage");
  for (int k = 0; k < kKeys - 1; ++k) CHECK(cache.get(k) == value_of(k));
  CHECK(cache.get(kKeys - 1) == std::optional<std::string>("changed during the outage"));
}

TEST_CASE("sixteen threads waiting on one failing load are all released with its error") {
  constexpr int kThreads = 16;
  FakeStore<> store;
  store.set(7, "seven");
  std::function<void(const int&)> before_read;
  rtcache::ReadThroughCache<int, std::string, StoreLoader<>> cache(
      rtcache::Options{.capacity = 8, .seed = 1}, StoreLoader<>{&store, &before_read});
  // The one loader call waits until the fifteen others have joined it, then
  // the store fails it.
  before_read = [&](const int&) {
    spin_until([&] { return cache.stats().coalesced_waits == kThreads - 1; });
  };
  store.fail_reads(true);
  std::atomic<int> errors{0};
  std::atomic<int> other{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        try {
          (void)cache.get(7);
          other.fetch_add(1);
        } catch (const StoreError&) {
          errors.fetch_add(1);
        } catch (...) {
          other.fetch_add(1);
        }
      });
    }
  }
  CHECK(errors.load() == kThreads);
  CHECK(other.load() == 0);
  CHECK(store.reads() == 1);
  CHECK(cache.stats().loads == 1);
  CHECK(cache.stats().load_failures == 1);
  CHECK(cache.pending_count() == 0);
  CHECK(cache.size() == 0);

  before_read = nullptr;
  store.fail_reads(false);
  CHECK(cache.get(7) == std::optional<std::string>("seven"));
}

TEST_CASE("a full outage (reads and writes): puts and erases fail, the cache keeps what it had") {
  FakeStore<> store;
  store.set(1, "one");
  Cache cache(rtcache::Options{.capacity = 8, .seed = 1}, StoreLoader<>{&store},
              StoreWriter<>{&store});
  REQUIRE(cache.get(1) == std::optional<std::string>("one"));
  store.fail_reads(true);
  store.fail_writes(true);
  CHECK_THROWS_AS(cache.put(1, "uno"), StoreError);
  CHECK_THROWS_AS(cache.erase(1), StoreError);
  CHECK_THROWS_AS(cache.put(2, "two"), StoreError);
  CHECK_THROWS_AS(cache.get(2), StoreError);
  CHECK(cache.get(1) == std::optional<std::string>("one"));  // still the store's value
  CHECK(cache.get_if_present(2) == std::nullopt);
  CHECK(store.peek(1)->value == "one");
  CHECK(cache.pending_count() == 0);
  store.fail_reads(false);
  store.fail_writes(false);
  cache.put(2, "two");
  CHECK(cache.get(2) == std::optional<std::string>("two"));
}

TEST_CASE(
    "with stale-if-error, an outage is answered from expired entries within the grace period") {
  constexpr int kKeys = 8;
  constexpr int kThreads = 16;
  auto clock = std::make_shared<rtcache::ManualClock>();
  FakeStore<> store;
  for (int k = 0; k < kKeys; ++k) store.set(k, value_of(k));
  std::function<void(const int&)> before_read;
  rtcache::ReadThroughCache<int, std::string, StoreLoader<>> cache(
      rtcache::Options{.capacity = 16,
                       .seed = 1,
                       .expire_after_write = 10s,
                       .stale_if_error = 60s,
                       .clock = clock},
      StoreLoader<>{&store, &before_read});
  for (int k = 0; k < kKeys; ++k) REQUIRE(cache.get(k) == value_of(k));

  store.fail_reads(true);
  clock->advance(30s);  // expired 20 s ago; within the 60 s grace

  // Every key, from every thread: the stale value, never the error.
  std::atomic<int> wrong{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 40; ++i) {
          const int k = (i + t) % kKeys;
          try {
            if (cache.get(k) != value_of(k)) wrong.fetch_add(1);
          } catch (...) {
            wrong.fetch_add(1);
          }
        }
      });
    }
  }
  CHECK(wrong.load() == 0);
  CHECK(cache.stats().stale_served > 0);

  // Waiters of one failing load all receive the stale value.
  const auto coalesced_before = cache.stats().coalesced_waits;
  before_read = [&](const int&) {
    spin_until([&] { return cache.stats().coalesced_waits == coalesced_before + kThreads - 1; });
  };
  const auto loads_before = cache.stats().loads;
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        try {
          if (cache.get(3) != value_of(3)) wrong.fetch_add(1);
        } catch (...) {
          wrong.fetch_add(1);
        }
      });
    }
  }
  CHECK(wrong.load() == 0);
  CHECK(cache.stats().loads == loads_before + 1);
  before_read = nullptr;

  // Past the grace period, the error reaches the caller and the entry goes.
  clock->advance(41s);  // 71 s: 61 s past expiry
  for (int k = 0; k < kKeys; ++k) CHECK_THROWS_AS(cache.get(k), StoreError);
  CHECK(cache.size() == 0);
  CHECK(cache.pending_count() == 0);

  // The store returns, with a value changed during the outage.
  store.fail_reads(false);
  store.set(0, "changed during the outage");
  CHECK(cache.get(0) == std::optional<std::string>("changed during the outage"));
  for (int k = 1; k < kKeys; ++k) CHECK(cache.get(k) == value_of(k));
}
