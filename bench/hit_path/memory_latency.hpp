#pragma once

/// \file
/// The latency of the machine's memory hierarchy, measured where the
/// benchmark runs, so that its ratios can be read: a hit of any of the
/// contenders is a few dependent loads, and what each of those costs depends
/// on which cache holds the contender's working set. On the shared virtual
/// machines this project is measured on, that changes from day to day (the
/// unlocked `std::unordered_map`, whose nodes are scattered, took 3.8 ns on
/// one day and 11.8 ns on another, while `absl::flat_hash_map` went from 2.8
/// to 3.9 ns).

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <numeric>
#include <vector>

#include "zipf_keys.hpp"

namespace rtcache_bench {

/// Nanoseconds per load of a chain of dependent loads that visits every
/// 64-byte line of a `bytes`-sized block once, in a random order (a pointer
/// chase, as lmbench's lat_mem_rd with a random stride): the load-to-use
/// latency of the level of the hierarchy that holds that many bytes,
/// address translation included. `loads` sets the time it takes.
inline double chase_latency_ns(std::size_t bytes, std::size_t loads) {
  struct alignas(64) Line {
    const Line* next;
  };
  const std::size_t n = std::max<std::size_t>(bytes / sizeof(Line), 2);
  std::vector<Line> lines(n);
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  SplitMix64 random(0x4C41544E43590001ULL);
  for (std::size_t i = n - 1; i > 1; --i) {  // Fisher-Yates over order[1..n)
    const std::size_t j = 1 + static_cast<std::size_t>(random.next() % i);
    std::swap(order[i], order[j]);
  }
  for (std::size_t i = 0; i < n; ++i) lines[order[i]].next = &lines[order[(i + 1) % n]];

  const Line* at = &lines[order[0]];
  for (std::size_t i = 0; i < n; ++i) at = at->next;  // one pass to warm the caches
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < loads; ++i) at = at->next;
  const auto stop = std::chrono::steady_clock::now();
  if (at == nullptr) return -1;  // never: the test keeps the loop from being optimized away
  return std::chrono::duration<double, std::nano>(stop - start).count() /
         static_cast<double>(loads);
}

}  // namespace rtcache_bench
