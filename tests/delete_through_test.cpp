// Contract point 8: erase removes the key from the store through the writer,
// then from the cache; on writer failure, neither changes.

#include <rtcache/rtcache.hpp>
#include <string>

#include "support/catch.hpp"
#include "support/fake_store.hpp"

using rtcache::test::FakeStore;
using rtcache::test::StoreError;
using rtcache::test::StoreLoader;
using rtcache::test::StoreWriter;

namespace {
using Cache = rtcache::ReadThroughCache<int, std::string, StoreLoader<>, StoreWriter<>>;
}

TEST_CASE("erase deletes from the store, then from the cache") {
  FakeStore<> store;
  store.set(1, "one");
  Cache cache(rtcache::Options{.capacity = 8, .seed = 1}, StoreLoader<>{&store},
              StoreWriter<>{&store});
  REQUIRE(cache.get(1));
  cache.erase(1);
  CHECK(store.deletes() == 1);
  CHECK(store.peek(1) == std::nullopt);
  CHECK(cache.get_if_present(1) == std::nullopt);
  CHECK(cache.get(1) == std::nullopt);
  // Erasing a key that is in neither is fine.
  cache.erase(99);
  CHECK(store.deletes() == 2);
}

TEST_CASE("a failing delete leaves both the store and the cache unchanged") {
  FakeStore<> store;
  store.set(1, "one");
  Cache cache(rtcache::Options{.capacity = 8, .seed = 1}, StoreLoader<>{&store},
              StoreWriter<>{&store});
  REQUIRE(cache.get(1));
  store.fail_writes(true);
  CHECK_THROWS_AS(cache.erase(1), StoreError);
  CHECK(store.peek(1)->value == "one");
  CHECK(cache.get_if_present(1) == std::optional<std::string>("one"));
  CHECK(cache.stats().write_failures == 1);
  CHECK(cache.pending_count() == 0);
}

TEST_CASE("invalidate drops a key from the cache only") {
  FakeStore<> store;
  store.set(1, "one");
  store.set(2, "two");
  Cache cache(rtcache::Options{.capacity = 8, .seed = 1}, StoreLoader<>{&store},
              StoreWriter<>{&store});
  REQUIRE(cache.get(1));
  REQUIRE(cache.get(2));
  cache.invalidate(1);
  CHECK(cache.get_if_present(1) == std::nullopt);
  CHECK(store.peek(1)->value == "one");
  cache.invalidate_all();
  CHECK(cache.size() == 0);
  CHECK(store.peek(2)->value == "two");
  CHECK(cache.get(1) == std::optional<std::string>("one"));
  CHECK(store.reads() == 3);
}
