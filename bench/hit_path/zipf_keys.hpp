#pragma once

/// \file
/// The keys of the hit-path benchmark: scrambled Zipf, generated before timing.
///
/// As in Caffeine's GetPutBenchmark, a key set is an array of 2^n slots, each
/// holding a key drawn from YCSB's scrambled Zipf(0.99) distribution over
/// slots / 3 items; each item is then scrambled into a 64-bit key by a
/// bijective mix, so keys are spread over the whole key space (and over every
/// hash table's buckets and shards) instead of being small integers. Each
/// benchmark thread walks the array from its own offset.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace rtcache_bench {

/// The splitmix64 finalizer: a bijection on 64-bit integers, so distinct ranks
/// stay distinct keys.
constexpr std::uint64_t scramble(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

/// A small, seeded, fast generator (splitmix64); never global, so runs repeat.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) noexcept : state_(seed) {}
  std::uint64_t next() noexcept {
    state_ += 0x9E3779B97F4A7C15ULL;
    return scramble(state_ - 0x9E3779B97F4A7C15ULL);
  }
  /// Uniform in [0, 1).
  double next_unit() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  std::uint64_t state_;
};

/// One precomputed key array.
struct KeySet {
  std::size_t slots = 0;                ///< size of `keys`, a power of two
  std::size_t items = 0;                ///< the key space the keys are drawn from
  std::vector<std::uint64_t> keys;      ///< the walk, `slots` keys
  std::vector<std::uint64_t> distinct;  ///< each key of `keys` once, sorted by value
};

/// YCSB's Zipfian generator (Gray et al., "Quickly Generating Billion-Record
/// Synthetic Databases", SIGMOD 1994): ranks 0..n-1 with probability of rank r
/// proportional to 1 / (r + 1)^theta, one `pow` per draw, given zeta(n, theta).
class ZipfGenerator {
 public:
  ZipfGenerator(std::uint64_t n, double theta, double zeta_n)
      : n_(static_cast<double>(n)),
        zeta_n_(zeta_n),
        second_(1.0 + std::pow(0.5, theta)),
        alpha_(1.0 / (1.0 - theta)),
        eta_((1.0 - std::pow(2.0 / n_, 1.0 - theta)) /
             (1.0 - (1.0 + std::pow(0.5, theta)) / zeta_n)) {}

  std::uint64_t next(SplitMix64& random) const noexcept {
    const double u = random.next_unit();
    const double uz = u * zeta_n_;
    if (uz < 1.0) return 0;
    if (uz < second_) return 1;
    return static_cast<std::uint64_t>(n_ * std::pow(eta_ * u - eta_ + 1.0, alpha_));
  }

 private:
  double n_, zeta_n_, second_, alpha_, eta_;
};

/// YCSB's fnvhash64 (FNV-1a over the 8 bytes, then Java's Math.abs).
constexpr std::uint64_t ycsb_fnv64(std::uint64_t value) noexcept {
  std::uint64_t hash = 0xCBF29CE484222325ULL;
  for (int i = 0; i < 8; ++i) {
    hash ^= value & 0xFF;
    value >>= 8;
    hash *= 1099511628211ULL;
  }
  return static_cast<std::int64_t>(hash) < 0 ? ~hash + 1 : hash;
}

/// `slots` keys from YCSB's ScrambledZipfianGenerator over `items` items, as
/// Caffeine's GetPutBenchmark draws them: a Zipf(0.99) rank over 10^10 ranks,
/// hashed (fnv64) into 0..items-1, which spreads the popular ranks over the
/// item space and leaves a long, flat tail (about 11,000 distinct keys in
/// 2^15 draws over 2^15 / 3 items). Each item is then scrambled into a 64-bit
/// key with a bijective mix, so keys are not small integers.
inline KeySet make_scrambled_zipf_keys(std::size_t slots, std::size_t items, std::uint64_t seed) {
  // YCSB's constants: ScrambledZipfianGenerator.ITEM_COUNT and ZETAN, the
  // zeta(10^10, 0.99) it precomputes.
  constexpr std::uint64_t kRanks = 10'000'000'000ULL;
  constexpr double kTheta = 0.99;
  constexpr double kZetaRanks = 26.46902820178302;
  const ZipfGenerator zipf(kRanks, kTheta, kZetaRanks);

  KeySet set;
  set.slots = slots;
  set.items = items;
  set.keys.resize(slots);
  SplitMix64 random(seed);
  for (auto& key : set.keys) {
    const std::uint64_t item = ycsb_fnv64(zipf.next(random)) % items;
    key = scramble(item ^ seed);
  }
  set.distinct = set.keys;
  std::sort(set.distinct.begin(), set.distinct.end());
  set.distinct.erase(std::unique(set.distinct.begin(), set.distinct.end()), set.distinct.end());
  return set;
}

}  // namespace rtcache_bench
