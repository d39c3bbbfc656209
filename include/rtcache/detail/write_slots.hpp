#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>

#include "cpu_relax.hpp"

namespace rtcache::detail {

/// What a shard's writes coordinate through, one cache line per slot; a key's
/// slot is picked by its hash. Two things live there:
///
/// **The write gate's fast path**: which keys are being written, so that a
/// write of a key nobody else writes passes the gate with one
/// compare-and-swap instead of a round trip through the shard lock and its
/// registry of keys in progress. A writer claims its key's slot by storing
/// the key's tag (its hash with the low bit set, never 0) in it. A slot held
/// for another key is not waited for: that write takes the registry path,
/// which tells keys apart exactly. The two paths exclude each other through
/// `diverted`: a writer on the registry path counts itself there and then
/// waits for the key's slot to drop its tag; a writer that claimed a slot
/// then looks at `diverted` and, if anyone is on the registry path, gives the
/// slot back and joins them (Dekker's pattern: both sides write, then read
/// the other's word, sequentially consistent, so one of them sees the
/// other). Writers waiting for a slot sleep on the shard's condition, counted
/// in `sleepers`; a slot is freed under the shard lock, by a writer that then
/// looks at that count and wakes them. `floor` carries, under the shard lock,
/// the newest version another instance announced for a key while its slot
/// was held.
///
/// **The sequence lock of values rewritten in place** (`Entry::kInPlace`),
/// which lets a reader without the shard lock copy an entry's value together
/// with its version and times (the Linux kernel's seqcount; Boehm, "Can
/// seqlocks get along with programming language memory models?", MSPC 2012).
/// The writer, under the shard lock, makes its slot's `sequence` odd, stores
/// the data with release stores, and makes it even again. A reader takes the
/// count with an acquire load, loads the data with acquire loads (so that its
/// second look at the count cannot move before them), and keeps the copy only
/// if the count was even and has not moved. Every access is atomic, so a
/// torn copy is thrown away, never undefined behaviour. A value alone needs
/// none of this: it is one atomic load. The count sits in the slot's line,
/// which a put has just claimed: the writer finds it in its own cache. (The
/// entry has no room for one; a write makes readers of the other keys of its
/// slot retry only if they were copying at that very moment.)
class WriteSlots {
 public:
  static constexpr std::size_t kSlots = 32;

  struct alignas(64) Slot {
    std::atomic<std::uint64_t> tag{0};       // the key being written (fast path), or 0
    std::atomic<std::uint32_t> sequence{0};  // odd while a value of the slot is rewritten
    std::atomic<std::uint32_t> sleepers{0};  // writers asleep waiting for `tag` to change
    std::uint64_t floor = 0;                 // under the shard lock
  };

  [[nodiscard]] static std::size_t index(std::uint64_t h) noexcept {
    // Bits that neither the shard (the top ones) nor the bucket (the low
    // 32) use.
    return static_cast<std::size_t>(h >> 40) % kSlots;
  }
  [[nodiscard]] static std::uint64_t tag(std::uint64_t h) noexcept { return h | 1; }

  [[nodiscard]] Slot& slot(std::uint64_t h) noexcept { return slots_[index(h)]; }
  [[nodiscard]] const Slot& slot(std::uint64_t h) const noexcept { return slots_[index(h)]; }

  /// Writers on the registry path (see above).
  std::atomic<std::uint32_t> diverted{0};

  // -- the sequence lock -----------------------------------------------------

  /// The count before a lock-free copy of an entry of the key with hash `h`.
  [[nodiscard]] std::uint32_t begin_read(std::uint64_t h) const noexcept {
    return slot(h).sequence.load(std::memory_order_acquire);
  }
  /// After the copy's acquire loads: true if the copy is consistent.
  [[nodiscard]] bool unchanged(std::uint64_t h, std::uint32_t before) const noexcept {
    return (before & 1) == 0 && slot(h).sequence.load(std::memory_order_relaxed) == before;
  }
  /// Before a retried copy: waits until no rewrite of the slot is in progress
  /// (a few stores under the shard lock; a long wait means the writer was
  /// preempted).
  void wait_for_writer(std::uint64_t h) const noexcept {
    const std::atomic<std::uint32_t>& sequence = slot(h).sequence;
    for (int spins = 0; (sequence.load(std::memory_order_relaxed) & 1) != 0; ++spins) {
      if (spins < kSpinsBeforeYield) {
        cpu_relax();
      } else {
        std::this_thread::yield();
      }
    }
  }

  /// Brackets an in-place write, under the shard lock.
  void begin_write(std::uint64_t h) noexcept {
    std::atomic<std::uint32_t>& sequence = slot(h).sequence;
    sequence.store(sequence.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void end_write(std::uint64_t h) noexcept {
    std::atomic<std::uint32_t>& sequence = slot(h).sequence;
    sequence.store(sequence.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }

 private:
  static constexpr int kSpinsBeforeYield = 64;

  std::array<Slot, kSlots> slots_{};
};

}  // namespace rtcache::detail
