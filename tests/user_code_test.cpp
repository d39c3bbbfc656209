// Contract point 2: no lock is held across the loader or the writer. A slow
// store call does not block other keys, user code may use the cache for other
// keys, and a loader that asks for its own key gets an error, not a deadlock.

#include <atomic>
#include <chrono>
#include <functional>
#include <latch>
#include <optional>
#include <rtcache/rtcache.hpp>
#include <string>
#include <thread>
#include <utility>

#include "support/catch.hpp"
#include "support/fake_store.hpp"

using rtcache::test::FakeStore;
using rtcache::test::spin_until;
using rtcache::test::StoreLoader;
using rtcache::test::StoreWriter;

namespace {
using Cache = rtcache::ReadThroughCache<int, std::string, StoreLoader<>, StoreWriter<>>;

/// A writer that stops in the store, for the writes of `gated` (or for every
/// write when `gated` is empty), until `release` opens.
struct GatedWriter {
  FakeStore<>* store;
  std::latch* entered;
  std::latch* release;
  std::string gated;
  void write(const int& key, const std::string& value) {
    if (gated.empty() || value == gated) {
      entered->count_down();
      release->wait();
    }
    store->write(key, value);
  }
};
using GatedCache = rtcache::ReadThroughCache<int, std::string, StoreLoader<>, GatedWriter>;

/// A writer that calls `during_write(key)` (which may use the cache) before
/// it writes to the store.
struct ReentrantWriter {
  FakeStore<>* store;
  std::function<void(const int&)>* during_write;
  void write(const int& key, const std::string& value) {
    (*during_write)(key);
    store->write(key, value);
  }
  void erase(const int& key) { store->erase(key); }
};
}  // namespace

TEST_CASE(
    "a loader blocked in the store does not block gets, puts and erases of other keys in its "
    "shard") {
  FakeStore<> store;
  for (int k = 0; k < 10; ++k) store.set(k, "v" + std::to_string(k));
  std::function<void(const int&)> before_read;
  Cache cache(rtcache::Options{.capacity = 64, .shards = 1, .seed = 1},
              StoreLoader<>{&store, &before_read}, StoreWriter<>{&store});
  std::latch loader_entered(1);
  std::latch release_loader(1);
  before_read = [&](const int& key) {
    if (key == 0) {
      loader_entered.count_down();
      release_loader.wait();
    }
  };

  std::thread blocked([&] { CHECK(cache.get(0) == std::optional<std::string>("v0")); });
  loader_entered.wait();

  // All of these share the blocked loader's shard, and complete.
  CHECK(cache.get(1) == std::optional<std::string>("v1"));
  cache.put(2, "two");
  CHECK(cache.get(2) == std::optional<std::string>("two"));
  cache.erase(3);
  CHECK(cache.get(3) == std::nullopt);
  cache.invalidate(1);
  CHECK(cache.get_if_present(4) == std::nullopt);
  CHECK(cache.size() == 1);

  release_loader.count_down();
  blocked.join();
  CHECK(cache.get_if_present(0) == std::optional<std::string>("v0"));
}

TEST_CASE("a loader may use the cache for other keys") {
  FakeStore<> store;
  store.set(1, "one");
  std::function<void(const int&)> before_read;
  Cache cache(rtcache::Options{.capacity = 64, .shards = 1, .seed = 1},
              StoreLoader<>{&store, &before_read}, StoreWriter<>{&store});
  before_read = [&](const int& key) {
    if (key == 2) {
      CHECK(cache.get(1) == std::optional<std::string>("one"));
      cache.put(5, "five");
    }
  };
  store.set(2, "two");
  CHECK(cache.get(2) == std::optional<std::string>("two"));
  CHECK(cache.get_if_present(5) == std::optional<std::string>("five"));
}

TEST_CASE("a loader that asks for its own key gets RecursiveCallError instead of a deadlock") {
  FakeStore<> store;
  store.set(1, "one");
  std::function<void(const int&)> before_read;
  Cache cache(rtcache::Options{.capacity = 64, .seed = 1}, StoreLoader<>{&store, &before_read},
              StoreWriter<>{&store});
  bool inner_threw = false;
  before_read = [&](const int& key) {
    try {
      (void)cache.get(key);
    } catch (const rtcache::RecursiveCallError& e) {
      inner_threw = std::string(e.what()).find("same key") != std::string::npos;
      throw;
    }
  };
  CHECK_THROWS_AS(cache.get(1), rtcache::RecursiveCallError);
  CHECK(inner_threw);
  CHECK(cache.pending_count() == 0);
  // The cache still works for that key afterwards.
  before_read = nullptr;
  CHECK(cache.get(1) == std::optional<std::string>("one"));
}

