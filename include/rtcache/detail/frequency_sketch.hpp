#pragma once

/// \file
/// The frequency sketch of the W-TinyLFU policy.

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "epoch.hpp"
#include "hash.hpp"
#include "prefetch.hpp"
#include "retired_list.hpp"
#include "striped_counters.hpp"

namespace rtcache::detail {

/// A count-min sketch of 4-bit counters that estimates how often each key was
/// seen recently (Cormode and Muthukrishnan, "An improved data stream summary:
/// the count-min sketch and its applications", J. Algorithms 2005; as used by
/// TinyLFU, Einziger, Friedman and Manes, ACM TOS 2017).
///
/// Each key has four counters, one in each of four rows, and the estimate is
/// the smallest of them. The four counters of a key all lie in one 64-byte
/// block (eight words of sixteen counters: two words per row), so an update
/// or a query touches one cache line. Counters saturate at 15. The table has
/// about 32 counters per entry of capacity (two words), so that collisions
/// rarely inflate an estimate.
///
/// Aging: after `sample_size()` increments (six per entry of capacity; TinyLFU
/// and Caffeine use ten, six kept the estimates closer to the current phase
/// of the LIRS traces in `docs/hit-ratio.md`) every counter is halved, so the
/// sketch forgets old popularity and follows a changing workload.
///
/// The key's hash is spread once more with the seed, so the block and the
/// counters do not depend only on bits the cache also uses to pick a shard or
/// a bucket, and so that keys crafted to collide in one process do not collide
/// in another. Not thread-safe: the owner serializes calls, except that
/// lock-free readers may call `increment_shared` and `generation`.
///
/// `resize` replaces the table by an empty one for another capacity (a
/// weighted cache's shard learns its number of entries as it fills). Readers
/// inside an epoch guard (epoch.hpp) may still be counting in the old table:
/// it is kept until `reclaim` is told no reader can hold it any more.
class FrequencySketch {
 public:
  static constexpr unsigned kMaxCount = 15;
  /// Increments between two halvings, per entry of capacity.
  static constexpr std::size_t kSamplesPerEntry = 6;
  /// Table words (of 16 counters) per entry of capacity.
  static constexpr std::size_t kWordsPerEntry = 2;

  /// Blocks of the table: at most this many (4 GiB, far beyond any real
  /// cache's share).
  static constexpr std::size_t kMaxBlocks = std::size_t{1} << 26;

  /// A sketch for a cache of `capacity` entries.
  FrequencySketch(std::size_t capacity, std::uint64_t seed)
      : table_(make_table(capacity)), sample_size_(sample_size_for(capacity)), seed_(seed) {}

  ~FrequencySketch() {
    destroy_table(table_.load(std::memory_order_relaxed));
    retired_.destroy_all(&destroy_table);
  }
  FrequencySketch(const FrequencySketch&) = delete;
  FrequencySketch& operator=(const FrequencySketch&) = delete;

  /// Starts over, empty, with the table and sample size for `capacity`
  /// entries. The old table is retired (see `reclaim`). Throws
  /// `std::bad_alloc`, and then changes nothing.
  void resize(std::size_t capacity) {
    retired_.reserve_one();
    const std::uintptr_t fresh = make_table(capacity);
    const std::uintptr_t old = table_.exchange(fresh, std::memory_order_acq_rel);
    sample_size_ = sample_size_for(capacity);
    additions_.set(0);
    bump_generation();  // keys seen saturated in the old table are not in this one
    // Stamped after the new table is published (the stamp is a
    // read-modify-write of the epoch), as the hash table's bucket arrays are.
    retired_.add(EpochDomain::instance().stamp(), old);
  }

  /// True while replaced tables wait for `reclaim`.
  [[nodiscard]] bool has_retired() const noexcept { return !retired_.empty(); }

  /// Frees the replaced tables whose stamp satisfies `safe(stamp)`.
  template <class Safe>
  void reclaim(Safe&& safe) noexcept {
    retired_.reclaim(std::forward<Safe>(safe), &destroy_table);
  }

  /// The table's size in 64-byte blocks for `capacity` entries:
  /// kWordsPerEntry words per entry, rounded up to a power of two, one block
  /// at least and kMaxBlocks at most, for any capacity (no overflow).
  [[nodiscard]] static constexpr std::size_t block_count_for(std::size_t capacity) noexcept {
    const std::size_t entries = std::min(capacity, kMaxBlocks * 8 / kWordsPerEntry);
    return std::bit_ceil(std::max<std::size_t>(entries * kWordsPerEntry, 8)) / 8;
  }

