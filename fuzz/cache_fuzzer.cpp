// A libFuzzer harness for ReadThroughCache: the input bytes choose the
// options (capacity, shards, policy, hash, loader kind, TTLs, negative
// caching, stale-if-error, refresh-ahead, a weigher), then a sequence of
// operations and store faults. The operations run single-threaded against the
// cache and against a reference model, and every observable result is checked
// against the model.
//
// The model cannot know which keys an eviction policy keeps, so it keeps, per
// key, the entry the cache holds *if it still holds one* (its "view"), and
// checks what is checkable:
//
// - a hit returns exactly the view, and only while the view is fresh; a hit
//   on an entry due for refresh reloads it (refreshes run inline here);
// - a miss calls the loader exactly once (or once per batch) and returns the
//   store's value, or the loader's error, or the stale value when
//   stale-if-error allows it;
// - after put / put_if_version / erase, the cache holds the store's new value
//   or nothing; a failed write changes neither side; a version conflict drops
//   the entry;
// - the policies that never evict the entry just inserted (LRU, FIFO, CLOCK,
//   SIEVE) make the next lookup after a put or a load a hit;
// - size() never exceeds the capacity nor the number of keys the model says
//   may be cached; every shard passes its policy's invariant check; no load or
//   write is left pending;
// - the counters agree with what the store saw: loads, load failures, writes,
//   write failures, version conflicts, hits + misses per lookup;
// - the removal listener is told only about values the key really had, with a
//   cause that fits the operation.
//
// Build: cmake -DRTCACHE_BUILD_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ (see
// fuzz/CMakeLists.txt); run: ./rtcache-cache-fuzzer fuzz/corpus -max_total_time=600

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <rtcache/policy/clock.hpp>
#include <rtcache/policy/fifo.hpp>
#include <rtcache/policy/lru.hpp>
#include <rtcache/policy/s3fifo.hpp>
#include <rtcache/policy/sieve.hpp>
#include <rtcache/policy/w_tinylfu.hpp>
#include <rtcache/rtcache.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace {

using Key = int;
using Value = std::uint32_t;
using rtcache::Versioned;

