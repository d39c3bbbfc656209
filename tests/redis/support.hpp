#pragma once

// Shared by the Redis tier tests: a private redis-server, tier options that
// reconnect fast, and waiting on a tier's counters (never on time: the
// timeout only bounds a failing test).

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <rtcache/redis.hpp>
#include <rtcache/redis/local_server.hpp>
#include <string>
#include <utility>
#include <vector>

#include "support/catch.hpp"

namespace rtcache::test {

#ifndef RTCACHE_REDIS_SERVER
#define RTCACHE_REDIS_SERVER "redis-server"
#endif

/// How long a failing wait may take before the test reports it.
inline constexpr std::chrono::milliseconds kEventTimeout{20'000};

inline redis::LocalServer::Options server_options() {
  redis::LocalServer::Options options;
  options.executable = RTCACHE_REDIS_SERVER;
  return options;
}

/// Options of one instance of the service, talking to the server at `port`.
inline redis::TierOptions tier_options(int port, std::string instance_id) {
  redis::TierOptions options;
  options.port = port;
  options.instance_id = std::move(instance_id);
  options.key_prefix = "test:";
  options.channel = "test:invalidations";
  options.connect_timeout = std::chrono::milliseconds(500);
  options.command_timeout = std::chrono::milliseconds(2000);
  options.reconnect_backoff_min = std::chrono::milliseconds(5);
  options.reconnect_backoff_max = std::chrono::milliseconds(50);
  return options;
}

/// The invalidation messages an instance received, in order (fed by
/// TierOptions::on_message), to wait for one message in particular.
class MessageLog {
 public:
  void record(std::string_view key, std::uint64_t version) {
    std::lock_guard lock(mutex_);
    messages_.emplace_back(std::string(key), version);
  }
  [[nodiscard]] bool contains(const std::string& key, std::uint64_t version) const {
    std::lock_guard lock(mutex_);
    for (const auto& m : messages_) {
      if (m.first == key && m.second == version) return true;
    }
    return false;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<std::string, std::uint64_t>> messages_;
};

/// `options` with its messages recorded in `log`.
inline redis::TierOptions logged(redis::TierOptions options, MessageLog& log) {
  options.on_message = [&log](std::string_view key, std::uint64_t version) {
    log.record(key, version);
  };
  return options;
}

/// Waits until `predicate(tier.stats())` holds; fails the test after kEventTimeout.
template <class Tier, class Predicate>
void wait_for(const Tier& tier, Predicate predicate, const char* what) {
  INFO("waiting for: " << what);
  REQUIRE(tier.wait_for(predicate, kEventTimeout));
}

}  // namespace rtcache::test
