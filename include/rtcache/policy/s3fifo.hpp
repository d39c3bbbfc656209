#pragma once

/// \file
/// S3-FIFO eviction.

#include <atomic>
#include <cstddef>
#include <cstdint>

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
    /// The small queue gets a tenth of `capacity` (rounded down), the main
    /// queue the rest, and the ghost queue as many hashes as the main queue.
    Shard(std::size_t capacity, std::uint64_t /*seed*/)
        : capacity_(capacity),
          small_max_(capacity / 10),
          main_max_(capacity - capacity / 10),
          ghosts_(main_max_) {}

    // A new entry starts at frequency 0 (the hook's initial state); it is not
    // reset here, as a lock-free reader may already have hit it.
    void on_insert(Entry& e) noexcept {
      link_pending();
      if (resident() + 1 > capacity_) {
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

    void on_replace(Entry& old, Entry& fresh) noexcept {
      const std::uint8_t f = old.frequency.load(std::memory_order_relaxed);
      fresh.frequency.store(f < kMaxFrequency ? f + 1 : f, std::memory_order_relaxed);
      fresh.queue = old.queue;
      if (pending_ == &old) {
        pending_ = &fresh;
      } else {
        queue_of(old).replace(old, fresh);
      }
    }

    void on_remove(Entry& e) noexcept {
      switch (e.queue) {
        case kPending:
          pending_ = nullptr;
          break;
        case kSmall:
          small_.erase(e);
          --small_size_;
          break;
        default:
          main_.erase(e);
          --main_size_;
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

    [[nodiscard]] std::size_t small_size() const noexcept { return small_size_; }
    [[nodiscard]] std::size_t main_size() const noexcept { return main_size_; }

    /// For tests: true when the structure holds exactly `resident` entries.
    [[nodiscard]] bool check_invariants(std::size_t resident_count) const noexcept {
      if (!small_.well_formed() || !main_.well_formed()) return false;
      if (small_.count() != small_size_ || main_.count() != main_size_) return false;
      if (resident() != resident_count) return false;
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
      return ghosts_.size() <= main_max_ && ghosts_.check_invariants();
    }

   private:
    static constexpr std::uint8_t kSmall = 0;
    static constexpr std::uint8_t kMain = 1;
    static constexpr std::uint8_t kPending = 2;
    static constexpr std::uint8_t kMaxFrequency = 3;

    [[nodiscard]] std::size_t resident() const noexcept {
      return small_size_ + main_size_ + (pending_ != nullptr ? 1 : 0);
    }

    detail::IntrusiveList<Entry>& queue_of(const Entry& e) noexcept {
      return e.queue == kSmall ? small_ : main_;
    }

    void link(Entry& e) noexcept {
      if (ghosts_.remove(e.hash)) {
        e.queue = kMain;
        main_.push_back(e);
        ++main_size_;
      } else {
        e.queue = kSmall;
        small_.push_back(e);
        ++small_size_;
      }
    }

    void link_pending() noexcept {
      if (pending_ == nullptr) return;
      Entry* e = pending_;
      pending_ = nullptr;
      link(*e);
    }

    Entry* choose_victim() noexcept {
      while (small_size_ != 0 && (small_size_ >= small_max_ || main_size_ == 0)) {
        Entry* e = small_.front();
        small_.erase(*e);
        --small_size_;
        if (e->frequency.load(std::memory_order_relaxed) == 0) {
          ghosts_.push(e->hash);
          return e;
        }
        // Promoted: it starts over in the main queue, with frequency 0.
        e->frequency.store(0, std::memory_order_relaxed);
        e->queue = kMain;
        main_.push_back(*e);
        ++main_size_;
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
          --main_size_;
          return e;
        }
        e->frequency.store(f - 1, std::memory_order_relaxed);
        main_.move_to_back(*e);
      }
    }

    std::size_t capacity_;
    std::size_t small_max_;
    std::size_t main_max_;
    detail::IntrusiveList<Entry> small_;  // front = oldest
    detail::IntrusiveList<Entry> main_;   // front = oldest
    std::size_t small_size_ = 0;
    std::size_t main_size_ = 0;
    Entry* pending_ = nullptr;  // inserted into a full shard, placed at the next eviction
    detail::GhostQueue ghosts_;
  };
};

}  // namespace rtcache::policy
