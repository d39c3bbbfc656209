// Contract point 5: put calls the writer exactly once, before touching the
// cache; a failing writer leaves the cache as it was; a successful put makes
// the next get a hit that returns the new value.

#include <array>
#include <atomic>
#include <functional>
#include <latch>
#include <rtcache/rtcache.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/catch.hpp"
#include "support/fake_store.hpp"

using rtcache::test::FakeStore;
using rtcache::test::StoreError;
using rtcache::test::StoreLoader;
using rtcache::test::StoreWriter;

namespace {
using Cache = rtcache::ReadThroughCache<int, std::string, StoreLoader<>, StoreWriter<>>;

/// Runs `body(t)` on `threads` threads that start together; returns when
/// all have finished.
template <class Body>
void run_together(int threads, Body body) {
  std::latch start(threads);
  std::vector<std::thread> running;
  for (int t = 0; t < threads; ++t) {
    running.emplace_back([&, t] {
      start.arrive_and_wait();
      body(t);
    });
  }
  for (auto& r : running) r.join();
}
}  // namespace

TEST_CASE("put writes to the store once, then the next get is a hit with the new value") {
  FakeStore<> store;
  Cache cache(rtcache::Options{.capacity = 8, .seed = 1}, StoreLoader<>{&store},
              StoreWriter<>{&store});
  cache.put(1, "one");
  CHECK(store.writes() == 1);
  CHECK(store.peek(1)->value == "one");
  CHECK(cache.get(1) == std::optional<std::string>("one"));
  CHECK(store.reads() == 0);
  CHECK(cache.stats().hits == 1);
  CHECK(cache.stats().writes == 1);

  cache.put(1, "uno");
  CHECK(store.writes() == 2);
  CHECK(cache.get_versioned(1) == std::optional<rtcache::Versioned<std::string>>({"uno", 2}));
  CHECK(store.reads() == 0);
}

TEST_CASE("a writer that throws leaves the cache unchanged and the exception propagates") {
  FakeStore<> store;
  store.set(1, "old");
  Cache cache(rtcache::Options{.capacity = 8, .seed = 1}, StoreLoader<>{&store},
              StoreWriter<>{&store});
  CHECK(cache.get(1) == std::optional<std::string>("old"));

  store.fail_writes(true);
  CHECK_THROWS_AS(cache.put(1, "new"), StoreError);
  CHECK_THROWS_AS(cache.put(2, "two"), StoreError);
  CHECK(cache.get_if_present(1) == std::optional<std::string>("old"));
  CHECK(cache.get_if_present(2) == std::nullopt);
  CHECK(store.peek(1)->value == "old");
  CHECK(cache.stats().write_failures == 2);
  CHECK(cache.stats().writes == 0);
  CHECK(cache.pending_count() == 0);
}

TEST_CASE("the cache holds what the writer says the store stored") {
  struct TrimmingWriter {  // as a trigger or a RETURNING clause would
    rtcache::Versioned<std::string> operator()(const int&, const std::string& value) const {
      return {value.substr(0, 3), 41};
    }
  };
  auto cache = rtcache::make_cache<int, std::string>(
      rtcache::Options{.capacity = 8, .seed = 1},
      [](const int&) { return std::optional<std::string>(); }, TrimmingWriter{});
  cache.put(1, "abcdef");
  CHECK(cache.get_versioned(1) == std::optional<rtcache::Versioned<std::string>>({"abc", 41}));
}

TEST_CASE("a plain lambda writer works, and put replaces a cached value") {
  FakeStore<> store;
  auto cache = rtcache::make_cache<int, std::string>(
      rtcache::Options{.capacity = 8, .seed = 1}, StoreLoader<>{&store},
      [&](const int& key, const std::string& value) { store.write(key, value); });
  store.set(1, "loaded");
  CHECK(cache.get(1) == std::optional<std::string>("loaded"));
  cache.put(1, "written");
  CHECK(cache.get(1) == std::optional<std::string>("written"));
  CHECK(store.reads() == 1);
}

