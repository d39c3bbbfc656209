// A loader whose result is not a value of the cache: refused with a message.
#include <rtcache/rtcache.hpp>
#include <string>

int main() {
  auto loader = [](const int&) { return 42; };  // the cache holds std::string
  rtcache::ReadThroughCache<int, std::string, decltype(loader)> cache({.capacity = 1}, loader);
}
