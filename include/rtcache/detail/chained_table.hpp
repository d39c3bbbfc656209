#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace rtcache::detail {

/// The hash table of one shard: a power-of-two array of buckets, each a chain
/// of entries linked through `Entry::chain_next`. The table neither owns nor
/// allocates entries; it only links them. The bucket comes from the low bits
/// of the (already mixed) hash; the shard index takes the high bits.
///
/// Writers must hold the shard lock. Readers may call `find` without it,
/// inside an epoch guard: links are atomics published with release order, so
/// a reader sees fully constructed entries and finite chains, even while the
/// table grows. A replaced bucket array is kept until `reclaim` says no
/// reader can still be in it (see epoch.hpp).
template <class Entry>
class ChainedTable {
 public:
  ChainedTable() : ChainedTable(kMinBuckets) {}
  explicit ChainedTable(std::size_t buckets)
      : current_(Buckets::make(std::bit_ceil(std::max(buckets, kMinBuckets)))) {}

  ~ChainedTable() {
    Buckets::destroy(current_.load(std::memory_order_relaxed));
    for (Retired& r : retired_) Buckets::destroy(r.buckets);
  }

  ChainedTable(const ChainedTable&) = delete;
  ChainedTable& operator=(const ChainedTable&) = delete;

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t bucket_count() const noexcept { return buckets().count(); }

  /// The entry with this hash for which `matches(entry)` holds, or nullptr.
  /// Without the lock, a concurrent grow may hide an entry: look again under
  /// the lock before concluding it is absent.
  template <class Matches>
  [[nodiscard]] Entry* find(std::uint64_t hash, Matches&& matches) const {
    const Buckets& b = *current_.load(std::memory_order_acquire);
    for (Entry* e = b.head(hash).load(std::memory_order_acquire); e != nullptr;
         e = e->chain_next.load(std::memory_order_acquire)) {
      if (e->hash == static_cast<std::uint32_t>(hash) && matches(*e)) return e;
    }
    return nullptr;
  }

  /// Links `entry`, whose key must not be present. May grow the bucket array
  /// (and throw `std::bad_alloc` doing so, leaving the table unchanged); the
  /// old array is then stamped with `stamp()`, called after the new array is
  /// published (only when growing), and kept until `reclaim`.
  template <class Stamp>
  void insert(Entry* entry, Stamp&& stamp) {
    if (size_ >= buckets().count()) grow(stamp);
    // At the end of its chain: the keys that came first (under a skewed load,
    // often the hottest) stay first, so most hits read one entry.
    std::atomic<Entry*>* link = &buckets().head(entry->hash);
    for (Entry* e = link->load(std::memory_order_relaxed); e != nullptr;
         e = link->load(std::memory_order_relaxed)) {
      link = &e->chain_next;
    }
    entry->chain_next.store(nullptr, std::memory_order_relaxed);
    link->store(entry, std::memory_order_release);
    ++size_;
  }

  /// Unlinks `entry`, which must be present. Its own `chain_next` is left as
  /// it is, so that a reader standing on it can walk on.
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

  /// Calls `f(entry)` for every entry; `f` must not change the table.
  template <class F>
  void for_each(F&& f) const {
    const Buckets& b = buckets();
    for (std::size_t i = 0; i < b.count(); ++i) {
      Entry* e = b.heads()[i].load(std::memory_order_relaxed);
      while (e != nullptr) {
        Entry* next = e->chain_next.load(std::memory_order_relaxed);
        f(*e);
        e = next;
      }
    }
  }

  /// Unlinks every entry (without touching them).
  void clear() noexcept {
    Buckets& b = buckets();
    for (std::size_t i = 0; i < b.count(); ++i) {
      b.heads()[i].store(nullptr, std::memory_order_release);
    }
    size_ = 0;
  }

  /// True while replaced bucket arrays wait for `reclaim`.
  [[nodiscard]] bool has_retired() const noexcept { return !retired_.empty(); }

