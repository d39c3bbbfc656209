#pragma once

/// \file
/// Options: the run-time settings of a ReadThroughCache, checked at construction.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace rtcache {

/// Run-time settings of a cache. Every field has a documented default except
/// `capacity`. Invalid settings are refused by the cache's constructor with a
/// `std::invalid_argument` whose message names the field.
struct Options {
  /// The most entries the cache holds at once. Must be at least 1, and at
  /// least `shards` when `shards` is set (each shard holds an exact share, so
  /// the bound is exact: there is no per-shard slack).
  std::size_t capacity = 0;

  /// Number of lock stripes. 0 (the default) picks a power of two from
  /// `std::thread::hardware_concurrency()`, lowered so that each shard holds at
  /// least 32 entries. Otherwise it must be a power of two no larger than
  /// `capacity`. More shards scale writes better; fewer shards give the
  /// eviction policy a wider view and so a better hit ratio on small caches.
  std::size_t shards = 0;

  /// Seed of the cache's hash mixing and of the policy's random choices.
  /// Empty (the default) draws one from `std::random_device`, so that keys
  /// crafted against one process do not collide in another; set it for
  /// reproducible tests.
  std::optional<std::uint64_t> seed{};
};

namespace detail {

[[noreturn]] inline void refuse_option(const std::string& message) {
  throw std::invalid_argument("rtcache::Options: " + message);
}

/// Checks `options` and returns the shard count to use.
inline std::size_t validate_and_pick_shards(const Options& options, unsigned hardware_threads) {
  if (options.capacity == 0) refuse_option("capacity must be at least 1 (got 0)");
  if (options.shards != 0) {
    if (!std::has_single_bit(options.shards)) {
      refuse_option("shards must be a power of two (got " + std::to_string(options.shards) + ")");
    }
    if (options.shards > options.capacity) {
      refuse_option("shards (" + std::to_string(options.shards) + ") must not exceed capacity (" +
                    std::to_string(options.capacity) + ")");
    }
    return options.shards;
  }
  constexpr std::size_t kMinEntriesPerShard = 32;
  constexpr std::size_t kMaxDefaultShards = 256;
  std::size_t shards =
      std::bit_ceil(std::size_t{hardware_threads == 0 ? 1u : hardware_threads} * 4);
  if (shards > kMaxDefaultShards) shards = kMaxDefaultShards;
  while (shards > 1 && options.capacity / shards < kMinEntriesPerShard) shards /= 2;
  return shards;
}

}  // namespace detail
}  // namespace rtcache
