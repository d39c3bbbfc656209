// Refresh-ahead: a hit on an entry older than refresh_after returns the
// cached value and starts one background reload, which a write of the key
// meanwhile supersedes.

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <rtcache/rtcache.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/fake_store.hpp"
#include "support/manual_executor.hpp"

using namespace std::chrono_literals;
using rtcache::test::FakeStore;
using rtcache::test::ManualExecutor;
using rtcache::test::StoreLoader;
using rtcache::test::StoreWriter;

namespace {

using Cache = rtcache::ReadThroughCache<int, std::string, StoreLoader<>, StoreWriter<>>;

struct Fixture {
  std::shared_ptr<rtcache::ManualClock> clock = std::make_shared<rtcache::ManualClock>();
  ManualExecutor executor;
  FakeStore<> store;
  Cache cache{rtcache::Options{.capacity = 64,
                               .seed = 1,
                               .expire_after_write = 60s,
                               .refresh_after = 10s,
                               .clock = clock,
                               .executor = executor.executor()},
              StoreLoader<>{&store}, StoreWriter<>{&store}};
};

}  // namespace

TEST_CASE("a hit after refresh_after serves the cached value and starts one reload") {
  Fixture f;
  f.store.set(1, "v1");
  REQUIRE(f.cache.get(1) == std::optional<std::string>("v1"));
  f.store.set(1, "v2");

  f.clock->advance(9s);
  CHECK(f.cache.get(1) == std::optional<std::string>("v1"));
  CHECK(f.executor.queued() == 0);  // not due yet

  f.clock->advance(1s);
  CHECK(f.cache.get(1) == std::optional<std::string>("v1"));  // served at once
  CHECK(f.cache.get(1) == std::optional<std::string>("v1"));
  CHECK(f.executor.queued() == 1);  // one reload, however many hits
  CHECK(f.cache.stats().refreshes == 1);

  CHECK(f.executor.run_all() == 1);
  CHECK(f.cache.get(1) == std::optional<std::string>("v2"));
  CHECK(f.store.reads() == 2);
  CHECK(f.cache.pending_count() == 0);
}

namespace {

/// A cache whose refresh of key 1 is queued: its loader reads the store, then
/// runs `after_read`, so that a test can act while the refresh holds the row.
struct HeldRefresh {
  std::shared_ptr<rtcache::ManualClock> clock = std::make_shared<rtcache::ManualClock>();
  ManualExecutor executor;
  FakeStore<> store;
  std::function<void()> after_read;
  struct Loader {
    HeldRefresh* self;
    std::optional<rtcache::Versioned<std::string>> operator()(const int& key) const {
      auto row = self->store.read(key);
      if (self->after_read) self->after_read();
      return row;
    }
  };
  rtcache::ReadThroughCache<int, std::string, Loader, StoreWriter<>> cache{
      rtcache::Options{.capacity = 8,
                       .seed = 1,
                       .refresh_after = 10s,
                       .clock = clock,
                       .executor = executor.executor()},
      Loader{this}, StoreWriter<>{&store}};

  HeldRefresh() {
    store.set(1, "v1");
    REQUIRE(cache.get(1));
    clock->advance(10s);
    REQUIRE(cache.get(1) == std::optional<std::string>("v1"));
    REQUIRE(executor.queued() == 1);
  }
};

}  // namespace

TEST_CASE("a refresh superseded by a put is discarded") {
  HeldRefresh f;
  f.after_read = [&] { f.cache.put(1, "written"); };
  f.executor.run_all();  // the refresh read "v1" before the put finished: not installed
  f.after_read = nullptr;
  CHECK(f.cache.get(1) == std::optional<std::string>("written"));
  CHECK(f.cache.get_versioned(1)->version == 2);
}

TEST_CASE("a refresh of a key that invalidate_if drops meanwhile is discarded") {
  HeldRefresh f;
  // The store changes behind the cache's back, and the application drops
  // the key, while the refresh holds the old row.
  f.after_read = [&] {
    f.store.set(1, "v2");
    f.cache.invalidate_if([](const int& key, const std::string&) { return key == 1; });
  };
  f.executor.run_all();
  f.after_read = nullptr;
  CHECK(f.cache.get(1) == std::optional<std::string>("v2"));
}

TEST_CASE("a failed refresh keeps the entry, counts the failure, and a later hit retries") {
  Fixture f;
  f.store.set(1, "v1");
  REQUIRE(f.cache.get(1));
  f.clock->advance(10s);
  f.store.fail_reads(true);
  REQUIRE(f.cache.get(1) == std::optional<std::string>("v1"));
  f.executor.run_all();
  CHECK(f.cache.stats().refresh_failures == 1);
  CHECK(f.cache.get(1) == std::optional<std::string>("v1"));  // still served, and retries
  CHECK(f.executor.queued() == 1);
  f.store.fail_reads(false);
  f.store.set(1, "v2");
  f.executor.run_all();
  CHECK(f.cache.get(1) == std::optional<std::string>("v2"));
}

