// Contract point 10: bad options are refused at construction with a clear
// message.

#include <chrono>
#include <rtcache/rtcache.hpp>
#include <stdexcept>
#include <string>

#include "support/catch.hpp"

namespace {

std::string refusal(rtcache::Options options) {
  try {
    auto cache =
        rtcache::make_cache<int, int>(options, [](const int& k) { return std::optional<int>(k); });
    (void)cache;
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "accepted";
}

}  // namespace

TEST_CASE("capacity 0 is refused") {
  CHECK(refusal({.capacity = 0}) == "rtcache::Options: capacity must be at least 1 (got 0)");
}

TEST_CASE("a shard count that is not a power of two is refused") {
  CHECK(refusal({.capacity = 100, .shards = 3}) ==
        "rtcache::Options: shards must be a power of two (got 3)");
  CHECK(refusal({.capacity = 100, .shards = 12}) ==
        "rtcache::Options: shards must be a power of two (got 12)");
}

TEST_CASE("more shards than capacity is refused") {
  CHECK(refusal({.capacity = 4, .shards = 8}) ==
        "rtcache::Options: shards (8) must not exceed capacity (4)");
}

TEST_CASE("valid options are accepted and the default shard count is a power of two") {
  CHECK(refusal({.capacity = 1}) == "accepted");
  CHECK(refusal({.capacity = 4, .shards = 4}) == "accepted");
  auto cache = rtcache::make_cache<int, int>(rtcache::Options{.capacity = 100000},
                                             [](const int& k) { return k; });
  CHECK(cache.shard_count() >= 1);
  CHECK((cache.shard_count() & (cache.shard_count() - 1)) == 0);
  auto small = rtcache::make_cache<int, int>(rtcache::Options{.capacity = 40},
                                             [](const int& k) { return k; });
  CHECK(small.shard_count() == 1);  // at least 32 entries per default shard
}

TEST_CASE("negative durations and inconsistent freshness settings are refused") {
  using namespace std::chrono_literals;
  CHECK(refusal({.capacity = 8, .expire_after_write = -1s}) ==
        "rtcache::Options: expire_after_write must not be negative (got -1000000000ns)");
  CHECK(refusal({.capacity = 8, .negative_ttl = -1ns}) ==
        "rtcache::Options: negative_ttl must not be negative (got -1ns)");
  CHECK(refusal({.capacity = 8, .stale_if_error = -5ns}) ==
        "rtcache::Options: stale_if_error must not be negative (got -5ns)");
  CHECK(refusal({.capacity = 8, .expire_after_write = 10s, .refresh_after = 10s}) ==
        "rtcache::Options: refresh_after (10000000000ns) must be less than expire_after_write "
        "(10000000000ns)");
  CHECK(refusal({.capacity = 8, .refresh_after = 1s, .refresh_jitter = 1.0}) ==
        "rtcache::Options: refresh_jitter must be in [0, 1) (got 1.000000)");
  CHECK(refusal({.capacity = 8, .refresh_after = 1s, .refresh_threads = 0}) ==
        "rtcache::Options: refresh_threads must be at least 1 when refresh_after is set");
  CHECK(refusal({.capacity = 8, .expire_after_write = 10s, .refresh_after = 5s}) == "accepted");
}
