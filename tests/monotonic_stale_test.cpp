// Issue 7, found by rtcache-soak (the model-checked stress test with TTLs and
// stale-if-error on): a thread's reads of a key must not go back in time when
// an expired entry is served stale.
//
// A load superseded by a write answers with the entry the write left (see
// monotonic_reads_test.cpp), but only while that entry is fresh. Once it has
// expired, the load answers with what it read, which can be a newer write
// already in the store (its cache update not done yet), or "not found" from
// a delete in progress. The expired entry stays; if the caller's next load
// fails, stale-if-error serves it: the thread reads v3, then the older v2 (or
// "not found", then the deleted v2). Each case below must give either the
// store's error or something at least as new as the first read.

#include <atomic>
#include <chrono>
#include <functional>
#include <latch>
#include <memory>
#include <optional>
#include <rtcache/rtcache.hpp>
#include <string>
#include <thread>
#include <utility>

#include "support/catch.hpp"
#include "support/fake_store.hpp"

using namespace std::chrono_literals;
using rtcache::Versioned;
using rtcache::test::FakeStore;
using rtcache::test::StoreError;

namespace {

/// The store's hooks: a pause before a read, and one after a write or
/// delete has changed the store and before the cache is told.
struct Hooks {
  std::function<void()> before_read;
  std::function<void()> after_store_change;
};

/// Loader and writer of a store with versions.
struct VersionedLoader {
  FakeStore<>* store;
  Hooks* hooks;
  std::optional<Versioned<std::string>> operator()(const int& key) const {
    if (hooks->before_read) hooks->before_read();
    return store->read(key);
  }
};
struct VersionedWriter {
  FakeStore<>* store;
  Hooks* hooks;
  Versioned<std::string> write(const int& key, const std::string& value) {
    auto stored = store->write(key, value);
    if (hooks->after_store_change) hooks->after_store_change();
    return stored;
  }
  void erase(const int& key) {
    store->erase(key);
    if (hooks->after_store_change) hooks->after_store_change();
  }
};

/// Loader and writer of a store without versions: values only.
struct PlainLoader {
  FakeStore<>* store;
  Hooks* hooks;
  std::optional<std::string> operator()(const int& key) const {
    if (hooks->before_read) hooks->before_read();
    auto row = store->read(key);
    if (!row) return std::nullopt;
    return row->value;
  }
};
struct PlainWriter {
  FakeStore<>* store;
  Hooks* hooks;
  void write(const int& key, const std::string& value) {
    store->write(key, value);
    if (hooks->after_store_change) hooks->after_store_change();
  }
  void erase(const int& key) {
    store->erase(key);
    if (hooks->after_store_change) hooks->after_store_change();
  }
};

/// How new a read is: v1 < v2 < v3 < deleted (the last write of each case).
int age(const std::optional<std::string>& read) {
  if (!read) return 4;
  return read->back() - '0';
}

/// One thread reads key 1 twice. Its first load is paused before it reads
/// the store; meanwhile "v2" is put (superseding that load), the clock moves
/// past v2's TTL, and `second_write` ("v3", or an erase) reaches the store
/// and is held there. The first read then reads the store; the store goes
/// down; the second read follows. Returns both reads, the second nullopt
/// when it threw the store's error.
template <class Loader, class Writer, class SecondWrite>
std::pair<std::optional<std::string>, std::optional<std::optional<std::string>>> run(
    SecondWrite second_write) {
  auto clock = std::make_shared<rtcache::ManualClock>();
  FakeStore<> store;
  store.set(1, "v1");
  Hooks hooks;
  rtcache::ReadThroughCache<int, std::string, Loader, Writer> cache(
      rtcache::Options{.capacity = 8,
                       .seed = 1,
                       .expire_after_write = 10s,
                       .stale_if_error = 60s,
                       .clock = clock},
      Loader{&store, &hooks}, Writer{&store, &hooks});

  std::latch load_started{1};
  std::latch resume_load{1};
  std::atomic<bool> pause_read{true};
  hooks.before_read = [&] {
    if (pause_read.exchange(false)) {
      load_started.count_down();
      resume_load.wait();
    }
  };
  std::optional<std::string> first;
  std::optional<std::optional<std::string>> second;
  std::thread reader([&] {
    first = cache.get(1);
    store.fail_reads(true);
    try {
      second = cache.get(1);
    } catch (const StoreError&) {
    }
  });
  load_started.wait();
  cache.put(1, "v2");   // supersedes the paused load
  clock->advance(11s);  // v2 expires; stale-if-error may still serve it

  std::latch in_store{1};
  std::latch resume_write{1};
  std::atomic<bool> hold_write{true};
  hooks.after_store_change = [&] {
    if (hold_write.exchange(false)) {
      in_store.count_down();
      resume_write.wait();
    }
  };
  std::thread writer([&] { second_write(cache); });
  in_store.wait();
  resume_load.count_down();  // the paused load reads the second write's row
  reader.join();
  resume_write.count_down();
  writer.join();
  return {first, second};
}

template <class Loader, class Writer, class SecondWrite>
void check_never_back(SecondWrite second_write) {
  const auto [first, second] = run<Loader, Writer>(second_write);
  INFO("first read: " << first.value_or("not found"));
  INFO("second read: " << (second ? second->value_or("not found") : "the store's error"));
  CHECK((!second || age(*second) >= age(first)));
}

const auto put_v3 = [](auto& cache) { cache.put(1, "v3"); };
const auto erase = [](auto& cache) { cache.erase(1); };

}  // namespace

TEST_CASE("reads never go back through stale-if-error: versioned store, a put in progress") {
  check_never_back<VersionedLoader, VersionedWriter>(put_v3);
}

TEST_CASE("reads never go back through stale-if-error: versioned store, an erase in progress") {
  check_never_back<VersionedLoader, VersionedWriter>(erase);
}

TEST_CASE("reads never go back through stale-if-error: store without versions, a put in progress") {
  check_never_back<PlainLoader, PlainWriter>(put_v3);
}

TEST_CASE(
    "reads never go back through stale-if-error: store without versions, an erase in progress") {
  check_never_back<PlainLoader, PlainWriter>(erase);
}
