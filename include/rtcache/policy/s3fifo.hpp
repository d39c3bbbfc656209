#pragma once

/// \file
/// S3-FIFO eviction.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>

#include "../detail/entry.hpp"
#include "../detail/ghost_queue.hpp"
#include "../detail/intrusive_list.hpp"

namespace rtcache::policy {

/// S3-FIFO (Yang, Zhang, Qiu, Yue and Rashmi, "FIFO queues are all you need
/// for cache eviction", SOSP 2023): three FIFO queues. New entries enter a
/// small queue (10% of the capacity); the main queue holds the rest; a ghost
/// queue, as large as the main one, remembers the hashes (only) of entries
/// recently evicted from the small queue. Each entry has a 2-bit frequency,
/// raised by hits up to 3. When the small queue is over its share, its oldest
/// entry moves to the main queue if it was hit at least once since it came
/// in (promotion at frequency 1), and is otherwise evicted and remembered as
/// a ghost. Otherwise the main queue evicts like CLOCK with a counter: its
/// oldest entry goes round again with its frequency lowered by one, until one
/// with frequency 0 is found. A new key that hits in the ghost queue goes
/// straight to the main queue. Most new keys are used once and leave quickly
/// through the small queue; a hit writes only the entry's frequency byte.
///
/// Sizes are counted in entries, or in weight in a cache with a weigher: the
/// small queue's share, the main queue's and the test for a full shard below
/// are then in weight. The ghost queue remembers as many hashes as the main
/// queue's share holds entries. Without a weigher that is the share itself,
/// allocated up front; with one, the number of entries is only learnt as the
/// shard fills, so the ghost queue starts with room for 256 hashes (fewer for
/// a small share) and doubles, keeping its ghosts, each time the shard holds
/// more entries than it has room for, up to one hash per unit of the main
/// queue's share (out of memory, it stays as it is and tries again at twice
/// as many entries). It follows all the shard's entries, not the main
/// queue's: in a loop, keys reach the main queue only through the ghost
/// queue, so a ghost queue waiting for the main queue to fill would never
/// grow.
///
/// The shard inserts before it evicts, while the algorithm decides before it
/// inserts: an entry inserted into a full shard waits, unlinked, until the
/// eviction that makes room for it, and only then checks the ghost queue and
/// joins a queue. This reproduces the paper's order exactly.
///
/// The frequency is a relaxed atomic, so hits raise it without the shard lock
/// (`kConcurrentAccess`); two racing hits may count as one.
struct S3Fifo {
  /// `on_access` only writes a relaxed atomic in the entry, so the cache may
  /// call it from lock-free readers, without the shard lock.
  static constexpr bool kConcurrentAccess = true;

  struct Hook : detail::ListHook {
    std::atomic<std::uint8_t> frequency{0};
    std::uint8_t queue = 0;  // which of the shard's queues holds the entry
  };

  template <class Entry>
  class Shard {
   public:
    /// A shard of `capacity` entries.
    Shard(std::size_t capacity, std::uint64_t seed) : Shard(capacity, seed, {}) {}

    /// A shard of `capacity` in the unit of `weights`: weight with a weigher,
    /// entries without. The small queue gets a tenth of `capacity` (rounded
    /// down), the main queue the rest. The ghost queue remembers as many
    /// hashes as the main queue's share holds entries: without weights that
    /// is the share; with weights it starts small and grows with the shard.
    Shard(std::size_t capacity, std::uint64_t /*seed*/, EntryWeights<Entry> weights)
        : capacity_(capacity),
          small_max_(capacity / 10),
          main_max_(capacity - capacity / 10),
          weights_(weights),
          ghosts_(weights.weighted() ? std::min(main_max_, kFirstWeightedGhosts) : main_max_) {
      ghosts_grow_at_ =
          weights.weighted() && ghosts_.capacity() < ghost_limit() ? ghosts_.capacity() : SIZE_MAX;
    }

    // A new entry starts at frequency 0 (the hook's initial state); it is not
    // reset here, as a lock-free reader may already have hit it.
    void on_insert(Entry& e) noexcept {
      link_pending();
      if (resident() + weight(e) > capacity_) {
        e.queue = kPending;
        pending_ = &e;
      } else {
        link(e);
      }
    }

    void on_access(Entry& e) noexcept {
      const std::uint8_t f = e.frequency.load(std::memory_order_relaxed);
      if (f < kMaxFrequency)
        e.frequency.store(static_cast<std::uint8_t>(f + 1), std::memory_order_relaxed);
    }

