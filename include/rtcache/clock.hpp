#pragma once

/// \file
/// The cache's sense of time: a steady clock by default, a manual one for
/// exact tests, or any `Clock` of yours.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <thread>

namespace rtcache {

/// A source of monotonic time. The cache reads it only when a time-based
/// option (TTL, negative caching, refresh, stale-if-error, a load rate) is
/// set, and sleeps on it only to pace `warm`.
class Clock {
 public:
  virtual ~Clock() = default;
  /// Time since an arbitrary, fixed origin; never goes backwards.
  [[nodiscard]] virtual std::chrono::nanoseconds now() const = 0;
  /// Blocks the calling thread for `duration` of this clock's time.
  virtual void sleep_for(std::chrono::nanoseconds duration) const = 0;
};

/// `std::chrono::steady_clock`: the default.
class SteadyClock final : public Clock {
 public:
  [[nodiscard]] std::chrono::nanoseconds now() const override {
    return std::chrono::steady_clock::now().time_since_epoch();
  }
  void sleep_for(std::chrono::nanoseconds duration) const override {
    std::this_thread::sleep_for(duration);
  }
};

/// A clock that moves only when told to: for tests that must be exact.
/// `sleep_for` blocks until another thread has advanced the clock far enough.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::chrono::nanoseconds start = std::chrono::hours(1)) : now_(start) {}

  [[nodiscard]] std::chrono::nanoseconds now() const override {
    std::lock_guard lock(mutex_);
    return now_;
  }

  void sleep_for(std::chrono::nanoseconds duration) const override {
    std::unique_lock lock(mutex_);
    const auto until = now_ + duration;
    ++sleepers_;
    advanced_.notify_all();  // lets a test observe the new sleeper
    advanced_.wait(lock, [&] { return now_ >= until; });
    --sleepers_;
  }

  void advance(std::chrono::nanoseconds duration) {
    {
      std::lock_guard lock(mutex_);
      now_ += duration;
    }
    advanced_.notify_all();
  }

  /// Threads now blocked in `sleep_for`.
  [[nodiscard]] std::size_t sleepers() const {
    std::lock_guard lock(mutex_);
    return sleepers_;
  }

  /// Waits until `count` threads are blocked in `sleep_for`.
  void wait_for_sleepers(std::size_t count) const {
    std::unique_lock lock(mutex_);
    advanced_.wait(lock, [&] { return sleepers_ >= count; });
  }

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable advanced_;
  std::chrono::nanoseconds now_;
  mutable std::size_t sleepers_ = 0;
};

}  // namespace rtcache
