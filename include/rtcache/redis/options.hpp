#pragma once

/// \file
/// TierOptions and TierStats: the settings and counters of a redis::Tier.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace rtcache::redis {

/// Settings of a `Tier`, checked by its constructor (`std::invalid_argument`
/// naming the field). Every instance that shares data must use the same
/// `key_prefix`, `channel` and codecs, and a distinct `instance_id`.
struct TierOptions {
  std::string host = "127.0.0.1";
  int port = 6379;

  /// Prepended to every key text in Redis: "<key_prefix><key>".
  std::string key_prefix = "rtcache:";
  /// The pub/sub channel of invalidation messages.
  std::string channel = "rtcache:invalidations";
  /// This instance's name in messages (no white space); empty: generated
  /// from the host name, the process id and a random number.
  std::string instance_id{};

  /// Use Redis as a shared second level (L2). False: Redis only carries
  /// invalidation messages between instances.
  bool shared_l2 = true;
  /// How long a value stays in the L2 (a loader's own `Loaded::ttl`, when
  /// shorter, wins).
  std::chrono::milliseconds l2_ttl = std::chrono::minutes(5);
  /// How long a deleted key's tombstone keeps older fills out of the L2.
  std::chrono::milliseconds tombstone_ttl = std::chrono::seconds(30);

  std::chrono::milliseconds connect_timeout = std::chrono::milliseconds(200);
  /// Longest wait for one command's reply; past it, Redis counts as down.
  std::chrono::milliseconds command_timeout = std::chrono::milliseconds(200);
  /// After a failed command (while the subscriber stays connected), commands
  /// are skipped for this long. Also how often postponed writes are retried
  /// while the subscriber stays connected.
  std::chrono::milliseconds retry_interval = std::chrono::seconds(1);
  /// The subscriber reconnects after this, doubling up to the max.
  std::chrono::milliseconds reconnect_backoff_min = std::chrono::milliseconds(50);
  std::chrono::milliseconds reconnect_backoff_max = std::chrono::seconds(2);

  /// Command connections kept open for reuse.
  std::size_t max_idle_connections = 8;
  /// Writes whose Redis side is postponed (Redis was down) are remembered,
  /// per key, up to this many; past it, the redo (once Redis answers again)
  /// tells every instance to drop its whole local cache.
  std::size_t max_pending_invalidations = 100'000;

  /// Called on the subscriber thread for each message from another instance,
  /// after the local cache has been invalidated: the key's text and the
  /// version written (0: unknown, or a delete). Must not block for long.
  std::function<void(std::string_view key_text, std::uint64_t version)> on_message{};
};

/// Counters since the tier was built (a snapshot; see `Tier::stats`).
struct TierStats {
  std::uint64_t l2_hits = 0;      ///< loads answered by Redis
  std::uint64_t l2_misses = 0;    ///< loads Redis did not have (then the database was asked)
  std::uint64_t l2_errors = 0;    ///< failed commands, error replies, unreadable records
  std::uint64_t l2_skipped = 0;   ///< commands not tried because Redis was down
  std::uint64_t l2_stores = 0;    ///< values (and tombstones) stored in Redis
  std::uint64_t l2_refused = 0;   ///< stores refused: Redis held a newer version
  std::uint64_t published = 0;    ///< invalidation messages sent
  std::uint64_t postponed = 0;    ///< writes whose Redis side waits for Redis to return
  std::uint64_t lost = 0;         ///< postponed writes beyond max_pending_invalidations
  std::uint64_t received = 0;     ///< messages from other instances, applied
  std::uint64_t ignored_own = 0;  ///< this instance's own messages, ignored
  std::uint64_t disconnects = 0;  ///< times the subscriber lost Redis
  std::uint64_t reconnects = 0;   ///< times it subscribed again after losing it
  bool connected = false;         ///< the subscriber is subscribed now
};

}  // namespace rtcache::redis