    /// The new value takes the old one's place and counts as a hit.
    void on_update(Entry& e) noexcept {
      const std::uint8_t f = e.frequency.load(std::memory_order_relaxed);
      if (f < kMaxFrequency)
        e.frequency.store(static_cast<std::uint8_t>(f + 1), std::memory_order_relaxed);
    }

    /// `fresh` takes `old`'s place, with its own weight.
    void on_replace(Entry& old, Entry& fresh) noexcept {
      const std::uint8_t f = old.frequency.load(std::memory_order_relaxed);
      fresh.frequency.store(f < kMaxFrequency ? f + 1 : f, std::memory_order_relaxed);
      fresh.queue = old.queue;
      if (pending_ == &old) {
        pending_ = &fresh;
      } else {
        queue_of(old).replace(old, fresh);
        std::size_t& size = size_of(old.queue);
        size = size - weight(old) + weight(fresh);
      }
    }

    void on_remove(Entry& e) noexcept {
      switch (e.queue) {
        case kPending:
          pending_ = nullptr;
          break;
        case kSmall:
          small_.erase(e);
          small_size_ -= weight(e);
          --small_count_;
          break;
        default:
          main_.erase(e);
          main_size_ -= weight(e);
          --main_count_;
          break;
      }
    }

    Entry* evict() noexcept {
      Entry* victim = choose_victim();
      if (victim == nullptr) {
        victim = pending_;  // nothing else is left
        pending_ = nullptr;
      }
      if (resident() <= capacity_) link_pending();
      return victim;
    }

    /// For tests: the small queue from oldest to newest, then the main queue
    /// from oldest to newest, then the entry waiting to be placed, if any.
    /// This is the eviction order when every frequency is 0.
    template <class F>
    void for_each_in_eviction_order(F&& f) const {
      for (Entry* e = small_.front(); e != nullptr; e = small_.next(*e)) f(*e);
      for (Entry* e = main_.front(); e != nullptr; e = main_.next(*e)) f(*e);
      if (pending_ != nullptr) f(*pending_);
    }

    /// For tests: calls `f(hash)` for each remembered ghost, oldest first.
    template <class F>
    void for_each_ghost(F&& f) const {
      ghosts_.for_each(f);
    }

    /// For tests: the queues' sizes (in weight with a weigher, else in
    /// entries), their shares of the capacity, and their entries.
    [[nodiscard]] std::size_t small_size() const noexcept { return small_size_; }
    [[nodiscard]] std::size_t main_size() const noexcept { return main_size_; }
    [[nodiscard]] std::size_t small_capacity() const noexcept { return small_max_; }
    [[nodiscard]] std::size_t main_capacity() const noexcept { return main_max_; }
    [[nodiscard]] std::size_t small_count() const noexcept { return small_count_; }
    [[nodiscard]] std::size_t main_count() const noexcept { return main_count_; }
    /// For tests: the number of hashes the ghost queue has room for.
    [[nodiscard]] std::size_t ghost_capacity() const noexcept { return ghosts_.capacity(); }

    /// For tests: true when the structure holds exactly `resident` entries
    /// and its sizes are their weights.
    [[nodiscard]] bool check_invariants(std::size_t resident_count) const noexcept {
      if (!small_.well_formed() || !main_.well_formed()) return false;
      if (small_.count() != small_count_ || main_.count() != main_count_) return false;
      if (weights_.total(small_) != small_size_ || weights_.total(main_) != main_size_)
        return false;
      if (small_count_ + main_count_ + (pending_ != nullptr ? 1 : 0) != resident_count) {
        return false;
      }
      for (Entry* e = small_.front(); e != nullptr; e = small_.next(*e)) {
        if (e->queue != kSmall || e->frequency.load(std::memory_order_relaxed) > kMaxFrequency) {
          return false;
        }
      }
      for (Entry* e = main_.front(); e != nullptr; e = main_.next(*e)) {
        if (e->queue != kMain || e->frequency.load(std::memory_order_relaxed) > kMaxFrequency) {
          return false;
        }
      }
      if (pending_ != nullptr && (pending_->queue != kPending || pending_->linked())) return false;
      // The ghost queue grew in time: it has room for as many hashes as the
      // shard holds entries, unless at its limit or out of memory.
      if (ghosts_.capacity() > ghost_limit() || small_count_ + main_count_ > ghosts_grow_at_) {
        return false;
      }
      if (ghosts_grow_at_ < ghosts_.capacity()) return false;
      return ghosts_.size() <= ghosts_.capacity() && ghosts_.check_invariants();
    }

   private:
    static constexpr std::uint8_t kSmall = 0;
    static constexpr std::uint8_t kMain = 1;
    static constexpr std::uint8_t kPending = 2;
    static constexpr std::uint8_t kMaxFrequency = 3;
    static constexpr std::size_t kFirstWeightedGhosts = 256;  // doubled as needed

