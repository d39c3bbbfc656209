// S3-FIFO: exact victims on short, hand-computed sequences (checked against
// the evict-then-insert order of the paper's pseudo code). With a capacity of
// 10 the small queue holds 1 entry, the main queue 9, the ghost queue 9.
// Then S3-FIFO in caches with a weigher (queue shares in weight, a ghost queue
// sized by entries), and the ghost queue's growth.

#include <cstddef>
#include <cstdint>
#include <random>
#include <rtcache/detail/ghost_queue.hpp>
#include <rtcache/policy/s3fifo.hpp>
#include <rtcache/rtcache.hpp>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/policy_harness.hpp"

using Harness = rtcache::test::PolicyHarness<rtcache::policy::S3Fifo>;
using Keys = std::vector<int>;

namespace {
Keys ghosts(const Harness& h) {
  Keys keys;
  // Ghosts are hashes; map them back through the harness's hash function.
  h.shard().for_each_ghost([&](std::uint64_t hash) {
    for (int k = 0; k < 100; ++k) {
      if (Harness::hash_of(k) == hash) keys.push_back(k);
    }
  });
  return keys;
}
}  // namespace

TEST_CASE("S3-FIFO sends one-hit wonders through the small queue to the ghost queue") {
  Harness h(10);
  for (int k = 1; k <= 10; ++k) h.get(k);
  h.get(11);  // 1 was never hit: evicted, remembered as a ghost
  CHECK(h.take_evicted() == Keys{1});
  CHECK(ghosts(h) == Keys{1});
  CHECK(h.get(2));
  h.get(12);  // 2 was hit: promoted to the main queue; 3 goes instead
  CHECK(h.take_evicted() == Keys{3});
  CHECK(h.shard().main_size() == 1);
  h.get(1);  // a ghost hit: 4 makes room, and 1 goes straight to the main queue
  CHECK(h.take_evicted() == Keys{4});
  CHECK(ghosts(h) == Keys{3, 4});
  CHECK(h.shard().main_size() == 2);
  CHECK(h.order() == Keys{5, 6, 7, 8, 9, 10, 11, 12, 2, 1});
  CHECK(h.check());
}

TEST_CASE("S3-FIFO's main queue gives entries with a frequency another round") {
  Harness h(10);
  for (int k = 1; k <= 10; ++k) h.get(k);
  for (int k = 1; k <= 9; ++k) CHECK(h.get(k));
  h.get(11);  // 1..9 promoted (frequency reset to 0), 10 evicted
  CHECK(h.take_evicted() == Keys{10});
  CHECK(h.shard().main_size() == 9);
  CHECK(h.get(1));  // frequency 1 in the main queue
  h.get(12);
  CHECK(h.take_evicted() == Keys{11});
  h.get(10);  // ghost hit: 12 evicted from the small queue, 10 joins the main queue
  CHECK(h.take_evicted() == Keys{12});
  CHECK(h.shard().small_size() == 0);
  h.get(13);  // small queue empty: the main queue evicts; 1 goes round, 2 goes
  CHECK(h.take_evicted() == Keys{2});
  h.get(14);
  CHECK(h.take_evicted() == Keys{13});
  CHECK(ghosts(h) == Keys{11, 12, 13});
  CHECK(h.order() == Keys{14, 3, 4, 5, 6, 7, 8, 9, 10, 1});
  CHECK(h.check());
}

TEST_CASE("S3-FIFO frequencies saturate at 3") {
  Harness h(10);
  for (int k = 1; k <= 10; ++k) h.get(k);
  for (int i = 0; i < 10; ++i) CHECK(h.get(5));
  CHECK(h.entry(5).frequency.load() == 3);
}

TEST_CASE("S3-FIFO works with fewer than ten entries (no small-queue share)") {
  Harness h(3);
  for (int k = 1; k <= 3; ++k) h.get(k);
  CHECK(h.get(2));
  h.get(4);  // 1 goes; 2 is promoted on the way
  CHECK(h.take_evicted() == Keys{1});
  h.get(5);
  CHECK(h.take_evicted() == Keys{3});
  h.get(1);  // ghost hit
  CHECK(h.take_evicted() == Keys{4});
  CHECK(h.check());
}

// -- the ghost queue --------------------------------------------------------

namespace {
std::vector<std::uint64_t> hashes(const rtcache::detail::GhostQueue& q) {
  std::vector<std::uint64_t> out;
  q.for_each([&](std::uint64_t h) { out.push_back(h); });
  return out;
}
}  // namespace

