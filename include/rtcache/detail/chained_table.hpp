#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <utility>

#include "cpu_relax.hpp"
#include "macros.hpp"
#include "retired_list.hpp"

namespace rtcache::detail {

/// The hash table of one shard: an array of buckets, each a chain of entries
/// linked through `Entry::chain_next`. The table neither owns nor allocates
/// entries; it only links them. The bucket comes from the low 32 bits of the
/// (already mixed) hash, the ones an entry keeps, by multiply-shift
/// ("fastrange", Lemire 2019: `(h * n) >> 32`), so the bucket count need not
/// be a power of two; the shard index takes the high bits, which the low 32
/// do not share (a cache would need 2^32 shards for them to meet).
///
/// Bucket count: the table doubles when it holds one entry per bucket, up to
/// a ceiling. A table told the most entries it holds (a shard whose capacity
/// counts entries) never grows beyond the buckets those fill to `kMaxLoad`:
/// the grow that would pass that ceiling goes to exactly it, so a full
/// shard's array fits its capacity instead of the next power of two.
///
/// Writers must hold the shard lock. Readers may call `find` without it,
/// inside an epoch guard: links are atomics published with release order, so
/// a reader sees fully constructed entries and finite chains, even while the
/// table grows. A replaced bucket array is kept until `reclaim` says no
/// reader can still be in it (see epoch.hpp).
template <class Entry>
class ChainedTable {
 public:
  static constexpr std::size_t kMinBuckets = 8;
  /// The load (entries per bucket) of a full table, as a fraction: 9/8. It
  /// sets the ceiling only; below it the table doubles at load 1, as it
  /// always did, so a table that is not full is no more loaded than before.
  /// A design parameter, trading memory for hit cost; measured on a shared
  /// 2-core VM (K = V = uint64, 8 shards, caches filled to capacity, hits of
  /// present keys, medians of interleaved runs):
  /// - memory: a full table's array is 8 B / kMaxLoad per entry, 7.1 B: a
  ///   40-byte LRU or SIEVE entry comes to 47.3 B of overhead in all
  ///   (rtcache-memory), against 48.2 B at load 1 and 46.6 B at 5/4.
  /// - hits: a successful search reads about 1 + load / 2 entries. Against a
  ///   ceiling at load 1, a SIEVE hit costs about 3% more at 9/8 and 4-6% at
  ///   5/4 on a million entries (about 105 ns, memory-bound); 6% and 13% on
  ///   32K entries (about 24 ns, in cache).
  /// Growing at this load below the ceiling too would cost every table that
  /// is not full: with 5/4, rtcache-bench small/read100 SIEVE went from 14.8
  /// to 22.5 ns (its tables at load 1.18 instead of 0.59).
  static constexpr std::size_t kMaxLoadNum = 9;
  static constexpr std::size_t kMaxLoadDen = 8;
  /// `max_entries` for a table with no bound on its entries.
  static constexpr std::size_t kUnbounded = 0;

  ChainedTable() : ChainedTable(kMinBuckets) {}
  /// A table of `buckets` buckets (at least `kMinBuckets`). With
  /// `max_entries`, the table holds about that many entries at most (a shard
  /// may hold one more while it inserts before it evicts), and its bucket
  /// count stops at `ceil(max_entries / kMaxLoad)`.
  explicit ChainedTable(std::size_t buckets, std::size_t max_entries = kUnbounded)
      : current_(Buckets::make(std::max(kMinBuckets, std::min(buckets, ceiling_for(max_entries))))),
        ceiling_(ceiling_for(max_entries)),
        grow_at_(grow_at_for(bucket_count())) {}

  ~ChainedTable() {
    Buckets::destroy(current_.load(std::memory_order_relaxed));
    retired_.destroy_all(&Buckets::destroy);
  }

  ChainedTable(const ChainedTable&) = delete;
  ChainedTable& operator=(const ChainedTable&) = delete;

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t bucket_count() const noexcept { return buckets().count(); }
  /// The most buckets the table grows to.
  [[nodiscard]] std::size_t bucket_ceiling() const noexcept { return ceiling_; }

