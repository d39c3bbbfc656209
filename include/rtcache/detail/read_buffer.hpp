#pragma once

/// \file
/// A lossy, striped buffer of recent hits, after BP-Wrapper (Ding, Jiang,
/// Chen, Zhang: "BP-Wrapper: a system framework making any replacement
/// algorithm (almost) lock contention free", ICDE 2009) and Caffeine's read
/// buffer. A hit records its entry here without a lock; whoever holds the
/// shard lock next replays the records into the policy in order. A record
/// that finds its slot still taken is dropped when the lock is busy: the
/// policy sees slightly fewer hits under contention, never a wrong entry.

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "thread_index.hpp"

namespace rtcache::detail {

template <class Entry>
class ReadBuffer {
 public:
  static constexpr std::size_t kSlots = 16;  // per stripe, a power of two

  explicit ReadBuffer(unsigned hardware_threads)
      : stripe_count_(std::bit_ceil(std::size_t{hardware_threads == 0 ? 1u : hardware_threads})),
        stripes_(std::make_unique<Stripe[]>(stripe_count_)) {}

  /// Records a hit. Returns false when the stripe is full: the caller should
  /// drain (if it can take the lock) and try once more, or drop the hit.
  bool try_push(Entry* entry) noexcept {
    Stripe& s = stripes_[thread_index() & (stripe_count_ - 1)];
    const std::uint32_t index = s.tail.load(std::memory_order_relaxed);
    std::atomic<Entry*>& slot = s.slots[index & (kSlots - 1)];
    if (slot.load(std::memory_order_relaxed) != nullptr) return false;
    // Two threads of one stripe may race for a slot: one record may then
    // overwrite the other, which only loses a hit.
    s.tail.store(index + 1, std::memory_order_relaxed);
    slot.store(entry, std::memory_order_release);
    return true;
  }

  /// Under the shard lock: calls `apply(entry)` for every record, oldest
  /// first per stripe, and empties the buffer.
  template <class Apply>
  void drain(Apply&& apply) noexcept {
    drain([](Entry&) noexcept {}, apply);
  }

  /// The same, but first calls `prepare(entry)` for every record of a stripe
  /// (to prefetch what `apply` will touch, so that the cache misses of the
  /// whole stripe overlap), then `apply(entry)` for each.
  template <class Prepare, class Apply>
  void drain(Prepare&& prepare, Apply&& apply) noexcept {
    for (std::size_t i = 0; i < stripe_count_; ++i) {
      Stripe& s = stripes_[i];
      const std::uint32_t tail = s.tail.load(std::memory_order_acquire);
      if (tail == s.drained_tail) continue;  // nothing new since the last drain
      s.drained_tail = tail;
      // Taking a record is a load and a store, not an exchange: a writer that
      // stores into the slot between the two loses its record, which the
      // buffer allows anyway, and the drain does not pay a locked instruction
      // (a full fence, behind the previous record's stores) per record.
      std::array<Entry*, kSlots> batch;
      std::size_t n = 0;
      for (std::uint32_t k = 0; k < kSlots; ++k) {
        std::atomic<Entry*>& slot = s.slots[(tail + k) & (kSlots - 1)];
        Entry* e = slot.load(std::memory_order_acquire);
        if (e == nullptr) continue;
        slot.store(nullptr, std::memory_order_relaxed);
        batch[n++] = e;
      }
      for (std::size_t k = 0; k < n; ++k) prepare(*batch[k]);
      for (std::size_t k = 0; k < n; ++k) apply(*batch[k]);
    }
  }

  /// Under the shard lock: empties every slot, whatever the tails say. Run
  /// before freeing retired entries, so that no record outlives its entry.
  template <class Apply>
  void drain_all(Apply&& apply) noexcept {
    for (std::size_t i = 0; i < stripe_count_; ++i) {
      Stripe& s = stripes_[i];
      s.drained_tail = s.tail.load(std::memory_order_acquire);
      for (std::uint32_t k = 0; k < kSlots; ++k) {
        std::atomic<Entry*>& slot = s.slots[(s.drained_tail + k) & (kSlots - 1)];
        if (Entry* e = slot.exchange(nullptr, std::memory_order_acquire)) apply(*e);
      }
    }
  }

 private:
  struct alignas(64) Stripe {
    std::atomic<std::uint32_t> tail{0};
    std::uint32_t drained_tail = 0;  // under the shard lock
    std::array<std::atomic<Entry*>, kSlots> slots{};
  };

  std::size_t stripe_count_;
  std::unique_ptr<Stripe[]> stripes_;
};

}  // namespace rtcache::detail