TEST_CASE("a grown ghost queue keeps its ghosts in order and holds more") {
  using Hashes = std::vector<std::uint64_t>;
  rtcache::detail::GhostQueue q(5);
  for (std::uint64_t h = 1; h <= 6; ++h) q.push(h * 0x9e3779b97f4a7c15ULL);  // forgets the 1st
  CHECK(q.remove(4 * 0x9e3779b97f4a7c15ULL));  // a hole in the middle of the pool
  q.grow(3);                                   // not larger: nothing changes
  CHECK(q.capacity() == 5);
  q.grow(12);
  CHECK(q.capacity() == 12);
  const auto h = [](std::uint64_t i) { return i * 0x9e3779b97f4a7c15ULL; };
  CHECK(hashes(q) == Hashes{h(2), h(3), h(5), h(6)});
  CHECK(q.check_invariants());
  for (std::uint64_t i = 7; i <= 14; ++i) q.push(h(i));  // 12 ghosts: nothing forgotten
  CHECK(q.size() == 12);
  CHECK(hashes(q) ==
        Hashes{h(2), h(3), h(5), h(6), h(7), h(8), h(9), h(10), h(11), h(12), h(13), h(14)});
  q.push(h(15));  // full: the oldest goes
  CHECK(!q.contains(h(2)));
  CHECK(hashes(q).front() == h(3));
  CHECK(hashes(q).back() == h(15));
  CHECK(q.check_invariants());

  rtcache::detail::GhostQueue empty(0);
  empty.push(h(1));
  CHECK(empty.size() == 0);
  empty.grow(2);
  empty.push(h(1));
  empty.push(h(2));
  CHECK(hashes(empty) == Hashes{h(1), h(2)});
  CHECK(empty.check_invariants());
}

// -- with a weigher -----------------------------------------------------------

namespace {
template <class Weigher>
auto weighted_s3fifo(std::size_t capacity, Weigher weigher) {
  return rtcache::make_cache<int, std::string, rtcache::policy::S3Fifo>(
      rtcache::Options{.capacity = capacity, .shards = 1, .seed = 1},
      [](const int& k) { return std::to_string(k); }, [](const int&, const std::string&) {},
      rtcache::CacheHooks<int, std::string>{.weigher = weigher});
}

bool invariants_hold(const auto& cache) {
  return cache.check_shards([](const auto& p, std::size_t n) { return p.check_invariants(n); });
}
}  // namespace

// The ghost queue remembers as many hashes as the shard holds entries (up to
// the main queue's share): a shard with 2^30 units of weight must not
// allocate 2^30 ghosts up front (16 bytes a ghost and more for the index),
// only what the entries need, as they come.
TEST_CASE("a weighted S3-FIFO shard sizes its ghost queue by entries, growing it") {
  constexpr std::size_t kWeight = std::size_t{1} << 20;  // 1024 entries fit
  auto cache =
      weighted_s3fifo(std::size_t{1} << 30, [](const int&, const std::string&) { return kWeight; });
  std::size_t ghost_capacity = 0;
  std::size_t main_count = 0;
  std::size_t ghosts = 0;
  const auto look = [&] {
    return cache.check_shards([&](const auto& p, std::size_t n) {
      ghost_capacity = p.ghost_capacity();
      main_count = p.main_count();
      ghosts = 0;
      p.for_each_ghost([&](std::uint64_t) { ++ghosts; });
      return p.check_invariants(n);
    });
  };
  REQUIRE(look());
  CHECK(ghost_capacity == 256);

  for (int k = 0; k < 1024; ++k) REQUIRE(cache.get(k));
  for (int k = 0; k < 1024; ++k) REQUIRE(cache.get(k));  // each hit once: promoted later
  REQUIRE(look());
  CHECK(ghost_capacity == 1024);  // room for the shard's entries (and not for 2^30)
  CHECK(main_count == 0);         // nothing evicted yet, nothing in the main queue

  for (int k = 1024; k < 4096; ++k) REQUIRE(cache.get(k));  // new keys, used once
  REQUIRE(look());
  CHECK(cache.size() == 1024);
  CHECK(main_count > 512);              // the hit keys were promoted
  CHECK(ghost_capacity >= main_count);  // grown with them
  CHECK(ghost_capacity <= 2 * 1024);    // but only as far as the entries need
  CHECK(ghosts == ghost_capacity);      // and filled by the one-hit keys
  CHECK(cache.get_if_present(4095));
}

