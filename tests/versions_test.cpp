// Contract point 7: an entry is never replaced by a lower version, and
// put_if_version is a compare-and-set in the store.

#include <functional>
#include <latch>
#include <rtcache/rtcache.hpp>
#include <string>
#include <thread>

#include "support/catch.hpp"
#include "support/fake_store.hpp"

using rtcache::test::FakeStore;
using rtcache::test::StoreLoader;
using rtcache::test::StoreWriter;

namespace {
using Cache = rtcache::ReadThroughCache<int, std::string, StoreLoader<>, StoreWriter<>>;
using Row = std::optional<rtcache::Versioned<std::string>>;
}  // namespace

TEST_CASE("a slow load of an old version does not replace a newer entry") {
  FakeStore<> store;
  store.set(1, "v1");
  // This loader returns version 1 after the cache has learned version 5.
  std::latch read_done(1);
  std::latch resume(1);
  auto loader = [&](const int& key) -> Row {
    auto row = store.read(key);
    read_done.count_down();
    resume.wait();
    return row;
  };
  auto cache =
      rtcache::make_cache<int, std::string>(rtcache::Options{.capacity = 8, .seed = 1}, loader);
  Row seen;
  std::thread reader([&] { seen = cache.get_versioned(1); });
  read_done.wait();
  cache.fill(1, "v5", 5);  // e.g. a message from another instance
  resume.count_down();
  reader.join();
  CHECK(seen == Row({"v5", 5}));                    // the newer value is served...
  CHECK(cache.get_versioned(1) == Row({"v5", 5}));  // ...and kept
}

TEST_CASE("fill never lowers an entry's version") {
  auto cache = rtcache::make_cache<int, std::string>(rtcache::Options{.capacity = 8, .seed = 1},
                                                     [](const int&) { return Row(); });
  cache.fill(1, "v3", 3);
  cache.fill(1, "v2", 2);
  CHECK(cache.get_versioned(1) == Row({"v3", 3}));
  cache.fill(1, "v4", 4);
  CHECK(cache.get_versioned(1) == Row({"v4", 4}));
}

TEST_CASE("put_if_version applies when the store holds the expected version") {
  FakeStore<> store;
  store.set(1, "v1");
  Cache cache(rtcache::Options{.capacity = 8, .seed = 1}, StoreLoader<>{&store},
              StoreWriter<>{&store});
  REQUIRE(cache.get_versioned(1) == Row({"v1", 1}));
  const rtcache::PutResult result = cache.put_if_version(1, "v2", 1);
  CHECK(result.applied);
  CHECK(result.version == 2);
  CHECK(store.peek(1) == Row({"v2", 2}));
  CHECK(cache.get_versioned(1) == Row({"v2", 2}));
  CHECK(store.reads() == 1);
  CHECK(cache.stats().writes == 1);
}

TEST_CASE("put_if_version with a stale expectation changes nothing and invalidates the entry") {
  FakeStore<> store;
  store.set(1, "v1");
  Cache cache(rtcache::Options{.capacity = 8, .seed = 1}, StoreLoader<>{&store},
              StoreWriter<>{&store});
  REQUIRE(cache.get_versioned(1) == Row({"v1", 1}));
  store.set(1, "someone else's v2");  // another writer won the race

  const rtcache::PutResult result = cache.put_if_version(1, "mine", 1);
  CHECK_FALSE(result.applied);
  CHECK(store.peek(1) == Row({"someone else's v2", 2}));
  CHECK(cache.get_if_present(1) == std::nullopt);
  CHECK(cache.stats().version_conflicts == 1);
  // The next get loads the winner.
  CHECK(cache.get_versioned(1) == Row({"someone else's v2", 2}));
  CHECK(store.reads() == 2);
}

TEST_CASE("a versioned writer may report only the new version") {
  struct VersionOnlyWriter {
    FakeStore<>* store;
    void write(const int& key, const std::string& value) { store->write(key, value); }
    std::optional<std::uint64_t> write_if_version(const int& key, const std::string& value,
                                                  std::uint64_t expected) {
      auto row = store->write_if_version(key, value, expected);
      if (!row) return std::nullopt;
      return row->version;
    }
  };
  FakeStore<> store;
  store.set(1, "v1");
  rtcache::ReadThroughCache<int, std::string, StoreLoader<>, VersionOnlyWriter> cache(
      rtcache::Options{.capacity = 8, .seed = 1}, StoreLoader<>{&store}, VersionOnlyWriter{&store});
  const auto result = cache.put_if_version(1, "v2", 1);
  CHECK(result.applied);
  CHECK(result.version == 2);
  CHECK(cache.get_versioned(1) == Row({"v2", 2}));
  CHECK_FALSE(cache.put_if_version(1, "v3", 1).applied);
}

TEST_CASE("a writer failing inside put_if_version leaves store and cache unchanged") {
  FakeStore<> store;
  store.set(1, "v1");
  Cache cache(rtcache::Options{.capacity = 8, .seed = 1}, StoreLoader<>{&store},
              StoreWriter<>{&store});
  REQUIRE(cache.get(1));
  store.fail_writes(true);
  CHECK_THROWS_AS(cache.put_if_version(1, "v2", 1), rtcache::test::StoreError);
  CHECK(store.peek(1) == Row({"v1", 1}));
  CHECK(cache.get_if_present(1) == std::optional<std::string>("v1"));
  CHECK(cache.stats().write_failures == 1);
}

TEST_CASE("invalidate_if_older keeps an entry at that version or newer") {
  auto cache = rtcache::make_cache<int, std::string>(rtcache::Options{.capacity = 8, .seed = 1},
                                                     [](const int&) { return Row(); });
  cache.fill(1, "v5", 5);
  cache.invalidate_if_older(1, 5);  // our own write's message
  CHECK(cache.get_versioned(1) == Row({"v5", 5}));
  cache.invalidate_if_older(1, 4);  // an older message, late
  CHECK(cache.get_versioned(1) == Row({"v5", 5}));
  cache.invalidate_if_older(1, 6);  // another instance wrote version 6
  CHECK(cache.get_if_present(1) == std::nullopt);
  cache.fill(2, "unversioned");
  cache.invalidate_if_older(2, 1);  // an unknown version is never trusted over a message
  CHECK(cache.get_if_present(2) == std::nullopt);
}

TEST_CASE("a newer version announced while a put is in progress wins over that put") {
  FakeStore<> store;
  std::latch in_writer(1);
  std::latch release(1);
  struct SlowWriter {
    FakeStore<>* store;
    std::latch* in_writer;
    std::latch* release;
    rtcache::Versioned<std::string> write(const int& key, const std::string& value) {
      auto row = store->write(key, value);
      in_writer->count_down();
      release->wait();
      return row;
    }
  };
  rtcache::ReadThroughCache<int, std::string, StoreLoader<>, SlowWriter> cache(
      rtcache::Options{.capacity = 8, .seed = 1}, StoreLoader<>{&store},
      SlowWriter{&store, &in_writer, &release});
  std::thread writer([&] { cache.put(1, "mine"); });  // the store answers version 1
  in_writer.wait();
  store.set(1, "theirs");           // another instance writes version 2...
  cache.invalidate_if_older(1, 2);  // ...and its message arrives before our put ends
  release.count_down();
  writer.join();
  CHECK(cache.get_if_present(1) == std::nullopt);  // "mine" (version 1) was not cached
  CHECK(cache.get_versioned(1) == Row({"theirs", 2}));
}
