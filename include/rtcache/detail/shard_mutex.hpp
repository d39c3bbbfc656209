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

/// The shard lock. Its critical sections are short (tens to hundreds of
/// nanoseconds, never user code), so a thread that finds it taken spins a
/// little before sleeping: std::mutex (glibc) sleeps at once, and two threads
/// that take turns on one hot shard then pay a futex sleep and wake-up, some
/// microseconds, per turn. The sleeping part is the three-state futex mutex
/// of Drepper, "Futexes are tricky" (0 free, 1 taken, 2 taken and maybe
/// waited for), on C++20 atomic wait.
class ShardMutex {
 public:
  ShardMutex() = default;
  ShardMutex(const ShardMutex&) = delete;
  ShardMutex& operator=(const ShardMutex&) = delete;

  void lock() noexcept {
    if (!try_lock()) lock_contended();
  }

  bool try_lock() noexcept {
    int expected = 0;
    return state_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }

  void unlock() noexcept {
    if (state_.exchange(0, std::memory_order_release) == 2) state_.notify_one();
  }

 private:
  static constexpr int kSpins = 128;

  void lock_contended() noexcept {
    for (int i = 0; i < kSpins; ++i) {
      cpu_relax();
      if (state_.load(std::memory_order_relaxed) == 0 && try_lock()) return;
    }
    // Taken from here on as "maybe waited for", so that unlock wakes a sleeper.
    while (state_.exchange(2, std::memory_order_acquire) != 0) {
      state_.wait(2, std::memory_order_relaxed);
    }
  }

  std::atomic<int> state_{0};
};

}  // namespace rtcache::detail
