#pragma once

/// \file
/// Stats: a snapshot of a cache's counters.

#include <chrono>
#include <cstdint>

namespace rtcache {

/// Counters since the cache was built. A snapshot: each field is exact, but
/// fields are read one after another while other threads go on working.
struct Stats {
  std::uint64_t hits = 0;                       ///< lookups answered from the cache
  std::uint64_t misses = 0;                     ///< lookups not answered from the cache
  std::uint64_t loads = 0;                      ///< loader calls started
  std::uint64_t load_failures = 0;              ///< loader calls that threw
  std::chrono::nanoseconds total_load_time{0};  ///< time spent in loader calls
  std::uint64_t coalesced_waits = 0;            ///< gets that waited for another thread's load
  std::uint64_t evictions = 0;                  ///< entries removed by the policy to make room
  std::uint64_t writes = 0;              ///< successful writer calls (put, put_if_version, erase)
  std::uint64_t write_failures = 0;      ///< writer calls that threw
  std::uint64_t version_conflicts = 0;   ///< put_if_version calls the store refused
  std::uint64_t refreshes = 0;           ///< background reloads started (refresh-ahead)
  std::uint64_t refresh_failures = 0;    ///< background reloads that threw
  std::uint64_t stale_served = 0;        ///< expired values served because a load failed
  std::uint64_t expirations = 0;         ///< expired entries removed
  std::uint64_t rejected_oversized = 0;  ///< values not cached: heavier than a shard's share

  /// hits / (hits + misses), or 0 before the first lookup.
  [[nodiscard]] double hit_ratio() const noexcept {
    const auto lookups = hits + misses;
    return lookups == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(lookups);
  }
};

}  // namespace rtcache
