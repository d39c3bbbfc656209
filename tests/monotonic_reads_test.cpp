// Issue 7, found by the model-checked stress test (tests/stress/model_test.cpp):
// the versions one thread reads of one key must never go backwards.
//
// A load that a write superseded is not installed, but its caller still gets
// what it read. If a second write was already in the store (its writer
// called, its cache update not yet done), that answer is newer than the
// cached entry the first write left, and the caller's next read - a hit on
// that entry - goes back in time. The same happens with an erase in place of
// the second write: the caller reads "not found", then the erased value.

#include <atomic>
#include <functional>
#include <latch>
#include <optional>
#include <rtcache/rtcache.hpp>
#include <string>
#include <thread>

#include "support/catch.hpp"
#include "support/fake_store.hpp"

using rtcache::Versioned;
using rtcache::test::FakeStore;
using rtcache::test::StoreLoader;

namespace {

/// A writer whose write or delete can be held after the store has changed
/// and before the cache is told: a slow acknowledgement.
struct HeldWriter {
  FakeStore<>* store;
  std::function<void()>* after_store_change;
  Versioned<std::string> write(const int& key, const std::string& value) {
    auto stored = store->write(key, value);
    if (*after_store_change) (*after_store_change)();
    return stored;
  }
  void erase(const int& key) {
    store->erase(key);
    if (*after_store_change) (*after_store_change)();
  }
};

using Cache = rtcache::ReadThroughCache<int, std::string, StoreLoader<>, HeldWriter>;

struct Fixture {
  FakeStore<> store;
  std::function<void(const int&)> before_read;
  std::function<void()> after_store_change;
  Cache cache{rtcache::Options{.capacity = 8, .seed = 1}, StoreLoader<>{&store, &before_read},
              HeldWriter{&store, &after_store_change}};

  std::latch load_started{1};
  std::latch resume_load{1};
  std::latch second_write_in_store{1};
  std::latch resume_second_write{1};

  /// Runs, on one reader thread, get_versioned(1) twice: the first one's load
  /// is paused before it reads the store, while this thread puts "v2" (which
  /// supersedes the load) and starts `second_write` on another thread, which
  /// is paused once the store has changed. Then the load reads the store.
  /// Returns the reader's two answers.
  template <class SecondWrite>
  std::pair<std::optional<Versioned<std::string>>, std::optional<Versioned<std::string>>> run(
      SecondWrite second_write) {
    std::atomic<bool> pause_read{true};
    before_read = [&](const int&) {
      if (pause_read.exchange(false)) {
        load_started.count_down();
        resume_load.wait();
      }
    };
    std::optional<Versioned<std::string>> first;
    std::optional<Versioned<std::string>> second;
    std::thread reader([&] {
      first = cache.get_versioned(1);
      second = cache.get_versioned(1);  // the next read by the same thread
    });
    load_started.wait();
    cache.put(1, "v2");  // supersedes the paused load
    std::atomic<bool> hold_write{true};
    after_store_change = [&] {
      if (hold_write.exchange(false)) {
        second_write_in_store.count_down();
        resume_second_write.wait();
      }
    };
    std::thread writer([&] { second_write(); });
    second_write_in_store.wait();
    resume_load.count_down();  // the load now reads the second write's row
    reader.join();
    resume_second_write.count_down();
    writer.join();
    return {first, second};
  }
};

}  // namespace

TEST_CASE("a thread's reads of a key never go back: superseded load, then a put in progress") {
  Fixture f;
  f.store.set(1, "v1");
  const auto [first, second] = f.run([&] { f.cache.put(1, "v3"); });
  REQUIRE(first.has_value());
  REQUIRE(second.has_value());
  INFO("first read: " << first->value << " at version " << first->version);
  INFO("second read: " << second->value << " at version " << second->version);
  CHECK(second->version >= first->version);
}

TEST_CASE("a thread's reads of a key never go back: superseded load, then an erase in progress") {
  Fixture f;
  f.store.set(1, "v1");
  const auto [first, second] = f.run([&] { f.cache.erase(1); });
  // The first read saw the key deleted; the second must not see it again.
  INFO("first read: " << (first ? first->value : std::string("not found")));
  INFO("second read: " << (second ? second->value : std::string("not found")));
  CHECK(!(first == std::nullopt && second.has_value()));
}
