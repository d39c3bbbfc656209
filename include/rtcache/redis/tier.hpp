#pragma once

/// \file
/// rtcache::redis::Tier: Redis as a shared second level behind many
/// instances' in-process caches, and as their invalidation bus.

#include <algorithm>
#include <charconv>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "../concepts.hpp"
#include "../versioned.hpp"
#include "codec.hpp"
#include "detail/tier_core.hpp"
#include "options.hpp"

namespace rtcache::redis {

/// Keeps a cache attached to a tier: while it lives, invalidation messages
/// from other instances reach the cache. Destroy it before the cache (declare
/// it after the cache); its destructor waits for an invalidation in progress.
class [[nodiscard]] Attachment {
 public:
  Attachment() = default;
  explicit Attachment(std::shared_ptr<detail::TierCore> core) noexcept : core_(std::move(core)) {}
  Attachment(Attachment&&) noexcept = default;
  Attachment& operator=(Attachment&& other) noexcept {
    if (this != &other) {
      detach();
      core_ = std::move(other.core_);
    }
    return *this;
  }
  ~Attachment() { detach(); }

  void detach() noexcept {
    if (core_) core_->clear_target();
    core_.reset();
  }

 private:
  std::shared_ptr<detail::TierCore> core_;
};

/// Redis behind the in-process caches of many instances of a service.
///
/// - **Shared L2.** `tier.loader(db_loader)` wraps the database loader: on an
///   in-process miss it looks in Redis first; on a Redis miss it runs the
///   database loader and stores the result in Redis (not "not found") with
///   `l2_ttl` and the version. So each key is read from the database once
///   for all instances, until it expires from Redis.
/// - **Write-through across instances.** `tier.writer(db_writer)` wraps the
///   database writer: once the database write succeeded, the new value goes
///   to Redis (a delete leaves a tombstone) and a message "<instance> <version>
///   <key>" is published. Every other attached cache drops its entry unless
///   it already holds that version or a newer one. Versions also guard Redis:
///   a stored value is never replaced by an older version, so a slow load
///   cannot bring back a row that was overwritten meanwhile.
/// - **Degrade, do not fail.** If Redis cannot be reached, loads go to the
///   database and writes to the writer, and nothing throws: the stats count
///   it. The subscriber reconnects with exponential backoff; when it loses
///   Redis and when it is back, the local cache is invalidated (messages may
///   have been missed). Writes whose Redis side failed are redone then, or
///   within about `retry_interval` once Redis answers again if the subscriber
///   stayed connected.
///
/// Typical use (declare in this order, so they are destroyed in reverse):
/// \code
///   rtcache::redis::Tier<int, std::string> tier({.port = 6379});
///   auto cache = rtcache::make_cache<int, std::string>(
///       {.capacity = 10'000}, tier.loader(load_from_db), tier.writer(DbWriter{&db}));
///   auto attachment = tier.attach(cache);
/// \endcode
///
/// Thread safety: every member may be called from any thread; the loaders
/// and writers it returns are thread-safe if the wrapped ones are. No lock is
/// held while Redis or the database is called. Exceptions: the constructor
/// throws `std::invalid_argument` for bad options; the wrapped loader and
/// writer throw what the database ones throw, never because of Redis.
/// Lifetime: the loaders and writers share the tier's connections and stay
/// valid after the tier is destroyed (they then find Redis "down").
template <class K, class V, class Codec = StringCodec, class KeyCodec = DefaultKeyCodec<K>>
class Tier {
  static_assert(CodecFor<Codec, V>,
                "rtcache::redis: the Codec must have encode(const V&) returning std::string and "
                "decode(std::string_view) returning V (see rtcache::redis::CodecFor)");
  static_assert(KeyCodecFor<KeyCodec, K>,
                "rtcache::redis: the KeyCodec must have encode(const K&) returning std::string "
                "and decode(std::string_view) returning std::optional<K>");

  struct Shared {
    Shared(TierOptions options, Codec c, KeyCodec k)
        : core(std::move(options)), codec(std::move(c)), key_codec(std::move(k)) {}
    detail::TierCore core;
    [[no_unique_address]] Codec codec;
    [[no_unique_address]] KeyCodec key_codec;

