// Contract points 3 and 4: a failing loader caches nothing and the next get
// tries again; "not found" is an answer, not an error.

#include <rtcache/rtcache.hpp>
#include <string>

#include "support/catch.hpp"
#include "support/fake_store.hpp"

using rtcache::test::FakeStore;
using rtcache::test::StoreError;
using rtcache::test::StoreLoader;

namespace {
using Cache = rtcache::ReadThroughCache<int, std::string, StoreLoader<>>;
}

TEST_CASE(
    "a loader exception reaches the caller, nothing is cached, and the next get tries again") {
  FakeStore<> store;
  store.set(1, "one");
  Cache cache(rtcache::Options{.capacity = 8, .seed = 1}, StoreLoader<>{&store});

  store.fail_reads(true);
  CHECK_THROWS_AS(cache.get(1), StoreError);
  CHECK_THROWS_AS(cache.get(1), StoreError);
  CHECK(cache.size() == 0);
  CHECK(cache.get_if_present(1) == std::nullopt);
  CHECK(store.reads() == 2);
  CHECK(cache.stats().load_failures == 2);
  CHECK(cache.pending_count() == 0);

  store.fail_reads(false);
  CHECK(cache.get(1) == std::optional<std::string>("one"));
  CHECK(cache.stats().loads == 3);
  CHECK(cache.get(1) == std::optional<std::string>("one"));
  CHECK(store.reads() == 3);
}

TEST_CASE("not found is std::nullopt, not an exception, and is not cached") {
  FakeStore<> store;
  Cache cache(rtcache::Options{.capacity = 8, .seed = 1}, StoreLoader<>{&store});
  CHECK(cache.get(42) == std::nullopt);
  CHECK(cache.get_versioned(42) == std::nullopt);
  CHECK(cache.size() == 0);
  CHECK(store.reads() == 2);
  // Once the row exists, the cache finds it.
  store.set(42, "answer");
  CHECK(cache.get(42) == std::optional<std::string>("answer"));
}

TEST_CASE("loaders may return V, optional<V>, Versioned<V> or optional<Versioned<V>>") {
  rtcache::Options options{.capacity = 8, .seed = 1};
  auto plain = rtcache::make_cache<int, int>(options, [](const int& k) { return k * 2; });
  CHECK(plain.get(4) == std::optional<int>(8));
  CHECK(plain.get_versioned(4) == std::optional<rtcache::Versioned<int>>({8, 0}));

  auto optional = rtcache::make_cache<int, int>(
      options, [](const int& k) { return k > 0 ? std::optional<int>(k) : std::nullopt; });
  CHECK(optional.get(3) == std::optional<int>(3));
  CHECK(optional.get(-3) == std::nullopt);

  auto versioned = rtcache::make_cache<int, int>(options, [](const int& k) {
    return rtcache::Versioned<int>{k, 7};
  });
  CHECK(versioned.get_versioned(5) == std::optional<rtcache::Versioned<int>>({5, 7}));

  auto maybe_versioned = rtcache::make_cache<int, int>(
      options, [](const int& k) -> std::optional<rtcache::Versioned<int>> {
        if (k == 0) return std::nullopt;
        return rtcache::Versioned<int>{k, 3};
      });
  CHECK(maybe_versioned.get(0) == std::nullopt);
  CHECK(maybe_versioned.get_versioned(9) == std::optional<rtcache::Versioned<int>>({9, 3}));
}
