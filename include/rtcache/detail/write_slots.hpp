#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace rtcache::detail {

/// The fast path of a shard's write gate: which keys are being written, so
/// that a write of a key nobody else writes passes the gate with one
/// compare-and-swap instead of a round trip through the shard lock and its
/// registry of keys in progress.
///
/// A key's slot is picked by its hash; a writer claims the slot by storing
/// the key's tag (its hash with the low bit set, never 0) in it. A slot held
/// for another key is not waited for: that write takes the registry path,
/// which tells keys apart exactly. The two paths exclude each other through
/// `diverted`: a writer on the registry path counts itself there and then
/// waits for the key's slot to drop its tag; a writer that claimed a slot
/// then looks at `diverted` and, if anyone is on the registry path, gives the
/// slot back and joins them (Dekker's pattern: both sides write, then read
/// the other's word, sequentially consistent, so one of them sees the other).
///
/// Writers waiting for a slot sleep on the shard's condition, counted in
/// `sleepers`; a slot is freed under the shard lock, by a writer that then
/// looks at that count and wakes them. `floors` carries, under the shard
/// lock, the newest version another instance announced for a key while its
/// slot was held.
struct WriteSlots {
  static constexpr std::size_t kSlots = 32;

  [[nodiscard]] static std::size_t index(std::uint64_t h) noexcept {
    // Bits that neither the shard (the top ones) nor the bucket (the low
    // 32) use.
    return static_cast<std::size_t>(h >> 40) % kSlots;
  }
  [[nodiscard]] static std::uint64_t tag(std::uint64_t h) noexcept { return h | 1; }

  /// A slot on a cache line of its own: two cores writing different keys do
  /// not pass one line back and forth (5% of a 75/25 mix at two threads).
  struct alignas(64) Slot {
    std::atomic<std::uint64_t> tag{0};
  };
  std::array<Slot, kSlots> held{};
  std::array<std::atomic<std::uint32_t>, kSlots> sleepers{};
  std::array<std::uint64_t, kSlots> floors{};
  std::atomic<std::uint32_t> diverted{0};
};

}  // namespace rtcache::detail
