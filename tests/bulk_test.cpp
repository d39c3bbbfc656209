// get_all: cached keys from the cache, the rest in one batch call; keys being
// loaded elsewhere are waited for, not loaded twice.

#include <atomic>
#include <functional>
#include <latch>
#include <optional>
#include <rtcache/rtcache.hpp>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "support/catch.hpp"
#include "support/fake_store.hpp"

namespace {

/// A loader with a batch form; keys above 100 do not exist.
struct BatchLoader {
  std::atomic<int>* single_calls;
  std::atomic<int>* batch_calls;
  std::vector<int>* last_batch;
  std::function<void(int)>* before_single = nullptr;

  std::optional<std::string> operator()(const int& key) const {
    if (before_single != nullptr && *before_single) (*before_single)(key);
    single_calls->fetch_add(1);
    if (key > 100) return std::nullopt;
    return "v" + std::to_string(key);
  }
  std::unordered_map<int, std::string> load_all(const std::vector<int>& keys) const {
    batch_calls->fetch_add(1);
    *last_batch = keys;
    std::unordered_map<int, std::string> rows;
    for (int k : keys) {
      if (k <= 100) rows.emplace(k, "v" + std::to_string(k));
    }
    return rows;
  }
};

static_assert(rtcache::BatchLoaderFor<BatchLoader, int, std::string>);

}  // namespace

TEST_CASE("get_all serves cached keys and loads the others in one batch") {
  std::atomic<int> single{0};
  std::atomic<int> batch{0};
  std::vector<int> last_batch;
  rtcache::ReadThroughCache<int, std::string, BatchLoader> cache(
      rtcache::Options{.capacity = 64, .seed = 1}, BatchLoader{&single, &batch, &last_batch});
  REQUIRE(cache.get(1) == std::optional<std::string>("v1"));

  const auto found = cache.get_all(std::vector<int>{1, 2, 3, 101, 2});
  CHECK(found.size() == 3);
  CHECK(found.at(1) == "v1");
  CHECK(found.at(2) == "v2");
  CHECK(found.at(3) == "v3");
  CHECK(found.count(101) == 0);  // not returned by the batch: not found
  CHECK(batch.load() == 1);
  CHECK(last_batch == std::vector<int>{2, 3, 101});  // each missing key once
  CHECK(single.load() == 1);

  // The partial results were cached.
  CHECK(cache.get_if_present(2) == std::optional<std::string>("v2"));
  CHECK(cache.get_if_present(3) == std::optional<std::string>("v3"));
  CHECK(cache.get_if_present(101) == std::nullopt);
  CHECK(cache.pending_count() == 0);
}

TEST_CASE("get_all waits for a key another thread is loading instead of loading it again") {
  std::atomic<int> single{0};
  std::atomic<int> batch{0};
  std::vector<int> last_batch;
  std::function<void(int)> before_single;
  rtcache::ReadThroughCache<int, std::string, BatchLoader> cache(
      rtcache::Options{.capacity = 64, .seed = 1},
      BatchLoader{&single, &batch, &last_batch, &before_single});
  std::latch in_load(1);
  std::latch release(1);
  before_single = [&](int key) {
    if (key == 5) {
      in_load.count_down();
      release.wait();
    }
  };
  std::thread other([&] { CHECK(cache.get(5) == std::optional<std::string>("v5")); });
  in_load.wait();
  std::unordered_map<int, std::string, std::hash<int>> found;
  std::thread bulk([&] {
    auto result = cache.get_all(std::vector<int>{4, 5, 6});
    found.insert(result.begin(), result.end());
  });
  rtcache::test::spin_until([&] { return cache.stats().coalesced_waits == 1; });
  release.count_down();
  other.join();
  bulk.join();
  CHECK(found.size() == 3);
  CHECK(found.at(5) == "v5");
  CHECK(last_batch == std::vector<int>{4, 6});
  CHECK(single.load() == 1);
}

TEST_CASE("get_all without a batch loader loads the missing keys one by one") {
  int calls = 0;
  auto cache = rtcache::make_cache<int, int>(rtcache::Options{.capacity = 64, .seed = 1},
                                             [&](const int& k) -> std::optional<int> {
                                               ++calls;
                                               if (k < 0) return std::nullopt;
                                               return k * 10;
                                             });
  const auto found = cache.get_all(std::vector<int>{1, 2, -3});
  CHECK(found.size() == 2);
  CHECK(found.at(2) == 20);
  CHECK(calls == 3);
}

TEST_CASE("get_all's loader may read another key of the same get_all") {
  // get_all claims 1 and 2 before it loads either; the loader of 1 asks for
  // 2, claimed by this very thread but not being loaded: it is loaded there
  // and then, once, as a get(1) would, instead of refused as a cycle.
  std::function<std::optional<std::string>(const int&)> body;
  std::atomic<int> loads_of_2{0};
  auto cache = rtcache::make_cache<int, std::string>(rtcache::Options{.capacity = 64, .seed = 1},
                                                     [&](const int& k) { return body(k); });
  body = [&](const int& k) -> std::optional<std::string> {
    if (k == 1) return "v1+" + cache.get(2).value_or("?");
    loads_of_2.fetch_add(1);
    return "v" + std::to_string(k);
  };
  const auto found = cache.get_all(std::vector<int>{1, 2});
  CHECK(found.size() == 2);
  CHECK(found.at(1) == "v1+v2");
  CHECK(found.at(2) == "v2");
  CHECK(loads_of_2.load() == 1);
  CHECK(cache.pending_count() == 0);
  CHECK(cache.get_if_present(2) == std::optional<std::string>("v2"));
}

TEST_CASE("a failing batch load releases every key and propagates") {
  struct FailingBatch {
    std::optional<int> operator()(const int& k) const { return k; }
    std::unordered_map<int, int> load_all(const std::vector<int>&) const {
      throw std::runtime_error("batch failed");
    }
  };
  rtcache::ReadThroughCache<int, int, FailingBatch> cache(
      rtcache::Options{.capacity = 8, .seed = 1});
  CHECK_THROWS_AS(cache.get_all(std::vector<int>{1, 2, 3}), std::runtime_error);
  CHECK(cache.pending_count() == 0);
  CHECK(cache.size() == 0);
  CHECK(cache.get(2) == std::optional<int>(2));
}

TEST_CASE("a get_all that fails partway releases the loads it had claimed") {
  // The loader of 1 asks for {2, 1}: 2 is claimed for loading, then 1 is
  // refused (its own loader is running). The claim of 2 must not outlive the
  // call: a later get of 2 would wait for it for ever (or, on this thread,
  // be refused as recursive).
  using Loader = std::function<std::optional<std::string>(const int&)>;
  rtcache::ReadThroughCache<int, std::string, Loader>* self = nullptr;
  int refused = 0;
  rtcache::ReadThroughCache<int, std::string, Loader> cache(
      rtcache::Options{.capacity = 64, .seed = 1}, [&](const int& key) {
        if (key == 1) {
          try {
            (void)self->get_all(std::vector<int>{2, 1});
          } catch (const rtcache::RecursiveCallError&) {
            ++refused;
          }
        }
        return std::optional<std::string>("v" + std::to_string(key));
      });
  self = &cache;
  CHECK(cache.get(1) == "v1");
  CHECK(refused == 1);
  CHECK(cache.pending_count() == 0);
  CHECK(cache.get(2) == "v2");
}
