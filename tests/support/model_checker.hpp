#pragma once

// The model-checked stress run shared by tests/stress/model_test.cpp (a short,
// operation-bounded run in the suite) and tests/stress/soak_main.cpp (the
// rtcache-soak executable, time-bounded).
//
// Threads run random operations on a small key space against a cache in
// front of a HistoryStore that throws and stalls at random. Every result is
// checked against the store's history:
//
// - a read that starts after a write or delete of k was acknowledged returns
//   that version of k or a later one ("absent" only if k was absent at such a
//   version);
// - every value returned was written to that key, at the version reported;
// - the versions one thread sees of one key never go backwards (across
//   deletes too: versions never reset);
// - no two loader calls of one key overlap (checked inside the store);
// - size() never exceeds the capacity;
// - after the threads stop: nothing is pending, every shard passes its
//   policy's invariant check, every cached entry equals the store's current
//   row, and the counters agree with the store's own counts.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <rtcache/rtcache.hpp>
#include <string>
#include <thread>
#include <typeinfo>
#include <unordered_map>
#include <vector>

#include "history_store.hpp"

namespace rtcache::test::model {

struct ModelConfig {
  unsigned threads = 8;
  int keys = 12;
  std::size_t capacity = 6;  // below `keys`: eviction never stops
  std::size_t shards = 2;
  /// Operations per thread; 0: until `stop` is set.
  std::uint64_t operations_per_thread = 1000;
  const std::atomic<bool>* stop = nullptr;
  std::uint64_t seed = 1;
  FaultPlan faults{};
  /// Freshness on: TTLs, negative caching, refresh-ahead (on the built-in
  /// pool) and stale-if-error, on a manual clock that the workers advance by
  /// 1 to 12 ms now and then; and at most 2 loader calls at once. None of this may
  /// break a check: expiry only makes the cache load more, and every entry it
  /// could serve stale is still the latest acknowledged write.
  bool freshness = false;
};

struct ModelResult {
  std::uint64_t operations = 0;
  std::uint64_t loader_throws = 0;
  std::uint64_t writer_throws = 0;
  std::uint64_t stalls = 0;
  std::uint64_t violations = 0;
  std::vector<std::string> messages;
  Stats stats;  // the cache's counters at the end (summed over runs by +=)

  [[nodiscard]] std::uint64_t faults_injected() const {
    return loader_throws + writer_throws + stalls;
  }
  ModelResult& operator+=(const ModelResult& other) {
    operations += other.operations;
    loader_throws += other.loader_throws;
    writer_throws += other.writer_throws;
    stalls += other.stalls;
    violations += other.violations;
    stats.hits += other.stats.hits;
    stats.misses += other.stats.misses;
    stats.loads += other.stats.loads;
    stats.coalesced_waits += other.stats.coalesced_waits;
    stats.evictions += other.stats.evictions;
    stats.version_conflicts += other.stats.version_conflicts;
    stats.refreshes += other.stats.refreshes;
    stats.stale_served += other.stats.stale_served;
    stats.expirations += other.stats.expirations;
    for (const auto& m : other.messages) {
      if (messages.size() < 20) messages.push_back(m);
    }
    return *this;
  }
};

namespace detail_model {

/// One worker thread: its generator, the versions it has seen, its checks.
template <class Cache>
class Worker {
 public:
  Worker(unsigned id, const ModelConfig& config, Cache& cache, HistoryStore& store,
         Violations& violations, ManualClock* clock)
      : id_(id),
        config_(config),
        clock_(clock),
        cache_(cache),
        store_(store),
        violations_(violations),
        random_(config.seed * 1000 + id),
        floor_(static_cast<std::size_t>(config.keys), 0),
        seen_how_(static_cast<std::size_t>(config.keys)) {}

  std::uint64_t run() {
    HistoryStore::seed_thread(config_.seed * 7919 + id_);
    std::uint64_t done = 0;
    for (;;) {
      if (config_.operations_per_thread != 0 ? done >= config_.operations_per_thread
                                             : config_.stop->load(std::memory_order_relaxed)) {
        break;
      }
      one_operation();
      ++done;
      const std::size_t size = cache_.size();
      if (size > config_.capacity) {
        fail("size " + std::to_string(size) + " exceeds capacity " +
             std::to_string(config_.capacity));
      }
    }
    return done;
  }

