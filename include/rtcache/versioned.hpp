#pragma once

/// \file
/// Versioned<V>: a value together with the store's version of it.

#include <chrono>
#include <cstdint>

namespace rtcache {

/// The version the cache reports when the store has not told it one: a loader or
/// writer that returns a plain value produces entries of version `kUnknownVersion`.
/// Stores that use versions should therefore start counting at 1.
inline constexpr std::uint64_t kUnknownVersion = 0;

/// A value and the version the store holds it at (a `version` column, an etag, a
/// commit sequence number). Versions of one key only ever grow in the store; the
/// cache relies on that to refuse stale data (contract point 7).
template <class V>
struct Versioned {
  V value;
  std::uint64_t version = kUnknownVersion;

  friend bool operator==(const Versioned&, const Versioned&) = default;
};

/// What a loader may return to give one entry its own time to live (for
/// example from a `Cache-Control: max-age`), with the store's version.
template <class V>
struct Loaded {
  V value;
  std::uint64_t version = kUnknownVersion;
  /// How long the entry stays fresh; 0: the cache's `expire_after_write`.
  std::chrono::nanoseconds ttl{0};
};

/// The outcome of `ReadThroughCache::put_if_version` (and of `put`).
struct PutResult {
  /// True when the store accepted the write and the cache now holds it.
  bool applied = false;
  /// The version the store reported for the written value when `applied`;
  /// `kUnknownVersion` on a conflict or when the writer reports no version.
  std::uint64_t version = kUnknownVersion;
};

}  // namespace rtcache