  /// Counts one occurrence of the key with this hash.
  void increment(std::uint64_t hash) noexcept {
    const Bumped bumped = bump(hash, [](Word word, std::uint64_t value, std::uint64_t one) {
      word.store(value + one, std::memory_order_relaxed);
      return true;
    });
    if (bumped.added) {
      additions_.add(1);
      if (additions() >= sample_size_) halve();
    }
  }

  /// The same, but safe to call from many threads at once, and alongside
  /// the owner's calls (for lock-free readers). A counter already at 15 is
  /// only read, so the hot keys of a skewed load write nothing. An increment
  /// that loses a race for its word is dropped (the estimate stays an
  /// estimate), each thread counts its additions in a stripe of its own, and
  /// the halving is left to `halve_if_due`.
  ///
  /// Returns true when all four counters were already at 15: the key is
  /// saturated, and stays so until the next halving, which changes
  /// `generation()`. A caller may remember that and skip the sketch until
  /// then (increments of a saturated key change nothing).
  bool increment_shared(std::uint64_t hash) noexcept {
    const Bumped bumped = bump(hash, [](Word word, std::uint64_t value, std::uint64_t one) {
      return word.compare_exchange_weak(value, value + one, std::memory_order_relaxed);
    });
    if (bumped.added) additions_.add(1);
    return bumped.saturated;
  }

  /// Changes at every halving (never 0): a key seen saturated in one
  /// generation stays saturated until the generation changes. Acquire: a
  /// reader that sees a new generation then sees the halved counters. (16
  /// bits: a remembered generation may come round again after 65,535
  /// halvings, and then skips a few increments.)
  [[nodiscard]] std::uint16_t generation() const noexcept {
    return generation_.load(std::memory_order_acquire);
  }

  /// Halves the counters if a sample's worth of increments came since the
  /// last halving (for owners whose readers use `increment_shared`).
  void halve_if_due() noexcept {
    if (additions() >= sample_size_) halve();
  }

  /// Asks the processor to fetch the block of the key's counters, for a
  /// later `increment` (so that its cache miss overlaps other work).
  RTCACHE_ALWAYS_INLINE void prefetch(std::uint64_t hash) const noexcept {
    detail::prefetch(&block_for(spread(hash)));
  }

  /// The estimated number of recent occurrences of the key, at most 15.
  [[nodiscard]] unsigned frequency(std::uint64_t hash) const noexcept {
    const std::uint64_t h = spread(hash);
    const Block& block = block_for(h);
    unsigned min = kMaxCount;
    for (unsigned row = 0; row < kRows; ++row) {
      const unsigned count = read(block, h, row);
      if (count < min) min = count;
    }
    return min;
  }

  /// Halves every counter (the aging step, also run automatically).
  void halve() noexcept {
    std::size_t odd = 0;
    const std::uintptr_t table = table_.load(std::memory_order_relaxed);
    Block* blocks = blocks_of(table);
    for (std::size_t b = 0; b <= mask_of(table); ++b) {
      for (std::uint64_t& w : blocks[b].words) {
        Word word(w);
        const std::uint64_t value = word.load(std::memory_order_relaxed);
        odd += static_cast<std::size_t>(std::popcount(value & kLowBits));
        word.store((value >> 1) & kHalfMask, std::memory_order_relaxed);
      }
    }
    bump_generation();
    // Each halved odd counter lost half an increment; count them as lost.
    const std::size_t lost = odd / kRows;
    const std::size_t total = additions();
    // A reader's addition that lands in between is lost, like an increment
    // that loses a race.
    additions_.set((total > lost ? total - lost : 0) / 2);
  }

  /// Increments since the last halving, as the sketch accounts them.
  [[nodiscard]] std::size_t additions() const noexcept { return additions_.sum(); }
  /// Increments between two halvings.
  [[nodiscard]] std::size_t sample_size() const noexcept { return sample_size_; }
  /// Number of 64-byte blocks.
  [[nodiscard]] std::size_t block_count() const noexcept {
    return mask_of(table_.load(std::memory_order_relaxed)) + 1;
  }

  /// For tests: the index of the 64-byte block that holds the key's counters.
  [[nodiscard]] std::size_t block_of(std::uint64_t hash) const noexcept {
    return static_cast<std::size_t>(spread(hash) & mask_of(table_.load(std::memory_order_relaxed)));
  }

  /// For tests: calls `f(word_address, shift)` for each of the key's four
  /// counters (the counter is `(*word_address >> shift) & 15`).
  template <class F>
  void for_each_counter(std::uint64_t hash, F&& f) const {
    const std::uint64_t h = spread(hash);
    const Block& block = block_for(h);
    for (unsigned row = 0; row < kRows; ++row) {
      f(&block.words[word_index(h, row)], shift(h, row));
    }
  }

