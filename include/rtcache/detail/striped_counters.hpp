#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>

#include "macros.hpp"
#include "thread_index.hpp"

namespace rtcache::detail {

/// The counters behind `Stats`.
enum class Counter : std::size_t {
  kHits,
  kMisses,
  kLoads,
  kLoadFailures,
  kLoadNanoseconds,
  kCoalescedWaits,
  kEvictions,
  kWrites,
  kWriteFailures,
  kVersionConflicts,
  kRefreshes,
  kRefreshFailures,
  kStaleServed,
  kExpirations,
  kRejectedOversized,
  kCount_,
};

/// Event counters, one cache-line-sized cell per thread. A thread that holds
/// a thread slot (thread_index.hpp) owns its cell: it adds with a plain load
/// and store, no locked instruction, and no other thread writes that line.
/// Threads without a slot, or beyond the cells this object has, add with
/// atomic read-modify-writes to a few shared cells. A read sums all cells.
class StripedCounters {
 public:
  explicit StripedCounters(unsigned hardware_threads)
      : shared_count_(std::bit_ceil(std::size_t{hardware_threads == 0 ? 1u : hardware_threads})),
        owned_count_(std::clamp<std::size_t>(shared_count_ * 4, 16, ThreadSlots::kSlots)),
        cells_(std::make_unique<Cell[]>(owned_count_ + shared_count_)) {}

  RTCACHE_ALWAYS_INLINE void add(Counter counter, std::uint64_t amount = 1) noexcept {
    const auto c = static_cast<std::size_t>(counter);
    const std::size_t slot = thread_index();
    if (slot < owned_count_) [[likely]] {
      std::atomic<std::uint64_t>& v = cells_[slot].values[c];
      v.store(v.load(std::memory_order_relaxed) + amount, std::memory_order_relaxed);
    } else {
      cells_[owned_count_ + (slot & (shared_count_ - 1))].values[c].fetch_add(
          amount, std::memory_order_relaxed);
    }
  }

  [[nodiscard]] std::uint64_t sum(Counter counter) const noexcept {
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < owned_count_ + shared_count_; ++i) {
      total += cells_[i].values[static_cast<std::size_t>(counter)].load(std::memory_order_relaxed);
    }
    return total;
  }

 private:
  struct alignas(64) Cell {
    std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(Counter::kCount_)> values{};
  };

  std::size_t shared_count_;  // declared first: owned_count_ is derived from it
  std::size_t owned_count_;
  std::unique_ptr<Cell[]> cells_;
};

/// One count that lock-free readers add to: each thread adds to a stripe
/// chosen by its thread slot, on a cache line of its own, so that two cores
/// adding do not pass one line back and forth; a read sums the stripes.
class StripedCount {
 public:
  void add(std::size_t amount) noexcept {
    stripes_[thread_index() % kStripes].value.fetch_add(amount, std::memory_order_relaxed);
  }

  [[nodiscard]] std::size_t sum() const noexcept {
    std::size_t total = 0;
    for (const Stripe& s : stripes_) total += s.value.load(std::memory_order_relaxed);
    return total;
  }

  /// Sets the count. An add that lands meanwhile in another stripe may be
  /// lost, which callers that count for estimates accept.
  void set(std::size_t count) noexcept {
    stripes_[0].value.store(count, std::memory_order_relaxed);
    for (std::size_t i = 1; i < kStripes; ++i)
      stripes_[i].value.store(0, std::memory_order_relaxed);
  }

 private:
  static constexpr std::size_t kStripes = 4;
  struct alignas(64) Stripe {
    std::atomic<std::size_t> value{0};
  };
  std::array<Stripe, kStripes> stripes_{};
};

}  // namespace rtcache::detail
