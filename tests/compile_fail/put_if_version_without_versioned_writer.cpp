// put_if_version() with a writer that cannot compare-and-set: refused with a message.
#include <optional>
#include <rtcache/rtcache.hpp>

int main() {
  auto cache = rtcache::make_cache<int, int>(
      {.capacity = 1}, [](const int& k) { return std::optional<int>(k); },
      [](const int&, const int&) {});
  (void)cache.put_if_version(1, 2, 3);
}
