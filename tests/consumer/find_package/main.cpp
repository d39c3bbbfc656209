// A user's program: builds a cache over a "store" and reads through it.
#include <cstdio>
#include <optional>
#include <rtcache/rtcache.hpp>
#include <string>

int main() {
  int loads = 0;
  auto cache = rtcache::make_cache<int, std::string>(
      rtcache::Options{.capacity = 16}, [&](const int& id) -> std::optional<std::string> {
        ++loads;
        return "user-" + std::to_string(id);
      });
  const auto first = cache.get(7);
  const auto second = cache.get(7);
  if (first != second || !first || *first != "user-7" || loads != 1) {
    std::puts("rtcache consumer: FAILED");
    return 1;
  }
  std::puts("rtcache consumer: ok");
  return 0;
}
