// put() on a read-only cache: refused with a message.
#include <optional>
#include <rtcache/rtcache.hpp>

int main() {
  auto cache = rtcache::make_cache<int, int>({.capacity = 1},
                                             [](const int& k) { return std::optional<int>(k); });
  cache.put(1, 2);
}