TEST_CASE("refresh_jitter spreads the refresh times of keys loaded together") {
  auto clock = std::make_shared<rtcache::ManualClock>();
  ManualExecutor executor;
  FakeStore<> store;
  for (int k = 0; k < 50; ++k) store.set(k, "v");
  Cache cache(rtcache::Options{.capacity = 64,
                               .seed = 1,
                               .refresh_after = 100s,
                               .refresh_jitter = 0.5,
                               .clock = clock,
                               .executor = executor.executor()},
              StoreLoader<>{&store}, StoreWriter<>{&store});
  for (int k = 0; k < 50; ++k) REQUIRE(cache.get(k));
  clock->advance(49s);
  for (int k = 0; k < 50; ++k) (void)cache.get(k);
  CHECK(executor.queued() == 0);  // no refresh earlier than 50 s (100 s - 50%)
  clock->advance(26s);            // 75 s: about half are due
  for (int k = 0; k < 50; ++k) (void)cache.get(k);
  const std::size_t early = executor.queued();
  CHECK(early > 5);
  CHECK(early < 45);
  clock->advance(25s);  // 100 s: all are due
  for (int k = 0; k < 50; ++k) (void)cache.get(k);
  CHECK(executor.queued() == 50);
  executor.run_all();
}

TEST_CASE("the built-in refresh pool is drained by the destructor") {
  auto clock = std::make_shared<rtcache::ManualClock>();
  std::atomic<int> loads{0};
  {
    auto cache = rtcache::make_cache<int, int>(
        rtcache::Options{.capacity = 8, .seed = 1, .refresh_after = 1s, .clock = clock},
        [&](const int& k) {
          loads.fetch_add(1);
          return k;
        });
    for (int k = 0; k < 4; ++k) (void)cache.get(k);
    clock->advance(1s);
    for (int k = 0; k < 4; ++k) (void)cache.get(k);
    CHECK(cache.stats().refreshes == 4);
  }  // the destructor waits for the four reloads
  CHECK(loads.load() == 8);
}

TEST_CASE("a loader on the executor may read a key whose refresh is queued behind it") {
  // The refreshes of 1 and 2 are queued on a one-thread executor; by the
  // time the refresh of 1 runs, 2 has expired, and its loader asks for 2.
  // The get misses and finds 2's refresh registered but not started: it
  // must run that load itself, not wait for a task queued behind its own
  // thread (which never runs, and the cache's destructor would wait too).
  auto clock = std::make_shared<rtcache::ManualClock>();
  ManualExecutor executor;
  FakeStore<> store;
  store.set(1, "one");
  store.set(2, "two");
  std::function<void(const int&)> before_read;
  auto cache = std::make_unique<Cache>(rtcache::Options{.capacity = 64,
                                                        .seed = 1,
                                                        .expire_after_write = 100s,
                                                        .refresh_after = 50s,
                                                        .refresh_jitter = 0.0,
                                                        .clock = clock,
                                                        .executor = executor.executor()},
                                       StoreLoader<>{&store, &before_read}, StoreWriter<>{&store});
  REQUIRE(cache->get(1) == std::optional<std::string>("one"));
  REQUIRE(cache->get(2) == std::optional<std::string>("two"));
  clock->advance(60s);
  REQUIRE(cache->get(1) == std::optional<std::string>("one"));  // queues the refresh of 1
  REQUIRE(cache->get(2) == std::optional<std::string>("two"));  // and of 2
  REQUIRE(executor.queued() == 2);
  clock->advance(50s);  // both expired (110 s > 100 s)
  store.set(2, "two'");
  std::optional<std::string> read_by_refresh;
  before_read = [&](const int& key) {
    if (key == 1) read_by_refresh = cache->get(2);
  };
  auto run = std::async(std::launch::async, [&] { return executor.run_all(); });
  CHECK(rtcache::test::finishes(run, "the executor's tasks") == 2);
  CHECK(read_by_refresh == std::optional<std::string>("two'"));
  CHECK(store.reads() == 4);  // 1 and 2, the refresh of 1, and 2 once more: not twice
  CHECK(cache->pending_count() == 0);
  before_read = nullptr;
  CHECK(cache->get(2) == std::optional<std::string>("two'"));
  auto destroy = std::async(std::launch::async, [&] { cache.reset(); });
  rtcache::test::finishes(destroy, "the cache's destructor");
}

// Found in review: when the executor refused the refresh task, the cache
// released the load through the claim it had already moved into the task
// (a null load, an emptied key): a crash.
TEST_CASE("a refresh the executor refuses leaves the entry served, and a later hit retries") {
  auto clock = std::make_shared<rtcache::ManualClock>();
  FakeStore<> store;
  int offered = 0;
  bool refuse = true;
  std::vector<std::function<void()>> accepted;
  Cache cache{rtcache::Options{.capacity = 8,
                               .seed = 1,
                               .refresh_after = 10s,
                               .clock = clock,
                               .executor =
                                   [&](std::function<void()> task) {
                                     ++offered;
                                     if (refuse) throw std::runtime_error("executor full");
                                     accepted.push_back(std::move(task));
                                   }},
              StoreLoader<>{&store}, StoreWriter<>{&store}};
  store.set(1, "v1");
  REQUIRE(cache.get(1) == std::optional<std::string>("v1"));
  store.set(1, "v2");
  clock->advance(10s);
  CHECK(cache.get(1) == std::optional<std::string>("v1"));  // served; the refresh is refused
  CHECK(offered == 1);
  CHECK(cache.pending_count() == 0);
  refuse = false;
  CHECK(cache.get(1) == std::optional<std::string>("v1"));  // tries again
  CHECK(offered == 2);
  REQUIRE(accepted.size() == 1);
  accepted.front()();
  CHECK(cache.get(1) == std::optional<std::string>("v2"));
  CHECK(cache.pending_count() == 0);
}
