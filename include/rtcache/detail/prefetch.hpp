#pragma once

#include "macros.hpp"

namespace rtcache::detail {

/// Asks the processor to bring the cache line at `p` into its caches (a
/// hint: it never faults, so `p` may be null or stale). On x86-64 an asm
/// statement: GCC finds a function that only wraps `__builtin_prefetch` free
/// of side effects, and deletes its calls unless it was inlined first.
RTCACHE_ALWAYS_INLINE inline void prefetch(const void* p) noexcept {
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
  asm volatile("prefetcht0 (%0)" : : "r"(p));
#elif defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, 0, 3);
#else
  (void)p;
#endif
}

}  // namespace rtcache::detail
