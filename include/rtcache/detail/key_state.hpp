#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "../versioned.hpp"

namespace rtcache::detail {

/// One loader call in progress, shared by the thread that runs it and every
/// thread that waits for it. The outcome is written once, before `done_` is
/// released, and only read after `done_` is seen set.
template <class V>
class LoadFlight {
 public:
  explicit LoadFlight(std::thread::id owner = {}) noexcept : owner_(owner) {}

  /// The thread running the loader (read and set under the shard lock: a
  /// background refresh learns its thread only when it starts).
  [[nodiscard]] std::thread::id owner() const noexcept { return owner_; }
  void set_owner(std::thread::id owner) noexcept { owner_ = owner; }

  /// Set (under the shard lock) when a put, erase or invalidate of the key
  /// finished while this load ran: its result is then not installed, and
  /// callers that arrive after that wait for it and then load afresh.
  bool superseded = false;

  void complete(std::optional<Versioned<V>> outcome) noexcept(
      std::is_nothrow_move_constructible_v<V>) {
    outcome_ = std::move(outcome);
    publish();
  }

  void fail(std::exception_ptr error) noexcept {
    error_ = std::move(error);
    publish();
  }

  void wait() const noexcept {
    while (!done_.load(std::memory_order_acquire)) done_.wait(false, std::memory_order_acquire);
  }

  /// The loader's result; rethrows its exception. Only after `wait()`.
  [[nodiscard]] const std::optional<Versioned<V>>& outcome() const {
    if (error_) std::rethrow_exception(error_);
    return outcome_;
  }

 private:
  void publish() noexcept {
    done_.store(true, std::memory_order_release);
    done_.notify_all();
  }

  std::thread::id owner_;
  std::atomic<bool> done_{false};
  std::optional<Versioned<V>> outcome_;
  std::exception_ptr error_;
};

/// What is in progress for one key: at most one load, and writes queued one
/// at a time. It exists only while something is in progress (the shard erases
/// it when `idle()`), so the registry never outgrows the work under way.
template <class V>
struct KeyState {
  std::shared_ptr<LoadFlight<V>> load;  ///< the load in progress, if any
  std::thread::id writer;               ///< the thread whose write is in progress, if any
  std::uint32_t waiting_writers = 0;    ///< writers queued behind it
  /// The newest version another instance announced for the key while this
  /// work was in progress: a write that returns an older one is not cached.
  std::uint64_t version_floor = 0;

  [[nodiscard]] bool idle() const noexcept {
    return load == nullptr && writer == std::thread::id{} && waiting_writers == 0;
  }
};

}  // namespace rtcache::detail
