#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <utility>

#include "../versioned.hpp"

namespace rtcache::detail {

/// Times on the cache's clock, in nanoseconds.
inline constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

/// When an entry stops being fresh, and when a hit should refresh it.
struct EntryTimes {
  std::int64_t expires_at = kNever;
  std::int64_t refresh_at = kNever;
};

/// One cached key and value (or, for a negative entry, the fact that the
/// store has no such key). The policy's per-entry state is the `Hook` base,
/// so no policy keeps a second map; the table's chain link is `chain_next`.
///
/// Everything but the three atomics is fixed once the entry is published: a
/// new value for the key is a new entry that replaces this one in the table.
/// That is what lets a reader copy the value without a lock once the entry's
/// memory is protected from reuse (see epoch.hpp).
template <class K, class V, class Hook>
struct Entry : Hook {
  /// A positive entry.
  Entry(std::uint64_t h, const K& k, Versioned<V>&& v, EntryTimes t, std::uint32_t w)
      : negative(false),
        weight(w),
        hash(h),
        version(v.version),
        expires_at(t.expires_at),
        refresh_at(t.refresh_at),
        key(k) {
    std::construct_at(&value, std::move(v.value));
  }

  /// A negative entry: "not found", until `t.expires_at`.
  Entry(std::uint64_t h, const K& k, std::uint64_t v, EntryTimes t, std::uint32_t w)
      : negative(true),
        weight(w),
        hash(h),
        version(v),
        expires_at(t.expires_at),
        refresh_at(kNever),
        key(k) {}

  ~Entry() {
    if (!negative) std::destroy_at(&value);
  }

  Entry(const Entry&) = delete;
  Entry& operator=(const Entry&) = delete;

  std::atomic<Entry*> chain_next{nullptr};
  /// True while the entry is in its shard's table (written under the shard
  /// lock; read by readers that found it without the lock).
  std::atomic<bool> resident{false};
  /// Set by the first hit that starts this entry's refresh.
  std::atomic<bool> refresh_started{false};
  const bool negative;
  const std::uint32_t weight;
  const std::uint64_t hash;
  const std::uint64_t version;
  const std::int64_t expires_at;
  const std::int64_t refresh_at;
  const K key;
  union {
    V value;  // constructed unless `negative`
  };
};

}  // namespace rtcache::detail
