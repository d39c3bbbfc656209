#pragma once

/// \file
/// The untyped part of a redis::Tier: the command connections, the
/// subscriber thread, the health state, the pending invalidations and the
/// counters. It deals in key text and encoded records; Tier adds the types.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../connection.hpp"
#include "../options.hpp"

namespace rtcache::redis::detail {

/// A record as stored in Redis: the version as 20 zero-padded decimal digits
/// (so that Lua compares versions as strings, exactly), a kind byte ('v': a
/// value follows; 't': a tombstone) and the encoded value.
inline constexpr std::size_t kVersionDigits = 20;
inline constexpr std::size_t kHeaderSize = kVersionDigits + 1;

inline std::string make_record(std::uint64_t version, char kind, std::string_view payload) {
  std::string record(kHeaderSize, '0');
  const std::string digits = std::to_string(version);
  record.replace(kVersionDigits - digits.size(), digits.size(), digits);
  record[kVersionDigits] = kind;
  record.append(payload);
  return record;
}

/// The one script every write to Redis goes through: stores ARGV[1] (a
/// record) for ARGV[2] milliseconds unless Redis holds a newer version of
/// the key, then publishes ARGV[4] on channel ARGV[3] (when not empty).
/// Returns 1 if the record was stored, 0 if it was refused.
///
/// A versioned record (version > 0) never replaces a newer one, so a slow
/// load that read the database before a write cannot put the old row back.
/// A record of unknown version (0) replaces values but not a tombstone of
/// a known version. Tombstones (left by erase and by writes whose update of
/// Redis had to be postponed) refuse older fills for their lifetime.
inline constexpr std::string_view kStoreScript = R"lua(
local current = redis.call('GET', KEYS[1])
local incoming = string.sub(ARGV[1], 1, 20)
local applied = 1
if current and (incoming ~= '00000000000000000000' or string.sub(current, 21, 21) == 't')
    and string.sub(current, 1, 20) > incoming then
  applied = 0
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
if ARGV[3] ~= '' then
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
return applied
)lua";

inline std::string make_instance_id() {
  char host[64] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
    std::snprintf(host, sizeof host, "host");
  for (char* c = host; *c != '\0'; ++c) {
    if (*c == ' ' || *c == '\t' || *c == '\n') *c = '_';
  }
  std::random_device random;
  char id[128];
  std::snprintf(id, sizeof id, "%s-%ld-%08x", host, static_cast<long>(::getpid()),
                static_cast<unsigned>(random()));
  return id;
}

class TierCore {
 public:
  enum class Lookup { kHit, kMiss, kUnavailable };

  /// Where invalidations go: set by Tier::attach.
  struct Target {
    std::function<void(std::string_view key_text, std::uint64_t version)> invalidate;
    std::function<void()> invalidate_all;
  };

  explicit TierCore(TierOptions options) : options_(std::move(options)) {
    validate(options_);
    if (options_.instance_id.empty()) options_.instance_id = make_instance_id();
  }

  TierCore(const TierCore&) = delete;
  TierCore& operator=(const TierCore&) = delete;
  ~TierCore() { stop(); }

  [[nodiscard]] const TierOptions& options() const noexcept { return options_; }

