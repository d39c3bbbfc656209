// A policy without evict(): refused with a message.
#include <optional>
#include <rtcache/rtcache.hpp>

struct NotAPolicy {
  struct Hook {};
  template <class Entry>
  struct Shard {
    Shard(std::size_t, std::uint64_t) {}
    void on_insert(Entry&) {}
  };
};

int main() {
  auto loader = [](const int& k) { return std::optional<int>(k); };
  rtcache::ReadThroughCache<int, int, decltype(loader), rtcache::NoWriter, NotAPolicy> cache(
      {.capacity = 1}, loader);
}
