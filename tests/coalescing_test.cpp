// Contract point 1: for one key, one loader call at a time, shared by every
// concurrent get; after it finishes, the next get re-checks the cache.

#include <atomic>
#include <functional>
#include <rtcache/rtcache.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/catch.hpp"
#include "support/fake_store.hpp"

using rtcache::test::FakeStore;
using rtcache::test::spin_until;
using rtcache::test::StoreLoader;

namespace {

constexpr int kThreads = 64;

using Cache = rtcache::ReadThroughCache<int, std::string, StoreLoader<>>;

/// Key 7 in the store, and a cache whose loader holds on until the 63 other
/// threads are waiting for it (then returns, or throws "database is down").
struct HeldLoad {
  explicit HeldLoad(bool fail = false) {
    store.set(7, "seven");
    before_read = [this, fail](const int&) {
      spin_until([&] { return cache.stats().coalesced_waits == kThreads - 1; });
      if (fail) throw std::runtime_error("database is down");
    };
  }
  FakeStore<> store;
  std::function<void(const int&)> before_read;
  Cache cache{rtcache::Options{.capacity = 128, .seed = 1}, StoreLoader<>{&store, &before_read}};
};

}  // namespace

TEST_CASE("64 threads missing one key run the loader once and all get its value") {
  HeldLoad held;
  FakeStore<>& store = held.store;
  Cache& cache = held.cache;

  std::vector<std::optional<std::string>> results(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] { results[static_cast<std::size_t>(i)] = cache.get(7); });
  }
  for (auto& t : threads) t.join();

  CHECK(store.reads() == 1);
  for (const auto& r : results) CHECK(r == std::optional<std::string>("seven"));
  const auto stats = cache.stats();
  CHECK(stats.loads == 1);
  CHECK(stats.misses == kThreads);
  CHECK(stats.coalesced_waits == kThreads - 1);
  CHECK(cache.pending_count() == 0);

  // The next get is a hit: the load's result was cached.
  CHECK(cache.get(7) == std::optional<std::string>("seven"));
  CHECK(store.reads() == 1);
}

TEST_CASE("get, get_versioned and get_with missing one key together share one load") {
  HeldLoad held;
  FakeStore<>& store = held.store;
  Cache& cache = held.cache;

  // A third of the threads each: get, get_versioned, get_with (whose
  // function gets the loaded value, on a miss as on a hit).
  std::vector<std::string> seen(kThreads);
  std::vector<int> calls(kThreads, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      const auto slot = static_cast<std::size_t>(i);
      switch (i % 3) {
        case 0:
          seen[slot] = cache.get(7).value_or("<none>");
          break;
        case 1: {
          const auto versioned = cache.get_versioned(7);
          seen[slot] = versioned ? versioned->value : "<none>";
          break;
        }
        default:
          if (!cache.get_with(7, [&](const std::string& v) {
                seen[slot] = v;
                ++calls[slot];
              })) {
            seen[slot] = "<none>";
          }
          break;
      }
    });
  }
  for (auto& t : threads) t.join();

  CHECK(store.reads() == 1);
  CHECK(cache.stats().loads == 1);
  CHECK(cache.stats().coalesced_waits == kThreads - 1);
  for (int i = 0; i < kThreads; ++i) {
    CHECK(seen[static_cast<std::size_t>(i)] == "seven");
    if (i % 3 == 2) CHECK(calls[static_cast<std::size_t>(i)] == 1);
  }
  CHECK(cache.pending_count() == 0);
}

TEST_CASE(
    "64 threads missing one key all receive the loader's exception, and the next get loads again") {
  HeldLoad held(/*fail=*/true);
  Cache& cache = held.cache;

  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      try {
        (void)cache.get(7);
      } catch (const std::runtime_error& e) {
        if (std::string(e.what()) == "database is down") failures.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();

  CHECK(failures.load() == kThreads);
  CHECK(cache.stats().loads == 1);
  CHECK(cache.stats().load_failures == 1);
  CHECK(cache.size() == 0);
  CHECK(cache.pending_count() == 0);

  held.before_read = nullptr;
  CHECK(cache.get(7) == std::optional<std::string>("seven"));
  CHECK(cache.stats().loads == 2);
}

TEST_CASE("loads of different keys do not wait for each other") {
  FakeStore<> store;
  store.set(1, "one");
  store.set(2, "two");
  std::function<void(const int&)> before_read;
  // One shard, so both keys share a lock.
  Cache cache(rtcache::Options{.capacity = 16, .shards = 1, .seed = 1},
              StoreLoader<>{&store, &before_read});
  std::atomic<bool> key2_done{false};
  before_read = [&](const int& key) {
    if (key == 1) spin_until([&] { return key2_done.load(); });
  };
  std::thread slow([&] { CHECK(cache.get(1) == std::optional<std::string>("one")); });
  spin_until([&] { return cache.stats().loads == 1; });
  CHECK(cache.get(2) == std::optional<std::string>("two"));
  key2_done = true;
  slow.join();
  CHECK(cache.stats().loads == 2);
}

TEST_CASE("after a load finishes, the next get re-checks the cache instead of loading") {
  FakeStore<> store;
  store.set(3, "three");
  Cache cache(rtcache::Options{.capacity = 16, .seed = 1}, StoreLoader<>{&store});
  for (int i = 0; i < 10; ++i) CHECK(cache.get(3) == std::optional<std::string>("three"));
  CHECK(store.reads() == 1);
  CHECK(cache.stats().hits == 9);
  CHECK(cache.stats().misses == 1);
}