  /// The entry with this hash for which `matches(entry)` holds, or nullptr.
  /// Without the lock, a concurrent grow may hide an entry: look again under
  /// the lock before concluding it is absent.
  template <class Matches>
  [[nodiscard]] RTCACHE_ALWAYS_INLINE Entry* find(std::uint64_t hash, Matches&& matches) const {
    const auto low = static_cast<std::uint32_t>(hash);
    const std::atomic<Entry*>& head = current_.load(std::memory_order_acquire)->head(hash);
    Entry* first = head.load(std::memory_order_acquire);
    if (first == nullptr) return nullptr;
    // The key is most often first in its chain, else second. Which of the two
    // to try is picked without a branch: a branch on the first entry's hash
    // would be mispredicted on every chain where the key is second, and a
    // misprediction there throws away the lookups the processor had already
    // started after this one (in a loop of hits: the next keys' lookups).
    // The second link sits on the first entry's cache line.
    Entry* second = first->chain_next.load(std::memory_order_acquire);
    Entry* candidate = pick(first->hash != low, second, first);
    if (candidate != nullptr && candidate->hash == low && matches(*candidate)) [[likely]] {
      return candidate;
    }
    return find_in_chain(head, low, matches);
  }

  /// As `find`, but a miss is certain: the key was absent at some moment
  /// during the call. A grow that overlaps the search (and may have hidden
  /// the entry) makes it search again. For readers that may not take the
  /// lock; a grow never waits for readers, so the wait here is short.
  template <class Matches>
  [[nodiscard]] Entry* find_settled(std::uint64_t hash, Matches&& matches) const {
    for (;;) {
      const std::uint32_t before = settled_grows();
      if (Entry* e = find(hash, matches)) return e;
      if (no_grow_since(before)) return nullptr;
    }
  }

  /// The number of grows so far, once no grow is under way (waits for one
  /// to finish). With `no_grow_since`, tells a lock-free walk whether a grow
  /// overlapped it: a seqlock over the grows.
  [[nodiscard]] std::uint32_t settled_grows() const noexcept {
    std::uint32_t grows = grows_.load(std::memory_order_acquire);
    while ((grows & 1) != 0) {
      cpu_relax();
      grows = grows_.load(std::memory_order_acquire);
    }
    return grows;
  }
  /// True if no grow started since `settled_grows()` returned `before`.
  /// No fence needed: the walk's loads are acquires of the grow's release
  /// stores, so a walk that saw any move of the grow also sees its start.
  [[nodiscard]] bool no_grow_since(std::uint32_t before) const noexcept {
    return grows_.load(std::memory_order_relaxed) == before;
  }

