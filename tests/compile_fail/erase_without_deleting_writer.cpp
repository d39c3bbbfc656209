// erase() on a cache whose writer cannot delete: refused with a message.
#include <optional>
#include <rtcache/rtcache.hpp>

int main() {
  auto cache = rtcache::make_cache<int, int>(
      {.capacity = 1}, [](const int& k) { return std::optional<int>(k); },
      [](const int&, const int&) {});
  cache.erase(1);
}