TEST_CASE("loaders that ask for each other's keys get RecursiveCallError instead of a deadlock") {
  // The loader of 1 asks for 2 and the loader of 2 for 1, on two threads,
  // once both loads have started: each would wait for the other forever.
  // The second to wait closes the cycle and is refused; its loader's
  // failure then ends the first one's wait with the same error.
  FakeStore<> store;
  store.set(1, "one");
  store.set(2, "two");
  std::function<void(const int&)> before_read;
  Cache cache(rtcache::Options{.capacity = 64, .seed = 1}, StoreLoader<>{&store, &before_read},
              StoreWriter<>{&store});
  std::latch both_loading(2);
  std::atomic<int> inner_refusals{0};
  before_read = [&](const int& key) {
    both_loading.arrive_and_wait();
    try {
      (void)cache.get(3 - key);
    } catch (const rtcache::RecursiveCallError& e) {
      if (std::string(e.what()).find("cycle") != std::string::npos) inner_refusals.fetch_add(1);
      throw;
    }
  };
  std::atomic<int> refused{0};
  const auto get = [&](int key) {
    try {
      (void)cache.get(key);
    } catch (const rtcache::RecursiveCallError&) {
      refused.fetch_add(1);
    }
  };
  std::thread first(get, 1);
  std::thread second(get, 2);
  first.join();
  second.join();
  CHECK(refused.load() == 2);  // both gets: one refused, one failed with it
  CHECK(inner_refusals.load() == 2);
  CHECK(cache.pending_count() == 0);
  before_read = nullptr;
  CHECK(cache.get(1) == std::optional<std::string>("one"));
  CHECK(cache.get(2) == std::optional<std::string>("two"));
}

TEST_CASE("a cycle of loads across two caches of different types is refused too") {
  FakeStore<> names;
  names.set(1, "one");
  std::latch both_loading(2);
  std::function<void(const int&)> before_name;
  Cache by_name(rtcache::Options{.capacity = 8, .seed = 1}, StoreLoader<>{&names, &before_name},
                StoreWriter<>{&names});
  std::function<std::optional<int>(const int&)> load_length;
  auto lengths = rtcache::make_cache<int, int>(rtcache::Options{.capacity = 8, .seed = 1},
                                               [&](const int& k) { return load_length(k); });
  before_name = [&](const int& key) {
    both_loading.arrive_and_wait();
    (void)lengths.get(key);  // waits for the other thread's load of the length
  };
  load_length = [&](const int& key) -> std::optional<int> {
    both_loading.arrive_and_wait();
    const auto name = by_name.get(key);  // waits for the other thread's load of the name
    return name ? std::optional<int>(static_cast<int>(name->size())) : std::nullopt;
  };
  std::atomic<int> refused{0};
  const auto counting_refusal = [&](auto get) {
    try {
      get();
    } catch (const rtcache::RecursiveCallError&) {
      refused.fetch_add(1);
    }
  };
  std::thread first(counting_refusal, [&] { (void)by_name.get(1); });
  std::thread second(counting_refusal, [&] { (void)lengths.get(1); });
  first.join();
  second.join();
  CHECK(refused.load() == 2);
  CHECK(by_name.pending_count() == 0);
  CHECK(lengths.pending_count() == 0);
}

TEST_CASE("a writer that writes its own key through the cache gets RecursiveCallError") {
  FakeStore<> store;
  std::function<void(const int&)> during_write;
  rtcache::ReadThroughCache<int, std::string, StoreLoader<>, ReentrantWriter> cache(
      rtcache::Options{.capacity = 8, .seed = 1}, StoreLoader<>{&store},
      ReentrantWriter{&store, &during_write});
  during_write = [&](const int& key) { cache.put(key, "inner"); };
  CHECK_THROWS_AS(cache.put(1, "outer"), rtcache::RecursiveCallError);
  CHECK(cache.pending_count() == 0);
  CHECK(store.peek(1) == std::nullopt);
  // Writing another key from the writer is fine.
  during_write = [&](const int& key) {
    if (key == 1) cache.put(2, "inner");
  };
  cache.put(1, "outer");
  CHECK(cache.get(1) == std::optional<std::string>("outer"));
  CHECK(cache.get(2) == std::optional<std::string>("inner"));
}

TEST_CASE("a writer blocked in the store does not block other keys of its shard") {
  FakeStore<> store;
  store.set(9, "nine");
  std::latch entered(1);
  std::latch release(1);
  GatedCache cache(rtcache::Options{.capacity = 8, .shards = 1, .seed = 1}, StoreLoader<>{&store},
                   GatedWriter{&store, &entered, &release, ""});
  std::thread writer([&] { cache.put(1, "one"); });
  entered.wait();
  CHECK(cache.get(9) == std::optional<std::string>("nine"));
  cache.invalidate(9);
  release.count_down();
  writer.join();
  CHECK(cache.get_if_present(1) == std::optional<std::string>("one"));
}

