#pragma once

/// \file
/// The two ways an application can put the same cache in front of a store.
/// Both use the same class, `rtcache::ReadThroughCache`, with the same
/// options and the same eviction policy, so they differ only in who
/// orchestrates the store calls: the cache (read-through/write-through) or
/// the application (cache-aside).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <rtcache/rtcache.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "store.hpp"

namespace main_job {

namespace detail {
/// The version the store acknowledged for the last write made by this thread.
/// `ReadThroughCache::put` returns void, so the writer (which runs on the
/// calling thread, synchronously) leaves it here for `write` to return.
inline thread_local std::uint64_t last_acknowledged_version = 0;
}  // namespace detail

/// Read-through/write-through: the cache is the application's one door to
/// the store. A miss runs the loader (coalesced per key), a write runs the
/// writer and then caches what the store holds.
class ReadThroughUsers {
 public:
  static constexpr const char* kName = "read_through";
  static constexpr const char* kLabel = "read/write-through";

  ReadThroughUsers(Store& store, rtcache::Options options)
      : cache_(options, Loader{&store}, Writer{&store}) {}

  std::optional<UserRow> read(Key id) { return cache_.get(id); }

  /// Writes the row through the cache; returns the version the store acknowledged.
  std::uint64_t write(Key id, const std::string& name, const std::string& email) {
    cache_.put(id, UserRow{name, email, rtcache::kUnknownVersion});
    return detail::last_acknowledged_version;
  }

  /// What the cache holds for `id`, without touching the store.
  std::optional<UserRow> cached(Key id) const { return cache_.get_if_present(id); }
  /// Loads the hot set with at most `bound` store queries at once.
  void warm(const std::vector<Key>& ids, std::size_t bound) {
    (void)cache_.warm(ids, rtcache::WarmOptions{.max_concurrency = bound});
  }
  /// Puts a row into the cache only (to warm it up before a measurement).
  void prime(Key id, const UserRow& row) { cache_.fill(id, row, row.version); }
  [[nodiscard]] rtcache::Stats stats() const { return cache_.stats(); }

 private:
  struct Loader {
    Store* store;
    std::optional<rtcache::Versioned<UserRow>> operator()(const Key& id) const {
      std::optional<UserRow> row = store->read(id);
      if (!row) return std::nullopt;
      const std::uint64_t version = row->version;
      return rtcache::Versioned<UserRow>{std::move(*row), version};
    }
  };

  struct Writer {
    Store* store;
    rtcache::Versioned<UserRow> write(const Key& id, const UserRow& row) const {
      UserRow stored = store->write(id, row.name, row.email);
      detail::last_acknowledged_version = stored.version;
      const std::uint64_t version = stored.version;
      return {std::move(stored), version};
    }
  };

  rtcache::ReadThroughCache<Key, UserRow, Loader, Writer> cache_;
};

/// Cache-aside: the application checks the cache, queries the store itself
/// on a miss and fills the cache, and on a write updates the store and then
/// invalidates the cached entry. The cache is the same class, given a loader
/// that must never run: every store call is the application's.
///
/// The fill passes the row's version, so the cache refuses to replace a newer
/// entry with an older one: cache-aside at its best. What it cannot prevent is
/// the classic race: a reader misses and reads version n, a writer stores n+1
/// and invalidates, and then the reader's fill lands, caching n after the
/// write was acknowledged. That entry stays stale until the next write of the
/// key or until it is evicted.
class CacheAsideUsers {
 public:
  static constexpr const char* kName = "cache_aside";
  static constexpr const char* kLabel = "cache-aside";

  CacheAsideUsers(Store& store, rtcache::Options options)
      : store_(&store), cache_(options, NeverLoads{}) {}

  std::optional<UserRow> read(Key id) {
    if (auto hit = cache_.get_if_present(id)) return hit;  // 1. check the cache
    std::optional<UserRow> row = store_->read(id);         // 2. miss: query the store
    if (row) cache_.fill(id, *row, row->version);          // 3. fill the cache
    return row;
  }

  /// Writes the row to the store, then invalidates; returns the version the
  /// store acknowledged.
  std::uint64_t write(Key id, const std::string& name, const std::string& email) {
    const UserRow stored = store_->write(id, name, email);  // 1. write the store
    cache_.invalidate(id);                                  // 2. drop the cached copy
    return stored.version;
  }

  std::optional<UserRow> cached(Key id) const { return cache_.get_if_present(id); }
  /// Loads the hot set with at most `bound` store queries at once: the
  /// application writes the worker pool itself.
  void warm(const std::vector<Key>& ids, std::size_t bound) {
    std::atomic<std::size_t> next{0};
    std::vector<std::thread> workers;
    for (std::size_t w = 0; w < bound; ++w) {
      workers.emplace_back([&] {
        for (std::size_t i = next.fetch_add(1); i < ids.size(); i = next.fetch_add(1)) {
          (void)read(ids[i]);
        }
      });
    }
    for (auto& w : workers) w.join();
  }
  void prime(Key id, const UserRow& row) { cache_.fill(id, row, row.version); }
  [[nodiscard]] rtcache::Stats stats() const { return cache_.stats(); }

 private:
  struct NeverLoads {
    std::optional<rtcache::Versioned<UserRow>> operator()(const Key& /*id*/) const {
      throw std::logic_error("cache-aside: the cache must never load by itself");
    }
  };

  Store* store_;
  rtcache::ReadThroughCache<Key, UserRow, NeverLoads> cache_;
};

}  // namespace main_job