  /// Frees the old bucket arrays whose stamp satisfies `safe(stamp)`.
  template <class Safe>
  void reclaim(Safe&& safe) noexcept {
    std::erase_if(retired_, [&](const Retired& r) {
      if (!safe(r.stamp)) return false;
      Buckets::destroy(r.buckets);
      return true;
    });
  }

 private:
  static constexpr std::size_t kMinBuckets = 8;

  /// A bucket array: its mask, then the heads in the same allocation, so
  /// that a lookup reaches its bucket with one load fewer.
  class Buckets {
   public:
    static Buckets* make(std::size_t n) {
      void* raw = ::operator new(sizeof(Buckets) + n * sizeof(std::atomic<Entry*>));
      auto* b = ::new (raw) Buckets(n - 1);
      std::uninitialized_value_construct_n(b->heads(), n);
      return b;
    }
    static void destroy(Buckets* b) noexcept {
      if (b == nullptr) return;
      const std::size_t n = b->count();
      std::destroy_n(b->heads(), n);
      b->~Buckets();
      ::operator delete(static_cast<void*>(b), sizeof(Buckets) + n * sizeof(std::atomic<Entry*>));
    }

    std::size_t count() const noexcept { return mask_ + 1; }
    std::atomic<Entry*>* heads() const noexcept {
      return reinterpret_cast<std::atomic<Entry*>*>(
          const_cast<char*>(reinterpret_cast<const char*>(this) + sizeof(Buckets)));
    }
    std::atomic<Entry*>& head(std::uint64_t hash) const noexcept {
      return heads()[static_cast<std::size_t>(hash) & mask_];
    }

   private:
    explicit Buckets(std::size_t mask) noexcept : mask_(mask) {}
    const std::size_t mask_;
  };
  static_assert(sizeof(Buckets) % alignof(std::atomic<Entry*>) == 0);

  struct Retired {
    std::uint64_t stamp;
    Buckets* buckets;
  };

  Buckets& buckets() const noexcept { return *current_.load(std::memory_order_relaxed); }

  std::atomic<Entry*>& link_to(Entry* entry) const noexcept {
    std::atomic<Entry*>* link = &buckets().head(entry->hash);
    for (Entry* e = link->load(std::memory_order_relaxed); e != entry;
         e = link->load(std::memory_order_relaxed)) {
      link = &e->chain_next;
    }
    return *link;
  }

  template <class Stamp>
  void grow(Stamp& stamp) {
    Buckets& old = buckets();
    retired_.reserve(retired_.size() + 1);
    Buckets* fresh = Buckets::make(old.count() * 2);  // the last step that may throw
    // Readers may be walking the old array while entries move. Old chain i
    // splits into new chains i and i + old.count(), each keeping the old
    // order; an entry is cut off (its link set to null) before it is
    // appended to its new chain. A reader that follows an entry into a new
    // chain therefore still walks a finite list; at worst it stops early and
    // misses the key, and the caller then looks again under the lock.
    for (std::size_t i = 0; i < old.count(); ++i) {
      std::atomic<Entry*>* tails[2] = {&fresh->heads()[i], &fresh->heads()[i + old.count()]};
      Entry* e = old.heads()[i].load(std::memory_order_relaxed);
      while (e != nullptr) {
        Entry* next = e->chain_next.load(std::memory_order_relaxed);
        std::atomic<Entry*>*& tail = tails[(e->hash & old.count()) != 0 ? 1 : 0];
        e->chain_next.store(nullptr, std::memory_order_release);
        tail->store(e, std::memory_order_release);
        tail = &e->chain_next;
        e = next;
      }
    }
    current_.store(fresh, std::memory_order_release);
    // Stamped once unlinked (the array is published above, and the stamp's
    // read-modify-write orders that before it), as an entry is.
    retired_.push_back(Retired{stamp(), &old});
  }

  // Lock-free readers load `current_` on every lookup; the rest changes on
  // every insert: keep them on separate cache lines.
  alignas(64) std::atomic<Buckets*> current_;
  alignas(64) std::size_t size_ = 0;
  std::vector<Retired> retired_;
};

}  // namespace rtcache::detail