    std::string record_of(std::uint64_t version, const V& value) const {
      return detail::make_record(version, 'v', std::string(codec.encode(value)));
    }

    void after_write(const K& key, std::uint64_t version, const V& value) noexcept {
      try {
        const std::string key_text = key_codec.encode(key);
        std::string record;
        try {
          record = core.options().shared_l2 ? record_of(version, value) : std::string();
        } catch (...) {
          core.count_l2_error();  // cannot encode: leave a tombstone instead
          record = detail::make_record(version, 't', {});
        }
        core.after_write(key_text, version, record);
      } catch (...) {
        core.count_l2_error();
      }
    }
  };

 public:
  using key_type = K;
  using mapped_type = V;

  /// The loader `tier.loader(db_loader)` returns: Redis first, then the database.
  template <class DbLoader>
  class Loader {
   public:
    Loader(std::shared_ptr<Shared> shared, DbLoader db)
        : shared_(std::move(shared)), db_(std::move(db)) {}

    std::optional<Loaded<V>> operator()(const K& key) {
      Shared& s = *shared_;
      if (!s.core.options().shared_l2) return to_loaded(std::invoke(db_, key));
      std::string key_text;
      auto lookup = detail::TierCore::Lookup::kUnavailable;
      try {
        key_text = s.key_codec.encode(key);
        std::string record;
        lookup = s.core.get(key_text, record);
        if (lookup == detail::TierCore::Lookup::kHit) {
          try {
            return Loaded<V>{
                V(s.codec.decode(std::string_view(record).substr(detail::kHeaderSize))),
                parse_version(record), std::chrono::nanoseconds(0)};
          } catch (...) {
            s.core.count_l2_error();  // unreadable: load it, and overwrite it
            lookup = detail::TierCore::Lookup::kMiss;
          }
        }
      } catch (...) {
        s.core.count_l2_error();
        lookup = detail::TierCore::Lookup::kUnavailable;
      }
      std::optional<Loaded<V>> loaded = to_loaded(std::invoke(db_, key));
      if (loaded && lookup == detail::TierCore::Lookup::kMiss) {
        try {
          auto ttl = s.core.options().l2_ttl;
          if (loaded->ttl.count() > 0) {
            ttl = std::min(ttl, std::chrono::ceil<std::chrono::milliseconds>(loaded->ttl));
          }
          s.core.fill(key_text, s.record_of(loaded->version, loaded->value), ttl);
        } catch (...) {
          s.core.count_l2_error();
        }
      }
      return loaded;
    }

   private:
    static std::uint64_t parse_version(std::string_view record) noexcept {
      std::uint64_t v = 0;
      std::from_chars(record.data(), record.data() + detail::kVersionDigits, v);
      return v;
    }

    template <class R>
    static std::optional<Loaded<V>> to_loaded(R&& r) {
      using T = std::remove_cvref_t<R>;
      if constexpr (std::same_as<T, std::optional<V>>) {
        if (!r) return std::nullopt;
        return Loaded<V>{std::move(*r), kUnknownVersion, {}};
      } else if constexpr (std::same_as<T, std::optional<Versioned<V>>>) {
        if (!r) return std::nullopt;
        return Loaded<V>{std::move(r->value), r->version, {}};
      } else if constexpr (std::same_as<T, std::optional<Loaded<V>>>) {
        return std::move(r);
      } else if constexpr (std::same_as<T, Versioned<V>>) {
        return Loaded<V>{std::move(r.value), r.version, {}};
      } else if constexpr (std::same_as<T, Loaded<V>>) {
        return std::move(r);
      } else {
        return Loaded<V>{V(std::move(r)), kUnknownVersion, {}};
      }
    }

    std::shared_ptr<Shared> shared_;
    [[no_unique_address]] DbLoader db_;
  };

  /// The writer `tier.writer(db_writer)` returns: the database first, then
  /// Redis and the message. It can delete, and write conditionally, when the
  /// database writer can.
  template <class DbWriter>
  class Writer {
   public:
    Writer(std::shared_ptr<Shared> shared, DbWriter db)
        : shared_(std::move(shared)), db_(std::move(db)) {}

