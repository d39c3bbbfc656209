// A writer that cannot take (key, value): refused with a message.
#include <optional>
#include <rtcache/rtcache.hpp>

int main() {
  auto loader = [](const int& k) { return std::optional<int>(k); };
  auto writer = [](int) {};
  rtcache::ReadThroughCache<int, int, decltype(loader), decltype(writer)> cache({.capacity = 1},
                                                                                loader, writer);
}
