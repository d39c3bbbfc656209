// The shard index comes from a seeded mix of the hash, so keys that std::hash
// maps to a regular pattern (it is the identity on integers) still spread.

#include <cstdint>
#include <rtcache/rtcache.hpp>
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
