// get_with(key, f): a read-through get that hands the value to `f` instead of
// copying it out. On a hit `f` sees the cached value itself, which stays
// alive while `f` runs even if a write replaces it; on a miss it sees the
// loaded value; "not found" calls nothing. Its loads are coalesced and its
// errors propagate as get's do.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <latch>
#include <memory>
#include <optional>
#include <rtcache/rtcache.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/catch.hpp"
#include "support/fake_store.hpp"

using rtcache::test::FakeStore;
using rtcache::test::StoreLoader;
using rtcache::test::StoreWriter;

namespace {

using Cache = rtcache::ReadThroughCache<int, std::string, StoreLoader<>, StoreWriter<>>;

/// A value that counts its copies.
struct Counted {
  explicit Counted(int v) : value(v) {}
  Counted(const Counted& other) : value(other.value) { copies.fetch_add(1); }
  Counted& operator=(const Counted& other) {
    value = other.value;
    copies.fetch_add(1);
    return *this;
  }
  Counted(Counted&&) noexcept = default;
  Counted& operator=(Counted&&) noexcept = default;
  int value;
  static inline std::atomic<int> copies{0};
};

}  // namespace

TEST_CASE("get_with loads on a miss, then serves hits, and says when the store has no key") {
  FakeStore<> store;
  store.set(1, "one");
  Cache cache(rtcache::Options{.capacity = 16}, StoreLoader<>{&store}, StoreWriter<>{&store});

  std::string seen;
  CHECK(cache.get_with(1, [&](const std::string& v) { seen = v; }));
  CHECK(seen == "one");
  CHECK(store.reads() == 1);
  seen.clear();
  CHECK(cache.get_with(1, [&](const std::string& v) { seen = v; }));
  CHECK(seen == "one");
  CHECK(store.reads() == 1);  // a hit
  CHECK(cache.stats().hits == 1);
  CHECK(cache.stats().misses == 1);

  int calls = 0;
  CHECK_FALSE(cache.get_with(2, [&](const std::string&) { ++calls; }));
  CHECK(calls == 0);
  CHECK(store.reads() == 2);

  // With negative caching, a cached "not found" is a hit that calls nothing.
  Cache negative(rtcache::Options{.capacity = 16, .negative_ttl = std::chrono::hours(1)},
                 StoreLoader<>{&store}, StoreWriter<>{&store});
  CHECK_FALSE(negative.get_with(2, [&](const std::string&) { ++calls; }));
  CHECK_FALSE(negative.get_with(2, [&](const std::string&) { ++calls; }));
  CHECK(calls == 0);
  CHECK(store.reads() == 3);
  CHECK(negative.stats().hits == 1);

  cache.put(1, "uno");  // write-through: the next get_with sees the new value
  CHECK(cache.get_with(1, [&](const std::string& v) { seen = v; }));
  CHECK(seen == "uno");
}

TEST_CASE("get_with gives f the cached value, not a copy") {
  auto cache = rtcache::make_cache<int, Counted>(rtcache::Options{.capacity = 16},
                                                 [](const int& key) { return Counted(key * 10); });
  REQUIRE(cache.get(3)->value == 30);
  const int before = Counted::copies.load();
  const Counted* first = nullptr;
  int sum = 0;
  for (int i = 0; i < 5; ++i) {
    REQUIRE(cache.get_with(3, [&](const Counted& c) {
      if (first == nullptr) first = &c;
      CHECK(&c == first);  // the same object every time: the entry's
      sum += c.value;
    }));
  }
  CHECK(Counted::copies.load() == before);
  CHECK(sum == 150);
  // get copies (once into the returned optional).
  REQUIRE(cache.get(3)->value == 30);
  CHECK(Counted::copies.load() > before);
}

