#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>

namespace rtcache::detail {

/// A counting semaphore for `Options::max_concurrent_loads`: at most `slots`
/// loader calls at a time. Taken and given back around each loader call, so
/// off the hit path; a mutex and a condition variable are plenty, and their
/// wake-ups are not in doubt. (std::counting_semaphore was used before; in
/// libstdc++ 12 it wakes waiters only when the count leaves zero, through
/// the atomic-wait machinery, and one ThreadSanitizer run of the model
/// checker hung with a thread waiting in its acquire while the threads that
/// joined its claimed loads waited for it.)
class LoadSlots {
 public:
  explicit LoadSlots(std::size_t slots) noexcept : free_(slots) {}
  LoadSlots(const LoadSlots&) = delete;
  LoadSlots& operator=(const LoadSlots&) = delete;

  void acquire() {
    std::unique_lock lock(mutex_);
    freed_.wait(lock, [&] { return free_ > 0; });
    --free_;
  }

  /// Takes a slot if one is free; never waits.
  bool try_acquire() {
    std::lock_guard lock(mutex_);
    if (free_ == 0) return false;
    --free_;
    return true;
  }

  void release() {
    {
      std::lock_guard lock(mutex_);
      ++free_;
    }
    freed_.notify_one();
  }

 private:
  std::mutex mutex_;
  std::condition_variable freed_;
  std::size_t free_;
};

}  // namespace rtcache::detail