TEST_CASE("concurrent writes of one key leave the value of the writer call that completed last") {
  FakeStore<> store;
  Cache cache(rtcache::Options{.capacity = 8, .seed = 1}, StoreLoader<>{&store},
              StoreWriter<>{&store});
  constexpr int kThreads = 8;
  constexpr int kWrites = 200;
  run_together(kThreads, [&](int t) {
    for (int i = 0; i < kWrites; ++i) {
      cache.put(1, std::to_string(t) + ":" + std::to_string(i));
      if (i % 7 == 0) cache.invalidate(1);
      if (i % 5 == 0) (void)cache.get(1);
    }
  });
  // The store's row is the last completed write; the cache agrees with it.
  const auto row = store.peek(1);
  REQUIRE(row);
  CHECK(row->version == kThreads * kWrites);
  CHECK(cache.get_versioned(1) == row);
}

TEST_CASE(
    "concurrent writes of many keys, some from inside writers, leave cache and store agreeing") {
  // 64 keys in one shard share its 32 write slots: writes of one key queue on
  // its slot, writes of keys that share a slot take the registry path, and a
  // writer that writes another key through the cache holds its own slot
  // meanwhile. Ints are rewritten in place.
  // The writer also checks that no two writer calls of one key overlap.
  constexpr int kKeys = 64;
  FakeStore<int, int> store;
  std::array<std::atomic<int>, kKeys> in_flight{};
  std::atomic<int> overlaps{0};
  struct NestingWriter {
    FakeStore<int, int>* store;
    std::function<void(const int&, const int&)>* nested;
    std::array<std::atomic<int>, kKeys>* in_flight;
    std::atomic<int>* overlaps;
    rtcache::Versioned<int> write(const int& key, const int& value) {
      auto& mine = (*in_flight)[static_cast<std::size_t>(key)];
      if (mine.fetch_add(1) != 0) overlaps->fetch_add(1);
      for (int spin = 0; spin < 64; ++spin) std::atomic_signal_fence(std::memory_order_seq_cst);
      (*nested)(key, value);
      const auto stored = store->write(key, value);
      mine.fetch_sub(1);
      return stored;
    }
  };
  std::function<void(const int&, const int&)> nested;
  rtcache::ReadThroughCache<int, int, StoreLoader<int, int>, NestingWriter> cache(
      rtcache::Options{.capacity = 64, .shards = 1, .seed = 1}, StoreLoader<int, int>{&store},
      NestingWriter{&store, &nested, &in_flight, &overlaps});
  nested = [&](const int& key, const int& value) {
    thread_local bool inside = false;
    if (inside || value % 8 != 0) return;
    inside = true;
    cache.put((key + 1) % kKeys, value + 1);
    inside = false;
  };
  constexpr int kThreads = 4;
  constexpr int kWrites = 2000;
  run_together(kThreads, [&](int t) {
    for (int i = 0; i < kWrites; ++i) {
      const int key = (i * 7 + t) % kKeys;
      cache.put(key, (t * kWrites + i) * 2);
      if (i % 13 == 0) (void)cache.get((key + 5) % kKeys);
    }
  });
  CHECK(overlaps.load() == 0);
  CHECK(cache.pending_count() == 0);
  int cached = 0;
  for (int k = 0; k < kKeys; ++k) {
    const auto row = store.peek(k);
    REQUIRE(row);
    if (const auto hit = cache.get_versioned(k)) {
      CHECK(*hit == *row);
      ++cached;
    }
  }
  CHECK(cached == kKeys);
}

TEMPLATE_TEST_CASE("a put of a new key into a full cache is a hit next, whatever the policy", "",
                   rtcache::policy::WTinyLfu, rtcache::policy::WTinyLfuClock,
                   rtcache::policy::S3Fifo, rtcache::policy::Sieve, rtcache::policy::Lru) {
  // Admission policies may refuse a newcomer that a load brings in; a written
  // value must still be cached (contract point 5).
  auto cache = rtcache::make_cache<int, int, TestType>(
      rtcache::Options{.capacity = 8, .shards = 1, .seed = 1}, [](const int& k) { return k; },
      [](const int&, const int&) {});
  for (int round = 0; round < 20; ++round) {
    for (int k = 0; k < 8; ++k) (void)cache.get(k);  // hot, frequent keys fill the cache
  }
  for (int k = 100; k < 140; ++k) {
    cache.put(k, -k);
    CHECK(cache.get_if_present(k) == std::optional<int>(-k));
    CHECK(cache.size() <= 8);
  }
}
