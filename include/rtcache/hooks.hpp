#pragma once

/// \file
/// Typed callbacks of a cache: the weigher and the removal listener.

#include <cstddef>
#include <functional>

namespace rtcache {

/// Why an entry left the cache, as told to the removal listener.
enum class RemovalCause {
  kEvicted,      ///< the policy made room for another entry
  kExpired,      ///< its time to live ran out
  kReplaced,     ///< a put, load or refresh stored a newer value
  kErased,       ///< erase() deleted it from the store
  kInvalidated,  ///< invalidate(), invalidate_if() or invalidate_all()
};

/// Optional callbacks, given to the cache's constructor.
template <class K, class V>
struct CacheHooks {
  /// The weight of an entry: with a weigher, `Options::capacity` bounds the
  /// total weight instead of the number of entries. Called once per stored
  /// value, before any lock is taken; must be cheap and deterministic.
  /// The policies measure their regions in weight and size their per-entry
  /// structures (sketch, histories) by the entries a shard holds, so the unit
  /// (bytes, say) does not change what the cache allocates. A weight of 0 is
  /// allowed: such an entry takes no room, and leaves only as another's
  /// victim, by expiry or by invalidation.
  std::function<std::size_t(const K&, const V&)> weigher{};

  /// Told about every entry that leaves the cache (negative entries, which
  /// hold no value, excepted). Called with no lock held, on the thread whose
  /// call removed the entry, in the order the removals happened, before that
  /// call returns. An exception it throws is ignored.
  std::function<void(const K&, const V&, RemovalCause)> on_removal{};
};

}  // namespace rtcache