TEST_CASE("get_with passes on the loader's and f's exceptions, and the cache stays usable") {
  FakeStore<> store;
  store.set(1, "one");
  Cache cache(rtcache::Options{.capacity = 16}, StoreLoader<>{&store}, StoreWriter<>{&store});

  store.fail_reads(true);
  CHECK_THROWS_AS(cache.get_with(1, [](const std::string&) {}), rtcache::test::StoreError);
  store.fail_reads(false);

  CHECK_THROWS_WITH(
      cache.get_with(1, [](const std::string&) { throw std::runtime_error("from f"); }), "from f");
  // The miss loaded and cached the value before f threw; a hit's f throws too.
  CHECK_THROWS_WITH(
      cache.get_with(1, [](const std::string&) { throw std::runtime_error("from f"); }), "from f");
  CHECK(store.reads() == 2);
  CHECK(cache.get(1) == "one");
  CHECK(store.reads() == 2);
  CHECK(cache.stats().hits == 1);  // the hit whose f threw is not counted; get's is
}

TEST_CASE("get_with's f may read the cache, and is refused any change to a cache") {
  // f runs inside a read-side critical section. A change to a cache may
  // have to wait until no reader can still see the entries it frees, and
  // so for f to return: it would never return. So changes throw, before
  // they touch the store or the cache; hits are allowed.
  FakeStore<> store;
  store.set(1, "one");
  store.set(2, "two");
  store.set(3, "three");
  Cache cache(rtcache::Options{.capacity = 16}, StoreLoader<>{&store}, StoreWriter<>{&store});
  Cache other(rtcache::Options{.capacity = 16}, StoreLoader<>{&store}, StoreWriter<>{&store});
  REQUIRE(cache.get(1) == "one");
  REQUIRE(cache.get(2) == "two");
  std::string inner;
  int refused = 0;
  const auto refuses = [&](auto&& call) {
    try {
      call();
    } catch (const rtcache::RecursiveCallError&) {
      ++refused;
    }
  };
  CHECK(cache.get_with(1, [&](const std::string& outer) {
    CHECK(cache.get_with(2, [&](const std::string& v) { inner = outer + v; }));  // a hit
    CHECK(cache.get(2) == "two");                                                // a hit
    CHECK(cache.get_if_present(2) == "two");
    CHECK(cache.get_if_present(3) == std::nullopt);  // absent: answered without the lock
    refuses([&] { (void)cache.get(3); });            // a miss would load and insert
    refuses([&] { cache.put(1, "uno"); });
    refuses([&] { cache.erase(2); });
    refuses([&] { cache.invalidate(2); });
    refuses([&] { cache.invalidate_all(); });
    refuses([&] { (void)other.get(1); });  // another cache too (entries are freed alike)
    refuses([&] { other.put(5, "five"); });
    refuses([&] { (void)cache.pending_count(); });  // takes every shard's lock
  }));
  CHECK(refused == 8);
  CHECK(inner == "onetwo");
  CHECK(store.writes() == 0);  // refused before the writer ran
  CHECK(store.deletes() == 0);
  CHECK(store.reads() == 2);  // the two gets before get_with
  CHECK(cache.get(1) == "one");
  CHECK(cache.get(2) == "two");
  // After get_with returns, all of it works again.
  cache.put(1, "uno");
  CHECK(cache.get(3) == "three");
  CHECK(cache.get(1) == "uno");
}

TEST_CASE("invalidate_if's predicate is refused changes to a cache") {
  FakeStore<> store;
  store.set(1, "one");
  Cache cache(rtcache::Options{.capacity = 16}, StoreLoader<>{&store}, StoreWriter<>{&store});
  REQUIRE(cache.get(1) == "one");
  CHECK_THROWS_AS(cache.invalidate_if([&](const int&, const std::string&) {
    cache.put(1, "uno");
    return true;
  }),
                  rtcache::RecursiveCallError);
  CHECK(store.writes() == 0);
  CHECK(cache.get(1) == "one");
}