  /// Links `entry`, whose key must not be present. May grow the bucket array
  /// (and throw `std::bad_alloc` doing so, leaving the table unchanged); the
  /// old array is then stamped with `stamp()`, called after the new array is
  /// published (only when growing), and kept until `reclaim`.
  template <class Stamp>
  void insert(Entry* entry, Stamp&& stamp) {
    if (size_ >= grow_at_) grow(stamp);
    // At the end of its chain: the keys that came first (under a skewed load,
    // often the hottest) stay first, so most hits read one entry.
    std::atomic<Entry*>& link = end_of(buckets().head(entry->hash));
    entry->chain_next.store(nullptr, std::memory_order_relaxed);
    link.store(entry, std::memory_order_release);
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

  /// Calls `f(entry)` for every entry; `f` must not change the table. May
  /// also be called without the lock, inside an epoch guard, as `find`: a
  /// grow meanwhile may then hide entries from the walk (`settled_grows`
  /// tells).
  template <class F>
  void for_each(F&& f) const {
    const Buckets& b = *current_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < b.count(); ++i) {
      Entry* e = b.heads()[i].load(std::memory_order_acquire);
      while (e != nullptr) {
        Entry* next = e->chain_next.load(std::memory_order_acquire);
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
    retired_.reclaim(std::forward<Safe>(safe), &Buckets::destroy);
  }

 private:
  /// Only the hash's low 32 bits pick a bucket: more buckets would stay empty
  /// (and `(h * n) >> 32` would overflow).
  static constexpr std::size_t kMaxBuckets = static_cast<std::size_t>(
      std::min<std::uint64_t>(std::uint64_t{1} << 32, std::numeric_limits<std::size_t>::max()));

  /// `ceil(max_entries / kMaxLoad)`, computed without overflow; `kMaxBuckets`
  /// when unbounded.
  static constexpr std::size_t ceiling_for(std::size_t max_entries) noexcept {
    if (max_entries == kUnbounded) return kMaxBuckets;
    const std::size_t whole = max_entries / kMaxLoadNum * kMaxLoadDen;
    const std::size_t part =
        (max_entries % kMaxLoadNum * kMaxLoadDen + kMaxLoadNum - 1) / kMaxLoadNum;
    return std::min(whole + part, kMaxBuckets);
  }

  /// The size at which a table of `n` buckets grows: `n` (load 1), or never
  /// once at the ceiling.
  std::size_t grow_at_for(std::size_t n) const noexcept {
    return n < ceiling_ ? n : std::numeric_limits<std::size_t>::max();
  }

  /// A bucket array: its count, then the heads in the same allocation, so
  /// that a lookup reaches its bucket with one load fewer.
  class Buckets {
   public:
    static Buckets* make(std::size_t n) {
      void* raw = ::operator new(sizeof(Buckets) + n * sizeof(std::atomic<Entry*>));
      auto* b = ::new (raw) Buckets(n);
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

    std::size_t count() const noexcept { return count_; }
    std::atomic<Entry*>* heads() const noexcept {
      return reinterpret_cast<std::atomic<Entry*>*>(
          const_cast<char*>(reinterpret_cast<const char*>(this) + sizeof(Buckets)));
    }
    /// The bucket of `hash`: its low 32 bits scaled to [0, count). It is
    /// monotonic in those bits, so doubling the count sends bucket i to 2i or
    /// 2i + 1, and any new count sends each old bucket to a few consecutive
    /// new ones.
    std::size_t index(std::uint64_t hash) const noexcept {
      return static_cast<std::size_t>((std::uint64_t{static_cast<std::uint32_t>(hash)} * count_) >>
                                      32);
    }
    std::atomic<Entry*>& head(std::uint64_t hash) const noexcept { return heads()[index(hash)]; }

   private:
    explicit Buckets(std::size_t count) noexcept : count_(count) {}
    const std::size_t count_;
  };
  static_assert(sizeof(Buckets) % alignof(std::atomic<Entry*>) == 0);

  Buckets& buckets() const noexcept { return *current_.load(std::memory_order_relaxed); }

  /// `condition ? if_true : if_false`, computed with masks rather than a
  /// branch (compilers turn a plain conditional into a branch here).
  static Entry* pick(bool condition, Entry* if_true, Entry* if_false) noexcept {
    const std::uintptr_t take_true = std::uintptr_t{0} - static_cast<std::uintptr_t>(condition);
    return reinterpret_cast<Entry*>((reinterpret_cast<std::uintptr_t>(if_true) & take_true) |
                                    (reinterpret_cast<std::uintptr_t>(if_false) & ~take_true));
  }

  /// The whole walk of `find`, for the keys not first or second in their
  /// chain (and for the absent ones). `matches` is taken by value: a
  /// reference would make `find` keep the predicate (and what it refers to)
  /// in memory, and reload the key from there on the fast path too.
  template <class Matches>
  RTCACHE_NOINLINE static Entry* find_in_chain(const std::atomic<Entry*>& head, std::uint32_t low,
                                               Matches matches) {
    for (Entry* e = head.load(std::memory_order_acquire); e != nullptr;
         e = e->chain_next.load(std::memory_order_acquire)) {
      if (e->hash == low && matches(*e)) return e;
    }
    return nullptr;
  }

  std::atomic<Entry*>& link_to(Entry* entry) const noexcept {
    std::atomic<Entry*>* link = &buckets().head(entry->hash);
    for (Entry* e = link->load(std::memory_order_relaxed); e != entry;
         e = link->load(std::memory_order_relaxed)) {
      link = &e->chain_next;
    }
    return *link;
  }

  /// The link at the end of the chain that starts at `head`.
  static std::atomic<Entry*>& end_of(std::atomic<Entry*>& head) noexcept {
    std::atomic<Entry*>* link = &head;
    for (Entry* e = link->load(std::memory_order_relaxed); e != nullptr;
         e = link->load(std::memory_order_relaxed)) {
      link = &e->chain_next;
    }
    return *link;
  }

  /// Moves every entry to a new array: twice the buckets, or the ceiling if
  /// that is less.
  template <class Stamp>
  void grow(Stamp& stamp) {
    Buckets& old = buckets();
    const std::size_t n = std::min(old.count() * 2, ceiling_);
    retired_.reserve_one();
    Buckets* fresh = Buckets::make(n);  // the last step that may throw
    const std::uint32_t grows = grows_.load(std::memory_order_relaxed);
    grows_.store(grows + 1, std::memory_order_relaxed);  // odd: under way (the moves release it)
    // Readers may be walking the old array while entries move. The old
    // chains are taken in order, each from its head, and an entry is cut off
    // (its link set to null) before it is appended to the end of its new
    // chain. So every link, old or new, leads from an entry to one later in
    // that order: an entry not yet moved links to its old successor, a moved
    // one to nothing or to an entry moved after it. Whichever of them a
    // reader sees, its walk ends. The grow links entries of the table only,
    // so whatever a reader reaches stays protected as before (epoch.hpp). At
    // worst it stops early, or ends up in a new chain that it shares with a
    // neighbouring old chain, and misses the key; the caller then looks
    // again under the lock. Doubling splits old chain i into new chains 2i
    // and 2i + 1; a grow to the ceiling (less than double) may also send the
    // end of old chain i - 1 and the start of old chain i to one new chain,
    // which the argument above does not mind. Each new chain keeps the old
    // chains' order.
    //
    // Old chain i covers a range of hashes, and `index` is monotonic: its
    // entries go to at most three consecutive new chains (n <= 2 * old), the
    // first of which may hold the end of chain i - 1. The ends of the new
    // chains in use are cached by chain number modulo 4; a chain not in its
    // slot is walked to its end (on its first use, it is empty).
    struct Tail {
      std::size_t chain;
      std::atomic<Entry*>* link;
    };
    std::array<Tail, 4> tails;
    tails.fill(Tail{n, nullptr});
    for (std::size_t i = 0; i < old.count(); ++i) {
      Entry* e = old.heads()[i].load(std::memory_order_relaxed);
      while (e != nullptr) {
        Entry* next = e->chain_next.load(std::memory_order_relaxed);
        const std::size_t chain = fresh->index(e->hash);
        Tail& tail = tails[chain % tails.size()];
        if (tail.chain != chain) tail = Tail{chain, &end_of(fresh->heads()[chain])};
        e->chain_next.store(nullptr, std::memory_order_release);
        tail.link->store(e, std::memory_order_release);
        tail.link = &e->chain_next;
        e = next;
      }
    }
    current_.store(fresh, std::memory_order_release);
    grows_.store(grows + 2, std::memory_order_release);
    grow_at_ = grow_at_for(n);
    // Stamped once unlinked (the array is published above, and the stamp's
    // read-modify-write orders that before it), as an entry is.
    retired_.add(stamp(), &old);
  }

  // Lock-free readers load `current_` on every lookup; the rest changes on
  // every insert: keep them on separate cache lines.
  alignas(64) std::atomic<Buckets*> current_;
  alignas(64) std::size_t size_ = 0;
  std::atomic<std::uint32_t> grows_{0};  // twice the grows, plus one during one
  const std::size_t ceiling_;            // the most buckets
  std::size_t grow_at_;                  // the size at which `insert` grows the array
  RetiredList<Buckets*> retired_;
};

}  // namespace rtcache::detail
