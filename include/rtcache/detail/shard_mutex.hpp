#pragma once

#include <atomic>
#include <chrono>
#include <thread>

#include "cpu_relax.hpp"

namespace rtcache::detail {

/// The shard lock. Its critical sections are short (tens to hundreds of
/// nanoseconds, never user code), so it is a test-and-test-and-set lock
/// whose waiters spin, then yield, then poll in short sleeps, and whose
/// unlock is a plain release store. A lock that can put waiters to sleep
/// (a futex) must learn at unlock whether anyone sleeps, with a
/// read-modify-write or a full fence, and that waits for every store of the
/// critical section to reach the cache: on a `put`, which unlocks twice,
/// those two waits were a third of the time at one thread. (std::mutex is
/// such a lock, and also sleeps at once: two threads taking turns on one hot
/// shard then paid a futex sleep and wake-up, some microseconds, per turn.)
/// A waiter that finds the lock held past its spinning is either behind a
/// preempted holder or one of many threads on few cores; it yields, then
/// sleeps `kSleep` between looks, so it costs no CPU while it waits.
class ShardMutex {
 public:
  ShardMutex() = default;
  ShardMutex(const ShardMutex&) = delete;
  ShardMutex& operator=(const ShardMutex&) = delete;

  void lock() noexcept {
    if (!try_lock()) lock_contended();
  }

  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }

  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  static constexpr int kSpins = 128;  // pauses, about a microsecond or more
  static constexpr int kYields = 64;  // then yields
  static constexpr std::chrono::microseconds kSleep{20};

  void lock_contended() noexcept {
    for (int round = 0;; ++round) {
      if (round < kSpins) {
        cpu_relax();
      } else if (round < kSpins + kYields) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(kSleep);
      }
      if (try_lock()) return;
    }
  }

  std::atomic<bool> locked_{false};
};

}  // namespace rtcache::detail
