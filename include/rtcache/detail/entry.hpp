#pragma once

#include <atomic>
#include <cstdint>
#include <utility>

#include "../versioned.hpp"

namespace rtcache::detail {

/// One cached key and value. The policy's per-entry state is the `Hook` base,
/// so no policy keeps a second map; the table's chain link is `chain_next`.
///
/// `key`, `value`, `version` and `hash` never change after the entry is
/// published: a new value for the key is a new entry that replaces this one in
/// the table. That is what lets a reader copy the value without a lock once
/// the entry's memory is protected from reuse.
template <class K, class V, class Hook>
struct Entry : Hook {
  Entry(std::uint64_t h, const K& k, Versioned<V>&& v)
      : hash(h), version(v.version), key(k), value(std::move(v.value)) {}

  Entry(const Entry&) = delete;
  Entry& operator=(const Entry&) = delete;

  std::atomic<Entry*> chain_next{nullptr};
  /// True while the entry is in its shard's table (written under the shard
  /// lock; read by readers that found it without the lock).
  std::atomic<bool> resident{false};
  const std::uint64_t hash;
  const std::uint64_t version;
  const K key;
  const V value;
};

}  // namespace rtcache::detail