 private:
  Key random_key() { return static_cast<Key>(random_.below(static_cast<unsigned>(config_.keys))); }

  void fail(const std::string& what) {
    violations_.report("thread " + std::to_string(id_) + ": " + what);
  }

  void one_operation() {
    const unsigned dice = random_.below(1000);
    if (dice < 300) {
      check_get(random_key(), /*versioned=*/false);
    } else if (dice < 450) {
      check_get(random_key(), /*versioned=*/true);
    } else if (dice < 500) {
      check_get_if_present(random_key());
    } else if (dice < 580) {
      check_get_all();
    } else if (dice < 730) {
      check_put(random_key());
    } else if (dice < 830) {
      check_put_if_version(random_key());
    } else if (dice < 900) {
      check_erase(random_key());
    } else if (dice < 960) {
      cache_.invalidate(random_key());
    } else if (dice < 998) {
      if (clock_ != nullptr) {
        // Sometimes a jump: entries go from fresh to expired unrefreshed.
        clock_->advance(std::chrono::milliseconds(1 + random_.below(12)));
      } else {
        cache_.invalidate(random_key());
      }
    } else {
      cache_.invalidate_all();
    }
  }

  /// Checks one read of `key` that started when `acked` was acknowledged:
  /// `version` is the version the cache reported, or nullopt to look it up.
  void check_value(const char* op, Key key, std::uint64_t acked, Value value,
                   std::optional<std::uint64_t> version) {
    auto& floor = floor_[static_cast<std::size_t>(key)];
    const std::uint64_t bound = std::max(acked, floor);
    const std::string where = std::string(op) + "(" + std::to_string(key) + ")";
    if (key_of(value) != key) {
      fail(where + " returned a value of key " + std::to_string(key_of(value)));
      return;
    }
    if (!version) {
      version = store_.version_of(key, value);
      if (!version) {
        fail(where + " returned a value never written, or older than version " +
             std::to_string(bound) + " (pruned)");
        return;
      }
    } else if (!store_.held(key, *version, value)) {
      fail(where + " returned a value the key did not hold at version " + std::to_string(*version) +
           " (or older than version " + std::to_string(bound) + ")");
      return;
    }
    if (*version < acked) {
      fail(where + " returned version " + std::to_string(*version) + ", but version " +
           std::to_string(acked) + " was acknowledged before it started");
    } else if (*version < floor) {
      fail(where + " returned version " + std::to_string(*version) +
           " after this thread had seen version " + std::to_string(floor) + " (" +
           seen_how_[static_cast<std::size_t>(key)] + ")");
    }
    if (*version > floor) seen_how_[static_cast<std::size_t>(key)] = where + ": value";
    floor = std::max(floor, *version);
  }

  void check_absent(const char* op, Key key, std::uint64_t acked) {
    auto& floor = floor_[static_cast<std::size_t>(key)];
    const std::uint64_t bound = std::max(acked, floor);
    if (auto since = store_.absent_since(key, bound)) {
      if (*since > floor) {
        seen_how_[static_cast<std::size_t>(key)] =
            std::string(op) + ": not found (acknowledged " + std::to_string(acked) + ")";
      }
      floor = std::max(floor, *since);
      return;
    }
    fail(std::string(op) + "(" + std::to_string(key) +
         ") returned \"not found\", but the key "
         "was present at every version since " +
         std::to_string(bound) + " (acknowledged " + std::to_string(acked) +
         ", seen by this thread " + std::to_string(floor) + ")");
  }

  template <class F>
  bool expect_only_injected(const char* op, Key key, F&& call) {
    try {
      call();
      return true;
    } catch (const InjectedFault&) {
      return false;
    } catch (const std::exception& e) {
      fail(std::string(op) + "(" + std::to_string(key) + ") threw " + typeid(e).name() + ": " +
           e.what());
    } catch (...) {
      fail(std::string(op) + "(" + std::to_string(key) + ") threw a non-std exception");
    }
    return false;
  }

  void check_get(Key key, bool versioned) {
    const std::uint64_t acked = store_.begin_check(id_, key);
    const char* op = versioned ? "get_versioned" : "get";
    if (versioned) {
      std::optional<Versioned<Value>> r;
      if (expect_only_injected(op, key, [&] { r = cache_.get_versioned(key); })) {
        if (r) {
          check_value(op, key, acked, r->value, r->version);
        } else {
          check_absent(op, key, acked);
        }
      }
    } else {
      std::optional<Value> r;
      if (expect_only_injected(op, key, [&] { r = cache_.get(key); })) {
        if (r) {
          check_value(op, key, acked, *r, std::nullopt);
        } else {
          check_absent(op, key, acked);
        }
      }
    }
    store_.end_check(id_, key);
  }

