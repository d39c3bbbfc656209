#pragma once

/// \file
/// The cache a C++ user writes by hand today: one lock, a `std::unordered_map`
/// from key to a position in a `std::list` kept in recency order.
///
/// - `LruCache<K, V, std::mutex>`: every lookup locks the mutex and moves the
///   entry to the front of the list (true LRU).
/// - `LruCache<K, V, std::shared_mutex>`: lookups take the lock shared, the
///   way people write it to "let readers run in parallel". Moving the entry
///   would need the lock exclusive, so a hit does not reorder: recency is only
///   refreshed by writes, and eviction is really by insertion/write order.
///   Writes and misses take the lock exclusive.
///
/// Both are read-through like rtcache (a miss calls `load(key)`, here under the
/// lock, as the hand-written versions usually do) so that they do the same work
/// per call as `ReadThroughCache::get`.

#include <cstddef>
#include <list>
#include <mutex>
#include <shared_mutex>
#include <type_traits>
#include <unordered_map>
#include <utility>

namespace rtcache_bench {

template <class K, class V, class Mutex = std::mutex>
class LruCache {
 public:
  explicit LruCache(std::size_t capacity) : capacity_(capacity) {}

  template <class Load>
  V get(const K& key, Load&& load) {
    if constexpr (std::is_same_v<Mutex, std::shared_mutex>) {
      {
        std::shared_lock lock(mutex_);
        if (auto it = map_.find(key); it != map_.end()) return it->second->second;
      }
      std::lock_guard lock(mutex_);
      if (auto it = map_.find(key); it != map_.end()) return it->second->second;
      V value = load(key);
      insert_locked(key, value);
      return value;
    } else {
      std::lock_guard lock(mutex_);
      if (auto it = map_.find(key); it != map_.end()) {
        order_.splice(order_.begin(), order_, it->second);
        return it->second->second;
      }
      V value = load(key);
      insert_locked(key, value);
      return value;
    }
  }

  void put(const K& key, V value) {
    std::lock_guard lock(mutex_);
    if (auto it = map_.find(key); it != map_.end()) {
      it->second->second = std::move(value);
      order_.splice(order_.begin(), order_, it->second);
      return;
    }
    insert_locked(key, std::move(value));
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return map_.size();
  }

 private:
  void insert_locked(const K& key, V value) {
    order_.emplace_front(key, std::move(value));
    map_.emplace(key, order_.begin());
    if (map_.size() > capacity_) {
      map_.erase(order_.back().first);
      order_.pop_back();
    }
  }

  using Order = std::list<std::pair<K, V>>;

  mutable Mutex mutex_;
  std::size_t capacity_;
  Order order_;
  std::unordered_map<K, typename Order::iterator> map_;
};

}  // namespace rtcache_bench
