#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "../versioned.hpp"
#include "block_pool.hpp"

namespace rtcache {

namespace detail {
template <class Entry>
class EntryLayout;
}  // namespace detail

/// The weight of a cached entry, as the cache's weigher gave it: what a
/// policy needs to measure its regions in weight rather than in entries. A
/// policy's `Shard` that is constructible from `(capacity, seed, weights)`
/// gets one from the cache (see `ShardPolicyFor`); its `capacity` is then in
/// weight when `weighted()`, and in entries otherwise.
template <class Entry>
class EntryWeights {
 public:
  /// Every entry weighs 1: a cache without a weigher.
  constexpr EntryWeights() noexcept = default;

  /// True when the cache has a weigher (and capacities are in weight).
  [[nodiscard]] constexpr bool weighted() const noexcept { return offset_ != 0; }

  /// The weight of `e`, an entry of the cache that made this object.
  [[nodiscard]] std::uint32_t operator()(const Entry& e) const noexcept {
    if (offset_ == 0) return 1;
    return *reinterpret_cast<const std::uint32_t*>(reinterpret_cast<const char*>(&e) - offset_);
  }

  /// The total weight of the entries of `list` (an intrusive list of them,
  /// walked with `front()` and `next(e)`): for policies' invariant checks.
  template <class List>
  [[nodiscard]] std::size_t total(const List& list) const noexcept {
    std::size_t sum = 0;
    for (const Entry* e = list.front(); e != nullptr; e = list.next(*e)) sum += (*this)(*e);
    return sum;
  }

 private:
  friend class detail::EntryLayout<Entry>;
  explicit constexpr EntryWeights(std::size_t offset) noexcept : offset_(offset) {}

  std::size_t offset_ = 0;  // from the weight to the entry; 0: no weights
};

}  // namespace rtcache

namespace rtcache::detail {

/// Times on the cache's clock, in nanoseconds.
inline constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

/// When an entry stops being fresh, and when a hit should refresh it.
struct EntryTimes {
  std::int64_t expires_at = kNever;
  std::int64_t refresh_at = kNever;
};

/// True if values of type `T` can be copied by a single lock-free atomic
/// access, and so rewritten in place under a sequence lock (`WriteSlots`).
template <class T>
inline constexpr bool kAtomicallyCopyable = [] {
  if constexpr (std::is_trivially_copyable_v<T> && !std::is_const_v<T> && !std::is_volatile_v<T>) {
    return std::atomic_ref<T>::is_always_lock_free;
  } else {
    return false;
  }
}();

/// The alignment an atomic access to a `T` member needs.
template <class T>
inline constexpr std::size_t kAtomicAlignment = [] {
  if constexpr (kAtomicallyCopyable<T>) {
    return std::atomic_ref<T>::required_alignment;
  } else {
    return alignof(T);
  }
}();

/// One cached key and value (or, for a negative entry, the fact that the
/// store has no such key). The policy's per-entry state is the `Hook` base,
/// so no policy keeps a second map; the table's chain link is `chain_next`.
///
/// The key, hash and flag `negative` are fixed once the entry is published.
/// So are the value, version and times, except in entries whose value is
/// atomically copyable (`kInPlace`: integers, pointers, small structs): a
/// write of a cached key then rewrites them in place, and readers copy them
/// through the sequence lock of the key's `WriteSlots` slot. Otherwise a new value is a new entry
/// that replaces this one in the table. Either way a reader copies the value
/// without a lock once the entry's memory is protected from reuse (see
/// epoch.hpp).
///
/// Kept small: the flags and the hash's low half come first, so that they
/// fill the hook's tail padding; the expiry times and the weight are not
/// members but sit in front of the entry, and only in caches that use them
/// (`EntryLayout`).
template <class K, class V, class Hook>
struct Entry : Hook {
  static constexpr bool kInPlace = kAtomicallyCopyable<V>;

  /// A positive entry.
  Entry(std::uint64_t h, const K& k, Versioned<V>&& v)
      : negative(false), hash(static_cast<std::uint32_t>(h)), version(v.version), key(k) {
    std::construct_at(&value, std::move(v.value));
  }
  /// A negative entry: "not found".
  Entry(std::uint64_t h, const K& k, std::uint64_t v)
      : negative(true), hash(static_cast<std::uint32_t>(h)), version(v), key(k) {}
  ~Entry() {
    if (!negative) std::destroy_at(&value);
  }
  Entry(const Entry&) = delete;
  Entry& operator=(const Entry&) = delete;

