#pragma once

/// \file
/// SIEVE eviction.

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "../detail/intrusive_list.hpp"

namespace rtcache::policy {

/// SIEVE (Zhang, Yang, Yue, Vigfusson and Rashmi, "SIEVE is Simpler than
/// LRU: an Efficient Turn-Key Eviction Algorithm for Web Caches", NSDI 2024):
/// one queue in insertion order, one visited bit per entry, and a hand that
/// moves from the oldest entry towards the newest. A hit only sets the bit.
/// To evict, the hand skips (and clears) visited entries and takes the first
/// unvisited one; it then stays where it stopped, and wraps to the oldest
/// entry when it passes the newest. Unlike CLOCK, a visited entry keeps its
/// place instead of moving to the front, so new entries that are not used
/// again (one-hit wonders) are found and removed quickly, while popular ones
/// stay behind the hand.
///
/// The entry inserted last is not a candidate while another entry is
/// resident, which gives the paper's order (evict, then insert) although the
/// shard inserts first.
///
/// The visited bit is a relaxed atomic, so hits set it without the shard lock
/// (`kConcurrentAccess`).
struct Sieve {
  /// `on_access` only writes a relaxed atomic in the entry, so the cache may
  /// call it from lock-free readers, without the shard lock.
  static constexpr bool kConcurrentAccess = true;

  struct Hook : detail::ListHook {
    std::atomic<std::uint8_t> visited{0};
  };

  template <class Entry>
  class Shard {
   public:
    Shard(std::size_t /*capacity*/, std::uint64_t /*seed*/) noexcept {}

    // A new entry starts unvisited (the hook's initial state); it is not reset
    // here, as a lock-free reader may already have visited it.
    void on_insert(Entry& e) noexcept {
      queue_.push_back(e);
      newest_ = &e;
      ++size_;
    }

    void on_access(Entry& e) noexcept {
      if (e.visited.load(std::memory_order_relaxed) == 0) {
        e.visited.store(1, std::memory_order_relaxed);
      }
    }

    /// The new value takes the old one's place and counts as a visit.
    void on_replace(Entry& old, Entry& fresh) noexcept {
      queue_.replace(old, fresh);
      fresh.visited.store(1, std::memory_order_relaxed);
      if (hand_ == &old) hand_ = &fresh;
      if (newest_ == &old) newest_ = &fresh;
    }

    void on_update(Entry& e) noexcept { e.visited.store(1, std::memory_order_relaxed); }

    void on_remove(Entry& e) noexcept {
      if (hand_ == &e) hand_ = after(e);
      if (newest_ == &e) newest_ = nullptr;
      queue_.erase(e);
      --size_;
    }

    Entry* evict() noexcept {
      if (size_ == 0) return nullptr;
      if (size_ == 1) {
        Entry* only = queue_.front();
        hand_ = newest_ = nullptr;
        queue_.erase(*only);
        size_ = 0;
        return only;
      }
      Entry* victim = hand_ != nullptr ? hand_ : queue_.front();
      while (victim->visited.load(std::memory_order_relaxed) != 0) {
        victim->visited.store(0, std::memory_order_relaxed);
        victim = after(*victim);
        if (victim == nullptr) victim = queue_.front();
      }
      hand_ = after(*victim);
      queue_.erase(*victim);
      --size_;
      return victim;
    }

    /// For tests: the entries from the hand towards the newest, then from the
    /// oldest up to the hand. This is the eviction order when no visited bit
    /// is set (the newest entry, skipped by the hand, comes last).
    template <class F>
    void for_each_in_eviction_order(F&& f) const {
      Entry* start = hand_ != nullptr ? hand_ : queue_.front();
      for (Entry* e = start; e != nullptr; e = after(*e)) f(*e);
      for (Entry* e = queue_.front(); e != nullptr && e != start; e = after(*e)) f(*e);
      if (newest_ != nullptr && size_ > 1) f(*newest_);
    }

    /// For tests: true when the structure holds exactly `resident` entries.
    [[nodiscard]] bool check_invariants(std::size_t resident) const noexcept {
      if (!queue_.well_formed() || queue_.count() != resident || size_ != resident) return false;
      if (hand_ != nullptr && (!hand_->linked() || hand_ == newest_)) return false;
      return newest_ == nullptr || newest_ == queue_.back();
    }

   private:
    // The entry after `e` towards the newest, the newest excluded: it is not
    // there yet as far as the hand is concerned.
    Entry* after(const Entry& e) const noexcept {
      Entry* next = queue_.next(e);
      return next == newest_ ? nullptr : next;
    }

    detail::IntrusiveList<Entry> queue_;  // front = oldest, back = newest
    Entry* hand_ = nullptr;               // next candidate; nullptr = the oldest
    Entry* newest_ = nullptr;             // inserted last, skipped by the hand
    std::size_t size_ = 0;
  };
};

}  // namespace rtcache::policy