#define FUZZ_CHECK(condition)                                                                    \
  do {                                                                                           \
    if (!(condition)) {                                                                          \
      std::fprintf(stderr, "cache_fuzzer: check failed at line %d: %s\n", __LINE__, #condition); \
      std::abort();                                                                              \
    }                                                                                            \
  } while (false)

struct StoreError : std::runtime_error {
  StoreError() : std::runtime_error("injected store fault") {}
};

// -- the store ---------------------------------------------------------------

/// The data store: one row per key, with a version counter per key that
/// never goes back (a delete is a new version too), plus what the cache asked
/// of it and switches that make the next calls fail.
struct Store {
  struct Row {
    std::optional<Value> value;
    std::uint64_t version = 0;  // of the last write or delete; 0: never written
  };
  std::map<Key, Row> rows;

  bool fail_reads = false;
  bool fail_writes = false;
  std::function<void(const Key&)> before_read;  // set for one operation

  std::uint64_t loader_calls = 0;  // plain calls + batch calls: what Stats::loads counts
  std::uint64_t loader_failures = 0;
  std::uint64_t writes_ok = 0;
  std::uint64_t write_failures = 0;
  std::uint64_t conflicts = 0;

  Row& row(Key k) { return rows[k]; }

  /// What a read returns: the value with its version, or nullopt.
  std::optional<Versioned<Value>> current(Key k) {
    const Row& r = row(k);
    if (!r.value) return std::nullopt;
    return Versioned<Value>{*r.value, r.version};
  }

  /// The version a conditional write must name: 0 when the key is absent.
  std::uint64_t expected_version(Key k) {
    const Row& r = row(k);
    return r.value ? r.version : 0;
  }

  std::optional<Versioned<Value>> read(Key k) {
    ++loader_calls;
    try {
      if (before_read) before_read(k);
      if (fail_reads) throw StoreError();
    } catch (...) {
      ++loader_failures;
      throw;
    }
    return current(k);
  }

  std::vector<std::pair<Key, std::optional<Versioned<Value>>>> read_all(
      const std::vector<Key>& keys) {
    ++loader_calls;
    if (fail_reads) {
      ++loader_failures;
      throw StoreError();
    }
    std::vector<std::pair<Key, std::optional<Versioned<Value>>>> found;
    for (Key k : keys) {
      auto v = current(k);
      // Say "not found" both ways: by an explicit nullopt (even keys) or by
      // leaving the key out (odd keys).
      if (v || k % 2 == 0) found.emplace_back(k, v);
    }
    return found;
  }

  Versioned<Value> write(Key k, Value v) {
    if (fail_writes) {
      ++write_failures;
      throw StoreError();
    }
    ++writes_ok;
    Row& r = row(k);
    r.value = v;
    ++r.version;
    return {v, r.version};
  }

  std::optional<Versioned<Value>> write_if_version(Key k, Value v, std::uint64_t expected) {
    if (fail_writes) {
      ++write_failures;
      throw StoreError();
    }
    if (expected != expected_version(k)) {
      ++conflicts;
      return std::nullopt;
    }
    ++writes_ok;
    return write_unchecked(k, v);
  }

  void erase(Key k) {
    if (fail_writes) {
      ++write_failures;
      throw StoreError();
    }
    ++writes_ok;
    Row& r = row(k);
    r.value.reset();
    ++r.version;
  }

  /// Another process writes the row: the cache is not told.
  Versioned<Value> write_unchecked(Key k, Value v) {
    Row& r = row(k);
    r.value = v;
    ++r.version;
    return {v, r.version};
  }
};

struct PlainLoader {
  Store* store;
  std::optional<Versioned<Value>> operator()(const Key& k) const { return store->read(k); }
};

struct BatchLoader {
  Store* store;
  std::optional<Versioned<Value>> operator()(const Key& k) const { return store->read(k); }
  std::vector<std::pair<Key, std::optional<Versioned<Value>>>> load_all(
      const std::vector<Key>& keys) const {
    return store->read_all(keys);
  }
};

struct Writer {
  Store* store;
  Versioned<Value> write(const Key& k, const Value& v) { return store->write(k, v); }
  void erase(const Key& k) { store->erase(k); }
  std::optional<Versioned<Value>> write_if_version(const Key& k, const Value& v,
                                                   std::uint64_t expected) {
    return store->write_if_version(k, v, expected);
  }
};

/// A hash that sends every key to one shard and one bucket: correct, slow.
struct ZeroHash {
  std::size_t operator()(const Key&) const noexcept { return 0; }
};

// -- the model ----------------------------------------------------------------

constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

/// What the cache holds for a key, if it still holds anything for it.
struct View {
  bool negative = false;
  Value value = 0;
  std::uint64_t version = 0;
  bool version_known = true;  // a negative entry's version may be unknown
  std::int64_t expires_at = kNever;
  std::int64_t refresh_at = kNever;  // refresh-ahead: a hit from then on reloads it
};

struct Config {
  std::size_t capacity = 1;
  std::size_t shards = 1;
  std::size_t key_space = 1;
  std::int64_t ttl = 0;       // nanoseconds; 0: off
  std::int64_t negative = 0;  // negative_ttl
  std::int64_t grace = 0;     // stale_if_error
  std::int64_t refresh = 0;   // refresh_after (run inline, without jitter)
  bool weigher = false;
  std::uint64_t seed = 0;
};

/// The policies whose victim is never the entry just inserted while another
/// is resident: after a put or a load, the next lookup must hit.
template <class Policy>
constexpr bool kKeepsNewest =
    std::is_same_v<Policy, rtcache::policy::Lru> || std::is_same_v<Policy, rtcache::policy::Fifo> ||
    std::is_same_v<Policy, rtcache::policy::Clock> ||
    std::is_same_v<Policy, rtcache::policy::Sieve>;

Value weight_of(Value v) { return v % 3 + 1; }

enum class Cause : unsigned { kEvicted, kExpired, kReplaced, kErased, kInvalidated };
constexpr unsigned bit(rtcache::RemovalCause c) { return 1u << static_cast<unsigned>(c); }

template <class Policy, class Hash, class Loader>
class Run {
 public:
  using Cache = rtcache::ReadThroughCache<Key, Value, Loader, Writer, Policy, Hash>;

  Run(const Config& config, FuzzedDataProvider& in)
      : config_(config), in_(in), clock_(std::make_shared<rtcache::ManualClock>()) {
    rtcache::Options options;
    options.capacity = config.capacity;
    options.shards = config.shards;
    options.seed = config.seed;
    options.expire_after_write = std::chrono::nanoseconds(config.ttl);
    options.negative_ttl = std::chrono::nanoseconds(config.negative);
    options.stale_if_error = std::chrono::nanoseconds(config.grace);
    options.refresh_after = std::chrono::nanoseconds(config.refresh);
    // Refreshes run inline, on the thread whose hit started them, before
    // that hit returns: deterministic, and what the model expects.
    options.executor = [](std::function<void()> task) { task(); };
    options.clock = clock_;
    has_time_ = config.ttl > 0 || config.negative > 0 || config.grace > 0 || config.refresh > 0;
    trace_ = std::getenv("RTCACHE_FUZZ_TRACE") != nullptr;
    if (trace_) {
      std::fprintf(stderr,
                   "config: capacity %zu shards %zu keys %zu ttl %lld negative %lld grace %lld "
                   "refresh %lld weigher %d policy %s hash %s loader %s\n",
                   config.capacity, config.shards, config.key_space,
                   static_cast<long long>(config.ttl), static_cast<long long>(config.negative),
                   static_cast<long long>(config.grace), static_cast<long long>(config.refresh),
                   config.weigher ? 1 : 0, typeid(Policy).name(), typeid(Hash).name(),
                   typeid(Loader).name());
    }
    rtcache::CacheHooks<Key, Value> hooks;
    if (config.weigher) {
      hooks.weigher = [](const Key&, const Value& v) -> std::size_t { return weight_of(v); };
    }
    hooks.on_removal = [this](const Key& k, const Value& v, rtcache::RemovalCause cause) {
      FUZZ_CHECK(k >= 0 && static_cast<std::size_t>(k) < config_.key_space);
      FUZZ_CHECK(held_[k].count(v) == 1);  // a value this key really had in the cache
      FUZZ_CHECK((allowed_causes_ & bit(cause)) != 0);
      ++removals_[static_cast<unsigned>(cause)];
    };
    cache_ = std::make_unique<Cache>(options, Loader{&store_}, Writer{&store_}, std::move(hooks));
    views_.resize(config.key_space);
    held_.resize(config.key_space);
    for (Key k = 0; static_cast<std::size_t>(k) < config.key_space; ++k) {
      const std::size_t shard = cache_->shard_index_of(k);
      share_.push_back(config.capacity / config.shards +
                       (shard < config.capacity % config.shards ? 1 : 0));
    }
  }

  /// Whether the next lookup after storing a value must hit. With a weigher,
  /// a heavier value that replaces an entry keeps that entry's place under
  /// FIFO, CLOCK and SIEVE, and may be the victim of the eviction it causes;
  /// LRU moves it to the back.
  bool must_keep_newest() const {
    if (std::is_same_v<Policy, rtcache::policy::Lru>) return true;
    return kKeepsNewest<Policy> && !config_.weigher;
  }

  void run() {
    for (int step = 0; step < 400 && in_.remaining_bytes() > 0; ++step) {
      const unsigned op = in_.ConsumeIntegralInRange<unsigned>(0, 15);
      const Key k = in_.ConsumeIntegralInRange<Key>(0, static_cast<Key>(config_.key_space - 1));
      const bool fault = (in_.ConsumeIntegral<std::uint8_t>() & 7) == 0;
      allowed_causes_ = 0;
      if (trace_) {
        std::fprintf(stderr, "step %d: op %u key %d fault %d now %lld size %zu\n", step, op, k,
                     fault ? 1 : 0, static_cast<long long>(now()), cache_->size());
      }
      switch (op) {
        case 0:
        case 1:
          get(k, fault, /*versioned=*/op == 1);
          break;
        case 2:
          probe(k);
          break;
        case 3:
          get_all(fault);
          break;
        case 4:
        case 5:
          put(k, fault);
          break;
        case 6:
          put_if_version(k, fault);
          break;
        case 7:
          erase(k, fault);
          break;
        case 8:
          invalidate(k);
          break;
        case 9:
          if (in_.ConsumeIntegralInRange<int>(0, 3) == 0) invalidate_all();
          break;
        case 10:
          invalidate_if();
          break;
        case 11:
          fill(k);
          break;
        case 12:
          store_.write_unchecked(k, in_.ConsumeIntegral<Value>());  // the cache is not told
          break;
        case 13:
          advance();
          break;
        case 14:
          recursive_get(k);
          break;
        default:
          get(k, fault, false);
          break;
      }
      check_invariants();
    }
  }

 private:
  // -- helpers -------------------------------------------------------------

  std::int64_t now() const { return has_time_ ? clock_->now().count() : 0; }
  bool live(const View& v) const { return now() < v.expires_at; }
  bool grace_ok(const View& v) const {
    return !v.negative && config_.grace > 0 && v.expires_at != kNever &&
           now() - v.expires_at < config_.grace;
  }
  std::int64_t expiry(bool negative) const {
    if (negative) return now() + config_.negative;
    return config_.ttl > 0 ? now() + config_.ttl : kNever;
  }
  bool oversized(Key k, Value v) const { return config_.weigher && weight_of(v) > share_[k]; }

  /// The view after the cache stored `v` for `k` (it may not keep it).
  std::optional<View> stored(Key k, Versioned<Value> v) {
    if (oversized(k, v.value)) return std::nullopt;
    held_[k].insert(v.value);
    return View{false, v.value,       v.version,
                true,  expiry(false), config_.refresh > 0 ? now() + config_.refresh : kNever};
  }

  /// Whether a hit on `view` now starts a refresh.
  bool refresh_due(const View& view) const {
    return !view.negative && config_.refresh > 0 && now() >= view.refresh_at;
  }

  /// The view after a refresh of `k` that failed (`fault`) or read the store.
  void after_refresh(Key k, bool fault) {
    if (fault) return;  // the entry stays as it was
    auto& view = views_[k];
    if (auto current = store_.current(k)) {
      view = stored(k, *current);
    } else if (config_.negative > 0) {
      View v;
      v.negative = true;
      v.version = view->version;  // it takes the version of the entry it replaces
      v.expires_at = expiry(true);
      view = v;
    } else {
      view.reset();
    }
  }

  /// A load may cache (and the listener then see) the store's current value.
  void may_hold_current(Key k) {
    if (auto current = store_.current(k)) held_[k].insert(current->value);
  }

  struct Delta {
    rtcache::Stats before;
    std::uint64_t calls;
  };
  Delta begin() const { return Delta{cache_->stats(), store_.loader_calls}; }

  // -- operations ----------------------------------------------------------

  /// get_if_present, checked: true on a hit. Never removes anything.
  bool probe(Key k) {
    const auto d = begin();
    const auto r = cache_->get_if_present(k);
    const auto s = cache_->stats();
    FUZZ_CHECK(s.hits + s.misses == d.before.hits + d.before.misses + 1);
    FUZZ_CHECK(store_.loader_calls == d.calls);
    auto& view = views_[k];
    if (s.hits > d.before.hits) {
      FUZZ_CHECK(view && live(*view));
      if (view->negative) {
        FUZZ_CHECK(!r);
      } else {
        FUZZ_CHECK(r && *r == view->value);
      }
      return true;
    }
    FUZZ_CHECK(!r);
    if (view && live(*view)) view.reset();  // evicted
    return false;
  }

  /// The view after a successful load of `k` that found `loaded`;
  /// `stale_kept`: an expired entry kept for stale-if-error may have been in
  /// the table (expired entries without grace are removed before the load).
  std::optional<View> after_load(Key k, const std::optional<Versioned<Value>>& loaded,
                                 bool stale_kept) {
    if (loaded) return stored(k, *loaded);
    if (config_.negative > 0) {
      // The negative entry takes the version of the expired entry it
      // replaces, if that one was still in the table.
      View v;
      v.negative = true;
      v.version_known = !stale_kept;
      v.expires_at = expiry(true);
      return v;
    }
    return std::nullopt;
  }

  void get(Key k, bool fault, bool versioned) {
    auto& view = views_[k];
    may_hold_current(k);
    const auto d = begin();
    store_.fail_reads = fault;
    allowed_causes_ = bit(rtcache::RemovalCause::kEvicted) | bit(rtcache::RemovalCause::kExpired) |
                      bit(rtcache::RemovalCause::kReplaced);
    std::optional<Versioned<Value>> r;
    bool threw = false;
    try {
      if (versioned) {
        r = cache_->get_versioned(k);
      } else if (auto plain = cache_->get(k)) {
        r = Versioned<Value>{*plain, 0};
      }
    } catch (const StoreError&) {
      threw = true;
    }
    store_.fail_reads = false;
    const auto s = cache_->stats();
    FUZZ_CHECK(s.hits + s.misses == d.before.hits + d.before.misses + 1);
    if (s.hits > d.before.hits) {
      FUZZ_CHECK(!threw);
      FUZZ_CHECK(view && live(*view));
      // A hit answers from the entry, then (refresh-ahead) reloads it.
      const bool due = refresh_due(*view);
      FUZZ_CHECK(store_.loader_calls == d.calls + (due ? 1 : 0));
      FUZZ_CHECK(s.refreshes == d.before.refreshes + (due ? 1 : 0));
      FUZZ_CHECK(s.refresh_failures == d.before.refresh_failures + (due && fault ? 1 : 0));
      if (view->negative) {
        FUZZ_CHECK(!r);
      } else {
        FUZZ_CHECK(r && r->value == view->value);
        if (versioned) FUZZ_CHECK(r->version == view->version);
      }
      if (due) after_refresh(k, fault);
      return;
    }
    FUZZ_CHECK(store_.loader_calls == d.calls + 1);
    const bool expired_cached = view && !live(*view);
    if (fault) {
      if (!threw) {  // served stale
        FUZZ_CHECK(expired_cached && grace_ok(*view));
        FUZZ_CHECK(r && r->value == view->value);
        if (versioned) FUZZ_CHECK(r->version == view->version);
        FUZZ_CHECK(s.stale_served == d.before.stale_served + 1);
      } else {
        FUZZ_CHECK(s.stale_served == d.before.stale_served);
        view.reset();
      }
      return;
    }
    FUZZ_CHECK(!threw);
    const auto expected = store_.current(k);
    FUZZ_CHECK(r.has_value() == expected.has_value());
    if (r) {
      FUZZ_CHECK(r->value == expected->value);
      if (versioned) FUZZ_CHECK(r->version == expected->version);
    }
    view = after_load(k, expected, expired_cached && grace_ok(*view));
    // The next lookup re-checks the cache and finds the loaded value.
    if (must_keep_newest() && view) FUZZ_CHECK(probe(k));
  }

  /// A loader that asks the cache for its own key gets RecursiveCallError.
  void recursive_get(Key k) {
    if (probe(k)) return;  // a hit would not load
    auto& view = views_[k];
    const auto d = begin();
    store_.before_read = [this](const Key& key) { (void)cache_->get(key); };
    allowed_causes_ = bit(rtcache::RemovalCause::kExpired);
    std::optional<Value> r;
    bool threw = false;
    try {
      r = cache_->get(k);
    } catch (const rtcache::RecursiveCallError&) {
      threw = true;
    }
    store_.before_read = nullptr;
    const auto s = cache_->stats();
    FUZZ_CHECK(store_.loader_calls == d.calls + 1);
    FUZZ_CHECK(s.load_failures == d.before.load_failures + 1);
    FUZZ_CHECK(s.hits == d.before.hits);  // the outer lookup and the inner one both miss
    if (!threw) {
      FUZZ_CHECK(view && !live(*view) && grace_ok(*view));
      FUZZ_CHECK(r && *r == view->value);
    } else {
      view.reset();
    }
  }

  void get_all(bool fault) {
    std::vector<Key> keys;
    const int n = in_.ConsumeIntegralInRange<int>(0, 6);
    for (int i = 0; i < n; ++i) {
      keys.push_back(in_.ConsumeIntegralInRange<Key>(0, static_cast<Key>(config_.key_space - 1)));
    }
    std::vector<Key> distinct;
    for (Key k : keys) {
      if (std::find(distinct.begin(), distinct.end(), k) == distinct.end()) distinct.push_back(k);
    }
    // Probing first tells exactly which keys get_all will find fresh.
    std::set<Key> fresh;
    for (Key k : distinct) {
      if (probe(k)) fresh.insert(k);
    }
    const std::size_t misses = distinct.size() - fresh.size();
    for (Key k : distinct) may_hold_current(k);
    const auto d = begin();
    store_.fail_reads = fault;
    allowed_causes_ = bit(rtcache::RemovalCause::kEvicted) | bit(rtcache::RemovalCause::kExpired) |
                      bit(rtcache::RemovalCause::kReplaced);
    std::optional<std::unordered_map<Key, Value>> result;
    try {
      auto found = cache_->get_all(keys);
      result.emplace(found.begin(), found.end());
    } catch (const StoreError&) {
    }
    store_.fail_reads = false;
    const auto s = cache_->stats();
    FUZZ_CHECK(s.hits == d.before.hits + fresh.size());
    FUZZ_CHECK(s.misses == d.before.misses + misses);
    constexpr bool kBatch = std::is_same_v<Loader, BatchLoader>;
    std::size_t refreshes = 0;  // fresh keys whose hit starts a refresh
    for (Key k : fresh) refreshes += refresh_due(*views_[k]) ? 1 : 0;
    FUZZ_CHECK(s.refreshes == d.before.refreshes + refreshes);
    FUZZ_CHECK(s.refresh_failures == d.before.refresh_failures + (fault ? refreshes : 0));
    const std::uint64_t calls = store_.loader_calls - d.calls - refreshes;
    if (misses == 0) {
      FUZZ_CHECK(calls == 0);
    } else if (kBatch || !fault) {
      FUZZ_CHECK(calls == (kBatch ? 1 : misses));
    } else {
      FUZZ_CHECK(calls >= 1 && calls <= misses);
    }
    if (!fault || misses == 0) FUZZ_CHECK(result.has_value());
    if (result) {
      FUZZ_CHECK(result->size() <= distinct.size());
      for (const auto& [key, value] : *result) {
        FUZZ_CHECK(std::find(distinct.begin(), distinct.end(), key) != distinct.end());
      }
    }
    for (Key k : distinct) {
      auto& view = views_[k];
      if (fresh.count(k) != 0) {
        if (result) {
          if (view->negative) {
            FUZZ_CHECK(result->count(k) == 0);
          } else {
            FUZZ_CHECK(result->count(k) == 1 && result->at(k) == view->value);
          }
        }
        if (refresh_due(*view)) after_refresh(k, fault);
        continue;
      }
      const bool expired_cached = view && !live(*view);
      if (!fault) {
        const auto expected = store_.current(k);
        FUZZ_CHECK(result->count(k) == (expected ? 1u : 0u));
        if (expected) FUZZ_CHECK(result->at(k) == expected->value);
        view = after_load(k, expected, expired_cached && grace_ok(*view));
        continue;
      }
      // Every load failed: a key is answered only from a stale entry.
      const bool may_be_stale = expired_cached && grace_ok(*view);
      if (result) {
        FUZZ_CHECK(may_be_stale);
        FUZZ_CHECK(result->count(k) == 1 && result->at(k) == view->value);
      } else if (!may_be_stale) {
        view.reset();
      }
    }
    if (fault && misses > 0 && result) {
      FUZZ_CHECK(s.stale_served == d.before.stale_served + misses);
    }
  }

  void put(Key k, bool fault) {
    const Value v = in_.ConsumeIntegral<Value>();
    held_[k].insert(v);
    const auto before = store_.rows[k];
    store_.fail_writes = fault;
    allowed_causes_ = bit(rtcache::RemovalCause::kEvicted) | bit(rtcache::RemovalCause::kExpired) |
                      bit(rtcache::RemovalCause::kReplaced);
    bool threw = false;
    try {
      cache_->put(k, v);
    } catch (const StoreError&) {
      threw = true;
    }
    store_.fail_writes = false;
    FUZZ_CHECK(threw == fault);
    if (threw) {
      FUZZ_CHECK(store_.rows[k].value == before.value && store_.rows[k].version == before.version);
      return;  // the view is unchanged: checked by the next lookups
    }
    views_[k] = stored(k, *store_.current(k));
    after_write(k);
  }

  void put_if_version(Key k, bool fault) {
    const Value v = in_.ConsumeIntegral<Value>();
    const std::uint64_t current = store_.expected_version(k);
    std::uint64_t expected = current;
    switch (in_.ConsumeIntegralInRange<int>(0, 3)) {
      case 1:
        expected = current + 1;
        break;
      case 2:
        expected = current == 0 ? 7 : current - 1;
        break;
      case 3:
        expected = 0;
        break;
      default:
        break;
    }
    held_[k].insert(v);
    const auto before = store_.rows[k];
    const auto conflicts_before = cache_->stats().version_conflicts;
    store_.fail_writes = fault;
    allowed_causes_ = bit(rtcache::RemovalCause::kEvicted) | bit(rtcache::RemovalCause::kExpired) |
                      bit(rtcache::RemovalCause::kReplaced) |
                      bit(rtcache::RemovalCause::kInvalidated);
    bool threw = false;
    rtcache::PutResult result;
    try {
      result = cache_->put_if_version(k, v, expected);
    } catch (const StoreError&) {
      threw = true;
    }
    store_.fail_writes = false;
    FUZZ_CHECK(threw == fault);
    if (threw) {
      FUZZ_CHECK(store_.rows[k].value == before.value && store_.rows[k].version == before.version);
      return;
    }
    if (expected != current) {
      FUZZ_CHECK(!result.applied && result.version == rtcache::kUnknownVersion);
      FUZZ_CHECK(cache_->stats().version_conflicts == conflicts_before + 1);
      FUZZ_CHECK(store_.rows[k].value == before.value && store_.rows[k].version == before.version);
      views_[k].reset();
      FUZZ_CHECK(!probe(k));  // the next get loads the winner
      return;
    }
    FUZZ_CHECK(result.applied && result.version == store_.rows[k].version);
    views_[k] = stored(k, *store_.current(k));
    after_write(k);
  }

  void after_write(Key k) {
    // Contract 5: the next get is a hit that returns the new value (for the
    // policies that do not refuse a newcomer).
    const bool hit = probe(k);
    if (must_keep_newest() && views_[k]) FUZZ_CHECK(hit);
  }

  void erase(Key k, bool fault) {
    const auto before = store_.rows[k];
    store_.fail_writes = fault;
    allowed_causes_ = bit(rtcache::RemovalCause::kErased);
    bool threw = false;
    try {
      cache_->erase(k);
    } catch (const StoreError&) {
      threw = true;
    }
    store_.fail_writes = false;
    FUZZ_CHECK(threw == fault);
    if (threw) {
      FUZZ_CHECK(store_.rows[k].value == before.value && store_.rows[k].version == before.version);
      return;
    }
    FUZZ_CHECK(!store_.rows[k].value);
    views_[k].reset();
    FUZZ_CHECK(!probe(k));
    get(k, /*fault=*/false, /*versioned=*/false);  // nullopt, from the store
  }

  void invalidate(Key k) {
    allowed_causes_ = bit(rtcache::RemovalCause::kInvalidated);
    cache_->invalidate(k);
    views_[k].reset();
    FUZZ_CHECK(!probe(k));
  }

  void invalidate_all() {
    allowed_causes_ = bit(rtcache::RemovalCause::kInvalidated);
    cache_->invalidate_all();
    for (auto& view : views_) view.reset();
    FUZZ_CHECK(cache_->size() == 0);
    FUZZ_CHECK(cache_->weight() == 0);
  }

  void invalidate_if() {
    const Value modulus = in_.ConsumeIntegralInRange<Value>(1, 4);
    const Value remainder = in_.ConsumeIntegralInRange<Value>(0, modulus - 1);
    allowed_causes_ = bit(rtcache::RemovalCause::kInvalidated);
    cache_->invalidate_if([&](const Key& k, const Value& v) {
      // Asked only about entries the cache holds.
      FUZZ_CHECK(k >= 0 && static_cast<std::size_t>(k) < config_.key_space);
      FUZZ_CHECK(views_[k] && !views_[k]->negative && views_[k]->value == v);
      return v % modulus == remainder;
    });
    for (auto& view : views_) {
      if (view && !view->negative && view->value % modulus == remainder) view.reset();
    }
  }

  void fill(Key k) {
    // Only versions the store had: a fill says what the store holds (or held).
    const auto current = store_.current(k);
    Versioned<Value> item{in_.ConsumeIntegral<Value>(), 0};
    switch (in_.ConsumeIntegralInRange<int>(0, 2)) {
      case 0:
        if (current) item = *current;
        break;
      case 1:
        item.version = store_.rows[k].version > 1 ? store_.rows[k].version - 1 : 0;
        break;
      default:
        break;  // kUnknownVersion
    }
    const bool was_fresh = probe(k);
    auto& view = views_[k];
    if (trace_) {
      std::fprintf(stderr, "  fill %u v%llu; fresh %d view %s v%llu\n", item.value,
                   static_cast<unsigned long long>(item.version), was_fresh ? 1 : 0,
                   !view            ? "none"
                   : view->negative ? "negative"
                                    : "positive",
                   view ? static_cast<unsigned long long>(view->version) : 0ULL);
    }
    allowed_causes_ = bit(rtcache::RemovalCause::kEvicted) | bit(rtcache::RemovalCause::kExpired) |
                      bit(rtcache::RemovalCause::kReplaced);
    held_[k].insert(item.value);
    cache_->fill(k, item.value, item.version);
    const auto older = [&](std::uint64_t candidate, std::uint64_t than) {
      return candidate != rtcache::kUnknownVersion && candidate < than;
    };
    if (was_fresh && view->negative && !view->version_known) {
      // Refused or not depends on a version the model does not know: look.
      const auto d = cache_->stats();
      const auto r = cache_->get_if_present(k);
      if (cache_->stats().hits == d.hits + 1) {
        if (r) {  // applied
          FUZZ_CHECK(*r == item.value);
          view = stored(k, item);
        }  // else refused: the negative entry stays
      } else {
        // Applied, then too heavy to keep, or evicted by the room it took.
        FUZZ_CHECK(oversized(k, item.value) || !must_keep_newest());
        view.reset();
      }
      return;
    }
    if (was_fresh && older(item.version, view->version)) return;  // refused
    view = stored(k, item);
    if (must_keep_newest() && view) FUZZ_CHECK(probe(k));
  }

  void advance() {
    if (!has_time_) return;
    static constexpr std::int64_t kSteps[] = {1'000'000, 5'000'000, 10'000'000, 25'000'000};
    clock_->advance(std::chrono::nanoseconds(kSteps[in_.ConsumeIntegralInRange<int>(0, 3)]));
  }

  void check_invariants() {
    const rtcache::Stats s = cache_->stats();
    FUZZ_CHECK(s.loads == store_.loader_calls);
    FUZZ_CHECK(s.load_failures == store_.loader_failures);
    FUZZ_CHECK(s.writes == store_.writes_ok);
    FUZZ_CHECK(s.write_failures == store_.write_failures);
    FUZZ_CHECK(s.version_conflicts == store_.conflicts);
    FUZZ_CHECK(removals_[static_cast<unsigned>(rtcache::RemovalCause::kEvicted)] <= s.evictions);
    FUZZ_CHECK(cache_->pending_count() == 0);
    const std::size_t size = cache_->size();
    FUZZ_CHECK(size <= config_.capacity);
    FUZZ_CHECK(cache_->weight() <= config_.capacity);
    std::size_t possible = 0;
    for (const auto& view : views_) possible += view ? 1 : 0;
    FUZZ_CHECK(size <= possible);
    FUZZ_CHECK(cache_->check_shards([](const auto& policy, std::size_t resident) {
      return policy.check_invariants(resident);
    }));
  }

  Config config_;
  FuzzedDataProvider& in_;
  std::shared_ptr<rtcache::ManualClock> clock_;
  bool has_time_ = false;
  bool trace_ = false;  // RTCACHE_FUZZ_TRACE=1: print each step to stderr
  Store store_;
  std::unique_ptr<Cache> cache_;
  std::vector<std::optional<View>> views_;
  std::vector<std::set<Value>> held_;  // every value each key's entries ever had
  std::vector<std::size_t> share_;     // the capacity of each key's shard
  unsigned allowed_causes_ = 0;
  std::uint64_t removals_[5] = {};
};

template <class Policy>
void run_policy(const Config& config, int variant, FuzzedDataProvider& in) {
  switch (variant) {
    case 0:
      Run<Policy, std::hash<Key>, PlainLoader>(config, in).run();
      break;
    case 1:
      Run<Policy, ZeroHash, PlainLoader>(config, in).run();
      break;
    default:
      Run<Policy, std::hash<Key>, BatchLoader>(config, in).run();
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  Config config;
  config.capacity = in.ConsumeIntegralInRange<std::size_t>(1, 16);
  static constexpr std::size_t kShards[] = {1, 2, 4};
  config.shards = kShards[in.ConsumeIntegralInRange<int>(0, 2)];
  while (config.shards > config.capacity) config.shards /= 2;
  config.key_space = in.ConsumeIntegralInRange<std::size_t>(1, 24);
  const int policy = in.ConsumeIntegralInRange<int>(0, 5);
  const int variant = in.ConsumeIntegralInRange<int>(0, 2);
  const std::uint8_t time_flags = in.ConsumeIntegral<std::uint8_t>();
  static constexpr std::int64_t kMs = 1'000'000;
  config.ttl = (time_flags & 3) == 0 ? 0 : static_cast<std::int64_t>(time_flags & 3) * 10 * kMs;
  config.negative = ((time_flags >> 2) & 3) == 0 ? 0 : ((time_flags >> 2) & 3) * 5 * kMs;
  config.grace = ((time_flags >> 4) & 3) == 0 ? 0 : ((time_flags >> 4) & 3) * 20 * kMs;
  config.weigher = (time_flags & 0x40) != 0;
  config.seed = in.ConsumeIntegral<std::uint8_t>();
  const std::uint8_t refresh = in.ConsumeIntegral<std::uint8_t>() & 3;
  config.refresh = refresh == 1 ? 5 * kMs : refresh == 2 ? 15 * kMs : 0;
  if (config.ttl > 0 && config.refresh >= config.ttl) config.refresh = 0;
  // A refresh that stores a heavier value may evict keys a get_all is about
  // to read, which the model cannot tell from a plain eviction: keep the two
  // options apart.
  if (config.refresh > 0) config.weigher = false;
  switch (policy) {
    case 0:
      run_policy<rtcache::policy::Lru>(config, variant, in);
      break;
    case 1:
      run_policy<rtcache::policy::Fifo>(config, variant, in);
      break;
    case 2:
      run_policy<rtcache::policy::Clock>(config, variant, in);
      break;
    case 3:
      run_policy<rtcache::policy::Sieve>(config, variant, in);
      break;
    case 4:
      run_policy<rtcache::policy::S3Fifo>(config, variant, in);
      break;
    default:
      run_policy<rtcache::policy::WTinyLfu>(config, variant, in);
      break;
  }
  return 0;
}
