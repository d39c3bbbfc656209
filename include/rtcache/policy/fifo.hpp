#pragma once

/// \file
/// First in, first out eviction.

#include <cstddef>
#include <cstdint>

#include "../detail/intrusive_list.hpp"

namespace rtcache::policy {

/// FIFO: evicts the entry that was inserted first, whatever happened to it
/// since. One intrusive queue per shard in insertion order; a hit changes
/// nothing, so hits never write policy state. The oldest policy there is
/// (Belady, "A study of replacement algorithms for a virtual-storage
/// computer", IBM Systems Journal 1966, studies it as the baseline); it is
/// here as a reference point and for workloads where hits must cost nothing.
struct Fifo {
  /// A hit changes nothing, so the cache may report hits without the lock.
  static constexpr bool kConcurrentAccess = true;

  using Hook = detail::ListHook;

  template <class Entry>
  class Shard {
   public:
    Shard(std::size_t /*capacity*/, std::uint64_t /*seed*/) noexcept {}

    void on_insert(Entry& e) noexcept { queue_.push_back(e); }
    void on_access(Entry& /*e*/) noexcept {}
    /// The new value keeps the old one's place in the queue.
    void on_replace(Entry& old, Entry& fresh) noexcept { queue_.replace(old, fresh); }
    void on_update(Entry&) noexcept {}  // a rewrite keeps its place
    void on_remove(Entry& e) noexcept { queue_.erase(e); }

    Entry* evict() noexcept {
      Entry* victim = queue_.front();
      if (victim != nullptr) queue_.erase(*victim);
      return victim;
    }

    /// For tests: the entries in eviction order (first = next victim).
    template <class F>
    void for_each_in_eviction_order(F&& f) const {
      for (Entry* e = queue_.front(); e != nullptr; e = queue_.next(*e)) f(*e);
    }

    /// For tests: true when the structure holds exactly `resident` entries.
    [[nodiscard]] bool check_invariants(std::size_t resident) const noexcept {
      return queue_.well_formed() && queue_.count() == resident;
    }

   private:
    detail::IntrusiveList<Entry> queue_;
  };
};

}  // namespace rtcache::policy