  /// True while the entry is in its shard's table (written under the shard
  /// lock; read by readers that found it without the lock).
  std::atomic<bool> resident{false};
  /// Set by the first hit that starts this entry's refresh.
  std::atomic<bool> refresh_started{false};
  const bool negative;
  /// The low 32 bits of the key's mixed hash: they pick the bucket, filter
  /// the chain walk, and feed the policy's sketches.
  const std::uint32_t hash;
  std::atomic<Entry*> chain_next{nullptr};
  /// Changed after publication only by an in-place write.
  std::uint64_t version;
  const K key;
  union {
    alignas(kAtomicAlignment<V>) V value;  // constructed unless `negative`
  };
};

/// A load of `field` that a concurrent in-place write may overlap: part of a
/// sequence-locked copy (acquire, see `EntryState`).
template <class T>
[[nodiscard]] T load_shared(const T& field) noexcept {
  return std::atomic_ref<T>(const_cast<T&>(field)).load(std::memory_order_acquire);
}

/// A store into a published entry, between `begin_write` and `end_write`.
template <class T>
void store_shared(T& field, T value) noexcept {
  std::atomic_ref<T>(field).store(value, std::memory_order_release);
}

/// How one cache lays its entries out, and creates and destroys them: in
/// front of each entry an `EntryTimes` when the cache keeps time, and its
/// weight when the cache has a weigher; nothing otherwise.
///
///     [weight, padded to 8 bytes] [EntryTimes] [Entry]
template <class Entry>
class EntryLayout {
 public:
  EntryLayout(bool with_times, bool with_weight) noexcept
      : times_(with_times ? sizeof(EntryTimes) : 0),
        weighted_(with_weight),
        prefix_(round_up(times_ + (with_weight ? kWeightSpace : 0))) {}

  // Blocks: the memory of one entry with what sits in front of it, from the
  // shard's `BlockPool`.

  /// An entry built in `block` (which stays the caller's if this throws).
  template <class... Args>
  [[nodiscard]] Entry* create_in(void* block, EntryTimes t, std::uint32_t w, Args&&... args) const {
    auto* e = reinterpret_cast<Entry*>(static_cast<char*>(block) + prefix_);
    std::construct_at(e, std::forward<Args>(args)...);
    if (times_ != 0) std::construct_at(times_address(e), t);
    if (weighted_) std::construct_at(weight_address(e), w);
    return e;
  }

  /// Destroys the entry and hands back its block, unfreed.
  [[nodiscard]] void* release(Entry* e) const noexcept {
    std::destroy_at(e);
    return reinterpret_cast<char*>(e) - prefix_;
  }

  /// Destroys the entry and gives its block back to `pool`.
  void destroy(Entry* e, BlockPool& pool) const noexcept { pool.deallocate(release(e)); }

  [[nodiscard]] std::size_t block_size() const noexcept { return prefix_ + sizeof(Entry); }
  /// The alignment a block needs.
  [[nodiscard]] static constexpr std::size_t block_alignment() noexcept { return kAlign; }

  /// The entry's times: never expiring, never refreshing without times.
  [[nodiscard]] EntryTimes times(const Entry& e) const noexcept {
    if (times_ == 0) return EntryTimes{};
    return *times_address(const_cast<Entry*>(&e));
  }

  /// The same, as part of a sequence-locked copy (see `EntryState`).
  [[nodiscard]] EntryTimes shared_times(const Entry& e) const noexcept {
    if (times_ == 0) return EntryTimes{};
    const EntryTimes* t = times_address(const_cast<Entry*>(&e));
    return EntryTimes{load_shared(t->expires_at), load_shared(t->refresh_at)};
  }

  /// Rewrites a published entry's times, within an in-place write.
  void store_times(Entry& e, EntryTimes t) const noexcept {
    if (times_ == 0) return;
    EntryTimes* to = times_address(&e);
    store_shared(to->expires_at, t.expires_at);
    store_shared(to->refresh_at, t.refresh_at);
  }

  /// The entry's weight: 1 without a weigher.
  [[nodiscard]] std::uint32_t weight(const Entry& e) const noexcept { return weights()(e); }

  /// The same, as an object a policy can keep.
  [[nodiscard]] EntryWeights<Entry> weights() const noexcept {
    return weighted_ ? EntryWeights<Entry>(times_ + kWeightSpace) : EntryWeights<Entry>();
  }

  /// Owns an entry until it is linked.
  class Owner {
   public:
    Owner(const EntryLayout& layout, BlockPool& pool, Entry* e) noexcept
        : layout_(layout), pool_(pool), e_(e) {}
    Owner(const Owner&) = delete;
    Owner& operator=(const Owner&) = delete;
    ~Owner() {
      if (e_ != nullptr) layout_.destroy(e_, pool_);
    }
    Entry* get() const noexcept { return e_; }
    Entry* operator->() const noexcept { return e_; }
    Entry& operator*() const noexcept { return *e_; }
    Entry* release() noexcept { return std::exchange(e_, nullptr); }

   private:
    const EntryLayout& layout_;
    BlockPool& pool_;
    Entry* e_;
  };

 private:
  static constexpr std::size_t kAlign = alignof(Entry) > alignof(EntryTimes) ? alignof(Entry)
                                                                             : alignof(EntryTimes);
  static constexpr std::size_t kWeightSpace = 8;

  static constexpr std::size_t round_up(std::size_t n) noexcept {
    return (n + kAlign - 1) / kAlign * kAlign;
  }

  EntryTimes* times_address(Entry* e) const noexcept {
    return reinterpret_cast<EntryTimes*>(reinterpret_cast<char*>(e) - sizeof(EntryTimes));
  }
  std::uint32_t* weight_address(Entry* e) const noexcept {
    return reinterpret_cast<std::uint32_t*>(reinterpret_cast<char*>(e) - times_ - kWeightSpace);
  }

  std::size_t times_;   // bytes of EntryTimes in front of the entry (0 or 16)
  bool weighted_;       // a weight in front of the times
  std::size_t prefix_;  // all bytes in front of the entry
};

}  // namespace rtcache::detail
