#pragma once

#include <atomic>

namespace rtcache::detail {

/// Tells the CPU that the thread is spinning (frees its core's resources for
/// the sibling hyperthread, and avoids a memory-order mis-speculation).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#else
  std::atomic_signal_fence(std::memory_order_seq_cst);
#endif
}

}  // namespace rtcache::detail
