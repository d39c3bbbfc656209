#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace rtcache::detail {

/// Small numbers for threads, each held by at most one live thread at a time
/// and given back when the thread exits: a thread that holds slot `i` may
/// write cell `i` of a per-thread array with plain stores, because no other
/// live thread writes it (what lets the hit counters avoid a locked add). A
/// returned slot is handed to the next thread with release/acquire, so the
/// new owner sees its predecessor's writes. Threads beyond `kSlots` get
/// `kNoSlot` and must use atomic read-modify-writes on shared cells.
class ThreadSlots {
 public:
  static constexpr std::size_t kSlots = 1024;
  static constexpr std::size_t kNoSlot = kSlots;

  /// The calling thread's slot, taken on first use.
  static std::size_t mine() noexcept {
    if (t_slot_ == kUnassigned) [[unlikely]]
      t_slot_ = take();
    return t_slot_;
  }

 private:
  static constexpr std::size_t kUnassigned = ~std::size_t{0};
  static constexpr std::size_t kWords = kSlots / 64;

  /// Gives the slot back when the thread exits. After that, the thread (in
  /// later thread-local destructors) counts through the shared cells.
  struct Release {
    std::size_t slot = kNoSlot;
    ~Release() {
      t_slot_ = kNoSlot;
      if (slot != kNoSlot) {
        words()[slot / 64].fetch_and(~(std::uint64_t{1} << (slot % 64)), std::memory_order_release);
      }
    }
  };

  static std::array<std::atomic<std::uint64_t>, kWords>& words() noexcept {
    static std::array<std::atomic<std::uint64_t>, kWords> taken{};
    return taken;
  }

  static std::size_t take() noexcept {
    for (std::size_t w = 0; w < kWords; ++w) {
      std::uint64_t bits = words()[w].load(std::memory_order_relaxed);
      while (bits != ~std::uint64_t{0}) {
        const int bit = std::countr_one(bits);
        if (words()[w].compare_exchange_weak(bits, bits | (std::uint64_t{1} << bit),
                                             std::memory_order_acquire,
                                             std::memory_order_relaxed)) {
          const std::size_t slot = w * 64 + static_cast<std::size_t>(bit);
          thread_local Release release;
          release.slot = slot;
          return slot;
        }
      }
    }
    return kNoSlot;
  }

  static inline thread_local std::size_t t_slot_ = kUnassigned;
};

/// A small number for the calling thread: striped structures pick their
/// stripe with it, so that threads that run at the same time rarely share one.
inline std::size_t thread_index() noexcept { return ThreadSlots::mine(); }

}  // namespace rtcache::detail