// The small queue's share is a tenth of the capacity in weight: 10 entries of
// weight 1000 in 100000. A scan of new keys passes through it while keys hit
// several times stay in the main queue. Counted in entries (a share of 10000
// entries), the small queue would never be over its share: each promoted hot
// key would be the main queue's next victim, and the scan would flush them.
TEST_CASE("a weighted S3-FIFO shard measures its queues in weight") {
  auto cache =
      weighted_s3fifo(100000, [](const int&, const std::string&) { return std::size_t{1000}; });
  std::size_t small_capacity = 0;
  std::size_t main_capacity = 0;
  std::size_t small_size = 0;
  std::size_t small_count = 0;
  std::size_t main_size = 0;
  const auto look = [&] {
    return cache.check_shards([&](const auto& p, std::size_t n) {
      small_capacity = p.small_capacity();
      main_capacity = p.main_capacity();
      small_size = p.small_size();
      small_count = p.small_count();
      main_size = p.main_size();
      return p.check_invariants(n);
    });
  };
  REQUIRE(look());
  CHECK(small_capacity == 10000);
  CHECK(main_capacity == 90000);

  constexpr int kHot = 80;
  for (int round = 0; round < 4; ++round) {
    for (int k = 0; k < kHot; ++k) REQUIRE(cache.get(k));
  }
  for (int k = 1000; k < 3000; ++k) {
    REQUIRE(cache.get(k));
    REQUIRE(cache.weight() <= 100000);
  }
  REQUIRE(look());
  CHECK(main_size == kHot * 1000);  // the hot keys, in weight
  CHECK(small_size == small_count * 1000);
  CHECK(small_count == 100 - kHot);
  int hot_cached = 0;
  for (int k = 0; k < kHot; ++k) hot_cached += cache.get_if_present(k) ? 1 : 0;
  CHECK(hot_cached >= kHot * 9 / 10);
}

// Random gets, puts and invalidations with weights from 0 to 40: the queues'
// weights stay the sums of their entries' weights, and the lists hold the
// resident entries.
TEST_CASE("a weighted S3-FIFO shard keeps its invariants under a random mix") {
  auto cache = rtcache::make_cache<int, std::string, rtcache::policy::S3Fifo>(
      rtcache::Options{.capacity = 400, .shards = 1, .seed = 1},
      [](const int& k) { return std::string(static_cast<std::size_t>(k * 7 % 23), 'x'); },
      [](const int&, const std::string&) {},
      rtcache::CacheHooks<int, std::string>{
          .weigher = [](const int&, const std::string& v) { return v.size(); }});
  std::mt19937 random(42);
  std::uniform_int_distribution<int> op(0, 99);
  std::uniform_int_distribution<int> hot(0, 30);
  std::uniform_int_distribution<int> any(0, 400);
  std::uniform_int_distribution<std::size_t> length(0, 40);
  bool zero_weighted = false;
  for (int i = 0; i < 20000; ++i) {
    const int o = op(random);
    const int k = o % 2 == 0 ? hot(random) : any(random);
    if (o < 70) {
      REQUIRE(cache.get(k));
    } else if (o < 90) {
      const std::size_t n = o < 75 ? 0 : length(random);
      zero_weighted = zero_weighted || n == 0;
      cache.put(k, std::string(n, 'y'));
    } else {
      cache.invalidate(k);
    }
    REQUIRE(cache.weight() <= 400);
    if (i % 97 == 0) REQUIRE(invariants_hold(cache));
  }
  CHECK(zero_weighted);
  CHECK(invariants_hold(cache));
}

// Every entry weighing 1, a weighted shard must behave as an unweighted one
// once its ghost queue has grown. In a loop over more keys than fit, keys
// reach the main queue only as returning ghosts: a ghost queue that grew
// with the main queue stayed at 256 hashes, no key of the 750-key loop came
// back as a ghost, and the weighted cache hit nothing.
TEST_CASE("a weighted S3-FIFO shard with weights of 1 keeps a loop as an unweighted one does") {
  constexpr int kCapacity = 750;
  constexpr int kLoop = 1011;  // as in the LIRS loop trace
  auto weighted = weighted_s3fifo(kCapacity, [](const int&, const std::string&) { return 1; });
  auto unweighted = rtcache::make_cache<int, std::string, rtcache::policy::S3Fifo>(
      rtcache::Options{.capacity = kCapacity, .shards = 1, .seed = 1},
      [](const int& k) { return std::to_string(k); });
  for (int round = 0; round < 20; ++round) {
    for (int k = 0; k < kLoop; ++k) {
      REQUIRE(weighted.get(k));
      REQUIRE(unweighted.get(k));
    }
  }
  CHECK(unweighted.stats().hits > 5'000);  // the main queue keeps part of the loop
  CHECK(weighted.stats().hits == unweighted.stats().hits);
  CHECK(invariants_hold(weighted));
}