TEST_CASE("a write queued behind a slow write of its key waits for it, and blocks no other key") {
  FakeStore<> store;
  std::latch entered(1);
  std::latch release(1);
  GatedCache cache(rtcache::Options{.capacity = 8, .shards = 1, .seed = 1}, StoreLoader<>{&store},
                   GatedWriter{&store, &entered, &release, "first"});
  std::thread first([&] { cache.put(1, "first"); });
  entered.wait();
  std::atomic<bool> second_done{false};
  std::thread second([&] {
    cache.put(1, "second");
    second_done.store(true);
  });
  // Long past the queued write's spin: it is asleep by now, and must not
  // keep other writes of the shard out.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  cache.put(2, "two");
  CHECK(cache.get_if_present(2) == std::optional<std::string>("two"));
  CHECK_FALSE(second_done.load());
  release.count_down();
  first.join();
  second.join();
  CHECK(cache.get_if_present(1) == std::optional<std::string>("second"));
  CHECK(store.peek(1)->value == "second");
  CHECK(cache.pending_count() == 0);
}

namespace {
/// Two keys whose writes share a slot of the write gate's fast path
/// (detail::WriteSlots) but not its tag, in a cache of one shard with `seed`:
/// the cache hashes an int with std::hash (the identity), then mix64 with the
/// seed.
std::pair<int, int> keys_sharing_a_write_slot(std::uint64_t seed) {
  using rtcache::detail::WriteSlots;
  const auto hash = [seed](int k) {
    return rtcache::detail::mix64(static_cast<std::uint64_t>(std::hash<int>{}(k)) ^ seed);
  };
  for (int a = 0;; ++a) {
    for (int b = a + 1; b < a + 256; ++b) {
      if (WriteSlots::index(hash(a)) == WriteSlots::index(hash(b)) &&
          WriteSlots::tag(hash(a)) != WriteSlots::tag(hash(b))) {
        return {a, b};
      }
    }
  }
}
}  // namespace

TEST_CASE("a writer may write another key of its write slot; its own key is still refused") {
  const auto [a, b] = keys_sharing_a_write_slot(1);
  FakeStore<> store;
  std::function<void(const int&)> during_write;
  rtcache::ReadThroughCache<int, std::string, StoreLoader<>, ReentrantWriter> cache(
      rtcache::Options{.capacity = 8, .shards = 1, .seed = 1}, StoreLoader<>{&store},
      ReentrantWriter{&store, &during_write});
  during_write = [&, b = b](const int& key) {
    if (key != b) cache.put(b, "inner");
  };
  cache.put(a, "outer");  // b's write finds the slot held by a's, on this thread
  CHECK(cache.get(a) == std::optional<std::string>("outer"));
  CHECK(cache.get(b) == std::optional<std::string>("inner"));
  // a inside b inside a: a's own write is refused, not deadlocked.
  during_write = [&, a = a, b = b](const int& key) {
    if (key == a) cache.put(b, "b");
    if (key == b) cache.put(a, "a again");
  };
  CHECK_THROWS_AS(cache.put(a, "a"), rtcache::RecursiveCallError);
  CHECK(cache.pending_count() == 0);
  during_write = [](const int&) {};
  cache.put(a, "after");  // the gates were all given back
  cache.put(b, "after");
  CHECK(cache.get(a) == std::optional<std::string>("after"));
}

TEST_CASE("a write does not wait for a slow write of another key of its write slot") {
  const auto [a, b] = keys_sharing_a_write_slot(1);
  FakeStore<> store;
  std::latch entered(1);
  std::latch release(1);
  GatedCache cache(rtcache::Options{.capacity = 8, .shards = 1, .seed = 1}, StoreLoader<>{&store},
                   GatedWriter{&store, &entered, &release, "slow"});
  std::thread slow([&, a = a] { cache.put(a, "slow"); });
  entered.wait();
  std::atomic<bool> quick_done{false};
  std::thread quick([&, b = b] {
    cache.put(b, "quick");
    quick_done.store(true);
  });
  // If the quick write waited for the slow one, it would never finish before
  // the release: give up after a long while rather than hang.
  for (int i = 0; i < 3000 && !quick_done.load(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(quick_done.load());
  release.count_down();
  slow.join();
  quick.join();
  CHECK(cache.get_if_present(a) == std::optional<std::string>("slow"));
  CHECK(cache.get_if_present(b) == std::optional<std::string>("quick"));
  CHECK(cache.pending_count() == 0);
}
