// A policy whose hooks may throw: refused with a message. The cache calls
// them between steps of a change to its table that it cannot undo.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <rtcache/rtcache.hpp>

struct MayThrow {
  struct Hook {};
  template <class Entry>
  struct Shard {
    Shard(std::size_t, std::uint64_t) {}
    void on_insert(Entry&) noexcept {}
    void on_access(Entry&) noexcept {}
    void on_replace(Entry&, Entry&) {}  // not noexcept
    void on_remove(Entry&) noexcept {}
    Entry* evict() noexcept { return nullptr; }
  };
};

int main() {
  auto loader = [](const int& k) { return std::optional<int>(k); };
  rtcache::ReadThroughCache<int, int, decltype(loader), rtcache::NoWriter, MayThrow> cache(
      {.capacity = 1}, loader);
}
