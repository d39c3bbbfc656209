#pragma once

/// \file
/// Options: the run-time settings of a ReadThroughCache, checked at construction.

#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "clock.hpp"

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

  // -- Freshness (all off by default; durations must not be negative) --------

  /// Expire-after-write: an entry is not returned once this long has passed
  /// since it was loaded or written. 0: entries do not expire. A loader may
  /// give an entry its own TTL (`Loaded::ttl`).
  std::chrono::nanoseconds expire_after_write{0};

  /// Negative caching: "not found" is cached for this long, so that lookups
  /// of missing keys do not all reach the store. 0: not found is not cached.
  std::chrono::nanoseconds negative_ttl{0};

  /// Refresh-ahead: a hit on an entry older than this returns the cached
  /// value and starts one background reload of the key. 0: off. Must be less
  /// than `expire_after_write` when both are set.
  std::chrono::nanoseconds refresh_after{0};

  /// Spreads refresh times: each entry refreshes after `refresh_after`
  /// shortened by a random fraction of up to `refresh_jitter` (0 to 1), so
  /// keys loaded together do not all refresh together.
  double refresh_jitter = 0.0;

  /// Stale-if-error: when the load of an expired key (or a refresh) fails,
  /// the expired value is still served for up to this long past its expiry.
  /// 0: off.
  std::chrono::nanoseconds stale_if_error{0};

  // -- Store protection -------------------------------------------------------

  /// The most loader calls running at once, cache-wide; further loads wait.
  /// 0: no bound. Loads started from inside a loader are not counted, so a
  /// loader may use the cache for other keys without deadlocking.
  std::size_t max_concurrent_loads = 0;

  // -- Environment ------------------------------------------------------------

  /// The clock for every time-based option. Empty: `SteadyClock`.
  std::shared_ptr<const Clock> clock{};

  /// Where background refreshes run: anything that accepts a task and runs
  /// it exactly once. Empty: a small built-in pool of `refresh_threads`
  /// threads, drained by the cache's destructor.
  std::function<void(std::function<void()>)> executor{};
  std::size_t refresh_threads = 2;
};

/// How `warm` paces its loads.
struct WarmOptions {
  /// Loader calls `warm` runs at once (at least 1).
  std::size_t max_concurrency = 4;
  /// Loads started per second of the cache's clock; empty: no limit. Must be
  /// greater than 0 when set.
  std::optional<double> max_loads_per_second{};
};

/// What `warm` did.
struct WarmReport {
  std::size_t loaded = 0;          ///< keys loaded (found or not found)
  std::size_t already_cached = 0;  ///< keys that were hits
  std::size_t failed = 0;          ///< keys whose load threw
};

namespace detail {

[[noreturn]] inline void refuse_option(const std::string& message) {
  throw std::invalid_argument("rtcache::Options: " + message);
}

inline void refuse_negative(std::chrono::nanoseconds value, const char* name) {
  if (value.count() < 0) {
    refuse_option(std::string(name) + " must not be negative (got " +
                  std::to_string(value.count()) + "ns)");
  }
}

/// Checks `options` and returns the shard count to use.
inline std::size_t validate_and_pick_shards(const Options& options, unsigned hardware_threads) {
  if (options.capacity == 0) refuse_option("capacity must be at least 1 (got 0)");
  refuse_negative(options.expire_after_write, "expire_after_write");
  refuse_negative(options.negative_ttl, "negative_ttl");
  refuse_negative(options.refresh_after, "refresh_after");
  refuse_negative(options.stale_if_error, "stale_if_error");
  if (options.refresh_after.count() > 0 && options.expire_after_write.count() > 0 &&
      options.refresh_after >= options.expire_after_write) {
    refuse_option("refresh_after (" + std::to_string(options.refresh_after.count()) +
                  "ns) must be less than expire_after_write (" +
                  std::to_string(options.expire_after_write.count()) + "ns)");
  }
  if (!(options.refresh_jitter >= 0.0 && options.refresh_jitter < 1.0)) {
    refuse_option("refresh_jitter must be in [0, 1) (got " +
                  std::to_string(options.refresh_jitter) + ")");
  }
  if (options.refresh_after.count() > 0 && !options.executor && options.refresh_threads == 0) {
    refuse_option("refresh_threads must be at least 1 when refresh_after is set");
  }
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

inline void validate_warm(const WarmOptions& warm) {
  if (warm.max_concurrency == 0) {
    throw std::invalid_argument("rtcache::WarmOptions: max_concurrency must be at least 1 (got 0)");
  }
  if (warm.max_loads_per_second && !(*warm.max_loads_per_second > 0.0)) {
    throw std::invalid_argument(
        "rtcache::WarmOptions: max_loads_per_second must be greater than 0 (got " +
        std::to_string(*warm.max_loads_per_second) + ")");
  }
}

}  // namespace detail
}  // namespace rtcache