  /// A cached value is never older than what was acknowledged, nor than what
  /// this thread saw; "not cached" says nothing.
  void check_get_if_present(Key key) {
    const std::uint64_t acked = store_.begin_check(id_, key);
    if (auto r = cache_.get_if_present(key))
      check_value("get_if_present", key, acked, *r, std::nullopt);
    store_.end_check(id_, key);
  }

  void check_get_all() {
    // TODO(get_all): once get_all gains options (partial results on failure,
    // a per-call TTL), check them here too; today it either throws or returns
    // every key the store has.
    std::vector<Key> keys;
    const unsigned n = 1 + random_.below(4);
    for (unsigned i = 0; i < n; ++i) keys.push_back(random_key());  // duplicates allowed
    std::vector<Key> distinct = keys;
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    std::vector<std::uint64_t> acked;
    for (Key k : distinct) acked.push_back(store_.begin_check(id_, k));
    std::unordered_map<Key, Value> found;
    bool ok = false;
    try {
      for (auto& [k, v] : cache_.get_all(keys)) found.emplace(k, v);
      ok = true;
    } catch (const InjectedFault&) {
    } catch (const std::exception& e) {
      fail(std::string("get_all threw ") + typeid(e).name() + ": " + e.what());
    }
    if (ok) {
      for (const auto& [k, v] : found) {
        if (std::find(distinct.begin(), distinct.end(), k) == distinct.end()) {
          fail("get_all returned key " + std::to_string(k) + ", which was not asked for");
        }
      }
      for (std::size_t i = 0; i < distinct.size(); ++i) {
        const Key k = distinct[i];
        if (auto it = found.find(k); it != found.end()) {
          check_value("get_all", k, acked[i], it->second, std::nullopt);
        } else {
          check_absent("get_all", k, acked[i]);
        }
      }
    }
    for (Key k : distinct) store_.end_check(id_, k);
  }

  void acknowledge(Key key, std::uint64_t version) {
    store_.acknowledge(key, version);
    auto& floor = floor_[static_cast<std::size_t>(key)];
    if (version > floor) seen_how_[static_cast<std::size_t>(key)] = "its own write";
    floor = std::max(floor, version);
  }

  void check_put(Key key) {
    const Value value = make_value(key, id_, ++sequence_);
    if (!expect_only_injected("put", key, [&] { cache_.put(key, value); })) return;
    acknowledge(key, HistoryStore::last_write_version());
  }

  void check_put_if_version(Key key) {
    // Mostly the version this thread last saw (often current, sometimes not),
    // else the acknowledged one, else 0 ("create if absent").
    const unsigned dice = random_.below(4);
    const std::uint64_t expected = dice < 2    ? floor_[static_cast<std::size_t>(key)]
                                   : dice == 2 ? store_.acknowledged(key)
                                               : 0;
    const Value value = make_value(key, id_, ++sequence_);
    PutResult result;
    if (!expect_only_injected("put_if_version", key,
                              [&] { result = cache_.put_if_version(key, value, expected); })) {
      return;
    }
    const std::uint64_t written = HistoryStore::last_write_version();
    if (result.applied != (written != 0)) {
      fail("put_if_version(" + std::to_string(key) +
           ") said applied=" + (result.applied ? "true" : "false") + " but the store " +
           (written != 0 ? "applied it" : "refused it"));
      return;
    }
    if (result.applied) {
      if (result.version != written) {
        fail("put_if_version(" + std::to_string(key) + ") reported version " +
             std::to_string(result.version) + ", the store wrote " + std::to_string(written));
      }
      acknowledge(key, written);
    } else if (result.version != kUnknownVersion) {
      fail("a refused put_if_version reported version " + std::to_string(result.version));
    }
  }

  void check_erase(Key key) {
    if (!expect_only_injected("erase", key, [&] { cache_.erase(key); })) return;
    acknowledge(key, HistoryStore::last_write_version());
  }

