// Contract point 6: a load that started before a put, erase or invalidate of
// its key finished is never installed over it.

#include <atomic>
#include <functional>
#include <latch>
#include <optional>
#include <rtcache/rtcache.hpp>
#include <string>
#include <thread>

#include "support/catch.hpp"
#include "support/fake_store.hpp"

using rtcache::test::FakeStore;
using rtcache::test::spin_until;
using rtcache::test::StoreWriter;

namespace {

/// Reads the store, then runs `after_read` (where a test pauses it), then
/// returns what it read: a slow query whose answer is old by the time it lands.
struct SlowQueryLoader {
  FakeStore<>* store;
  std::function<void()>* after_read;
  std::optional<rtcache::Versioned<std::string>> operator()(const int& key) const {
    auto row = store->read(key);
    if (*after_read) (*after_read)();
    return row;
  }
};

using Cache = rtcache::ReadThroughCache<int, std::string, SlowQueryLoader, StoreWriter<>>;

struct Fixture {
  FakeStore<> store;
  std::atomic<bool> pause_next{false};
  std::latch read_done{1};
  std::latch resume{1};
  std::function<void()> after_read = [this] {
    if (pause_next.exchange(false)) {
      read_done.count_down();
      resume.wait();
    }
  };
  Cache cache{rtcache::Options{.capacity = 8, .seed = 1}, SlowQueryLoader{&store, &after_read},
              StoreWriter<>{&store}};

  /// Starts `get(1)` on a thread, runs `meanwhile` while its loader is paused
  /// after reading the store, then lets the load finish. Returns what that
  /// get returned. Once per fixture.
  template <class Meanwhile>
  std::optional<std::string> get_across(Meanwhile meanwhile) {
    pause_next = true;
    std::optional<std::string> seen;
    std::thread reader([&] { seen = cache.get(1); });
    read_done.wait();
    meanwhile();
    resume.count_down();
    reader.join();
    return seen;
  }
};

}  // namespace

TEST_CASE("a load paused across a put does not overwrite the put's value") {
  Fixture f;
  f.store.set(1, "old");
  const auto seen = f.get_across([&] {
    f.cache.put(1, "new");
    CHECK(f.cache.get_if_present(1) == std::optional<std::string>("new"));
  });
  // That get began before the put finished, so either answer would be
  // linearizable; it gets the put's value, so that its caller's next read
  // (a hit) cannot go back in time (see monotonic_reads_test.cpp).
  CHECK(seen == std::optional<std::string>("new"));
  CHECK(f.cache.get(1) == std::optional<std::string>("new"));
  CHECK(f.cache.stats().loads == 1);
  CHECK(f.cache.pending_count() == 0);
}

TEST_CASE("a load paused across an erase does not bring the erased value back") {
  Fixture f;
  f.store.set(1, "old");
  f.get_across([&] { f.cache.erase(1); });
  CHECK(f.store.peek(1) == std::nullopt);
  CHECK(f.cache.get_if_present(1) == std::nullopt);
  CHECK(f.cache.get(1) == std::nullopt);
}

TEST_CASE("a load paused across an invalidate is not installed") {
  Fixture f;
  f.store.set(1, "old");
  f.get_across([&] {
    f.store.set(1, "changed elsewhere");  // another service wrote the row...
    f.cache.invalidate(1);                // ...and told us
  });
  CHECK(f.cache.get_if_present(1) == std::nullopt);
  CHECK(f.cache.get(1) == std::optional<std::string>("changed elsewhere"));
}

TEST_CASE("a load paused across invalidate_all is not installed") {
  Fixture f;
  f.store.set(1, "old");
  f.get_across([&] {
    f.store.set(1, "changed elsewhere");
    f.cache.invalidate_all();
  });
  CHECK(f.cache.size() == 0);
  CHECK(f.cache.get(1) == std::optional<std::string>("changed elsewhere"));
}

TEST_CASE("a get that arrives after a write finished is not answered by the load it superseded") {
  Fixture f;
  f.store.set(1, "old");
  std::optional<std::string> late;
  std::thread late_reader;
  f.get_across([&] {
    f.store.set(1, "changed elsewhere");
    f.cache.invalidate(1);
    // This get must not take the paused load's "old": it waits for that load
    // (one loader call per key at a time), then loads afresh.
    late_reader = std::thread([&] { late = f.cache.get(1); });
    spin_until([&] { return f.cache.stats().coalesced_waits == 1; });
  });
  late_reader.join();
  CHECK(late == std::optional<std::string>("changed elsewhere"));
  CHECK(f.cache.stats().loads == 2);
  CHECK(f.cache.get(1) == std::optional<std::string>("changed elsewhere"));
}
