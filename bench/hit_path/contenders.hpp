#pragma once

/// \file
/// The contenders of the hit-path benchmark, behind one small interface:
///
///     explicit C(std::size_t capacity);
///     std::uint64_t read(std::uint64_t key);   // read-through: a miss loads
///     void write(std::uint64_t key, std::uint64_t value);
///     static constexpr bool kThreadSafe;
///
/// A miss calls `load_key`, which counts loads per thread so that every
/// contender's hit ratio is measured the same way. The third-party baselines
/// are compiled only when CMake found them (RTCACHE_BENCH_HAVE_*).

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <rtcache/read_through_cache.hpp>
#include <shared_mutex>
#include <unordered_map>

#include "lru_baselines.hpp"

#if __has_include(<rtcache/policy/sieve.hpp>)
#include <rtcache/policy/sieve.hpp>
#define RTCACHE_BENCH_HAVE_SIEVE 1
#endif

#ifdef RTCACHE_BENCH_HAVE_TBB
#include <tbb/concurrent_hash_map.h>
#endif
#ifdef RTCACHE_BENCH_HAVE_LIBCUCKOO
#include <libcuckoo/cuckoohash_map.hh>
#endif
#ifdef RTCACHE_BENCH_HAVE_ABSL
#include <absl/container/flat_hash_map.h>
#endif

namespace rtcache_bench {

/// Every contender's `read` and `write` is inlined into the timed loop, as a
/// hot loop in an application would have it; what each library inlines
/// below that is its own choice. (Left to the compiler, whether a wrapper is
/// inlined changes with the size of what it calls, and moved one contender
/// by 15% between two builds of the same code.)
#if defined(__GNUC__) || defined(__clang__)
#define RTCACHE_BENCH_INLINE [[gnu::always_inline]]
#else
#define RTCACHE_BENCH_INLINE
#endif

using Key = std::uint64_t;
using Value = std::uint64_t;

/// Loads (misses) on this thread, for the hit ratio.
inline thread_local std::uint64_t t_loads = 0;

/// The benchmark's store: every key exists and its value is the key.
inline Value load_key(const Key& key) noexcept {
  ++t_loads;
  return key;
}

inline constexpr std::uint64_t kCacheSeed = 0x5EED'CAC4E;

/// rtcache's ReadThroughCache, built with make_cache: the loader returns the
/// key, the writer does nothing (so `put` measures the cache, not a store).
template <class Policy>
class RtcacheContender {
  static constexpr auto kLoader = [](const Key& key) { return load_key(key); };
  static constexpr auto kWriter = [](const Key&, const Value&) {};
  static auto make(std::size_t capacity) {
    return rtcache::make_cache<Key, Value, Policy>(
        rtcache::Options{.capacity = capacity, .seed = kCacheSeed}, kLoader, kWriter);
  }

 public:
  static constexpr bool kThreadSafe = true;
  explicit RtcacheContender(std::size_t capacity) : cache_(make(capacity)) {}
  RTCACHE_BENCH_INLINE Value read(Key key) { return *cache_.get(key); }
  RTCACHE_BENCH_INLINE void write(Key key, Value value) { cache_.put(key, value); }

 private:
  decltype(make(1)) cache_;
};

template <class Mutex>
class LruContender {
 public:
  static constexpr bool kThreadSafe = true;
  explicit LruContender(std::size_t capacity) : cache_(capacity) {}
  RTCACHE_BENCH_INLINE Value read(Key key) { return cache_.get(key, load_key); }
  RTCACHE_BENCH_INLINE void write(Key key, Value value) { cache_.put(key, value); }

 private:
  LruCache<Key, Value, Mutex> cache_;
};

/// A hash map with no lock and no eviction: the single-thread ceiling.
template <class Map>
class UnlockedContender {
 public:
  static constexpr bool kThreadSafe = false;
  explicit UnlockedContender(std::size_t /*capacity*/) {}
  RTCACHE_BENCH_INLINE Value read(Key key) {
    if (auto it = map_.find(key); it != map_.end()) return it->second;
    const Value value = load_key(key);
    map_.emplace(key, value);
    return value;
  }
  RTCACHE_BENCH_INLINE void write(Key key, Value value) { map_.insert_or_assign(key, value); }

 private:
  Map map_;
};

#ifdef RTCACHE_BENCH_HAVE_TBB
/// `tbb::concurrent_hash_map` without eviction; a read holds the element's
/// reader lock through a const_accessor.
class TbbContender {
  using Map = tbb::concurrent_hash_map<Key, Value>;

 public:
  static constexpr bool kThreadSafe = true;
  explicit TbbContender(std::size_t /*capacity*/) {}
  RTCACHE_BENCH_INLINE Value read(Key key) {
    {
      Map::const_accessor found;
      if (map_.find(found, key)) return found->second;
    }
    const Value value = load_key(key);
    map_.insert({key, value});
    return value;
  }
  RTCACHE_BENCH_INLINE void write(Key key, Value value) {
    Map::accessor slot;
    map_.insert(slot, key);
    slot->second = value;
  }

 private:
  Map map_;
};
#endif

#ifdef RTCACHE_BENCH_HAVE_LIBCUCKOO
/// libcuckoo's `cuckoohash_map` without eviction (striped spinlocks).
class CuckooContender {
 public:
  static constexpr bool kThreadSafe = true;
  explicit CuckooContender(std::size_t /*capacity*/) {}
  RTCACHE_BENCH_INLINE Value read(Key key) {
    Value value;
    if (map_.find(key, value)) return value;
    value = load_key(key);
    map_.insert(key, value);
    return value;
  }
  RTCACHE_BENCH_INLINE void write(Key key, Value value) { map_.insert_or_assign(key, value); }

 private:
  libcuckoo::cuckoohash_map<Key, Value> map_;
};
#endif

}  // namespace rtcache_bench
