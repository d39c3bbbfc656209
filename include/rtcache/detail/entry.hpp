#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <utility>

#include "../versioned.hpp"

namespace rtcache::detail {

/// Times on the cache's clock, in nanoseconds.
inline constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

/// When an entry stops being fresh, and when a hit should refresh it.
struct EntryTimes {
  std::int64_t expires_at = kNever;
  std::int64_t refresh_at = kNever;
};

/// One cached key and value (or, for a negative entry, the fact that the
/// store has no such key). The policy's per-entry state is the `Hook` base,
/// so no policy keeps a second map; the table's chain link is `chain_next`.
///
/// Everything but the three atomics is fixed once the entry is published: a
/// new value for the key is a new entry that replaces this one in the table.
/// That is what lets a reader copy the value without a lock once the entry's
/// memory is protected from reuse (see epoch.hpp).
///
/// The small fields come first, so that they fill the hook's tail padding.
/// Expiry times are not members: a cache whose options need time allocates
/// its entries with an `EntryTimes` just before them (`EntryAllocator`), and
/// a cache without pays nothing for them.
template <class K, class V, class Hook>
struct Entry : Hook {
  /// A positive entry.
  Entry(std::uint64_t h, const K& k, Versioned<V>&& v, std::uint32_t w)
      : negative(false), weight(w), hash(h), version(v.version), key(k) {
    std::construct_at(&value, std::move(v.value));
  }
  /// A negative entry: "not found".
  Entry(std::uint64_t h, const K& k, std::uint64_t v, std::uint32_t w)
      : negative(true), weight(w), hash(h), version(v), key(k) {}
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
  const std::uint32_t weight;
  std::atomic<Entry*> chain_next{nullptr};
  const std::uint64_t hash;
  const std::uint64_t version;
  const K key;
  union {
    V value;  // constructed unless `negative`
  };
};

/// Creates and destroys the entries of one cache: with an `EntryTimes` in
/// front of each when the cache keeps times, without otherwise.
template <class Entry>
class EntryAllocator {
 public:
  explicit EntryAllocator(bool with_times) noexcept : prefix_(with_times ? kTimesSpace : 0) {}

  /// A new entry (constructed from `args`) with times `t` (ignored without).
  template <class... Args>
  [[nodiscard]] Entry* create(EntryTimes t, Args&&... args) const {
    void* raw = allocate(prefix_ + sizeof(Entry));
    auto* e = reinterpret_cast<Entry*>(static_cast<char*>(raw) + prefix_);
    try {
      std::construct_at(e, std::forward<Args>(args)...);
    } catch (...) {
      deallocate(raw, prefix_ + sizeof(Entry));
      throw;
    }
    if (prefix_ != 0) std::construct_at(times_address(e), t);
    return e;
  }

  void destroy(Entry* e) const noexcept {
    if (e == nullptr) return;
    std::destroy_at(e);
    deallocate(reinterpret_cast<char*>(e) - prefix_, prefix_ + sizeof(Entry));
  }

  /// The entry's times: never expiring, never refreshing without times.
  [[nodiscard]] EntryTimes times(const Entry& e) const noexcept {
    if (prefix_ == 0) return EntryTimes{};
    return *times_address(const_cast<Entry*>(&e));
  }

  /// Owns an entry until it is linked.
  class Owner {
   public:
    Owner(const EntryAllocator& allocator, Entry* e) noexcept : allocator_(allocator), e_(e) {}
    Owner(const Owner&) = delete;
    Owner& operator=(const Owner&) = delete;
    ~Owner() { allocator_.destroy(e_); }
    Entry* get() const noexcept { return e_; }
    Entry* operator->() const noexcept { return e_; }
    Entry& operator*() const noexcept { return *e_; }
    Entry* release() noexcept { return std::exchange(e_, nullptr); }

   private:
    const EntryAllocator& allocator_;
    Entry* e_;
  };

 private:
  static constexpr std::size_t kAlign = alignof(Entry) > alignof(EntryTimes) ? alignof(Entry)
                                                                             : alignof(EntryTimes);
  static constexpr std::size_t kTimesSpace = (sizeof(EntryTimes) + kAlign - 1) / kAlign * kAlign;
  static constexpr bool kOverAligned = kAlign > __STDCPP_DEFAULT_NEW_ALIGNMENT__;

  static EntryTimes* times_address(Entry* e) noexcept {
    return reinterpret_cast<EntryTimes*>(reinterpret_cast<char*>(e) - sizeof(EntryTimes));
  }

  static void* allocate(std::size_t size) {
    if constexpr (kOverAligned) {
      return ::operator new (size, std::align_val_t{kAlign});
    } else {
      return ::operator new(size);
    }
  }

  static void deallocate(void* p, std::size_t size) noexcept {
    if constexpr (kOverAligned) {
      ::operator delete (p, size, std::align_val_t{kAlign});
    } else {
      ::operator delete(p, size);
    }
  }

  std::size_t prefix_;
};

}  // namespace rtcache::detail
