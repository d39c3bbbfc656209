#pragma once

/// \file
/// Epoch-based reclamation (Fraser, "Practical lock-freedom", 2004; the scheme
/// of crossbeam-epoch and folly's hazptr-free readers).
///
/// Readers bracket their lock-free traversals with an `EpochGuard`: entering
/// announces the global epoch in the thread's own record (its own cache line;
/// no line is written by all readers). A writer that unlinks an object stamps
/// it with the current global epoch and frees it only once the global epoch
/// has moved two steps past the stamp. The epoch moves from E to E+1 only when
/// every reader inside a guard has announced E, so a reader that could still
/// see the object keeps it alive.
///
/// The announcement must be visible before the reader's first load of the
/// table. Where Linux offers `membarrier(PRIVATE_EXPEDITED)`, readers only
/// need a compiler barrier and the (rare) epoch advance pays for a barrier on
/// every running thread instead: the asymmetric fence of liburcu and folly.
/// Elsewhere, and under ThreadSanitizer (which does not model it), readers
/// announce with a full-barrier exchange.

#include <atomic>
#include <cstdint>
#include <exception>

#include "macros.hpp"

#if defined(__linux__) && __has_include(<linux/membarrier.h>)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#define RTCACHE_HAS_MEMBARRIER 1
#endif

namespace rtcache::detail {

class EpochDomain {
 public:
  static constexpr std::uint64_t kInactive = 0;  // epochs start at 2, always even

  /// One per thread that ever read: records are reused after their thread
  /// exits and live as long as the process.
  struct alignas(64) ThreadRecord {
    std::atomic<std::uint64_t> announced{kInactive};
    std::atomic<bool> in_use{false};
    ThreadRecord* next = nullptr;
    std::uint32_t nesting = 0;  // guards of this thread now open (owner only)
  };

  /// The process-wide domain shared by every cache.
  static EpochDomain& instance() noexcept {
    static EpochDomain domain;
    return domain;
  }

  /// The epoch to stamp an object with, right after unlinking it. A
  /// read-modify-write reads the latest epoch, and makes the unlink visible
  /// to whoever advances the epoch past it.
  [[nodiscard]] std::uint64_t stamp() noexcept {
    return epoch_.fetch_add(0, std::memory_order_acq_rel);
  }

  /// The calling thread's record, taken on the thread's first guard.
  ThreadRecord& local_record() {
    if (t_record_ == nullptr) [[unlikely]]
      t_record_ = take_record();
    return *t_record_;
  }

  /// True while the calling thread is inside a guard (of any cache).
  [[nodiscard]] static bool inside_guard() noexcept {
    return t_record_ != nullptr && t_record_->nesting != 0;
  }

  void enter(ThreadRecord& record) noexcept {
    if (record.nesting++ != 0) return;
    const std::uint64_t epoch = epoch_.load(std::memory_order_relaxed);
    if (asymmetric_) {
      record.announced.store(epoch, std::memory_order_relaxed);
      std::atomic_signal_fence(
          std::memory_order_seq_cst);  // try_advance's membarrier does the rest
    } else {
      // The exchange orders the announcement before the traversal's loads,
      // and pairs with the sequentially consistent loads in try_advance.
      record.announced.exchange(epoch, std::memory_order_seq_cst);
    }
  }

  void leave(ThreadRecord& record) noexcept {
    if (--record.nesting != 0) return;
    record.announced.store(kInactive, std::memory_order_release);
  }