 private:
  static constexpr unsigned kRows = 4;
  static constexpr std::uint64_t kLowBits = 0x1111'1111'1111'1111ULL;
  static constexpr std::uint64_t kHalfMask = 0x7777'7777'7777'7777ULL;

  // Words are plain integers, accessed through atomic_ref: relaxed loads and
  // stores cost what plain ones do, and `increment_shared` may then run
  // alongside everything else without a data race.
  using Word = std::atomic_ref<std::uint64_t>;

  struct Bumped {
    bool added = false;     // at least one counter went up
    bool saturated = true;  // all four were at 15 already
  };

  /// Calls `add(word, value, one)` for each of the key's four counters that
  /// is below 15 (`one` is the counter's unit in its word; `add` answers
  /// whether it added).
  template <class Add>
  Bumped bump(std::uint64_t hash, Add add) noexcept {
    const std::uint64_t h = spread(hash);
    Block& block = block_for(h);
    Bumped bumped;
    for (unsigned row = 0; row < kRows; ++row) {
      // One byte of the high half per row: its low bit picks the row's word,
      // the next four the counter (as word_index and shift do).
      const auto byte = static_cast<unsigned>(h >> (32 + row * 8));
      Word word(block.words[row * 2 + (byte & 1)]);
      const unsigned counter_shift = (byte & 0x1e) << 1;
      const std::uint64_t value = word.load(std::memory_order_relaxed);
      if (((value >> counter_shift) & kMaxCount) != kMaxCount) {
        bumped.saturated = false;
        bumped.added |= add(word, value, std::uint64_t{1} << counter_shift);
      }
    }
    return bumped;
  }

  struct alignas(64) Block {
    std::uint64_t words[8] = {};
  };

  // The table, as one word that readers load at once: the address of its
  // blocks (aligned to 64, so its low 6 bits are free) plus the base-2
  // logarithm of their number (at most 26).
  static constexpr std::uintptr_t kLogBits = 63;
  static_assert(alignof(Block) > kLogBits && kMaxBlocks <= std::size_t{1} << kLogBits);

  static std::uintptr_t make_table(std::size_t capacity) {
    const std::size_t count = block_count_for(capacity);
    Block* blocks = new Block[count];  // value-initialized: all counters 0
    return reinterpret_cast<std::uintptr_t>(blocks) |
           static_cast<std::uintptr_t>(std::countr_zero(count));
  }
  static void destroy_table(std::uintptr_t table) noexcept { delete[] blocks_of(table); }
  static Block* blocks_of(std::uintptr_t table) noexcept {
    return reinterpret_cast<Block*>(table & ~kLogBits);
  }
  static std::size_t mask_of(std::uintptr_t table) noexcept {
    return (std::size_t{1} << (table & kLogBits)) - 1;
  }

  // Acquire: a reader of a fresh table sees its zeroed counters.
  Block& block_for(std::uint64_t h) const noexcept {
    const std::uintptr_t table = table_.load(std::memory_order_acquire);
    return blocks_of(table)[h & mask_of(table)];
  }

  static std::size_t sample_size_for(std::size_t capacity) noexcept {
    return std::clamp<std::size_t>(capacity, 1, SIZE_MAX / kSamplesPerEntry) * kSamplesPerEntry;
  }

  void bump_generation() noexcept {
    const auto next = static_cast<std::uint16_t>(generation_.load(std::memory_order_relaxed) + 1);
    generation_.store(next != 0 ? next : 1, std::memory_order_release);
  }

  [[nodiscard]] std::uint64_t spread(std::uint64_t hash) const noexcept {
    return mix64(hash ^ seed_);
  }

  // The block comes from the low bits of the spread hash; each row takes its
  // word and counter from a separate byte of the high half.
  static unsigned word_index(std::uint64_t h, unsigned row) noexcept {
    return row * 2 + static_cast<unsigned>((h >> (32 + row * 8)) & 1);
  }
  static unsigned shift(std::uint64_t h, unsigned row) noexcept {
    return static_cast<unsigned>((h >> (33 + row * 8)) & 15) * 4;
  }
  static unsigned read(const Block& block, std::uint64_t h, unsigned row) noexcept {
    const std::uint64_t value = Word(const_cast<std::uint64_t&>(block.words[word_index(h, row)]))
                                    .load(std::memory_order_relaxed);
    return static_cast<unsigned>((value >> shift(h, row)) & 15);
  }

  std::atomic<std::uintptr_t> table_;
  std::size_t sample_size_;
  std::uint64_t seed_;
  std::atomic<std::uint16_t> generation_{1};
  // Increments since the last halving, added to by lock-free readers
  // (increment_shared): striped, on lines away from what they read.
  StripedCount additions_;
  RetiredList<std::uintptr_t> retired_;  // replaced tables, until no reader holds them
};

}  // namespace rtcache::detail