  /// Starts the subscriber and waits until its first attempt to subscribe
  /// has succeeded or failed (at most about connect_timeout + command_timeout).
  void start() {
    subscriber_ = std::thread([this] { run_subscriber(); });
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return first_attempt_done_; });
  }

  /// Stops the subscriber: interrupts its blocking read and joins it.
  void stop() noexcept {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      if (active_ != nullptr) active_->interrupt();
    }
    changed_.notify_all();
    if (subscriber_.joinable()) subscriber_.join();
    // Nobody listens for invalidations any more: stop using Redis at all.
    retry_at_.store(kDown, std::memory_order_release);
  }

  // -- the shared L2 -----------------------------------------------------------

  /// Looks `key_text` up. On a hit, `record` holds the version and the
  /// encoded value (see `make_record`).
  Lookup get(const std::string& key_text, std::string& record) {
    const std::string key = options_.key_prefix + key_text;
    Lookup result = Lookup::kUnavailable;
    with_connection([&](Connection& c) {
      Reply reply = c.command({"GET", key});
      if (reply.is_nil()) {
        result = Lookup::kMiss;
      } else if (reply.is_string() && reply.text().size() >= kHeaderSize &&
                 (reply.text()[kVersionDigits] == 'v' || reply.text()[kVersionDigits] == 't')) {
        result = reply.text()[kVersionDigits] == 'v' ? Lookup::kHit : Lookup::kMiss;
        if (result == Lookup::kHit) record.assign(reply.text());
      } else {
        result = Lookup::kMiss;  // not ours, or an error reply: count it, then load
        stats_.l2_errors.fetch_add(1, std::memory_order_relaxed);
      }
    });
    if (result == Lookup::kHit) stats_.l2_hits.fetch_add(1, std::memory_order_relaxed);
    if (result == Lookup::kMiss) stats_.l2_misses.fetch_add(1, std::memory_order_relaxed);
    return result;
  }

  /// Stores a loaded record, unless Redis holds a newer version. No message.
  void fill(const std::string& key_text, const std::string& record, std::chrono::milliseconds ttl) {
    run_store_script(key_text, record, ttl, /*message=*/{});
  }

  /// After a successful database write of `key_text` at `version` (0:
  /// unknown): stores `record` (when the L2 is on) and publishes the
  /// invalidation. If Redis cannot be reached, the key is remembered and
  /// a tombstone and the message are sent once Redis answers again (see
  /// `redo_pending_if_due`).
  void after_write(const std::string& key_text, std::uint64_t version, const std::string& record) {
    if (!run_store_script(key_text, record, options_.l2_ttl, message(version, key_text))) {
      remember(key_text, version);
    }
  }

  /// After a successful database delete of `key_text`: leaves a tombstone
  /// that no fill can replace and publishes an unconditional invalidation.
  void after_erase(const std::string& key_text) { after_write_tombstone(key_text, kErased); }

  // -- invalidation targets and observers -------------------------------------

  void set_target(Target target) {
    std::lock_guard lock(target_mutex_);
    if (target_) throw std::logic_error("rtcache::redis::Tier: already attached to a cache");
    target_ = std::move(target);
  }

  /// Detaches; waits for an invalidation in progress to finish.
  void clear_target() noexcept {
    std::lock_guard lock(target_mutex_);
    target_.reset();
  }

  [[nodiscard]] TierStats stats() const {
    TierStats s;
    s.l2_hits = stats_.l2_hits.load(std::memory_order_relaxed);
    s.l2_misses = stats_.l2_misses.load(std::memory_order_relaxed);
    s.l2_errors = stats_.l2_errors.load(std::memory_order_relaxed);
    s.l2_skipped = stats_.l2_skipped.load(std::memory_order_relaxed);
    s.l2_stores = stats_.l2_stores.load(std::memory_order_relaxed);
    s.l2_refused = stats_.l2_refused.load(std::memory_order_relaxed);
    s.published = stats_.published.load(std::memory_order_relaxed);
    s.postponed = stats_.postponed.load(std::memory_order_relaxed);
    s.lost = stats_.lost.load(std::memory_order_relaxed);
    s.received = stats_.received.load(std::memory_order_relaxed);
    s.ignored_own = stats_.ignored_own.load(std::memory_order_relaxed);
    s.disconnects = stats_.disconnects.load(std::memory_order_relaxed);
    s.reconnects = stats_.reconnects.load(std::memory_order_relaxed);
    s.connected = stats_.connected.load(std::memory_order_relaxed);
    return s;
  }

  void count_l2_error() noexcept { stats_.l2_errors.fetch_add(1, std::memory_order_relaxed); }

  template <class Predicate>
  bool wait_for(Predicate&& predicate, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return predicate(stats()); });
  }

 private:
  static constexpr std::uint64_t kErased = std::numeric_limits<std::uint64_t>::max();
  static constexpr std::int64_t kDown = std::numeric_limits<std::int64_t>::max();

  struct Counters {
    std::atomic<std::uint64_t> l2_hits{0}, l2_misses{0}, l2_errors{0}, l2_skipped{0}, l2_stores{0},
        l2_refused{0}, published{0}, postponed{0}, lost{0}, received{0}, ignored_own{0},
        disconnects{0}, reconnects{0};
    std::atomic<bool> connected{false};
  };

  struct Pooled {
    std::unique_ptr<Connection> connection;
    std::uint64_t generation = 0;
  };

  static void validate(const TierOptions& o) {
    auto refuse = [](const std::string& what) {
      throw std::invalid_argument("rtcache::redis::TierOptions: " + what);
    };
    if (o.host.empty()) refuse("host must not be empty");
    if (o.port < 1 || o.port > 65535)
      refuse("port must be 1 to 65535 (got " + std::to_string(o.port) + ")");
    if (o.channel.empty()) refuse("channel must not be empty");
    if (o.instance_id.find_first_of(" \t\r\n") != std::string::npos) {
      refuse("instance_id must not contain white space");
    }
    auto positive = [&](std::chrono::milliseconds d, const char* name) {
      if (d.count() <= 0)
        refuse(std::string(name) + " must be positive (got " + std::to_string(d.count()) + "ms)");
    };
    positive(o.l2_ttl, "l2_ttl");
    positive(o.tombstone_ttl, "tombstone_ttl");
    positive(o.connect_timeout, "connect_timeout");
    positive(o.command_timeout, "command_timeout");
    positive(o.retry_interval, "retry_interval");
    positive(o.reconnect_backoff_min, "reconnect_backoff_min");
    if (o.reconnect_backoff_max < o.reconnect_backoff_min) {
      refuse("reconnect_backoff_max must be at least reconnect_backoff_min");
    }
  }

  static std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  std::string message(std::uint64_t version, std::string_view key_text) const {
    std::string m = options_.instance_id;
    m += ' ';
    m += std::to_string(version);
    m += ' ';
    m += key_text;
    return m;
  }

  /// Runs `use(connection)` on a pooled connection. False (and nothing run)
  /// while Redis is known to be down; false when the connection fails, which
  /// marks Redis down for `retry_interval` (or until the subscriber is back).
  ///
  /// A pooled connection may have been closed by Redis while it sat idle
  /// (its `timeout` setting, CLIENT KILL; neither touches the subscriber):
  /// if a reused one fails other than by a timeout, `use` runs once more on
  /// a new connection before Redis counts as down. So `use` must be safe to
  /// run again after a ConnectionError (every command here is).
  template <class Use>
  bool with_connection(Use&& use) {
    if (now_ns() < retry_at_.load(std::memory_order_acquire)) {
      stats_.l2_skipped.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    Pooled pooled = take_connection();
    try {
      const bool reused = pooled.connection != nullptr;
      if (!reused) pooled.connection = new_connection();
      try {
        use(*pooled.connection);
      } catch (const ConnectionError&) {
        // After a timeout Redis is slow or gone: a second try would only double the wait.
        if (!reused || pooled.connection->timed_out()) throw;
        drop_idle();  // closed together, most likely
        pooled.connection = new_connection();
        use(*pooled.connection);
      }
    } catch (const ConnectionError&) {
      stats_.l2_errors.fetch_add(1, std::memory_order_relaxed);
      mark_down(pooled.generation);
      return false;
    }
    give_back(std::move(pooled));
    return true;
  }

  std::unique_ptr<Connection> new_connection() const {
    return std::make_unique<Connection>(options_.host, options_.port, options_.connect_timeout,
                                        options_.command_timeout);
  }

  Pooled take_connection() {
    const std::uint64_t generation = generation_.load(std::memory_order_acquire);
    std::lock_guard lock(pool_mutex_);
    while (!idle_.empty()) {
      Pooled p = std::move(idle_.back());
      idle_.pop_back();
      if (p.generation == generation) return p;
    }
    return Pooled{nullptr, generation};
  }

  void give_back(Pooled pooled) {
    if (pooled.connection->broken()) return;
    std::lock_guard lock(pool_mutex_);
    if (pooled.generation == generation_.load(std::memory_order_acquire) &&
        idle_.size() < options_.max_idle_connections) {
      idle_.push_back(std::move(pooled));
    }
  }

  /// Closes the idle connections (outside the lock).
  void drop_idle() {
    std::vector<Pooled> dropped;
    std::lock_guard lock(pool_mutex_);
    dropped.swap(idle_);
  }

  void mark_down(std::uint64_t generation) {
    drop_idle();
    if (generation != generation_.load(std::memory_order_acquire)) return;  // already recovered
    const std::int64_t until = now_ns() + std::chrono::nanoseconds(options_.retry_interval).count();
    std::int64_t current = retry_at_.load(std::memory_order_relaxed);
    while (current < until && !retry_at_.compare_exchange_weak(current, until)) {
    }
  }

  /// The store script (or, without the L2, a plain PUBLISH). True if Redis
  /// answered; counts stores, refusals and messages.
  bool run_store_script(const std::string& key_text, const std::string& record,
                        std::chrono::milliseconds ttl, const std::string& message) {
    if (!options_.shared_l2 && message.empty()) return true;
    const std::string key = options_.key_prefix + key_text;
    const std::string ttl_ms = std::to_string(std::max<std::int64_t>(ttl.count(), 1));
    bool answered = false;
    const bool reached = with_connection([&](Connection& c) {
      Reply reply =
          options_.shared_l2
              ? c.command({"EVAL", kStoreScript, "1", key, record, ttl_ms,
                           message.empty() ? std::string_view("") : options_.channel, message})
              : c.command({"PUBLISH", options_.channel, message});
      if (!reply.is_integer()) {
        stats_.l2_errors.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      answered = true;
      if (options_.shared_l2) {
        (reply.integer() == 1 ? stats_.l2_stores : stats_.l2_refused)
            .fetch_add(1, std::memory_order_relaxed);
      }
      if (!message.empty()) stats_.published.fetch_add(1, std::memory_order_relaxed);
    });
    return reached && answered;
  }

  void after_write_tombstone(const std::string& key_text, std::uint64_t version) {
    const std::string record = make_record(version, 't', {});
    const std::uint64_t message_version = version == kErased ? 0 : version;
    if (!run_store_script(key_text, record, options_.tombstone_ttl,
                          message(message_version, key_text))) {
      remember(key_text, version);
    }
  }

  /// A write whose Redis side could not be done: redo it once Redis is back.
  void remember(const std::string& key_text, std::uint64_t version) {
    stats_.postponed.fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard lock(pending_mutex_);
      auto it = pending_.find(key_text);
      if (it != pending_.end()) {
        it->second = std::max(it->second, version);
      } else if (pending_.size() < options_.max_pending_invalidations) {
        pending_.emplace(key_text, version);
      } else {
        pending_overflow_ = true;
        stats_.lost.fetch_add(1, std::memory_order_relaxed);
      }
    }
    // Redis may have come back since this write found it down, and the
    // subscriber's redo on subscribing may have run before the key was in
    // pending_ (it sets retry_at_ before it takes pending_, under the same
    // mutex): then this thread sees retry_at_ in the past and redoes it.
    redo_pending_if_due();
  }

  /// Redoes the postponed writes unless Redis is known to be down, or a redo
  /// failed less than `retry_interval` ago. Called by a writer that just
  /// postponed one, by the subscriber on subscribing, and by the subscriber
  /// at least every `retry_interval` while it listens: a write postponed
  /// while the subscriber stayed connected (a command timeout, an error
  /// reply) is redone too, not only after a reconnect.
  void redo_pending_if_due() {
    const std::int64_t now = now_ns();
    if (now < retry_at_.load(std::memory_order_acquire) ||
        now < redo_at_.load(std::memory_order_relaxed)) {
      return;
    }
    if (!flush_pending()) {
      redo_at_.store(now + std::chrono::nanoseconds(options_.retry_interval).count(),
                     std::memory_order_relaxed);
    }
  }

  /// Redoes the postponed writes as tombstones (the value written is not
  /// kept) and messages. If some were lost, asks every instance to drop all.
  /// False if Redis failed again (what is left stays postponed). Several
  /// threads may flush at once: each takes its own keys, and the store
  /// script's version check orders tombstones of one key.
  bool flush_pending() {
    std::unordered_map<std::string, std::uint64_t> pending;
    bool overflow = false;
    {
      std::lock_guard lock(pending_mutex_);
      pending.swap(pending_);
      std::swap(overflow, pending_overflow_);
    }
    for (auto it = pending.begin(); it != pending.end(); it = pending.erase(it)) {
      const std::uint64_t v = it->second;
      const std::string record = make_record(v, 't', {});
      if (!run_store_script(it->first, record, options_.tombstone_ttl,
                            message(v == kErased ? 0 : v, it->first))) {
        break;
      }
    }
    if (overflow) {
      const std::string all = options_.instance_id + " * ";
      bool sent = false;
      with_connection([&](Connection& c) {
        sent = c.command({"PUBLISH", options_.channel, all}).is_integer();
      });
      if (sent) stats_.published.fetch_add(1, std::memory_order_relaxed);
      overflow = !sent;
    }
    if (pending.empty() && !overflow) return true;
    // Redis failed again: keep them for the next time.
    std::lock_guard lock(pending_mutex_);
    for (auto& [key, version] : pending) {
      auto [it, inserted] = pending_.emplace(key, version);
      if (!inserted) it->second = std::max(it->second, version);
    }
    pending_overflow_ = pending_overflow_ || overflow;
    return false;
  }

  // -- the subscriber ----------------------------------------------------------

  [[nodiscard]] bool stopping() {
    std::lock_guard lock(mutex_);
    return stopping_;
  }

  void notify_changed() {
    { std::lock_guard lock(mutex_); }
    changed_.notify_all();
  }

  void invalidate_all_locally() {
    std::lock_guard lock(target_mutex_);
    if (target_ && target_->invalidate_all) target_->invalidate_all();
  }

  void run_subscriber() {
    std::chrono::milliseconds backoff = options_.reconnect_backoff_min;
    bool ever_subscribed = false;
    while (!stopping()) {
      std::unique_ptr<Connection> connection;
      try {
        connection = std::make_unique<Connection>(
            options_.host, options_.port, options_.connect_timeout, options_.command_timeout);
        Reply confirmation = connection->command({"SUBSCRIBE", options_.channel});
        if (!confirmation.is_array() || confirmation.element_text(0) != "subscribe") {
          throw ConnectionError("rtcache::redis: unexpected reply to SUBSCRIBE");
        }
        connection->set_command_timeout(std::chrono::milliseconds(0));
        connection->enable_keepalive();  // notice a vanished host, not only a closed socket
      } catch (const ConnectionError&) {
        connection.reset();
      }
      bool subscribed = false;
      {
        std::lock_guard lock(mutex_);
        if (connection && !stopping_) {
          active_ = connection.get();
          subscribed = true;
        }
      }
      if (subscribed) {
        backoff = options_.reconnect_backoff_min;
        on_subscribed(ever_subscribed);
        ever_subscribed = true;
      }
      {
        std::lock_guard lock(mutex_);
        first_attempt_done_ = true;
      }
      changed_.notify_all();
      if (subscribed) {
        listen(*connection);
        {
          std::lock_guard lock(mutex_);
          active_ = nullptr;
        }
        connection.reset();
        if (stopping()) break;
        on_disconnected();
      }
      std::unique_lock lock(mutex_);
      if (changed_.wait_for(lock, backoff, [&] { return stopping_; })) break;
      backoff = std::min(backoff * 2, options_.reconnect_backoff_max);
    }
  }

  void on_subscribed(bool again) {
    // From now on every message reaches us; what was cached before may have
    // missed some: drop it. Command connections of earlier generations are
    // dead (or to another server): never reuse them.
    generation_.fetch_add(1, std::memory_order_acq_rel);
    {
      std::vector<Pooled> dropped;
      std::lock_guard lock(pool_mutex_);
      dropped.swap(idle_);
    }
    retry_at_.store(0, std::memory_order_release);
    invalidate_all_locally();
    redo_at_.store(0, std::memory_order_relaxed);
    redo_pending_if_due();
    stats_.connected.store(true, std::memory_order_relaxed);
    if (again) stats_.reconnects.fetch_add(1, std::memory_order_relaxed);
    notify_changed();
  }

  void on_disconnected() {
    // Messages are being missed from now on: stop trusting the local cache,
    // and stop trying commands until the subscriber is back.
    retry_at_.store(kDown, std::memory_order_release);
    invalidate_all_locally();
    stats_.connected.store(false, std::memory_order_relaxed);
    stats_.disconnects.fetch_add(1, std::memory_order_relaxed);
    notify_changed();
  }

  /// Handles messages until the connection fails; wakes at least every
  /// `retry_interval` to redo postponed writes.
  void listen(Connection& connection) {
    try {
      for (;;) {
        std::optional<Reply> reply = connection.read_reply_for(options_.retry_interval);
        if (reply && reply->is_array() && reply->size() == 3 &&
            reply->element_text(0) == "message") {
          handle(reply->element_text(2));
        }
        redo_pending_if_due();
      }
    } catch (const ConnectionError&) {
      // The server went away, or stop() interrupted us.
    }
  }

  /// "<instance id> <version> <key text>", or "<instance id> * " (drop all).
  void handle(std::string_view text) {
    const std::size_t first = text.find(' ');
    const std::size_t second = first == std::string_view::npos ? first : text.find(' ', first + 1);
    if (second == std::string_view::npos) return;
    const std::string_view instance = text.substr(0, first);
    const std::string_view version_text = text.substr(first + 1, second - first - 1);
    const std::string_view key_text = text.substr(second + 1);
    if (instance == options_.instance_id) {
      stats_.ignored_own.fetch_add(1, std::memory_order_relaxed);
      notify_changed();
      return;
    }
    if (version_text == "*") {
      invalidate_all_locally();
    } else {
      std::uint64_t version = 0;
      const auto [end, error] =
          std::from_chars(version_text.data(), version_text.data() + version_text.size(), version);
      if (error != std::errc{} || end != version_text.data() + version_text.size()) return;
      std::lock_guard lock(target_mutex_);
      if (target_ && target_->invalidate) {
        try {
          target_->invalidate(key_text, version);
        } catch (...) {
          // A key the codec cannot read, or a failing listener: not ours to stop on.
        }
      }
    }
    stats_.received.fetch_add(1, std::memory_order_relaxed);
    if (options_.on_message) {
      try {
        options_.on_message(key_text, version_text == "*" ? 0 : parse_or_zero(version_text));
      } catch (...) {
      }
    }
    notify_changed();
  }

  static std::uint64_t parse_or_zero(std::string_view text) noexcept {
    std::uint64_t v = 0;
    std::from_chars(text.data(), text.data() + text.size(), v);
    return v;
  }

  TierOptions options_;
  Counters stats_;

  // Health: commands are not tried before retry_at_ (steady-clock ns).
  // kDown until the subscriber has subscribed.
  std::atomic<std::int64_t> retry_at_{kDown};
  std::atomic<std::uint64_t> generation_{0};
  // Postponed writes are not redone automatically before redo_at_ (steady-clock ns).
  std::atomic<std::int64_t> redo_at_{0};
  std::mutex pool_mutex_;
  std::vector<Pooled> idle_;

  std::mutex pending_mutex_;
  std::unordered_map<std::string, std::uint64_t> pending_;
  bool pending_overflow_ = false;

  std::mutex target_mutex_;
  std::optional<Target> target_;

  // The subscriber's state, and the condition every waiter waits on.
  std::mutex mutex_;
  std::condition_variable changed_;
  bool stopping_ = false;
  bool first_attempt_done_ = false;
  Connection* active_ = nullptr;
  std::thread subscriber_;
};

}  // namespace rtcache::redis::detail
