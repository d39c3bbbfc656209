// A key type the default key codec does not handle: refused with a message.
#include <rtcache/redis.hpp>
#include <string>

int main() {
  rtcache::redis::Tier<double, std::string> tier;  // needs a key codec of its own
}
