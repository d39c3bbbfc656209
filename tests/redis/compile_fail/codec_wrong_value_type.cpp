// A tier whose codec cannot encode the cache's values: refused with a message.
#include <rtcache/redis.hpp>

int main() {
  rtcache::redis::Tier<int, int> tier;  // StringCodec handles string-like values only
}
