#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

namespace rtcache::detail {

/// A bounded FIFO of 64-bit key hashes with O(1) membership test and removal:
/// the memory of recently evicted keys that some policies keep (S3-FIFO's ghost
/// queue). It stores only hashes, never keys, and allocates everything at
/// construction: a node pool linked in FIFO order and an open-addressing index
/// (linear probing, backward-shift deletion) from hash to node.
///
/// Two keys with the same 64-bit hash are one ghost; with well mixed hashes
/// that happens with negligible probability and only costs a slightly wrong
/// guess.
///
/// `grow` replaces the pool and the index by larger ones, for a user that
/// learns only over time how many hashes it wants to keep.
class GhostQueue {
 public:
  /// A queue of at most `capacity` hashes (clamped to 2^32 - 2).
  explicit GhostQueue(std::size_t capacity)
      : capacity_(clamp(capacity)),
        nodes_(capacity_ == 0 ? nullptr : std::make_unique<Node[]>(capacity_)),
        index_mask_(std::bit_ceil(std::size_t{capacity_} * 2 + 2) - 1),
        index_(std::make_unique<std::uint32_t[]>(index_mask_ + 1)) {
    for (std::size_t i = 0; i <= index_mask_; ++i) index_[i] = kNone;
    // All nodes start on the free list.
    for (std::uint32_t i = 0; i < capacity_; ++i)
      nodes_[i].next = i + 1 < capacity_ ? i + 1 : kNone;
    free_ = capacity_ == 0 ? kNone : 0;
  }

  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  /// The most hashes any queue holds: larger capacities are clamped to this.
  [[nodiscard]] static constexpr std::size_t max_capacity() noexcept { return kNone - 1; }

  /// Makes room for `capacity` hashes (clamped as by the constructor),
  /// keeping the remembered ones in their order, oldest to newest; does
  /// nothing when that is not more than the present capacity. Allocates the
  /// larger pool and index before it changes anything: throws
  /// std::bad_alloc, and then the queue is as it was.
  void grow(std::size_t capacity) {
    if (clamp(capacity) <= capacity_) return;
    GhostQueue larger(capacity);
    for_each([&](std::uint64_t hash) { larger.push(hash); });
    *this = std::move(larger);
  }

  /// Remembers `hash` as the newest ghost, forgetting the oldest one when full.
  /// A hash already present moves to the newest position.
  void push(std::uint64_t hash) noexcept {
    if (capacity_ == 0) return;
    remove(hash);
    if (size_ == capacity_) remove_at_slot(find_slot(nodes_[oldest_].hash));
    const std::uint32_t n = free_;
    free_ = nodes_[n].next;
    nodes_[n].hash = hash;
    nodes_[n].prev = newest_;
    nodes_[n].next = kNone;
    if (newest_ != kNone) {
      nodes_[newest_].next = n;
    } else {
      oldest_ = n;
    }
    newest_ = n;
    ++size_;
    std::size_t slot = hash & index_mask_;
    while (index_[slot] != kNone) slot = (slot + 1) & index_mask_;
    index_[slot] = n;
  }

  [[nodiscard]] bool contains(std::uint64_t hash) const noexcept {
    return find_slot(hash) != kNoSlot;
  }

  /// Forgets `hash`; returns whether it was there.
  bool remove(std::uint64_t hash) noexcept {
    const std::size_t slot = find_slot(hash);
    if (slot == kNoSlot) return false;
    remove_at_slot(slot);
    return true;
  }

  /// For tests: calls `f(hash)` from the oldest ghost to the newest.
  template <class F>
  void for_each(F&& f) const {
    for (std::uint32_t n = oldest_; n != kNone; n = nodes_[n].next) f(nodes_[n].hash);
  }

  /// For tests: the list and the index agree, in both directions.
  [[nodiscard]] bool check_invariants() const noexcept {
    std::size_t listed = 0;
    std::uint32_t prev = kNone;
    for (std::uint32_t n = oldest_; n != kNone; n = nodes_[n].next) {
      if (nodes_[n].prev != prev || !contains(nodes_[n].hash) || ++listed > capacity_) return false;
      prev = n;
    }
    if (prev != newest_ || listed != size_) return false;
    std::size_t indexed = 0;
    for (std::size_t i = 0; i <= index_mask_; ++i) indexed += index_[i] != kNone ? 1 : 0;
    return indexed == size_;
  }

 private:
  static constexpr std::uint32_t kNone = UINT32_MAX;
  static constexpr std::size_t kNoSlot = SIZE_MAX;

  static constexpr std::uint32_t clamp(std::size_t capacity) noexcept {
    return static_cast<std::uint32_t>(capacity < max_capacity() ? capacity : max_capacity());
  }

  struct Node {
    std::uint64_t hash = 0;
    std::uint32_t prev = kNone;
    std::uint32_t next = kNone;
  };

  [[nodiscard]] std::size_t find_slot(std::uint64_t hash) const noexcept {
    for (std::size_t slot = hash & index_mask_;; slot = (slot + 1) & index_mask_) {
      const std::uint32_t n = index_[slot];
      if (n == kNone) return kNoSlot;
      if (nodes_[n].hash == hash) return slot;
    }
  }

  void remove_at_slot(std::size_t slot) noexcept {
    const std::uint32_t n = index_[slot];
    Node& node = nodes_[n];
    if (node.prev != kNone) {
      nodes_[node.prev].next = node.next;
    } else {
      oldest_ = node.next;
    }
    if (node.next != kNone) {
      nodes_[node.next].prev = node.prev;
    } else {
      newest_ = node.prev;
    }
    node.next = free_;
    free_ = n;
    --size_;

    // Backward-shift deletion keeps every probe sequence unbroken.
    std::size_t hole = slot;
    for (std::size_t i = (hole + 1) & index_mask_; index_[i] != kNone; i = (i + 1) & index_mask_) {
      const std::size_t home = nodes_[index_[i]].hash & index_mask_;
      // Move entry i into the hole unless its home lies cyclically in (hole, i].
      const bool stays = hole <= i ? (hole < home && home <= i) : (hole < home || home <= i);
      if (!stays) {
        index_[hole] = index_[i];
        hole = i;
      }
    }
    index_[hole] = kNone;
  }

  std::uint32_t capacity_;
  std::unique_ptr<Node[]> nodes_;
  std::size_t index_mask_;
  std::unique_ptr<std::uint32_t[]> index_;
  std::uint32_t oldest_ = kNone;
  std::uint32_t newest_ = kNone;
  std::uint32_t free_ = kNone;
  std::uint32_t size_ = 0;
};

}  // namespace rtcache::detail