TEST_CASE("the value f reads stays alive while writes replace it and free other entries") {
  // f holds the cached string while another thread replaces it, then
  // replaces other entries, 200 in all: every 32 retirements the shard tries
  // to free what no reader can see, and past 128 it tries to move the epoch
  // on (below its 256 retired entries it never waits, which f would block).
  // Under AddressSanitizer a freed string would be a use after free.
  FakeStore<> store;
  const std::string original(200, 'x');
  store.set(0, original);
  Cache cache(rtcache::Options{.capacity = 64, .shards = 1}, StoreLoader<>{&store},
              StoreWriter<>{&store});
  REQUIRE(cache.get(0) == original);
  for (int k = 1; k <= 20; ++k) cache.put(k, "first");

  std::latch inside(1);
  std::latch replaced(1);
  std::thread writer([&] {
    inside.wait();
    cache.put(0, std::string(200, 'y'));
    for (int round = 0; round < 10; ++round) {
      for (int k = 1; k <= 20; ++k) cache.put(k, std::string(100, static_cast<char>('a' + round)));
    }
    replaced.count_down();
  });
  std::string copy;
  REQUIRE(cache.get_with(0, [&](const std::string& v) {
    inside.count_down();
    replaced.wait();
    copy = v;  // read after the replacement and the writes
  }));
  writer.join();
  CHECK(copy == original);
  CHECK(cache.get(0) == std::string(200, 'y'));
}

TEST_CASE("get_with reads whole values while writers replace them") {
  // Every value is one character repeated: a torn read would mix two.
  FakeStore<> store;
  Cache cache(rtcache::Options{.capacity = 64}, StoreLoader<>{&store}, StoreWriter<>{&store});
  constexpr int kKeys = 8;
  for (int k = 0; k < kKeys; ++k) cache.put(k, std::string(64, 'a'));
  std::atomic<bool> stop{false};
  std::atomic<std::size_t> torn{0};
  std::atomic<std::size_t> reads{0};
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      for (int i = 0; !stop.load(std::memory_order_relaxed) || i < 1000; ++i) {
        (void)cache.get_with((i + r) % kKeys, [&](const std::string& v) {
          if (v.size() != 64 || v.find_first_not_of(v.front()) != std::string::npos) {
            torn.fetch_add(1);
          }
        });
        reads.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (int i = 0; i < 2000; ++i) {
    cache.put(i % kKeys, std::string(64, static_cast<char>('a' + i % 26)));
  }
  stop = true;
  for (auto& t : threads) t.join();
  CHECK(torn.load() == 0);
  CHECK(reads.load() >= 2000);
}

TEST_CASE("get_with of a value rewritten in place reads it whole") {
  // Small values are rewritten in the entry (no new entry): f gets a copy
  // made by one atomic load, so it never sees half of two writes.
  auto cache = rtcache::make_cache<int, std::uint64_t>(
      rtcache::Options{.capacity = 16}, [](const int&) { return std::uint64_t{0}; },
      [](const int&, const std::uint64_t&) {});
  cache.put(1, 0);
  std::atomic<bool> stop{false};
  std::atomic<std::size_t> torn{0};
  std::thread reader([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      (void)cache.get_with(1, [&](const std::uint64_t& v) {
        // Writes store i * 0x0101010101010101: all bytes equal.
        if (v % 0x0101010101010101ULL != 0) torn.fetch_add(1);
      });
    }
  });
  for (std::uint64_t i = 1; i <= 20000; ++i) cache.put(1, (i % 256) * 0x0101010101010101ULL);
  stop = true;
  reader.join();
  CHECK(torn.load() == 0);
  std::uint64_t last = 0;
  CHECK(cache.get_with(1, [&](const std::uint64_t& v) { last = v; }));
  CHECK(last == (20000 % 256) * 0x0101010101010101ULL);
}