  unsigned id_;
  const ModelConfig& config_;
  ManualClock* clock_;  // advanced by the workers when freshness is on
  Cache& cache_;
  HistoryStore& store_;
  Violations& violations_;
  FastRandom random_;
  std::vector<std::uint64_t> floor_;   // per key: the latest version this thread saw
  std::vector<std::string> seen_how_;  // per key: how it saw it (for the report)
  std::uint64_t sequence_ = 0;
};

}  // namespace detail_model

/// Runs the model-checked stress test once, with a fresh cache and store.
template <class Policy, class Loader = HistoryLoader>
ModelResult run_model(const ModelConfig& config) {
  using Cache = ReadThroughCache<Key, Value, Loader, HistoryWriter, Policy>;
  Violations violations;
  HistoryStore store(config.keys, config.threads, config.faults, violations);
  Options options{.capacity = config.capacity, .shards = config.shards, .seed = config.seed};
  auto clock = std::make_shared<ManualClock>();
  if (config.freshness) {
    options.expire_after_write = std::chrono::milliseconds(20);
    options.negative_ttl = std::chrono::milliseconds(5);
    options.refresh_after = std::chrono::milliseconds(6);
    options.stale_if_error = std::chrono::milliseconds(30);
    options.max_concurrent_loads = 2;
    options.clock = clock;
  }
  Cache cache(options, Loader{&store}, HistoryWriter{&store});

  std::vector<std::uint64_t> done(config.threads, 0);
  {
    std::vector<std::jthread> threads;
    for (unsigned t = 0; t < config.threads; ++t) {
      threads.emplace_back([&, t] {
        detail_model::Worker<Cache> worker(t, config, cache, store, violations,
                                           config.freshness ? clock.get() : nullptr);
        done[t] = worker.run();
      });
    }
  }

  // Quiescent: the cache must agree with the store exactly.
  const auto fail = [&](const std::string& what) { violations.report("after the run: " + what); };
  // Background refreshes may still run: wait for them (they finish on their
  // own; the cache's destructor would wait the same way).
  while (config.freshness && cache.pending_count() != 0) std::this_thread::yield();
  if (cache.pending_count() != 0) {
    fail(std::to_string(cache.pending_count()) + " loads or writes still pending");
  }
  if (!cache.check_shards([](const auto& policy, std::size_t resident) {
        return policy.check_invariants(resident);
      })) {
    fail("a shard failed its invariant check");
  }
  if (cache.size() > config.capacity) fail("size exceeds capacity");
  for (Key k = 0; k < config.keys; ++k) {
    const auto cached = cache.get_if_present(k);
    if (!cached) continue;
    const auto row = store.current(k);
    if (!row) {
      fail("key " + std::to_string(k) + " is cached but absent from the store");
    } else if (row->value != *cached) {
      fail("key " + std::to_string(k) + " is cached with a value that is not the store's");
    } else if (const auto versioned = cache.get_versioned(k);
               !versioned || versioned->version != row->version) {
      fail("key " + std::to_string(k) + " is cached at a version that is not the store's");
    }
  }
  // The hits above may have started refreshes (freshness on): let them land.
  while (config.freshness && cache.pending_count() != 0) std::this_thread::yield();
  const Stats s = cache.stats();
  if (s.loads != store.loader_calls()) {
    fail("stats().loads = " + std::to_string(s.loads) + ", the loader was called " +
         std::to_string(store.loader_calls()) + " times");
  }
  if (s.load_failures != store.loader_throws()) {
    fail("stats().load_failures = " + std::to_string(s.load_failures) + ", the loader threw " +
         std::to_string(store.loader_throws()) + " times");
  }
  if (s.writes != store.writes()) {
    fail("stats().writes = " + std::to_string(s.writes) + ", the store applied " +
         std::to_string(store.writes()));
  }
  if (s.write_failures != store.writer_throws()) {
    fail("stats().write_failures = " + std::to_string(s.write_failures) + ", the writer threw " +
         std::to_string(store.writer_throws()) + " times");
  }
  if (s.version_conflicts != store.conflicts()) {
    fail("stats().version_conflicts = " + std::to_string(s.version_conflicts) +
         ", the store refused " + std::to_string(store.conflicts()));
  }

  ModelResult result;
  for (std::uint64_t d : done) result.operations += d;
  result.loader_throws = store.loader_throws();
  result.writer_throws = store.writer_throws();
  result.stalls = store.stalls();
  result.violations = violations.count();
  result.messages = violations.messages();
  result.stats = s;
  return result;
}

}  // namespace rtcache::test::model
