#pragma once

#include <atomic>
#include <cstddef>

namespace rtcache::detail {

/// A small number for the calling thread, given out in the order threads
/// first ask: striped structures pick their stripe with it, so that threads
/// that run at the same time rarely share one.
inline std::size_t thread_index() noexcept {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t index = next.fetch_add(1, std::memory_order_relaxed);
  return index;
}

}  // namespace rtcache::detail
