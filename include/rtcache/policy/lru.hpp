#pragma once

/// \file
/// Least recently used eviction.

#include <cstddef>
#include <cstdint>

#include "../detail/intrusive_list.hpp"

namespace rtcache::policy {

/// LRU: evicts the entry whose last access is the oldest. One doubly linked
/// list per shard in access order; a hit moves the entry to the back, the
/// victim is the front. Simple and predictable, but a scan of keys used once
/// flushes it, and it keeps no memory of frequency.
struct Lru {
  using Hook = detail::ListHook;

  template <class Entry>
  class Shard {
   public:
    Shard(std::size_t /*capacity*/, std::uint64_t /*seed*/) noexcept {}

    void on_insert(Entry& e) noexcept { order_.push_back(e); }
    void on_access(Entry& e) noexcept { order_.move_to_back(e); }
    void on_replace(Entry& old, Entry& fresh) noexcept {
      order_.replace(old, fresh);
      order_.move_to_back(fresh);
    }
    /// `e`'s value was rewritten in place: as `on_replace(e, e)` would be.
    void on_update(Entry& e) noexcept { order_.move_to_back(e); }
    void on_remove(Entry& e) noexcept { order_.erase(e); }

    Entry* evict() noexcept {
      Entry* victim = order_.front();
      if (victim != nullptr) order_.erase(*victim);
      return victim;
    }

    /// For tests: the entries in eviction order (first = next victim).
    template <class F>
    void for_each_in_eviction_order(F&& f) const {
      for (Entry* e = order_.front(); e != nullptr; e = order_.next(*e)) f(*e);
    }

    /// For tests: true when the structure holds exactly `resident` entries.
    [[nodiscard]] bool check_invariants(std::size_t resident) const noexcept {
      return order_.well_formed() && order_.count() == resident;
    }

   private:
    detail::IntrusiveList<Entry> order_;
  };
};

}  // namespace rtcache::policy