TEST_CASE("lookups inside get_with's function find every cached key while the table grows") {
  // Inside f no lock may be taken, so a lookup there cannot check a miss
  // again under the lock, as a get does; a grow that moves entries meanwhile
  // could hide one. Such a lookup searches until the answer is certain:
  // cached keys are always found, never refused as misses.
  FakeStore<> store;
  constexpr int kCached = 64;
  for (int k = 0; k < kCached; ++k) store.set(k, "v" + std::to_string(k));
  Cache cache(rtcache::Options{.capacity = 100'000, .shards = 1}, StoreLoader<>{&store},
              StoreWriter<>{&store});
  for (int k = 0; k < kCached; ++k) REQUIRE(cache.get(k).has_value());

  std::atomic<bool> done{false};
  std::thread writer([&] {
    // From 64 entries to 40,064: the table doubles about ten times.
    for (int k = 1'000; k < 41'000; ++k) cache.put(k, "w");
    done.store(true);
  });
  int lookups = 0;
  int wrong = 0;
  int refused = 0;
  while (!done.load()) {
    REQUIRE(cache.get_with(0, [&](const std::string&) {
      for (int k = 0; k < kCached; ++k) {
        const std::string expected = "v" + std::to_string(k);
        try {
          if (cache.get(k) != expected) ++wrong;
        } catch (const rtcache::RecursiveCallError&) {
          ++refused;
        }
        if (cache.get_if_present(k) != expected) ++wrong;
        lookups += 2;
      }
    }));
  }
  writer.join();
  INFO(lookups << " lookups inside get_with's function");
  CHECK(wrong == 0);
  CHECK(refused == 0);
  CHECK(store.reads() == kCached);  // nothing was loaded again
}

TEST_CASE("a hit inside get_with's function starts no refresh; the next hit outside does") {
  // A refresh takes the shard lock, and an inline executor would run the
  // whole load inside f: neither may happen there.
  using namespace std::chrono_literals;
  auto clock = std::make_shared<rtcache::ManualClock>();
  FakeStore<> store;
  store.set(1, "v1");
  store.set(2, "two");
  int inline_runs = 0;
  Cache cache(rtcache::Options{.capacity = 16,
                               .expire_after_write = 60s,
                               .refresh_after = 10s,
                               .clock = clock,
                               .executor =
                                   [&](std::function<void()> task) {
                                     ++inline_runs;
                                     task();
                                   }},
              StoreLoader<>{&store}, StoreWriter<>{&store});
  REQUIRE(cache.get(1) == "v1");
  REQUIRE(cache.get(2) == "two");
  store.set(1, "v1 again");
  clock->advance(11s);  // both due for a refresh
  CHECK(cache.get_with(2, [&](const std::string&) {
    CHECK(cache.get(1) == "v1");  // served; no refresh from here
    CHECK(inline_runs == 0);
  }));
  CHECK(inline_runs == 1);  // get_with's own hit on 2, after f returned
  CHECK(cache.stats().refreshes == 1);
  CHECK(cache.get(1) == "v1");  // this hit starts the refresh of 1, which runs inline
  CHECK(inline_runs == 2);
  CHECK(cache.get(1) == "v1 again");
  CHECK(store.reads() == 4);
}

TEST_CASE("lookups inside get_with's function never wait for writers that wait for them") {
  // A writer whose shard's retired list is full waits, under the shard
  // lock, for every open read section to close: get_with's function is one.
  // A lookup there that waited for that lock would never return; lookups
  // there take no lock (without that, this test deadlocks).
  FakeStore<> store;
  for (int k = 0; k < 256; ++k) store.set(k, std::string(32, 'a'));
  Cache cache(rtcache::Options{.capacity = 64, .shards = 1}, StoreLoader<>{&store},
              StoreWriter<>{&store});
  REQUIRE(cache.get(0).has_value());
  std::atomic<bool> done{false};
  std::thread writer([&] {
    // Each put replaces or evicts an entry: about 30 times the retired list.
    for (int i = 0; i < 8'000; ++i)
      cache.put(i % 256, std::string(32, static_cast<char>('a' + i % 26)));
    done.store(true);
  });
  int absent = 0;
  while (!done.load()) {
    cache.get_with(0, [&](const std::string&) {
      // Long enough for the writer to fill its retired list and wait.
      for (int i = 0; i < 20'000; ++i) absent += cache.get_if_present(256 + i % 64) ? 0 : 1;
    });
  }
  writer.join();
  CHECK(absent > 0);
  CHECK(store.writes() == 8'000);
}