  /// Moves the epoch forward if every reader inside a guard has seen the
  /// current one. Returns the epoch after the attempt.
  std::uint64_t try_advance() noexcept {
    std::uint64_t epoch = epoch_.load(std::memory_order_acquire);
    if (asymmetric_) heavy_barrier();
    // Sequentially consistent loads pair with the readers' exchange: a reader
    // whose announcement this scan misses announced after it, and holds back
    // the next advance instead.
    for (ThreadRecord* r = head_.load(std::memory_order_acquire); r != nullptr; r = r->next) {
      const std::uint64_t announced = r->announced.load(std::memory_order_seq_cst);
      if (announced != kInactive && announced != epoch) return epoch;
    }
    if (epoch_.compare_exchange_strong(epoch, epoch + 2, std::memory_order_acq_rel)) {
      return epoch + 2;
    }
    return epoch;  // another thread advanced it
  }

  /// True once no reader can still hold an object retired at `stamp`.
  [[nodiscard]] static bool safe_to_free(std::uint64_t stamp, std::uint64_t now) noexcept {
    return now >= stamp + 4;  // two advances (epochs step by 2)
  }

 private:
  EpochDomain() noexcept {
#if defined(RTCACHE_HAS_MEMBARRIER) && !defined(RTCACHE_TSAN)
    asymmetric_ = syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#endif
  }

  /// A full barrier on every thread of the process now running.
  void heavy_barrier() noexcept {
#if defined(RTCACHE_HAS_MEMBARRIER) && !defined(RTCACHE_TSAN)
    if (syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
      asymmetric_fallback();
    }
#endif
  }

  [[noreturn]] static void asymmetric_fallback() noexcept {
    // Registered, then refused: the kernel broke its promise; unsafe to go on.
    std::terminate();
  }

  /// Gives the record back when its thread exits.
  struct Holder {
    ThreadRecord* record = nullptr;
    ~Holder() {
      t_record_ = nullptr;
      t_exited_ = true;
      if (record != nullptr) record->in_use.store(false, std::memory_order_release);
    }
  };

  ThreadRecord* take_record() {
    // A guard in a later thread-local destructor: the holder is gone, so the
    // record is never given back (it stays inactive and blocks nothing).
    if (t_exited_) return acquire_record();
    thread_local Holder holder;
    if (holder.record == nullptr) holder.record = acquire_record();
    return holder.record;
  }

  ThreadRecord* acquire_record() {
    for (ThreadRecord* r = head_.load(std::memory_order_acquire); r != nullptr; r = r->next) {
      bool expected = false;
      if (!r->in_use.load(std::memory_order_relaxed) &&
          r->in_use.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
        return r;
      }
    }
    auto* fresh = new ThreadRecord;  // lives as long as the process
    fresh->in_use.store(true, std::memory_order_relaxed);
    ThreadRecord* head = head_.load(std::memory_order_relaxed);
    do {
      fresh->next = head;
    } while (!head_.compare_exchange_weak(head, fresh, std::memory_order_release,
                                          std::memory_order_relaxed));
    return fresh;
  }

  bool asymmetric_ = false;  // set once, before any reader exists
  alignas(64) std::atomic<std::uint64_t> epoch_{2};
  alignas(64) std::atomic<ThreadRecord*> head_{nullptr};
  // A plain pointer (no destructor, constant-initialized), so that reading it
  // costs no thread-local initialization check on every guard.
  static inline thread_local ThreadRecord* t_record_ = nullptr;
  static inline thread_local bool t_exited_ = false;
};

/// Holds the calling thread inside the current epoch for its lifetime.
class EpochGuard {
 public:
  EpochGuard() : EpochGuard(EpochDomain::instance()) {}
  explicit EpochGuard(EpochDomain& domain) : domain_(domain), record_(domain.local_record()) {
    domain_.enter(record_);
  }
  ~EpochGuard() { domain_.leave(record_); }
  /// True if the thread was already inside a guard when this one opened.
  [[nodiscard]] bool nested() const noexcept { return record_.nesting > 1; }
  EpochGuard(const EpochGuard&) = delete;
  EpochGuard& operator=(const EpochGuard&) = delete;

 private:
  EpochDomain& domain_;
  EpochDomain::ThreadRecord& record_;
};

}  // namespace rtcache::detail