    [[nodiscard]] std::size_t weight(const Entry& e) const noexcept { return weights_(e); }

    // In weight with a weigher, else in entries.
    [[nodiscard]] std::size_t resident() const noexcept {
      return small_size_ + main_size_ + (pending_ != nullptr ? weight(*pending_) : 0);
    }

    // The most hashes the ghost queue may remember: as many entries as the
    // main queue's share holds when each weighs at least 1.
    [[nodiscard]] std::size_t ghost_limit() const noexcept {
      return std::min(main_max_, detail::GhostQueue::max_capacity());
    }

    detail::IntrusiveList<Entry>& queue_of(const Entry& e) noexcept {
      return e.queue == kSmall ? small_ : main_;
    }
    std::size_t& size_of(std::uint8_t queue) noexcept {
      return queue == kSmall ? small_size_ : main_size_;
    }

    void push_main(Entry& e) noexcept {
      e.queue = kMain;
      main_.push_back(e);
      main_size_ += weight(e);
      ++main_count_;
    }

    void link(Entry& e) noexcept {
      if (ghosts_.remove(e.hash)) {
        push_main(e);
      } else {
        e.queue = kSmall;
        small_.push_back(e);
        small_size_ += weight(e);
        ++small_count_;
      }
      if (small_count_ + main_count_ > ghosts_grow_at_) [[unlikely]]
        grow_ghosts();
    }

    void link_pending() noexcept {
      if (pending_ == nullptr) return;
      Entry* e = pending_;
      pending_ = nullptr;
      link(*e);
    }

    // A weighted shard holds more entries than the ghost queue has room
    // for: double the room (or more, to hold them all), keeping the ghosts,
    // up to the limit. Out of memory, it keeps the present queue and tries
    // again when the shard holds twice as many entries.
    void grow_ghosts() noexcept {
      const std::size_t limit = ghost_limit();
      const std::size_t entries = small_count_ + main_count_;
      std::size_t target = ghosts_.capacity();
      while (target < entries && target < limit) {
        target = target > limit / 2 ? limit : std::max<std::size_t>(target * 2, 1);
      }
      try {
        ghosts_.grow(target);
        ghosts_grow_at_ = ghosts_.capacity() < limit ? ghosts_.capacity() : SIZE_MAX;
      } catch (const std::bad_alloc&) {
        ghosts_grow_at_ = ghosts_grow_at_ > SIZE_MAX / 2 ? SIZE_MAX : ghosts_grow_at_ * 2;
      }
    }

    Entry* choose_victim() noexcept {
      while (small_count_ != 0 && (small_size_ >= small_max_ || main_count_ == 0)) {
        Entry* e = small_.front();
        small_.erase(*e);
        small_size_ -= weight(*e);
        --small_count_;
        if (e->frequency.load(std::memory_order_relaxed) == 0) {
          ghosts_.push(e->hash);
          return e;
        }
        // Promoted: it starts over in the main queue, with frequency 0.
        e->frequency.store(0, std::memory_order_relaxed);
        push_main(*e);
        if (main_size_ > main_max_) return evict_from_main();
      }
      return evict_from_main();
    }

    Entry* evict_from_main() noexcept {
      for (;;) {
        Entry* e = main_.front();
        if (e == nullptr) return nullptr;
        const std::uint8_t f = e->frequency.load(std::memory_order_relaxed);
        if (f == 0) {
          main_.erase(*e);
          main_size_ -= weight(*e);
          --main_count_;
          return e;
        }
        e->frequency.store(f - 1, std::memory_order_relaxed);
        main_.move_to_back(*e);
      }
    }

    std::size_t capacity_;  // in weight with a weigher, else in entries
    std::size_t small_max_;
    std::size_t main_max_;
    EntryWeights<Entry> weights_;
    detail::IntrusiveList<Entry> small_;  // front = oldest
    detail::IntrusiveList<Entry> main_;   // front = oldest
    std::size_t small_size_ = 0;          // weight
    std::size_t main_size_ = 0;           // weight
    std::size_t small_count_ = 0;         // entries
    std::size_t main_count_ = 0;          // entries
    Entry* pending_ = nullptr;            // inserted into a full shard, placed at the next eviction
    detail::GhostQueue ghosts_;
    // Main-queue entries beyond which the ghost queue grows: SIZE_MAX when
    // it never does (no weights, or at its limit).
    std::size_t ghosts_grow_at_ = SIZE_MAX;
  };
};

}  // namespace rtcache::policy
