// Stats count what happened, summed over the counter stripes of all threads.

#include <atomic>
#include <functional>
#include <latch>
#include <optional>
#include <rtcache/detail/striped_counters.hpp>
#include <rtcache/rtcache.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/catch.hpp"
#include "support/fake_store.hpp"

using rtcache::test::FakeStore;
using rtcache::test::StoreLoader;
using rtcache::test::StoreWriter;

TEST_CASE("stats count hits, misses, loads, writes, evictions and conflicts") {
  FakeStore<> store;
  for (int k = 0; k < 10; ++k) store.set(k, std::to_string(k));
  // LRU, so that the evictions below are the ones counted by hand.
  rtcache::ReadThroughCache<int, std::string, StoreLoader<>, StoreWriter<>, rtcache::policy::Lru>
      cache(rtcache::Options{.capacity = 4, .shards = 1, .seed = 1}, StoreLoader<>{&store},
            StoreWriter<>{&store});
  for (int k = 0; k < 6; ++k) (void)cache.get(k);  // 6 misses, 2 evictions
  (void)cache.get(5);                              // hit
  (void)cache.get_if_present(0);                   // miss (evicted)
  cache.put(20, "x");                              // write, 1 eviction
  (void)cache.put_if_version(5, "y", 99);          // conflict
  cache.erase(20);                                 // write
  const rtcache::Stats s = cache.stats();
  CHECK(s.hits == 1);
  CHECK(s.misses == 7);
  CHECK(s.loads == 6);
  CHECK(s.load_failures == 0);
  CHECK(s.evictions == 3);
  CHECK(s.writes == 2);
  CHECK(s.version_conflicts == 1);
  CHECK(s.write_failures == 0);
  CHECK(s.coalesced_waits == 0);
  CHECK(s.total_load_time.count() > 0);
  CHECK(s.hit_ratio() == 0.125);  // exact in binary
}

TEST_CASE("counts from many threads add up") {
  auto cache = rtcache::make_cache<int, int>(rtcache::Options{.capacity = 1024, .seed = 1},
                                             [](const int& k) { return k; });
  for (int k = 0; k < 100; ++k) (void)cache.get(k);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) (void)cache.get(i % 100);
    });
  }
  for (auto& t : threads) t.join();
  CHECK(cache.stats().hits == 8000);
  CHECK(cache.stats().misses == 100);
}

// Hit counts live in per-thread cells that a thread writes without a locked
// instruction: exact only if no two live threads ever share a cell. Waves of
// threads, more at once than the cache has cells, reuse the slots of threads
// that have exited and spill into the shared cells; no hit may be lost.
TEST_CASE("counts stay exact when threads outnumber the counter cells and come and go") {
  auto cache = rtcache::make_cache<int, int>(rtcache::Options{.capacity = 1024, .seed = 1},
                                             [](const int& k) { return k; });
  for (int k = 0; k < 100; ++k) (void)cache.get(k);
  constexpr int kWaves = 3;
  constexpr int kThreads = 40;  // more than the 16 or more owned cells
  constexpr int kHitsEach = 500;
  for (int wave = 0; wave < kWaves; ++wave) {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < kHitsEach; ++i) (void)cache.get(i % 100);
      });
    }
    for (auto& t : threads) t.join();
  }
  CHECK(cache.stats().hits == std::uint64_t{kWaves} * kThreads * kHitsEach);
  CHECK(cache.stats().misses == 100);
}

TEST_CASE("a striped count adds exactly across threads, and can be set") {
  rtcache::detail::StripedCount count;
  constexpr int kThreads = 6;  // more threads than stripes: some share one
  constexpr int kAdds = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&count] {
      for (int i = 0; i < kAdds; ++i) count.add(2);
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(count.sum() == std::size_t{2} * kThreads * kAdds);
  count.set(7);
  CHECK(count.sum() == 7);
  count.add(1);
  CHECK(count.sum() == 8);
}

// Found in review: a get that joined a load which a write then superseded
// loads afresh, and its second look was counted as a second miss.
TEST_CASE("a get that waits for a superseded load and loads again counts one miss") {
  struct Writer {
    void operator()(const int&, const std::string&) const {}
    void erase(const int&) const {}
  };
  using Loader = std::function<std::optional<std::string>(const int&)>;
  std::latch in_load(1);
  std::latch release(1);
  std::atomic<int> calls{0};
  rtcache::ReadThroughCache<int, std::string, Loader, Writer> cache(
      rtcache::Options{.capacity = 64, .seed = 1}, [&](const int& k) {
        if (calls.fetch_add(1) == 0) {
          in_load.count_down();
          release.wait();
        }
        return std::optional<std::string>("v" + std::to_string(k));
      });
  std::thread owner([&] { (void)cache.get(1); });  // owns the load, held in the loader
  in_load.wait();
  cache.erase(1);                                   // supersedes it
  std::thread joiner([&] { (void)cache.get(1); });  // joins it, then loads afresh
  while (cache.stats().coalesced_waits == 0) std::this_thread::yield();
  release.count_down();
  owner.join();
  joiner.join();
  const rtcache::Stats s = cache.stats();
  CHECK(s.hits + s.misses == 2);  // two gets
  CHECK(s.misses == 2);
  CHECK(s.loads == 2);
}