    auto write(const K& key, const V& value) {
      auto call = [&]() -> decltype(auto) {
        if constexpr (rtcache::detail::HasWriteMember<DbWriter, K, V>) {
          return db_.write(key, value);
        } else {
          return std::invoke(db_, key, value);
        }
      };
      using R = std::remove_cvref_t<decltype(call())>;
      if constexpr (std::is_void_v<R>) {
        call();
        shared_->after_write(key, kUnknownVersion, value);
      } else if constexpr (std::same_as<R, Versioned<V>>) {
        R stored = call();
        shared_->after_write(key, stored.version, stored.value);
        return stored;
      } else {
        R stored = call();
        shared_->after_write(key, kUnknownVersion, stored);
        return stored;
      }
    }

    void erase(const K& key) requires DeletingWriterFor<DbWriter, K> {
      db_.erase(key);
      try {
        shared_->core.after_erase(shared_->key_codec.encode(key));
      } catch (...) {
        shared_->core.count_l2_error();
      }
    }

    auto write_if_version(const K& key, const V& value,
                          std::uint64_t expected) requires VersionedWriterFor<DbWriter, K, V> {
      auto outcome = db_.write_if_version(key, value, expected);
      if (outcome) {
        if constexpr (std::same_as<decltype(outcome), std::optional<std::uint64_t>>) {
          shared_->after_write(key, *outcome, value);
        } else {
          shared_->after_write(key, outcome->version, outcome->value);
        }
      }
      return outcome;
    }

   private:
    std::shared_ptr<Shared> shared_;
    [[no_unique_address]] DbWriter db_;
  };

  /// Connects (the subscriber subscribes before the constructor returns, or
  /// has failed to and goes on trying in the background).
  explicit Tier(TierOptions options = {}, Codec codec = {}, KeyCodec key_codec = {})
      : shared_(
            std::make_shared<Shared>(std::move(options), std::move(codec), std::move(key_codec))) {
    shared_->core.start();
  }

  Tier(const Tier&) = delete;
  Tier& operator=(const Tier&) = delete;

  /// Stops the subscriber.
  ~Tier() { shared_->core.stop(); }

  /// Wraps the database loader (any rtcache loader of `V`).
  template <class DbLoader>
  requires LoaderFor<DbLoader, K, V>
  [[nodiscard]] Loader<DbLoader> loader(DbLoader db_loader) const {
    return Loader<DbLoader>(shared_, std::move(db_loader));
  }

  /// Wraps the database writer (any rtcache writer of `V`).
  template <class DbWriter>
  requires WriterFor<DbWriter, K, V>
  [[nodiscard]] Writer<DbWriter> writer(DbWriter db_writer) const {
    return Writer<DbWriter>(shared_, std::move(db_writer));
  }

  /// Delivers invalidation messages from other instances to `cache` (one
  /// cache per tier) until the returned attachment is destroyed.
  template <class Cache>
  requires requires(Cache& c, const K& k, std::uint64_t v) {
    c.invalidate(k);
    c.invalidate_if_older(k, v);
    c.invalidate_all();
  }
  [[nodiscard]] Attachment attach(Cache& cache) {
    Shared* s = shared_.get();
    detail::TierCore::Target target;
    target.invalidate = [&cache, s](std::string_view key_text, std::uint64_t version) {
      const std::optional<K> key = s->key_codec.decode(key_text);
      if (!key) return;
      if (version == kUnknownVersion) {
        cache.invalidate(*key);
      } else {
        cache.invalidate_if_older(*key, version);
      }
    };
    target.invalidate_all = [&cache] { cache.invalidate_all(); };
    s->core.set_target(std::move(target));
    return Attachment(std::shared_ptr<detail::TierCore>(shared_, &s->core));
  }

  /// The counters (a snapshot).
  [[nodiscard]] TierStats stats() const { return shared_->core.stats(); }

  /// Waits until `predicate(stats())` holds or `timeout` passes; returns
  /// whether it holds. Re-checked whenever the subscriber receives a message
  /// or connects or disconnects: for tests and health checks.
  template <class Predicate>
  bool wait_for(Predicate&& predicate, std::chrono::milliseconds timeout) const {
    return shared_->core.wait_for(std::forward<Predicate>(predicate), timeout);
  }

  [[nodiscard]] const std::string& instance_id() const noexcept {
    return shared_->core.options().instance_id;
  }

 private:
  std::shared_ptr<Shared> shared_;
};

}  // namespace rtcache::redis
