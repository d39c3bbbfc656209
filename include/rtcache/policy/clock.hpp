#pragma once

/// \file
/// CLOCK (second chance) eviction.

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "../detail/intrusive_list.hpp"

namespace rtcache::policy {

/// CLOCK, also called second chance (Corbató, "A paging experiment with the
/// Multics system", MIT Project MAC report MAC-M-384, 1968): FIFO order plus
/// one reference bit per entry. A hit only sets the bit. To evict, the hand
/// looks at the oldest entry: if its bit is set, the bit is cleared and the
/// entry goes round again (to the back of the queue); the first entry found
/// with a clear bit is the victim. It approximates LRU while a hit writes at
/// most one byte of the entry, and none when the bit is already set.
///
/// The entry inserted last is never its own victim while another entry is
/// resident: CLOCK puts a new page in the frame it just freed, so here the
/// hand passes over the newest entry, as if it had been inserted after the
/// eviction.
///
/// The reference bit is a relaxed atomic, so hits set it without the shard
/// lock (`kConcurrentAccess`).
struct Clock {
  /// `on_access` only writes a relaxed atomic in the entry, so the cache may
  /// call it from lock-free readers, without the shard lock.
  static constexpr bool kConcurrentAccess = true;

  struct Hook : detail::ListHook {
    std::atomic<std::uint8_t> referenced{0};
  };

  template <class Entry>
  class Shard {
   public:
    Shard(std::size_t /*capacity*/, std::uint64_t /*seed*/) noexcept {}

    // A new entry starts unreferenced (the hook's initial state); it is not
    // reset here, as a lock-free reader may already have referenced it.
    void on_insert(Entry& e) noexcept {
      queue_.push_back(e);
      newest_ = &e;
      ++size_;
    }

    void on_access(Entry& e) noexcept {
      // Read first: a hit on an already referenced entry writes nothing.
      if (e.referenced.load(std::memory_order_relaxed) == 0) {
        e.referenced.store(1, std::memory_order_relaxed);
      }
    }

    /// The new value takes the old one's place and counts as a reference.
    void on_replace(Entry& old, Entry& fresh) noexcept {
      queue_.replace(old, fresh);
      fresh.referenced.store(1, std::memory_order_relaxed);
      if (newest_ == &old) newest_ = &fresh;
    }

    void on_update(Entry& e) noexcept { e.referenced.store(1, std::memory_order_relaxed); }

    void on_remove(Entry& e) noexcept {
      queue_.erase(e);
      if (newest_ == &e) newest_ = nullptr;
      --size_;
    }

    Entry* evict() noexcept {
      // Terminates: each pass clears the bits it skips, and the newest entry
      // is skipped at most once, so a victim appears within two rounds.
      for (;;) {
        Entry* e = queue_.front();
        if (e == nullptr) return nullptr;
        if (e->referenced.load(std::memory_order_relaxed) != 0) {
          e->referenced.store(0, std::memory_order_relaxed);
          queue_.move_to_back(*e);
          continue;
        }
        if (e == newest_ && size_ > 1) {
          newest_ = nullptr;  // passed over once: it is now an ordinary entry
          queue_.move_to_back(*e);
          continue;
        }
        queue_.erase(*e);
        if (newest_ == e) newest_ = nullptr;
        --size_;
        return e;
      }
    }

    /// For tests: the entries in queue order, starting at the hand. This is
    /// the eviction order when no reference bit is set.
    template <class F>
    void for_each_in_eviction_order(F&& f) const {
      for (Entry* e = queue_.front(); e != nullptr; e = queue_.next(*e)) f(*e);
    }

    /// For tests: true when the structure holds exactly `resident` entries.
    [[nodiscard]] bool check_invariants(std::size_t resident) const noexcept {
      if (!queue_.well_formed() || queue_.count() != resident || size_ != resident) return false;
      return newest_ == nullptr || newest_->linked();
    }

   private:
    detail::IntrusiveList<Entry> queue_;  // front = the hand
    Entry* newest_ = nullptr;             // inserted last and not yet passed over
    std::size_t size_ = 0;
  };
};

}  // namespace rtcache::policy
