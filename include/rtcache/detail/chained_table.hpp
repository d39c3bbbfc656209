#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace rtcache::detail {

/// The hash table of one shard: a power-of-two array of buckets, each a chain
/// of entries linked through `Entry::chain_next`. The table neither owns nor
/// allocates entries; it only links them. The bucket comes from the low bits
/// of the (already mixed) hash; the shard index takes the high bits.
///
/// Links are atomics written with release order, so that a reader that does
/// not hold the shard lock always sees fully constructed entries. Writers must
/// hold the shard lock.
template <class Entry>
class ChainedTable {
 public:
  ChainedTable() : ChainedTable(kMinBuckets) {}
  explicit ChainedTable(std::size_t buckets)
      : bucket_count_(std::bit_ceil(buckets < kMinBuckets ? kMinBuckets : buckets)),
        buckets_(std::make_unique<std::atomic<Entry*>[]>(bucket_count_)) {}

  ChainedTable(const ChainedTable&) = delete;
  ChainedTable& operator=(const ChainedTable&) = delete;

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t bucket_count() const noexcept { return bucket_count_; }

  /// The entry with this hash for which `matches(entry)` holds, or nullptr.
  template <class Matches>
  [[nodiscard]] Entry* find(std::uint64_t hash, Matches&& matches) const {
    for (Entry* e = bucket(hash).load(std::memory_order_acquire); e != nullptr;
         e = e->chain_next.load(std::memory_order_acquire)) {
      if (e->hash == hash && matches(*e)) return e;
    }
    return nullptr;
  }

  /// Links `entry`, whose key must not be present. May grow the bucket array
  /// (and throw `std::bad_alloc` doing so, leaving the table unchanged).
  void insert(Entry* entry) {
    if (size_ >= bucket_count_) grow();
    std::atomic<Entry*>& head = bucket(entry->hash);
    entry->chain_next.store(head.load(std::memory_order_relaxed), std::memory_order_relaxed);
    head.store(entry, std::memory_order_release);
    ++size_;
  }

  /// Unlinks `entry`, which must be present.
  void unlink(Entry* entry) noexcept {
    link_to(entry).store(entry->chain_next.load(std::memory_order_relaxed),
                         std::memory_order_release);
    --size_;
  }

  /// `fresh` (same key) takes the place of `old`, which must be present.
  void replace(Entry* old, Entry* fresh) noexcept {
    fresh->chain_next.store(old->chain_next.load(std::memory_order_relaxed),
                            std::memory_order_relaxed);
    link_to(old).store(fresh, std::memory_order_release);
  }

  /// Calls `f(entry)` for every entry; `f` may not change the table, but may
  /// destroy the entry it is given when `clear()` follows.
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < bucket_count_; ++i) {
      Entry* e = buckets_[i].load(std::memory_order_relaxed);
      while (e != nullptr) {
        Entry* next = e->chain_next.load(std::memory_order_relaxed);
        f(*e);
        e = next;
      }
    }
  }

  /// Unlinks every entry (without touching them).
  void clear() noexcept {
    for (std::size_t i = 0; i < bucket_count_; ++i) {
      buckets_[i].store(nullptr, std::memory_order_release);
    }
    size_ = 0;
  }

 private:
  static constexpr std::size_t kMinBuckets = 8;

  std::atomic<Entry*>& bucket(std::uint64_t hash) const noexcept {
    return buckets_[static_cast<std::size_t>(hash) & (bucket_count_ - 1)];
  }

  std::atomic<Entry*>& link_to(Entry* entry) const noexcept {
    std::atomic<Entry*>* link = &bucket(entry->hash);
    for (Entry* e = link->load(std::memory_order_relaxed); e != entry;
         e = link->load(std::memory_order_relaxed)) {
      link = &e->chain_next;
    }
    return *link;
  }

  void grow() {
    const std::size_t new_count = bucket_count_ * 2;
    auto fresh = std::make_unique<std::atomic<Entry*>[]>(new_count);
    for (std::size_t i = 0; i < bucket_count_; ++i) {
      Entry* e = buckets_[i].load(std::memory_order_relaxed);
      while (e != nullptr) {
        Entry* next = e->chain_next.load(std::memory_order_relaxed);
        std::atomic<Entry*>& head = fresh[static_cast<std::size_t>(e->hash) & (new_count - 1)];
        e->chain_next.store(head.load(std::memory_order_relaxed), std::memory_order_relaxed);
        head.store(e, std::memory_order_relaxed);
        e = next;
      }
    }
    buckets_ = std::move(fresh);
    bucket_count_ = new_count;
  }

  std::size_t bucket_count_;
  std::unique_ptr<std::atomic<Entry*>[]> buckets_;
  std::size_t size_ = 0;
};

}  // namespace rtcache::detail
