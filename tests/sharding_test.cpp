// The shard index comes from a seeded mix of the hash, so keys that std::hash
// maps to a regular pattern (it is the identity on integers) still spread.

#include <cstdint>
#include <rtcache/rtcache.hpp>
#include <utility>
#include <vector>

#include "support/catch.hpp"

TEST_CASE("multiples of a power of two spread evenly over the shards") {
  constexpr std::size_t kShards = 16;
  constexpr std::uint64_t kKeys = 16000;
  auto cache = rtcache::make_cache<std::uint64_t, std::uint64_t>(
      rtcache::Options{.capacity = 1 << 16, .shards = kShards, .seed = 12345},
      [](const std::uint64_t& k) { return k; });
  std::vector<std::size_t> per_shard(kShards);
  for (std::uint64_t i = 0; i < kKeys; ++i) ++per_shard[cache.shard_index_of(i << 20)];
  // Uniform would be 1000 per shard; allow +-20%.
  for (std::size_t count : per_shard) {
    CHECK(count > 800);
    CHECK(count < 1200);
  }
}

TEST_CASE("the same keys land in different shards under different seeds") {
  auto with_seed = [](std::uint64_t seed) {
    return rtcache::make_cache<std::uint64_t, std::uint64_t>(
        rtcache::Options{.capacity = 1024, .shards = 16, .seed = seed},
        [](const std::uint64_t& k) { return k; });
  };
  auto a = with_seed(1);
  auto b = with_seed(2);
  int same = 0;
  for (std::uint64_t k = 0; k < 1000; ++k) same += a.shard_index_of(k) == b.shard_index_of(k);
  CHECK(same < 150);  // about 1000 / 16 = 62 by chance
}

// Each shard's table stops at the buckets its share of the capacity fills to
// 9/8 entries per bucket (ChainedTable::kMaxLoad): ceil(share * 8 / 9), not
// the next power of two.
TEST_CASE("a shard filled to its share has exactly the bucket ceiling and finds every key") {
  auto one = rtcache::make_cache<std::uint64_t, std::uint64_t>(
      rtcache::Options{.capacity = 1000, .shards = 1, .seed = 5},
      [](const std::uint64_t& k) { return k; });
  for (std::uint64_t k = 0; k < 1000; ++k) REQUIRE(one.get(k) == k);
  REQUIRE(one.size() == 1000);
  CHECK(one.bucket_counts(0) == std::pair<std::size_t, std::size_t>{889, 889});
  for (std::uint64_t k = 0; k < 1000; ++k) REQUIRE(one.get_if_present(k) == k);

  // Four shards of 250, each filled past its share (it evicts).
  auto four = rtcache::make_cache<std::uint64_t, std::uint64_t>(
      rtcache::Options{.capacity = 1000, .shards = 4, .seed = 5},
      [](const std::uint64_t& k) { return k; });
  for (std::uint64_t k = 0; k < 4000; ++k) REQUIRE(four.get(k) == k);
  REQUIRE(four.size() == 1000);
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK(four.bucket_counts(i) == std::pair<std::size_t, std::size_t>{223, 223});
  }
  std::size_t present = 0;
  for (std::uint64_t k = 0; k < 4000; ++k) present += four.get_if_present(k).has_value();
  CHECK(present == 1000);
}
