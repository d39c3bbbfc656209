#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>

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

/// Event counters spread over cache-line-sized stripes. A thread always adds
/// to the same stripe, chosen once per thread, so threads that count at the
/// same time rarely write the same cache line; a read sums all stripes.
class StripedCounters {
 public:
  explicit StripedCounters(unsigned hardware_threads)
      : stripe_count_(
            std::bit_ceil(std::size_t{hardware_threads == 0 ? 1u : hardware_threads} * 2)),
        stripes_(std::make_unique<Stripe[]>(stripe_count_)) {}

  void add(Counter counter, std::uint64_t amount = 1) noexcept {
    stripes_[thread_index() & (stripe_count_ - 1)]
        .values[static_cast<std::size_t>(counter)]
        .fetch_add(amount, std::memory_order_relaxed);
  }

  [[nodiscard]] std::uint64_t sum(Counter counter) const noexcept {
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < stripe_count_; ++i) {
      total +=
          stripes_[i].values[static_cast<std::size_t>(counter)].load(std::memory_order_relaxed);
    }
    return total;
  }

 private:
  struct alignas(64) Stripe {
    std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(Counter::kCount_)> values{};
  };

  std::size_t stripe_count_;
  std::unique_ptr<Stripe[]> stripes_;
};

}  // namespace rtcache::detail
