#pragma once

/// \file
/// ReadThroughCache: a bounded, thread-safe cache that is the application's
/// one door to its data store.

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "clock.hpp"
#include "concepts.hpp"
#include "detail/chained_table.hpp"
#include "detail/entry.hpp"
#include "detail/epoch.hpp"
#include "detail/hash.hpp"
#include "detail/key_state.hpp"
#include "detail/load_slots.hpp"
#include "detail/macros.hpp"
#include "detail/object_array.hpp"
#include "detail/read_buffer.hpp"
#include "detail/shard_mutex.hpp"
#include "detail/striped_counters.hpp"
#include "detail/thread_pool.hpp"
#include "detail/write_slots.hpp"
#include "errors.hpp"
#include "hooks.hpp"
#include "options.hpp"
#include "policy/w_tinylfu.hpp"
#include "stats.hpp"
#include "versioned.hpp"

namespace rtcache {

/// The eviction policy used when none is named: adaptive W-TinyLFU with CLOCK
/// segments, whose hits take no lock (see policy/w_tinylfu.hpp), with the hit
/// ratios of exact W-TinyLFU within a tenth of a point on average (see
/// docs/hit-ratio.md). `policy::WTinyLfu` keeps exact LRU segments.
using DefaultPolicy = policy::WTinyLfuClock;

namespace detail {
/// How many loader calls the current thread is inside (a loader may use the
/// cache, and its own nested loads must not wait for a load permit).
inline int& loader_depth() noexcept {
  thread_local int depth = 0;
  return depth;
}
}  // namespace detail

/// A read-through, write-through cache in front of a data store.
///
/// - `get(key)` answers from the cache, or runs `loader(key)` on a miss, stores
///   and returns its result. Concurrent misses on one key run the loader once
///   and share its result or its exception.
/// - `put(key, value)` runs the writer first and changes the cache only once
///   the store has accepted the write; `erase(key)` does the same for deletes.
/// - Entries carry the store's version: a load never replaces a newer entry,
///   and a load that began before a write, erase or invalidation of its key
///   finished is never installed over it.
/// - Optional freshness (see `Options`): TTLs, negative caching,
///   refresh-ahead, stale-if-error, a bound on concurrent loads; and (see
///   `CacheHooks`) weights and a removal listener.
///
/// Thread safety: every member may be called from any number of threads at
/// once. The loader and writer are called concurrently for different keys, so
/// they must be thread-safe themselves; they run with no cache lock held and
/// may use the cache for other keys. Hits take no lock at all.
///
/// Exceptions: an exception from the loader or writer propagates to the
/// caller (and to every caller waiting for that load) and leaves the cache as
/// it was. `std::bad_alloc` leaves the cache consistent. `Hash` and `KeyEqual`
/// must not throw.
///
/// Complexity: hits, puts and erases are O(1) on average plus the loader or
/// writer call; `invalidate_all` and `invalidate_if` are O(size).
///
/// The cache holds at most `Options::capacity` entries (or that much weight,
/// with a weigher): each of its power-of-two shards (lock stripes) holds an
/// exact share of it.
template <class K, class V, class Loader, class Writer = NoWriter, class Policy = DefaultPolicy,
          class Hash = std::hash<K>, class KeyEqual = std::equal_to<K>>
class ReadThroughCache {
  static_assert(LoaderFor<Loader, K, V>,
                "rtcache: the Loader must be callable as loader(const K&) and return "
                "std::optional<V> (std::nullopt: not found), std::optional<Versioned<V>>, "
                "V, Versioned<V>, Loaded<V> or std::optional<Loaded<V>>");
  static_assert(std::same_as<Writer, NoWriter> || WriterFor<Writer, K, V>,
                "rtcache: the Writer must be callable as writer(const K&, const V&), or have a "
                "member write(const K&, const V&), returning void, V or Versioned<V>");
  static_assert(EvictionPolicy<Policy>,
                "rtcache: the Policy must satisfy rtcache::EvictionPolicy: a Hook type and a "
                "Shard<Entry> class with on_insert, on_access, on_replace, on_remove and evict, "
                "all noexcept (and on_update, if it has one)");
  static_assert(std::copy_constructible<K>, "rtcache: keys must be copy-constructible");
  static_assert(std::copy_constructible<V>, "rtcache: values must be copy-constructible");

 public:
  using key_type = K;
  using mapped_type = V;
  using loader_type = Loader;
  using writer_type = Writer;
  using policy_type = Policy;
  using hooks_type = CacheHooks<K, V>;

  /// Builds an empty cache. Throws `std::invalid_argument` for invalid options.
  explicit ReadThroughCache(Options options, Loader loader = Loader{}, Writer writer = Writer{},
                            hooks_type hooks = {}, Hash hash = Hash{},
                            KeyEqual key_equal = KeyEqual{})
      : options_(std::move(options)),
        seed_(options_.seed ? *options_.seed : detail::random_seed()),
        clock_(options_.clock ? options_.clock : std::make_shared<SteadyClock>()),
        counters_(std::thread::hardware_concurrency()),
        hooks_(std::move(hooks)),
        loader_(std::move(loader)),
        writer_(std::move(writer)),
        hash_(std::move(hash)),
        key_equal_(std::move(key_equal)) {
    const std::size_t shard_count =
        detail::validate_and_pick_shards(options_, std::thread::hardware_concurrency());
    options_.shards = shard_count;
    while ((std::size_t{1} << shard_bits_) < shard_count) ++shard_bits_;
    has_time_ = options_.expire_after_write.count() > 0 || options_.negative_ttl.count() > 0 ||
                options_.refresh_after.count() > 0 || options_.stale_if_error.count() > 0;
    entries_ = detail::EntryLayout<Entry>(has_time_, static_cast<bool>(hooks_.weigher));
    if (options_.max_concurrent_loads > 0) {
      load_slots_ = std::make_unique<detail::LoadSlots>(options_.max_concurrent_loads);
    }
    // Shard i holds capacity / shards, the first (capacity % shards) one
    // more: the shares add up to the capacity exactly.
    shard_storage_.emplace(shard_count, [&](std::size_t i, Shard* at) {
      const std::size_t share =
          options_.capacity / shard_count + (i < options_.capacity % shard_count ? 1 : 0);
      std::construct_at(at, share, detail::mix64(seed_ + i), entries_.weights(),
                        entries_.block_size());
    });
    shards_.reserve(shard_count);
    for (std::size_t i = 0; i < shard_count; ++i) shards_.push_back(&(*shard_storage_)[i]);
  }

  ReadThroughCache(const ReadThroughCache&) = delete;
  ReadThroughCache& operator=(const ReadThroughCache&) = delete;

  /// Waits for background refreshes to finish, then destroys the entries. No
  /// other call may be in progress.
  ~ReadThroughCache() {
    {
      std::unique_lock lock(tasks_mutex_);
      tasks_done_.wait(lock, [&] { return outstanding_tasks_ == 0; });
    }
    pool_.reset();
    for (auto& shard : shards_) {
      // The memory goes with the shard's pool.
      shard->table.for_each([&](Entry& e) { (void)entries_.release(&e); });
      shard->table.clear();
      for (const Retired& r : shard->retired) (void)entries_.release(r.entry);
    }
  }

  // -- Reading ---------------------------------------------------------------

  /// The value of `key`: from the cache, or else from the loader (coalesced
  /// with any load of `key` in progress). `std::nullopt` when the store has no
  /// such key. Throws what the loader throws, and `RecursiveCallError` when
  /// called from the loader of `key` itself.
  [[nodiscard]] std::optional<V> get(const K& key) { return lookup_or_load<false>(key); }

  /// Like `get`, with the version of the value.
  [[nodiscard]] std::optional<Versioned<V>> get_versioned(const K& key) {
    return lookup_or_load<true>(key);
  }

  /// Like `get`, without copying the value out: calls `f(value)` with a
  /// const reference to the value of `key` and returns true, or returns false
  /// without calling `f` when the store has no such key. Read-through and
  /// coalesced as `get`; throws what `get` throws, and what `f` throws (a
  /// hit whose `f` throws is not counted in `stats()`).
  ///
  /// On a hit, `f` gets the cached value itself, not a copy (a value that
  /// writes rewrite in place, see the README, is first copied out with one
  /// atomic load). For a `std::string` or a `std::shared_ptr`, that saves
  /// the allocation or the reference-count updates of a copy. On a miss, `f`
  /// gets the loaded value.
  ///
  /// On a hit, `f` runs with no lock held but inside the reader's epoch (see
  /// docs/ARCHITECTURE.md): the value stays alive until `f` returns, even if
  /// a write replaces it meanwhile, and the reference must not outlive `f`.
  /// So `f` should be short, and it must not change any rtcache cache: a
  /// write, an invalidation or a `get` that misses, called from `f`, throws
  /// `RecursiveCallError` (it could have to wait for `f` to end). Lookups
  /// are allowed, and take no lock there: `get`, `get_versioned` and
  /// `get_with` of cached keys, `get_if_present` of any key (a hit there
  /// starts no refresh; the next hit outside does). Nor may `f` wait for
  /// another thread that changes a cache: that thread may be waiting for `f`.
  template <class F>
  requires std::invocable<F&, const V&>
  bool get_with(const K& key, F&& f) {
    const std::uint64_t h = hash_of(key);
    Shard& shard = shard_for(h);
    VisitSink<F> sink{f};
    if (serve_hit_to(shard, h, key, sink)) [[likely]]
      return sink.found;
    const std::optional<V> loaded = load_after_miss<false>(shard, h, key);
    if (!loaded) return false;
    std::invoke(f, *loaded);
    return true;
  }

  /// The cached value of `key`, or `std::nullopt`; never calls the loader.
  [[nodiscard]] std::optional<V> get_if_present(const K& key) const {
    const std::uint64_t h = hash_of(key);
    Shard& shard = shard_for(h);
    std::optional<V> found;
    OptionalSink<false> sink{found};
    if (try_hit(shard, h, key, sink, /*may_refresh=*/false) != Hit::kMiss) return found;
    // A concurrent grow can hide an entry from the lookup above: a miss is
    // certain only once no grow overlapped the search. (No lock, so this may
    // also run inside get_with's function.)
    if (try_hit</*kSettled=*/true>(shard, h, key, sink, false) != Hit::kMiss) return found;
    counters_.add(detail::Counter::kMisses);
    return std::nullopt;
  }

  /// The values of `keys` that the store has, by key. Cached keys are served
  /// from the cache; keys being loaded by another thread are waited for, not
  /// loaded twice; the rest are loaded together through `loader.load_all`
  /// when the loader has it (`BatchLoaderFor`), else one by one. Throws the
  /// first loader exception, after every load it started has been released.
  template <std::ranges::input_range Keys>
  [[nodiscard]] std::unordered_map<K, V, Hash, KeyEqual> get_all(const Keys& keys) {
    refuse_inside_read_section("get_all");
    std::unordered_map<K, V, Hash, KeyEqual> found(0, hash_, key_equal_);
    std::unordered_set<K, Hash, KeyEqual> seen(0, hash_, key_equal_);
    std::vector<Claim> owned;
    std::vector<Claim> joined;
    try {
      for (const K& key : keys) {
        if (!seen.insert(key).second) continue;
        const std::uint64_t h = hash_of(key);
        Shard& shard = shard_for(h);
        std::optional<V> hit;
        if (serve_hit(shard, h, key, hit)) {
          if (hit) found.emplace(key, std::move(*hit));
          continue;
        }
        Claim claim = claim_locked_section(shard, h, key);
        if (claim.kind == Claim::kHit) {
          if (claim.hit) found.emplace(key, std::move(claim.hit->value));
        } else if (claim.kind == Claim::kJoin) {
          joined.push_back(std::move(claim));
        } else {
          owned.push_back(std::move(claim));
        }
      }
    } catch (...) {
      // A later key failed (RecursiveCallError, out of memory, a throwing
      // key copy): give up the loads claimed so far (else they stay
      // registered until a later get of their key runs them).
      const std::exception_ptr error = std::current_exception();
      for (Claim& claim : owned) fail_load(claim, error);
      throw;
    }
    load_owned(owned, joined, found);
    for (Claim& claim : joined) {
      wait_for_load(*claim.flight);
      if (claim.joined_superseded) {  // load afresh (this key's lookup is counted)
        if (auto value = load_after_miss<false>(*claim.shard, claim.hash, claim.key, true)) {
          found.emplace(claim.key, std::move(*value));
        }
        continue;
      }
      const auto& outcome = claim.flight->outcome();
      if (outcome) found.emplace(claim.key, outcome->value);
    }
    return found;
  }

  /// Loads `keys` that are not cached, at most `warm.max_concurrency` at a
  /// time and `warm.max_loads_per_second` per second of the cache's clock, so
  /// that a cold start does not flatten the store. Blocks until done; a
  /// failed load is counted, not thrown.
  template <std::ranges::input_range Keys>
  WarmReport warm(const Keys& keys, WarmOptions warm = {}) {
    refuse_inside_read_section("warm");
    detail::validate_warm(warm);
    const std::vector<K> list(std::ranges::begin(keys), std::ranges::end(keys));
    std::atomic<std::size_t> next{0};
    std::atomic<std::size_t> loaded{0};
    std::atomic<std::size_t> cached{0};
    std::atomic<std::size_t> failed{0};
    std::mutex pace_mutex;
    std::int64_t next_start = std::numeric_limits<std::int64_t>::min();
    const std::int64_t interval =
        warm.max_loads_per_second ? static_cast<std::int64_t>(1e9 / *warm.max_loads_per_second) : 0;
    auto work = [&] {
      for (std::size_t i = next.fetch_add(1); i < list.size(); i = next.fetch_add(1)) {
        const K& key = list[i];
        const std::uint64_t h = hash_of(key);
        std::optional<V> ignored;
        OptionalSink<false> sink{ignored};
        // A probe, not a read: it must not claim the entry's refresh.
        if (try_hit(shard_for(h), h, key, sink, /*may_refresh=*/false) != Hit::kMiss) {
          cached.fetch_add(1);
          continue;
        }
        if (interval > 0) {
          std::int64_t wait = 0;
          {
            std::lock_guard lock(pace_mutex);
            const std::int64_t now = clock_->now().count();
            const std::int64_t start = std::max(now, next_start);
            next_start = start + interval;
            wait = start - now;
          }
          if (wait > 0) clock_->sleep_for(std::chrono::nanoseconds(wait));
        }
        try {
          (void)get(key);
          loaded.fetch_add(1);
        } catch (...) {
          failed.fetch_add(1);
        }
      }
    };
    const std::size_t helpers = std::min(warm.max_concurrency, list.size()) > 0
                                    ? std::min(warm.max_concurrency, list.size()) - 1
                                    : 0;
    std::vector<std::jthread> threads;
    threads.reserve(helpers);
    for (std::size_t t = 0; t < helpers; ++t) threads.emplace_back(work);
    work();
    threads.clear();  // joins
    return WarmReport{loaded.load(), cached.load(), failed.load()};
  }

  // -- Writing ---------------------------------------------------------------

  /// Writes `value` to the store through the writer, then caches what the
  /// store holds. Writes of one key run one at a time, so the cache ends with
  /// the value of the write that completed last. If the writer throws, the
  /// cache is unchanged and the exception propagates.
  void put(const K& key, V value) {
    refuse_inside_read_section("put");
    static_assert(!std::same_as<Writer, NoWriter>,
                  "rtcache: put() needs a Writer; this cache was declared read-only (NoWriter)");
    const std::uint64_t h = hash_of(key);
    Shard& shard = shard_for(h);
    WriteGate gate(*this, shard, h, key);
    Versioned<V> stored = call_writer(key, std::move(value));
    const std::uint32_t weight = weigh_written(shard, gate, h, key, stored.value);
    Removals removals(*this);
    std::lock_guard lock(shard.mutex);
    install_write_locked(shard, gate, h, key, std::move(stored), weight, removals);
    gate.release_locked();
  }

  /// Writes `value` only if the store holds `key` at version `expected`
  /// (compare-and-set, done by the writer's `write_if_version`). On success
  /// the cache holds the new value and version. On a conflict the store is
  /// unchanged, the cached entry is dropped so that the next `get` loads the
  /// winner, and the result says `applied == false`.
  PutResult put_if_version(const K& key, V value, std::uint64_t expected) {
    refuse_inside_read_section("put_if_version");
    static_assert(VersionedWriterFor<Writer, K, V>,
                  "rtcache: put_if_version() needs a Writer with a member "
                  "write_if_version(const K&, const V&, std::uint64_t expected) returning "
                  "std::optional<Versioned<V>> or std::optional<std::uint64_t>");
    if constexpr (VersionedWriterFor<Writer, K, V>) {
      return put_if_version_impl(key, std::move(value), expected);
    } else {
      return {};
    }
  }

  /// Deletes `key` from the store through the writer's `erase`, then from the
  /// cache. If the writer throws, neither changes.
  void erase(const K& key) {
    refuse_inside_read_section("erase");
    static_assert(DeletingWriterFor<Writer, K>,
                  "rtcache: erase() needs a Writer that can delete: give it a member "
                  "erase(const K&) that removes the key from the store");
    if constexpr (DeletingWriterFor<Writer, K>) erase_impl(key);
  }

  /// Caches `value` as the store's current value of `key`, at `version`,
  /// without calling the writer: for values learned elsewhere (a cache-aside
  /// fill, a message from another instance). Refused, like a load, when the
  /// cache holds a newer version. Does not affect loads in progress.
  void fill(const K& key, V value, std::uint64_t version = kUnknownVersion) {
    refuse_inside_read_section("fill");
    const std::uint64_t h = hash_of(key);
    Shard& shard = shard_for(h);
    const std::uint32_t weight = weigh(key, value);
    Removals removals(*this);
    std::lock_guard lock(shard.mutex);
    Entry* current = find_locked(shard, h, key);
    if (current != nullptr && !expired(*current, now_ns()) && is_older(version, current->version)) {
      return;
    }
    store_locked(shard, h, key, current, Versioned<V>{std::move(value), version}, {}, weight,
                 removals);
  }

  // -- Invalidating ----------------------------------------------------------

  /// Drops `key` from this cache only (the store is not touched). A load of
  /// `key` in progress will not be installed.
  void invalidate(const K& key) {
    refuse_inside_read_section("invalidate");
    const std::uint64_t h = hash_of(key);
    Shard& shard = shard_for(h);
    Removals removals(*this);
    std::lock_guard lock(shard.mutex);
    supersede_pending_locked(shard, h, key);
    if (Entry* e = find_locked(shard, h, key)) {
      remove_locked(shard, e, RemovalCause::kInvalidated, removals);
    }
  }

  /// Drops `key` from this cache unless the entry holds `version` or newer:
  /// for invalidation messages that carry the version another instance wrote.
  /// A load of `key` in progress will not be installed either way.
  void invalidate_if_older(const K& key, std::uint64_t version) {
    refuse_inside_read_section("invalidate_if_older");
    const std::uint64_t h = hash_of(key);
    Shard& shard = shard_for(h);
    Removals removals(*this);
    std::lock_guard lock(shard.mutex);
    // A write of the key in progress here must not install an older version.
    if (State* state = supersede_pending_locked(shard, h, key)) {
      state->version_floor = std::max(state->version_floor, version);
    }
    detail::WriteSlots::Slot& slot = shard.write_slots.slot(h);
    if (slot.tag.load(std::memory_order_seq_cst) == detail::WriteSlots::tag(h)) {
      // (Or a write of another key with the same tag, which then drops its
      // value from the cache: safe, if wasteful.)
      slot.floor = std::max(slot.floor, version);
    }
    Entry* e = find_locked(shard, h, key);
    if (e != nullptr && (e->version == kUnknownVersion || e->version < version)) {
      remove_locked(shard, e, RemovalCause::kInvalidated, removals);
    }
  }

  /// Drops the cached entries for which `predicate(key, value)` holds. The
  /// predicate runs with no lock held, but inside a read-side critical
  /// section: as `get_with`'s function, it must not change any cache (that
  /// throws `RecursiveCallError`). A value written in place while it ran may
  /// be dropped with the one it selected (the next get reloads it); one
  /// written as a new entry is kept (and its key tested again if its
  /// predecessor's memory may have been reused for it). Loads in progress of
  /// the selected keys will not be installed. If the shard's table grows
  /// meanwhile, the predicate sees the shard's entries again (a grow moves
  /// them, and may hide some from the first pass).
  template <class Predicate>
  void invalidate_if(Predicate&& predicate) {
    refuse_inside_read_section("invalidate_if");
    struct Match {
      K key;
      std::uint64_t hash;  // the key's full hash (an entry keeps only its low half)
      const Entry* entry;  // compared, never dereferenced, after the guard
    };
    std::vector<Match> matches;
    auto test = [&](const Entry& e) {
      if (e.negative) return;
      bool selected = false;
      if constexpr (Entry::kInPlace) {
        // The value may be rewritten meanwhile: test a consistent copy.
        const V value = detail::load_shared(e.value);
        selected = predicate(std::as_const(e.key), value);
      } else {
        selected = predicate(std::as_const(e.key), std::as_const(e.value));
      }
      if (selected) matches.push_back(Match{e.key, hash_of(e.key), &e});
    };
    for (auto& shard_ptr : shards_) {
      Shard& shard = *shard_ptr;
      matches.clear();
      std::uint64_t frees = 0;
      {
        detail::EpochGuard guard;
        frees = shard.frees.load(std::memory_order_relaxed);
        // A grow during the walk may hide entries from it: then walk again.
        for (std::uint32_t grows = shard.table.settled_grows();;
             grows = shard.table.settled_grows()) {
          matches.clear();
          shard.table.for_each(test);
          if (shard.table.no_grow_since(grows)) break;
        }
      }
      // Under the lock, an entry found where the walk saw it is the one the
      // predicate tested, unless the shard has freed entries since the walk
      // began: a freed block may now hold a newer entry of the same key. The
      // entries of those keys are tested again, until none is in doubt.
      while (!matches.empty()) {
        std::vector<Match> unsure;
        {
          Removals removals(*this);
          std::lock_guard lock(shard.mutex);
          const bool reused = shard.frees.load(std::memory_order_relaxed) != frees;
          for (const Match& m : matches) {
            supersede_pending_locked(shard, m.hash, m.key);
            Entry* e = find_locked(shard, m.hash, m.key);
            if (e != m.entry) continue;  // replaced or dropped meanwhile: not tested
            if (reused) {
              unsure.push_back(m);
            } else {
              remove_locked(shard, e, RemovalCause::kInvalidated, removals);
            }
          }
        }
        matches.clear();
        if (unsure.empty()) break;
        detail::EpochGuard guard;
        frees = shard.frees.load(std::memory_order_relaxed);
        for (const Match& m : unsure) {
          const Entry* e = shard.table.find_settled(
              m.hash, [&](const Entry& candidate) { return key_equal_(candidate.key, m.key); });
          if (e != nullptr) test(*e);
        }
      }
    }
  }

  /// Drops every entry from this cache; loads in progress will not be installed.
  void invalidate_all() {
    refuse_inside_read_section("invalidate_all");
    std::vector<Entry*> dropped;
    std::vector<std::size_t> dropped_end;  // shard i's entries are before dropped_end[i]
    dropped_end.reserve(shards_.size());
    Removals removals(*this);
    // Readers may still be copying the dropped entries: free them after a
    // grace period, with every read buffer emptied of them first.
    auto free_dropped = [&] {
      wait_for_grace(epochs().stamp());
      std::size_t next = 0;
      for (std::size_t i = 0; i < dropped_end.size(); ++i) {
        Shard& shard = *shards_[i];
        std::lock_guard lock(shard.mutex);
        shard.reads.drain_all([](Entry&) {});
        for (; next < dropped_end[i]; ++next) free_entry_locked(shard, dropped[next]);
      }
    };
    try {
      for (Shard* shard_ptr : shards_) {
        Shard& shard = *shard_ptr;
        std::lock_guard lock(shard.mutex);
        dropped.reserve(dropped.size() + shard.table.size());  // may throw: shard unchanged
        shard.pending.for_each([](const K&, State& state) { supersede_load_locked(state); });
        drain_reads_locked(shard);
        shard.table.for_each([&](Entry& e) {
          shard.policy.on_remove(e);
          e.resident.store(false, std::memory_order_relaxed);
          removals.note(e, RemovalCause::kInvalidated);
          dropped.push_back(&e);
        });
        shard.table.clear();
        shard.weight = 0;
        publish_size_locked(shard);
        dropped_end.push_back(dropped.size());
      }
    } catch (...) {
      // Out of memory for a later shard: the shards emptied so far stay
      // empty, and their entries, in no table any more, are freed here.
      free_dropped();
      throw;
    }
    free_dropped();
  }

  // -- Observing -------------------------------------------------------------

  /// The number of cached entries, negative ones included (a snapshot).
  [[nodiscard]] std::size_t size() const noexcept {
    std::size_t total = 0;
    for (const auto& shard : shards_) total += shard->size.load(std::memory_order_relaxed);
    return total;
  }

  /// The total weight of the cached entries (equal to `size()` without a
  /// weigher).
  [[nodiscard]] std::size_t weight() const noexcept {
    std::size_t total = 0;
    for (const auto& shard : shards_) {
      total += shard->weight_published.load(std::memory_order_relaxed);
    }
    return total;
  }

  /// The capacity and the shard count actually used.
  [[nodiscard]] std::size_t capacity() const noexcept { return options_.capacity; }
  [[nodiscard]] std::size_t shard_count() const noexcept { return shards_.size(); }

  /// A snapshot of the counters.
  [[nodiscard]] Stats stats() const noexcept {
    using detail::Counter;
    Stats s;
    s.hits = counters_.sum(Counter::kHits);
    s.misses = counters_.sum(Counter::kMisses);
    s.loads = counters_.sum(Counter::kLoads);
    s.load_failures = counters_.sum(Counter::kLoadFailures);
    s.total_load_time = std::chrono::nanoseconds(
        static_cast<std::int64_t>(counters_.sum(Counter::kLoadNanoseconds)));
    s.coalesced_waits = counters_.sum(Counter::kCoalescedWaits);
    s.evictions = counters_.sum(Counter::kEvictions);
    s.writes = counters_.sum(Counter::kWrites);
    s.write_failures = counters_.sum(Counter::kWriteFailures);
    s.version_conflicts = counters_.sum(Counter::kVersionConflicts);
    s.refreshes = counters_.sum(Counter::kRefreshes);
    s.refresh_failures = counters_.sum(Counter::kRefreshFailures);
    s.stale_served = counters_.sum(Counter::kStaleServed);
    s.expirations = counters_.sum(Counter::kExpirations);
    s.rejected_oversized = counters_.sum(Counter::kRejectedOversized);
    return s;
  }

  /// For tests: the shard `key` belongs to.
  [[nodiscard]] std::size_t shard_index_of(const K& key) const noexcept {
    return shard_index(hash_of(key));
  }

  /// For tests: the low 32 bits of the key's hash, which pick its bucket
  /// (see `detail::ChainedTable`).
  [[nodiscard]] std::uint32_t bucket_hash_of(const K& key) const noexcept {
    return static_cast<std::uint32_t>(hash_of(key));
  }

  /// For tests: the bucket counts of shard `i`'s table, now and at most.
  [[nodiscard]] std::pair<std::size_t, std::size_t> bucket_counts(std::size_t i) const {
    std::lock_guard lock(shards_.at(i)->mutex);
    return {shards_[i]->table.bucket_count(), shards_[i]->table.bucket_ceiling()};
  }

  /// For tests: calls `check(policy, resident_count)` on each shard's policy
  /// under its lock and returns true when every call does, and every shard's
  /// table agrees with its size, weight and capacity.
  template <class Check>
  [[nodiscard]] bool check_shards(Check&& check) const {
    for (const auto& shard : shards_) {
      std::lock_guard lock(shard->mutex);
      drain_reads_locked(*shard);
      const std::size_t resident = shard->table.size();
      std::size_t weight = 0;
      shard->table.for_each([&](const Entry& e) { weight += entries_.weight(e); });
      if (weight != shard->weight || weight > shard->capacity) return false;
      if (resident != shard->size.load(std::memory_order_relaxed)) return false;
      if (!check(shard->policy, resident)) return false;
    }
    return true;
  }

  /// For tests: the number of entries made so far (by loads, fills and
  /// writes that did not rewrite a cached value in place).
  [[nodiscard]] std::size_t entries_made() const {
    return sum_over_shards([](const Shard& s) { return s.blocks.handed_out(); });
  }

  /// For tests: the bytes the shards hold for entries, in use or free.
  [[nodiscard]] std::size_t entry_memory() const {
    return sum_over_shards([](const Shard& s) { return s.blocks.bytes(); });
  }

  /// For tests: the number of keys with a load or write in progress.
  [[nodiscard]] std::size_t pending_count() const {
    return sum_over_shards([](const Shard& s) { return s.pending.size(); });
  }

 private:
  using Entry = detail::Entry<K, V, typename Policy::Hook>;
  using EntryOwner = typename detail::EntryLayout<Entry>::Owner;
  using ShardPolicy = typename Policy::template Shard<Entry>;
  using Flight = detail::LoadFlight<V>;
  using State = detail::KeyState<V>;

  /// Policies whose `on_access` only sets atomic bits in the entry (CLOCK,
  /// SIEVE, S3-FIFO) take hits directly from lock-free readers; the others
  /// (LRU, W-TinyLFU) receive them through the shard's read buffer.
  /// Writes of a cached key rewrite its entry in place when its value can be
  /// copied atomically (see `detail::Entry`) and the policy can follow
  /// (`on_update`); otherwise they replace the entry.
  static constexpr bool kInPlaceWrites = Entry::kInPlace && requires(ShardPolicy & p, Entry& e) {
    p.on_update(e);
  };

  static constexpr bool kConcurrentAccess = [] {
    if constexpr (requires { Policy::kConcurrentAccess; }) {
      return static_cast<bool>(Policy::kConcurrentAccess);
    } else {
      return false;
    }
  }();

  /// Policies that replace memory lock-free readers use (W-TinyLFU's
  /// sketch, when a weighted shard outgrows it) keep the old memory until
  /// `reclaim(safe)` says no reader can still hold it, as the table does
  /// with its bucket arrays.
  static constexpr bool kPolicyRetires = requires(ShardPolicy & p) {
    { p.has_retired() } -> std::same_as<bool>;
    p.reclaim([](std::uint64_t) { return true; });
  };

  /// An unlinked entry and the epoch it was unlinked in, or kUnstamped until
  /// the next reclaim stamps every entry retired since the previous one with
  /// one read of the epoch (a later stamp than the unlink's only delays the
  /// free; see `reclaim_locked`).
  struct Retired {
    Entry* entry;
    std::uint64_t stamp;
  };
  static constexpr std::uint64_t kUnstamped = detail::EpochDomain::kInactive;
  /// A shard keeps at most this many retired entries: a quarter of its share,
  /// within these bounds. The more it may keep, the more rarely it needs to
  /// move the epoch (a barrier on every running thread of the process).
  static constexpr std::size_t kMinRetiredCapacity = 256;
  static constexpr std::size_t kMaxRetiredCapacity = 1024;
  static std::size_t retired_capacity_for(std::size_t share) noexcept {
    return std::clamp(std::bit_ceil(share / 4 + 1), kMinRetiredCapacity, kMaxRetiredCapacity);
  }

  static detail::EpochDomain& epochs() noexcept { return detail::EpochDomain::instance(); }

  /// The sum of `count(shard)` over the shards, each read under its lock.
  template <class Count>
  std::size_t sum_over_shards(Count count) const {
    refuse_inside_read_section("a count over the shards' locks");
    std::size_t total = 0;
    for (const auto& shard : shards_) {
      std::lock_guard lock(shard->mutex);
      total += count(*shard);
    }
    return total;
  }

  /// One lock stripe: its table, its policy, its in-progress registry and its
  /// lock, on cache lines of its own.
  ///
  /// What a lock-free hit reads (the read buffer's stripes, the table's
  /// bucket array pointer) comes first, on cache lines that only a grow
  /// writes; what the lock holder writes (the lock, the draining flag, the
  /// sizes, the policy) comes after, so that replaying hits or inserting
  /// does not take the lines that every hit needs from the other cores.
  struct alignas(64) Shard {
    /// Without a weigher the share is in entries, so the table never needs
    /// buckets for more; with one it holds any number of entries up to the
    /// share in weight.
    Shard(std::size_t share, std::uint64_t seed, EntryWeights<Entry> weights,
          std::size_t block_size)
        : reads(std::thread::hardware_concurrency()),
          capacity(share),
          retired_capacity(retired_capacity_for(share)),
          reclaim_every(retired_capacity / 8),
          table(detail::ChainedTable<Entry>::kMinBuckets,
                weights.weighted() ? detail::ChainedTable<Entry>::kUnbounded : share),
          policy(make_policy(share, seed, weights)),
          blocks(block_size, detail::EntryLayout<Entry>::block_alignment()) {
      retired.reserve(retired_capacity);
      reclaim_at = reclaim_every;
    }

    /// The policy gets the entries' weights if it can use them.
    static ShardPolicy make_policy(std::size_t share, std::uint64_t seed,
                                   EntryWeights<Entry> weights) {
      if constexpr (std::constructible_from<ShardPolicy, std::size_t, std::uint64_t,
                                            EntryWeights<Entry>>) {
        return ShardPolicy(share, seed, weights);
      } else {
        return ShardPolicy(share, seed);
      }
    }

    /// True while the table or the policy keeps memory that readers may
    /// still see, waiting for `reclaim_locked`.
    [[nodiscard]] bool has_retired_memory() const noexcept {
      if constexpr (kPolicyRetires) {
        if (policy.has_retired()) return true;
      }
      return table.has_retired();
    }

    mutable detail::ReadBuffer<Entry> reads;  // hits not yet shown to the policy
    const std::size_t capacity;               // in entries, or in weight with a weigher
    const std::size_t retired_capacity;       // the most entries `retired` holds
    const std::size_t reclaim_every;          // retirements between reclaims
    detail::ChainedTable<Entry> table;        // its bucket pointer on a line of its own
    alignas(64) mutable detail::ShardMutex mutex;
    mutable std::atomic<bool> draining{false};  // a reader is replaying `reads`
    std::condition_variable_any write_done;     // a write of some key in this shard finished
    std::size_t weight = 0;                     // under the lock
    std::atomic<std::size_t> size{0};
    std::atomic<std::size_t> weight_published{0};
    mutable ShardPolicy policy;
    detail::KeyRegistry<K, V, KeyEqual> pending;
    std::vector<Retired> retired;           // unlinked, waiting for readers to leave
    detail::BlockPool blocks;               // the entries' memory (laid out by `entries_`)
    std::size_t reclaim_at = 0;             // retired.size() that triggers an attempt
    std::size_t inserts_since_reclaim = 0;  // while the table has old bucket arrays
    // Entries freed so far (changed under the lock): tells `invalidate_if`
    // whether an entry it saw may have been freed and its block reused.
    std::atomic<std::uint64_t> frees{0};
    detail::WriteSlots write_slots;  // write gate fast path; in-place writes' sequence
  };

  /// Removals to tell the listener about once the lock is released: declare
  /// it before the lock guard, so that it is destroyed after it.
  class Removals {
   public:
    explicit Removals(const ReadThroughCache& cache) : cache_(cache) {}
    Removals(const Removals&) = delete;
    Removals& operator=(const Removals&) = delete;
    ~Removals() {
      for (const auto& r : items_) {
        try {
          cache_.hooks_.on_removal(r.key, r.value, r.cause);
        } catch (...) {  // a listener's failure is not the caller's
        }
      }
    }

    void note(const Entry& e, RemovalCause cause) noexcept {
      if (!cache_.hooks_.on_removal || e.negative) return;
      try {
        items_.push_back(Item{e.key, e.value, cause});
      } catch (...) {  // out of memory: the notification is lost, not the removal
      }
    }

   private:
    struct Item {
      K key;
      V value;
      RemovalCause cause;
    };
    const ReadThroughCache& cache_;
    std::vector<Item> items_;
  };

  /// Admits one write of a key at a time: the constructor waits until no
  /// other write of the key is in progress; `release_locked` (or else the
  /// destructor) lets the next in.
  ///
  /// Fast path: the key's slot in the shard's `detail::WriteSlots`, claimed
  /// with one compare-and-swap and no lock, so that a put takes the shard
  /// lock once, to install. Registry path, which tells keys apart exactly:
  /// the key's state in `pending`, under the lock; taken when the slot holds
  /// another key, while another write in the shard is on it, and for a write
  /// made from inside the writer of another key of the same slot.
  ///
  /// A write that finds its key taken spins for a while without the lock
  /// (the write ahead of it usually finishes in well under a microsecond,
  /// far sooner than a sleep and its wake-up), then sleeps on the shard's
  /// condition: writers can be slow (a store round trip).
  class WriteGate {
   public:
    WriteGate(const ReadThroughCache& cache, Shard& shard, std::uint64_t h, const K& key)
        : cache_(cache),
          shard_(shard),
          key_(key),
          hash_(h),
          slot_(shard.write_slots.slot(h)),
          tag_(detail::WriteSlots::tag(h)),
          outer_(t_innermost_) {
      int spins = kSpinRounds;
      if (!try_fast(spins)) enter_registry(spins);
      t_innermost_ = this;
    }

    WriteGate(const WriteGate&) = delete;
    WriteGate& operator=(const WriteGate&) = delete;

    ~WriteGate() {
      t_innermost_ = outer_;  // gates live on the stack: they end in reverse order
      if (fast_ || state_ != nullptr) {
        std::lock_guard lock(shard_.mutex);
        release_locked();
      }
      if (wake_) shard_.write_done.notify_all();
    }

    /// Marks a load of the key in progress as superseded, and returns the
    /// newest version another instance announced for the key while this
    /// write was in progress (0: none): the write must not install an older
    /// one.
    std::uint64_t supersede_locked() noexcept {
      if (!fast_) {
        supersede_load_locked(*state_);
        return state_->version_floor;
      }
      std::uint64_t floor = slot_.floor;
      if (const State* state = supersede_pending_locked(shard_, hash_, key_)) {
        floor = std::max(floor, state->version_floor);
      }
      return floor;
    }

    /// Lets the next write of the key in, from within the caller's own
    /// critical section (saving a lock round trip); the destructor then only
    /// wakes the writers asleep.
    void release_locked() noexcept {
      if (fast_) {
        // Under the shard lock, as the sleepers count themselves and look at
        // the slot: no fence needed to see them.
        if (slot_.floor != 0) slot_.floor = 0;
        slot_.tag.store(0, std::memory_order_release);
        wake_ = slot_.sleepers.load(std::memory_order_relaxed) != 0;
      } else {
        state_->writer = std::thread::id{};
        state_->writing.store(false, std::memory_order_relaxed);
        wake_ = state_->sleeping_writers > 0;
        if (state_->idle()) shard_.pending.erase(hash_, *state_);
        state_ = nullptr;
        shard_.write_slots.diverted.fetch_sub(1, std::memory_order_seq_cst);
      }
      fast_ = false;
    }

   private:
    static constexpr int kSpinRounds = 256;

    /// Claims the key's slot, waiting while another write of the key holds
    /// it. False if the write must take the registry path instead.
    bool try_fast(int& spins) {
      std::atomic<std::uint64_t>& held = slot_.tag;
      for (;;) {
        std::uint64_t seen = 0;
        if (held.compare_exchange_strong(seen, tag_, std::memory_order_seq_cst)) {
          if (shard_.write_slots.diverted.load(std::memory_order_seq_cst) == 0) {
            fast_ = true;
            return true;
          }
          give_back();  // a write on the registry path may be waiting for it
          return false;
        }
        if (seen != tag_) return false;  // another key holds the slot
        if (held_here() != nullptr) return false;
        wait_while_held(spins);
      }
    }

    /// The registry path: as the fast one, but the key's state in `pending`
    /// tells it apart from the other keys of its slot.
    void enter_registry(int& spins) {
      shard_.write_slots.diverted.fetch_add(1, std::memory_order_seq_cst);
      try {
        // A write of the key that claimed its slot before this one counted
        // itself in `diverted` may still be in progress: wait for it (unless
        // the slot is this thread's own, held for another key). Later ones
        // see `diverted` and come this way.
        if (held_here() == nullptr) {
          while (slot_.tag.load(std::memory_order_seq_cst) == tag_) {
            wait_while_held(spins);
          }
        }
        std::unique_lock lock(shard_.mutex);
        state_ = &shard_.pending.get(hash_, key_);
        const auto me = std::this_thread::get_id();
        if (state_->writer == me) throw recursive_write();
        if (state_->writer != std::thread::id{}) {
          ++state_->waiting_writers;  // keeps the state, polled below, registered
          while (state_->writer != std::thread::id{}) {
            if (spins > 0) {
              lock.unlock();
              // A hint only: `writer` is checked again under the lock.
              spins = spin(spins, [state = state_] {
                return !state->writing.load(std::memory_order_relaxed);
              });
              lock.lock();
            } else {
              ++state_->sleeping_writers;
              shard_.write_done.wait(lock);
              --state_->sleeping_writers;
            }
          }
          --state_->waiting_writers;
        }
        state_->writer = me;
        state_->writing.store(true, std::memory_order_relaxed);
      } catch (...) {
        state_ = nullptr;
        shard_.write_slots.diverted.fetch_sub(1, std::memory_order_seq_cst);
        throw;
      }
    }

    /// The gate of this thread that holds this gate's slot with the same tag,
    /// if any: this write is made from inside that write's writer. Throws
    /// `RecursiveCallError` if it is a write of the same key.
    const WriteGate* held_here() const {
      for (const WriteGate* g = outer_; g != nullptr; g = g->outer_) {
        if (!g->fast_ || &g->slot_ != &slot_ || g->tag_ != tag_) continue;
        if (cache_.key_equal_(g->key_, key_)) throw recursive_write();
        return g;
      }
      return nullptr;
    }

    static RecursiveCallError recursive_write() {
      return RecursiveCallError(
          "rtcache: the writer of a key wrote or erased that same key through the cache; "
          "that would deadlock");
    }

    /// Returns a slot claimed by mistake, waking whoever waits for it.
    void give_back() noexcept {
      bool wake = false;
      {
        std::lock_guard lock(shard_.mutex);
        // A floor set meanwhile came before this write's store call, which
        // will get a newer version anyway: it must not outlive the claim.
        slot_.floor = 0;
        slot_.tag.store(0, std::memory_order_release);
        wake = slot_.sleepers.load(std::memory_order_relaxed) != 0;
      }
      if (wake) shard_.write_done.notify_all();
    }

    /// Returns once the slot may have stopped holding this key's tag:
    /// spinning while `spins` lasts, then asleep on the shard's condition.
    void wait_while_held(int& spins) const {
      std::atomic<std::uint64_t>& held = slot_.tag;
      spins = spin(spins, [&] { return held.load(std::memory_order_relaxed) != tag_; });
      if (spins > 0) return;
      // Under the shard lock, under which the slot's holder frees it and
      // looks for sleepers.
      std::unique_lock lock(shard_.mutex);
      slot_.sleepers.fetch_add(1, std::memory_order_relaxed);
      while (held.load(std::memory_order_acquire) == tag_) shard_.write_done.wait(lock);
      slot_.sleepers.fetch_sub(1, std::memory_order_relaxed);
    }

    /// Waits (without the lock) until `done()` or the spin budget runs out;
    /// returns the rounds left (0: ran out). Each round is a CPU pause, and
    /// every 32nd a yield, in case the writer ahead waits for this CPU.
    template <class Done>
    static int spin(int spins, Done done) noexcept {
      for (; spins > 0; --spins) {
        if (done()) return spins;
        if (spins % 32 == 1) {
          std::this_thread::yield();
        } else {
          detail::cpu_relax();
        }
      }
      return 0;
    }

    const ReadThroughCache& cache_;
    Shard& shard_;
    const K& key_;
    std::uint64_t hash_;
    detail::WriteSlots::Slot& slot_;
    std::uint64_t tag_;
    const WriteGate* outer_;  // the gate this thread held when this one was made
    State* state_ = nullptr;  // held on the registry path
    bool fast_ = false;       // held on the fast path
    bool wake_ = false;

    /// This thread's innermost gate (a write made from inside a writer).
    static inline thread_local const WriteGate* t_innermost_ = nullptr;
  };

  /// One of the `max_concurrent_loads` slots, for a load this thread is
  /// about to start, held until it is finished. Needed only outside a loader
  /// (loads started from inside one are not counted). Taken before the load
  /// is started, never after: a thread that waits for a permit has no
  /// started load, so no loader waits for it (a loader's get of a key that
  /// is only claimed runs that load itself).
  class LoadPermit {
   public:
    explicit LoadPermit(const ReadThroughCache& cache) noexcept
        : slots_(detail::loader_depth() == 0 ? cache.load_slots_.get() : nullptr) {}
    ~LoadPermit() { release(); }
    LoadPermit(const LoadPermit&) = delete;
    LoadPermit& operator=(const LoadPermit&) = delete;

    /// True if the permit is held (or not needed), taking a free slot.
    bool try_acquire() {
      if (slots_ != nullptr && !held_) held_ = slots_->try_acquire();
      return slots_ == nullptr || held_;
    }
    void acquire() {
      if (slots_ == nullptr || held_) return;
      slots_->acquire();
      held_ = true;
    }
    void release() noexcept {
      if (held_) slots_->release();
      held_ = false;
    }

   private:
    detail::LoadSlots* slots_;
    bool held_ = false;
  };

  /// Marks the calling thread as inside a loader (see `LoadPermit`).
  struct InsideLoader {
    InsideLoader() noexcept { ++detail::loader_depth(); }
    ~InsideLoader() { --detail::loader_depth(); }
    InsideLoader(const InsideLoader&) = delete;
    InsideLoader& operator=(const InsideLoader&) = delete;
  };

  /// A loader's answer: the value (or not found) and its own TTL, if any.
  struct LoadOutcome {
    std::optional<Versioned<V>> value;
    std::chrono::nanoseconds ttl{0};
  };

  /// What the locked part of a lookup decided.
  struct Claim {
    enum Kind { kHit, kJoin, kOwn } kind = kHit;
    K key;
    std::uint64_t hash = 0;
    Shard* shard = nullptr;
    std::optional<Versioned<V>> hit;    // kHit: the value (nullopt: cached "not found")
    std::shared_ptr<Flight> flight;     // kJoin, kOwn
    bool joined_superseded = false;     // kJoin; kOwn, for the wait if another caller starts it
    std::optional<Versioned<V>> stale;  // kOwn: an expired value for stale-if-error
    bool running = false;               // kOwn: this caller started the load (else only claimed it)
  };

  enum class Hit { kMiss, kHit, kHitAndRefresh };

  /// Throws if the calling thread is inside a read-side critical section
  /// (`get_with`'s function, `invalidate_if`'s predicate): a change to any
  /// cache from there may have to wait for entries to be freed, which waits
  /// for that section to end, and would never return. So may a wait for a
  /// shard lock: its holder may be waiting for the same. Reads from there
  /// take no lock (`load_after_miss`, and `get_if_present` never does).
  static void refuse_inside_read_section(const char* operation) {
    if (detail::EpochDomain::inside_guard()) [[unlikely]] {
      throw RecursiveCallError(
          std::string("rtcache: ") + operation +
          " was called from get_with's function or invalidate_if's predicate; a change to a "
          "cache, or a lock, there could wait for that function to return (only lookups are "
          "allowed)");
    }
  }

  // -- hashing and time ------------------------------------------------------

  std::uint64_t hash_of(const K& key) const noexcept {
    return detail::mix64(static_cast<std::uint64_t>(hash_(key)) ^ seed_);
  }
  std::size_t shard_index(std::uint64_t h) const noexcept {
    return shard_bits_ == 0 ? 0 : static_cast<std::size_t>(h >> (64 - shard_bits_));
  }
  Shard& shard_for(std::uint64_t h) const noexcept { return (*shard_storage_)[shard_index(h)]; }

  Entry* find_locked(const Shard& shard, std::uint64_t h, const K& key) const {
    return shard.table.find(h, [&](const Entry& e) { return key_equal_(e.key, key); });
  }

  static bool is_older(std::uint64_t candidate, std::uint64_t current) noexcept {
    return candidate != kUnknownVersion && candidate < current;
  }

  /// Now on the cache's clock, or 0 when no option needs time.
  std::int64_t now_ns() const { return has_time_ ? clock_->now().count() : 0; }

  bool expired(const Entry& e, std::int64_t now) const noexcept {
    return has_time_ && now >= entries_.times(e).expires_at;
  }

  /// True while an expired entry may still be served if a load fails.
  bool within_stale_grace(const Entry& e, std::int64_t now) const noexcept {
    if (e.negative || options_.stale_if_error.count() <= 0) return false;
    const std::int64_t expires_at = entries_.times(e).expires_at;
    return expires_at != detail::kNever && now - expires_at < options_.stale_if_error.count();
  }

  detail::EntryTimes times_for(std::uint64_t h, std::chrono::nanoseconds ttl,
                               std::int64_t now) const noexcept {
    detail::EntryTimes t;
    if (!has_time_) return t;
    if (ttl.count() <= 0) ttl = options_.expire_after_write;
    if (ttl.count() > 0) t.expires_at = now + ttl.count();
    if (options_.refresh_after.count() > 0) {
      // Jitter: shorten by up to refresh_jitter, from a hash of key and time.
      const double unit =
          static_cast<double>(detail::mix64(h ^ static_cast<std::uint64_t>(now)) >> 11) * 0x1.0p-53;
      const double after = static_cast<double>(options_.refresh_after.count()) *
                           (1.0 - options_.refresh_jitter * unit);
      t.refresh_at = now + static_cast<std::int64_t>(after);
    }
    return t;
  }

  std::uint32_t weigh(const K& key, const V& value) const {
    if (!hooks_.weigher) return 1;
    const std::size_t w = hooks_.weigher(key, value);
    return static_cast<std::uint32_t>(
        std::min<std::size_t>(w, std::numeric_limits<std::uint32_t>::max()));
  }

  // -- reading ---------------------------------------------------------------

  template <bool kWithVersion>
  using Result = std::conditional_t<kWithVersion, std::optional<Versioned<V>>, std::optional<V>>;

  template <bool kWithVersion>
  static Result<kWithVersion> project(const Versioned<V>& item) {
    if constexpr (kWithVersion) {
      return item;
    } else {
      return item.value;
    }
  }

  /// Where a hit's value goes: `absent()` for a cached "not found", else
  /// `value(v, version)`, called inside the reader's epoch guard (`v` may be
  /// the entry's own value). `kNeedsVersion`: whether `version` must be the
  /// one stored with `v` (a value rewritten in place is then copied through
  /// the write sequence), or may be anything.
  template <bool kWithVersion>
  struct OptionalSink {
    static constexpr bool kNeedsVersion = kWithVersion;
    Result<kWithVersion>& out;
    void absent() noexcept { out.reset(); }
    void value(const V& v, std::uint64_t version) {
      if constexpr (kWithVersion) {
        out.emplace(Versioned<V>{v, version});
      } else {
        out.emplace(v);
      }
    }
  };

  /// `get_with`'s sink: hands the value to the caller's function.
  template <class F>
  struct VisitSink {
    static constexpr bool kNeedsVersion = false;
    F& f;
    bool found = false;
    void absent() noexcept { found = false; }
    void value(const V& v, std::uint64_t /*version*/) {
      std::invoke(f, v);
      found = true;
    }
  };

  /// The hit path: no lock, no allocation, and no write to memory that all
  /// readers of the shard write (the epoch announcement is per thread, the
  /// counters and read buffer are striped). Gives the value (or, for a
  /// cached "not found", nothing) to `sink` unless it misses.
  ///
  /// `kSettled`: a miss is certain (`ChainedTable::find_settled`), for
  /// callers that may not check again under the lock.
  template <bool kSettled = false, class Sink>
  Hit try_hit(Shard& shard, std::uint64_t h, const K& key, Sink& sink,
              bool may_refresh = true) const {
    detail::EpochGuard guard(*epoch_domain_);
    const auto matches = [&](const Entry& candidate) { return key_equal_(candidate.key, key); };
    Entry* e = kSettled ? shard.table.find_settled(h, matches) : shard.table.find(h, matches);
    if (e == nullptr) return Hit::kMiss;
    bool refresh_due = false;
    if constexpr (Entry::kInPlace) {
      if (!copy_in_place(shard, h, *e, sink, refresh_due)) return Hit::kMiss;
    } else {
      if (!fresh_now(entries_.times(*e), refresh_due)) return Hit::kMiss;
      if (e->negative) {
        sink.absent();
      } else {
        sink.value(e->value, e->version);  // never rewritten: no copy needed
      }
    }
    record_access(shard, *e);
    counters_.add(detail::Counter::kHits);
    // A hit inside another read section (get_with's function) starts no
    // refresh: that takes the shard lock, and an inline executor would run
    // the whole load there. The next hit outside starts it.
    if (may_refresh && refresh_due && !guard.nested() &&
        !e->refresh_started.load(std::memory_order_relaxed) &&
        !e->refresh_started.exchange(true, std::memory_order_relaxed)) {
      return Hit::kHitAndRefresh;
    }
    return Hit::kHit;
  }

  /// `try_hit`'s copy when the value, version and times may be rewritten in
  /// place: through the shard's write sequence. False if the entry expired.
  template <class Sink>
  bool copy_in_place(const Shard& shard, std::uint64_t h, const Entry& e, Sink& sink,
                     bool& refresh_due) const {
    if (e.negative) {  // never rewritten, and holds no value
      if (!fresh_now(entries_.times(e), refresh_due)) return false;
      sink.absent();
      return true;
    }
    if constexpr (!Sink::kNeedsVersion) {
      // The value alone is one atomic load: no sequence to check when it is
      // all the caller needs.
      if (!has_time_) {
        sink.value(detail::load_shared(e.value), kUnknownVersion);
        return true;
      }
    }
    const Snapshot s = snapshot(shard, h, e);
    if (!fresh_now(s.times, refresh_due)) return false;
    sink.value(s.value, s.version);
    return true;
  }

  /// False if an entry with these times has expired; notes whether a
  /// refresh is due.
  bool fresh_now(const detail::EntryTimes& times, bool& refresh_due) const noexcept {
    if (!has_time_) return true;
    const std::int64_t now = clock_->now().count();
    refresh_due = now >= times.refresh_at;
    return now < times.expires_at;
  }

  /// A consistent copy of what an in-place write rewrites.
  struct Snapshot {
    V value;
    std::uint64_t version;
    detail::EntryTimes times;
  };

  /// One try: false if a rewrite overlapped it.
  bool try_snapshot(const Shard& shard, std::uint64_t h, const Entry& e,
                    std::optional<Snapshot>& out) const noexcept {
    const std::uint32_t before = shard.write_slots.begin_read(h);
    out.emplace(Snapshot{detail::load_shared(e.value), detail::load_shared(e.version),
                         entries_.shared_times(e)});
    return shard.write_slots.unchanged(h, before);
  }

  Snapshot snapshot(const Shard& shard, std::uint64_t h, const Entry& e) const noexcept {
    std::optional<Snapshot> s;
    if (try_snapshot(shard, h, e, s)) [[likely]]
      return *s;
    return snapshot_after_write(shard, h, e);
  }

  RTCACHE_NOINLINE Snapshot snapshot_after_write(const Shard& shard, std::uint64_t h,
                                                 const Entry& e) const noexcept {
    std::optional<Snapshot> s;
    do {
      shard.write_slots.wait_for_writer(h);
    } while (!try_snapshot(shard, h, e, s));
    return *s;
  }

  /// A hit, starting a refresh if one is due. True on a hit.
  template <class Out>
  bool serve_hit(Shard& shard, std::uint64_t h, const K& key, Out& out) {
    constexpr bool kWithVersion = std::same_as<Out, std::optional<Versioned<V>>>;
    OptionalSink<kWithVersion> sink{out};
    return serve_hit_to(shard, h, key, sink);
  }

  template <class Sink>
  bool serve_hit_to(Shard& shard, std::uint64_t h, const K& key, Sink& sink) {
    const Hit hit = try_hit(shard, h, key, sink);
    if (hit == Hit::kHitAndRefresh) start_refresh(shard, h, key);
    return hit != Hit::kMiss;
  }

  /// Shows a lock-free hit to the policy, directly or through the buffer.
  void record_access(Shard& shard, Entry& e) const noexcept {
    if constexpr (kConcurrentAccess) {
      shard.policy.on_access(e);
    } else {
      if (shard.reads.try_push(&e)) return;
      // The buffer is full: replay it unless someone already does or the lock
      // is taken, in which case this hit is dropped. The flag keeps readers
      // from all writing the lock's cache line while one of them drains.
      if (shard.draining.load(std::memory_order_relaxed) ||
          shard.draining.exchange(true, std::memory_order_acquire)) {
        return;
      }
      {
        std::unique_lock lock(shard.mutex, std::try_to_lock);
        if (lock.owns_lock()) access_locked(shard, e);
      }
      shard.draining.store(false, std::memory_order_release);
    }
  }

  /// Under the lock: replays buffered hits, then records this one.
  static void access_locked(Shard& shard, Entry& e) noexcept {
    drain_reads_locked(shard);
    if (e.resident.load(std::memory_order_relaxed)) shard.policy.on_access(e);
  }

  static void drain_reads_locked(Shard& shard) noexcept {
    if constexpr (!kConcurrentAccess) {
      shard.reads.drain(
          [&](Entry& e) {
            if constexpr (requires { shard.policy.prepare_access(e); }) {
              shard.policy.prepare_access(e);
            }
          },
          [&](Entry& e) {
            if (e.resident.load(std::memory_order_relaxed)) shard.policy.on_access(e);
          });
    }
  }

  /// The hit path inline; everything else out of line, so that a hit pays
  /// for neither the miss path's stack frame nor its code.
  template <bool kWithVersion>
  Result<kWithVersion> lookup_or_load(const K& key) {
    const std::uint64_t h = hash_of(key);
    Shard& shard = shard_for(h);
    // One named result, returned on every path: built in the caller's slot,
    // never copied (a copy of a just-written optional stalls the load).
    Result<kWithVersion> found;
    if (!serve_hit(shard, h, key, found)) [[unlikely]]
      found = load_after_miss<kWithVersion>(shard, h, key);
    return found;
  }

  template <bool kWithVersion>
  RTCACHE_NOINLINE Result<kWithVersion> load_after_miss(Shard& shard, std::uint64_t h, const K& key,
                                                        bool counted = false) {
    if (detail::EpochDomain::inside_guard()) [[unlikely]] {
      // In get_with's function: no lock may be taken here (a writer holding
      // it may be waiting for that function to return). A grow can hide an
      // entry from the lock-free lookup, so look until the answer is certain.
      Result<kWithVersion> found;
      OptionalSink<kWithVersion> sink{found};
      if (try_hit</*kSettled=*/true>(shard, h, key, sink) != Hit::kMiss) return found;
      refuse_inside_read_section("a get that missed");
    }
    LoadPermit permit(*this);
    for (;;) {
      // A get is one lookup in the stats, however many times it looks.
      Claim claim = claim_locked_section(shard, h, key, &permit, !std::exchange(counted, true));
      switch (claim.kind) {
        case Claim::kHit:
          if (!claim.hit) return std::nullopt;
          return project<kWithVersion>(*claim.hit);
        case Claim::kJoin: {
          wait_for_load(*claim.flight);
          // A load that was superseded before we joined may hold a value
          // older than a write that finished before we arrived: load afresh.
          if (claim.joined_superseded) continue;
          const auto& outcome = claim.flight->outcome();
          if (!outcome) return std::nullopt;
          return project<kWithVersion>(*outcome);
        }
        case Claim::kOwn: {
          if (!claim.running && !start_claimed(claim, permit)) {
            // Started by another caller meanwhile (a loader may take it).
            permit.release();
            counters_.add(detail::Counter::kCoalescedWaits);
            wait_for_load(*claim.flight);
            if (claim.joined_superseded) continue;  // as a join: load afresh
            const auto& outcome = claim.flight->outcome();
            if (!outcome) return std::nullopt;
            return project<kWithVersion>(*outcome);
          }
          const auto& outcome = run_load(claim);
          if (!outcome) return std::nullopt;
          return project<kWithVersion>(*outcome);
        }
      }
    }
  }

  /// Waits for another thread's load, unless that would close a cycle of
  /// loads waiting for each other (`RecursiveCallError`).
  static void wait_for_load(const Flight& flight) {
    const detail::LoadWaits::Wait wait(flight);
    flight.wait();
  }

  /// Under the shard lock, after a lock-free miss: a hit after all, or the
  /// load in flight to wait for, or a load claimed by the caller: a new one,
  /// or one registered but not started. The caller starts it now (`running`)
  /// when `start_with` is given and holds or gets its permit; else it starts
  /// it later (`start_claimed`). Counts the hit or miss (with `count`:
  /// false when the caller looks again, as one lookup counts once), removes
  /// an expired entry unless it may be served stale, and releases the lock
  /// before returning.
  Claim claim_locked_section(Shard& shard, std::uint64_t h, const K& key,
                             LoadPermit* start_with = nullptr, bool count = true) {
    Claim claim{Claim::kHit, key, h, &shard, std::nullopt, nullptr, false, std::nullopt};
    Removals removals(*this);
    std::unique_lock lock(shard.mutex);
    const std::int64_t now = now_ns();
    if (Entry* e = find_locked(shard, h, key)) {
      if (!expired(*e, now)) {
        access_locked(shard, *e);
        if (count) counters_.add(detail::Counter::kHits);
        if (!e->negative) claim.hit = Versioned<V>{e->value, e->version};
        return claim;
      }
      if (within_stale_grace(*e, now)) {
        claim.stale = Versioned<V>{e->value, e->version};
      } else {
        counters_.add(detail::Counter::kExpirations);
        remove_locked(shard, e, RemovalCause::kExpired, removals);
      }
    }
    if (count) counters_.add(detail::Counter::kMisses);
    State* state = shard.pending.find(h, key);
    if (state != nullptr && state->load != nullptr && state->load->started()) {
      claim.kind = Claim::kJoin;
      claim.flight = state->load;
      if (claim.flight->owner() == std::this_thread::get_id()) {
        throw RecursiveCallError(
            "rtcache: the loader of a key asked the cache for that same key; that would "
            "deadlock");
      }
      claim.joined_superseded = claim.flight->superseded;
      counters_.add(detail::Counter::kCoalescedWaits);
      return claim;
    }
    claim.kind = Claim::kOwn;
    const bool start = start_with != nullptr && start_with->try_acquire();
    if (state != nullptr && state->load != nullptr) {
      claim.flight = state->load;  // claimed, not started: nobody waits for it
      // If another caller starts it, this one waits for it as for a join.
      claim.joined_superseded = claim.flight->superseded;
    } else {
      claim.flight = std::make_shared<Flight>();
      if (state == nullptr) state = &shard.pending.get(h, key);
      state->load = claim.flight;
    }
    claim.running = start;
    if (start) {
      claim.flight->start();
    } else {
      claim.flight->add_claim();
    }
    return claim;
  }

  /// Starts a claimed load, first taking the load permit (without the lock:
  /// the load is not started, so nobody waits for this thread). False if
  /// another caller started it meanwhile: wait for it instead.
  bool start_claimed(Claim& claim, LoadPermit& permit) {
    try {
      permit.acquire();
    } catch (...) {
      (void)fail_load(claim, std::current_exception());
      throw;
    }
    std::lock_guard lock(claim.shard->mutex);
    if (claim.flight->started()) return false;
    claim.flight->start();
    claim.running = true;
    return true;
  }

  /// Runs the loader for a claimed key, installs its result unless
  /// superseded, and releases the waiters. Returns the flight's outcome.
  const std::optional<Versioned<V>>& run_load(Claim& claim) {
    LoadOutcome outcome;
    try {
      outcome = call_loader(claim.key);
    } catch (...) {
      if (fail_load(claim, std::current_exception())) return claim.flight->outcome();
      throw;
    }
    finish_load(claim, std::move(outcome));
    return claim.flight->outcome();
  }

  /// Calls the loader (within the load bound), timing and counting it.
  LoadOutcome call_loader(const K& key) {
    counters_.add(detail::Counter::kLoads);
    const InsideLoader inside;
    const auto start = std::chrono::steady_clock::now();
    try {
      LoadOutcome outcome = to_outcome(std::invoke(loader_, key));
      add_load_time(start);
      return outcome;
    } catch (...) {
      add_load_time(start);
      counters_.add(detail::Counter::kLoadFailures);
      throw;
    }
  }

  /// A claimed load failed: unregister it, then release its waiters with the
  /// stale value (stale-if-error) or the exception.
  /// Returns true when the waiters were served the stale value.
  /// A claim the caller has not started is only given up: the load is then
  /// run by whoever starts it, or unregistered if nobody else claimed it
  /// (nobody waits for it).
  bool fail_load(Claim& claim, std::exception_ptr error) noexcept {
    {
      std::lock_guard lock(claim.shard->mutex);
      if (!claim.running) {
        if (!claim.flight->started() && claim.flight->drop_claim()) {
          finish_load_locked(*claim.shard, claim.hash, claim.key);
        }
        return false;
      }
      finish_load_locked(*claim.shard, claim.hash, claim.key);
    }
    if (claim.stale) {
      counters_.add(detail::Counter::kStaleServed);
      claim.flight->complete(std::move(claim.stale));
      return true;
    }
    claim.flight->fail(std::move(error));
    return false;
  }

  /// A claimed load succeeded: unregister it, install its result unless
  /// superseded, then release its waiters.
  void finish_load(Claim& claim, LoadOutcome&& outcome) {
    Shard& shard = *claim.shard;
    std::uint32_t weight = 1;
    if (outcome.value) {
      try {
        weight = weigh(claim.key, outcome.value->value);
      } catch (...) {
        // The weigher failed: the load fails as if the loader had thrown
        // (unregistered, its waiters released), rather than stay pending.
        if (fail_load(claim, std::current_exception())) return;
        throw;
      }
    }
    try {
      Removals removals(*this);
      std::lock_guard lock(shard.mutex);
      finish_load_locked(shard, claim.hash, claim.key);
      if (!claim.flight->superseded) {
        install_loaded_locked(shard, claim.hash, claim.key, outcome, weight, removals);
      } else if (Entry* current = find_locked(shard, claim.hash, claim.key)) {
        // A write of the key finished while we loaded. What we read may be
        // older than it, or newer than what the cache now holds (a second
        // write that reached the store but not yet the cache). Answering with
        // the cached entry keeps every caller's successive reads from going
        // back in time. An expired entry is dropped instead: stale-if-error
        // must not serve it after this answer, which may be newer.
        if (!expired(*current, now_ns())) {
          outcome.value =
              current->negative
                  ? std::nullopt
                  : std::optional<Versioned<V>>(Versioned<V>{current->value, current->version});
        } else {
          counters_.add(detail::Counter::kExpirations);
          remove_locked(shard, current, RemovalCause::kExpired, removals);
        }
      }
    } catch (...) {
      claim.flight->fail(std::current_exception());
      throw;
    }
    claim.flight->complete(std::move(outcome.value));
  }

  /// Caches a load's result; if the cache already holds a newer version, the
  /// outcome becomes that newer value instead.
  void install_loaded_locked(Shard& shard, std::uint64_t h, const K& key, LoadOutcome& outcome,
                             std::uint32_t weight, Removals& removals) {
    Entry* current = find_locked(shard, h, key);
    const std::int64_t now = now_ns();
    const bool current_live = current != nullptr && !expired(*current, now);
    if (outcome.value) {
      if (current_live && !current->negative &&
          is_older(outcome.value->version, current->version)) {
        outcome.value = Versioned<V>{current->value, current->version};
        return;
      }
      store_locked(shard, h, key, current, Versioned<V>(*outcome.value), outcome.ttl, weight,
                   removals);
    } else if (options_.negative_ttl.count() > 0) {
      store_negative_locked(shard, h, key, current, now, removals);
    } else if (current != nullptr) {
      remove_locked(shard, current, current_live ? RemovalCause::kReplaced : RemovalCause::kExpired,
                    removals);
    }
  }

  void add_load_time(std::chrono::steady_clock::time_point start) noexcept {
    const auto elapsed = std::chrono::steady_clock::now() - start;
    counters_.add(detail::Counter::kLoadNanoseconds,
                  static_cast<std::uint64_t>(
                      std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count()));
  }

  static void finish_load_locked(Shard& shard, std::uint64_t h, const K& key) noexcept {
    State* state = shard.pending.find(h, key);
    if (state == nullptr) return;
    state->load.reset();
    if (state->idle()) shard.pending.erase(h, *state);
  }

  static void supersede_load_locked(State& state) noexcept {
    if (state.load != nullptr) state.load->superseded = true;
  }

  /// Marks a load of `key` in progress as superseded (it will not be
  /// installed); returns the key's in-progress state, or nullptr if none.
  static State* supersede_pending_locked(Shard& shard, std::uint64_t h, const K& key) noexcept {
    State* state = shard.pending.find(h, key);
    if (state != nullptr) supersede_load_locked(*state);
    return state;
  }

  template <class R>
  static LoadOutcome to_outcome(R&& loaded) {
    using T = std::remove_cvref_t<R>;
    if constexpr (std::same_as<T, std::optional<Versioned<V>>>) {
      return LoadOutcome{std::forward<R>(loaded), {}};
    } else if constexpr (std::same_as<T, Versioned<V>>) {
      return LoadOutcome{std::optional<Versioned<V>>(std::forward<R>(loaded)), {}};
    } else if constexpr (std::same_as<T, std::optional<Loaded<V>>>) {
      if (!loaded) return LoadOutcome{};
      return LoadOutcome{Versioned<V>{std::move(loaded->value), loaded->version}, loaded->ttl};
    } else if constexpr (std::same_as<T, Loaded<V>>) {
      return LoadOutcome{Versioned<V>{std::move(loaded.value), loaded.version}, loaded.ttl};
    } else if constexpr (std::same_as<T, std::optional<V>>) {
      if (!loaded) return LoadOutcome{};
      return LoadOutcome{Versioned<V>{std::move(*loaded), kUnknownVersion}, {}};
    } else {
      return LoadOutcome{Versioned<V>{std::forward<R>(loaded), kUnknownVersion}, {}};
    }
  }

  // -- bulk loading ----------------------------------------------------------

  /// Loads the claimed keys of a get_all: in one batch call when the loader
  /// has `load_all`, else one by one. Claims that another caller started
  /// meanwhile (a loader, maybe this get_all's own, may take them) go to
  /// `joined`. Every claim is released, whatever throws.
  void load_owned(std::vector<Claim>& owned, std::vector<Claim>& joined,
                  std::unordered_map<K, V, Hash, KeyEqual>& found) {
    if (owned.empty()) return;
    if constexpr (BatchLoaderFor<Loader, K, V>) {
      LoadPermit permit(*this);
      try {
        permit.acquire();
        for (Claim& c : owned) {
          std::lock_guard lock(c.shard->mutex);
          if (!c.flight->started()) {
            c.flight->start();
            c.running = true;
          }
        }
        for (const Claim& c : owned) {
          if (c.running) continue;
          counters_.add(detail::Counter::kCoalescedWaits);
          joined.push_back(c);
        }
      } catch (...) {
        for (Claim& c : owned) (void)fail_load(c, std::current_exception());
        throw;
      }
      std::erase_if(owned, [](const Claim& c) { return !c.running; });
      if (owned.empty()) return;
      std::vector<K> keys;
      keys.reserve(owned.size());
      for (const Claim& c : owned) keys.push_back(c.key);
      std::vector<LoadOutcome> outcomes(owned.size());
      try {
        counters_.add(detail::Counter::kLoads);
        const InsideLoader inside;
        const auto start = std::chrono::steady_clock::now();
        std::unordered_map<K, std::size_t, Hash, KeyEqual> index(owned.size(), hash_, key_equal_);
        for (std::size_t i = 0; i < owned.size(); ++i) index.emplace(owned[i].key, i);
        try {
          for (auto&& [key, value] : loader_.load_all(std::as_const(keys))) {
            if (auto it = index.find(key); it != index.end()) {
              outcomes[it->second] = to_outcome(std::move(value));
            }
          }
        } catch (...) {
          add_load_time(start);
          counters_.add(detail::Counter::kLoadFailures);
          throw;
        }
        add_load_time(start);
      } catch (...) {
        const std::exception_ptr error = std::current_exception();
        bool all_stale = true;
        for (Claim& c : owned) {
          const bool stale = fail_load(c, error);
          if (stale) found.emplace(c.key, c.flight->outcome()->value);
          all_stale = all_stale && stale;
        }
        if (!all_stale) throw;
        return;
      }
      for (std::size_t i = 0; i < owned.size(); ++i) {
        try {
          finish_load(owned[i], std::move(outcomes[i]));
        } catch (...) {
          for (std::size_t j = i + 1; j < owned.size(); ++j)
            fail_load(owned[j], std::current_exception());
          throw;
        }
        const auto& value = owned[i].flight->outcome();
        if (value) found.emplace(owned[i].key, value->value);
      }
    } else {
      for (std::size_t i = 0; i < owned.size(); ++i) {
        try {
          LoadPermit permit(*this);
          if (!start_claimed(owned[i], permit)) {
            counters_.add(detail::Counter::kCoalescedWaits);
            joined.push_back(owned[i]);
            continue;
          }
          const auto& value = run_load(owned[i]);
          if (value) found.emplace(owned[i].key, value->value);
        } catch (...) {
          for (std::size_t j = i + 1; j < owned.size(); ++j)
            fail_load(owned[j], std::current_exception());
          throw;
        }
      }
    }
  }

  // -- refresh-ahead ---------------------------------------------------------

  /// Registers a background reload of `key` (unless a load of it is already
  /// running) and hands it to the executor.
  void start_refresh(Shard& shard, std::uint64_t h, const K& key) {
    Claim claim{Claim::kOwn, key, h, &shard, std::nullopt, nullptr, false, std::nullopt};
    {
      std::lock_guard lock(shard.mutex);
      Entry* e = find_locked(shard, h, key);
      if (e == nullptr || e->negative) return;
      State* state = shard.pending.find(h, key);
      if (state != nullptr && state->load != nullptr) return;
      claim.flight = std::make_shared<Flight>();  // started when it runs, or by a miss
      if (state == nullptr) state = &shard.pending.get(h, key);
      state->load = claim.flight;
      claim.flight->add_claim();
    }
    counters_.add(detail::Counter::kRefreshes);
    {
      std::lock_guard lock(tasks_mutex_);
      ++outstanding_tasks_;
    }
    // Shared with the task, so that it is still here if the task is refused.
    auto shared = std::make_shared<Claim>(std::move(claim));
    auto task = [this, shared] {
      run_refresh(*shared);
      std::lock_guard lock(tasks_mutex_);
      if (--outstanding_tasks_ == 0) tasks_done_.notify_all();
    };
    try {
      if (options_.executor) {
        options_.executor(std::move(task));
      } else {
        std::call_once(pool_once_, [&] {
          pool_ = std::make_unique<detail::ThreadPool>(options_.refresh_threads);
        });
        pool_->submit(std::move(task));
      }
    } catch (...) {
      // The executor refused the task: the refresh does not happen, and the
      // next hit may try again.
      fail_load(*shared, std::current_exception());
      allow_next_refresh(*shared);
      std::lock_guard lock(tasks_mutex_);
      if (--outstanding_tasks_ == 0) tasks_done_.notify_all();
    }
  }

  void run_refresh(Claim& claim) noexcept {
    LoadPermit permit(*this);
    LoadOutcome outcome;
    try {
      // A miss of the key (maybe a loader on this very executor) may have
      // started the load meanwhile: it then runs it.
      if (!start_claimed(claim, permit)) return;
      outcome = call_loader(claim.key);
    } catch (...) {
      counters_.add(detail::Counter::kRefreshFailures);
      // (A claim that could not start was given up by start_claimed.)
      if (claim.running) fail_load(claim, std::current_exception());  // the entry is still served
      allow_next_refresh(claim);
      return;
    }
    try {
      finish_load(claim, std::move(outcome));
    } catch (...) {  // out of memory, or the weigher failed: the old entry stays
      allow_next_refresh(claim);
    }
  }

  /// After a failed refresh: lets the next hit of the key try again.
  void allow_next_refresh(const Claim& claim) {
    std::lock_guard lock(claim.shard->mutex);
    if (Entry* e = find_locked(*claim.shard, claim.hash, claim.key)) {
      e->refresh_started.store(false, std::memory_order_relaxed);
    }
  }

  // -- writing ---------------------------------------------------------------

  Versioned<V> call_writer(const K& key, V&& value) {
    try {
      auto invoke = [&]() -> decltype(auto) {
        if constexpr (detail::HasWriteMember<Writer, K, V>) {
          return writer_.write(key, std::as_const(value));
        } else {
          return std::invoke(writer_, key, std::as_const(value));
        }
      };
      using R = std::remove_cvref_t<decltype(invoke())>;
      Versioned<V> stored = [&] {
        if constexpr (std::is_void_v<R>) {
          invoke();
          return Versioned<V>{std::move(value), kUnknownVersion};
        } else if constexpr (std::same_as<R, Versioned<V>>) {
          return Versioned<V>(invoke());
        } else {
          return Versioned<V>{V(invoke()), kUnknownVersion};
        }
      }();
      counters_.add(detail::Counter::kWrites);
      return stored;
    } catch (...) {
      counters_.add(detail::Counter::kWriteFailures);
      throw;
    }
  }

  PutResult put_if_version_impl(const K& key, V value, std::uint64_t expected) {
    const std::uint64_t h = hash_of(key);
    Shard& shard = shard_for(h);
    WriteGate gate(*this, shard, h, key);
    std::optional<Versioned<V>> stored;
    try {
      auto outcome = writer_.write_if_version(key, std::as_const(value), expected);
      if (outcome) {
        if constexpr (std::same_as<decltype(outcome), std::optional<std::uint64_t>>) {
          stored = Versioned<V>{std::move(value), *outcome};
        } else {
          stored = std::move(*outcome);
        }
      }
    } catch (...) {
      counters_.add(detail::Counter::kWriteFailures);
      throw;
    }
    const std::uint32_t weight = stored ? weigh_written(shard, gate, h, key, stored->value) : 1;
    Removals removals(*this);
    std::lock_guard lock(shard.mutex);
    if (!stored) {
      counters_.add(detail::Counter::kVersionConflicts);
      drop_written_locked(shard, gate, h, key, RemovalCause::kInvalidated, removals);
      return PutResult{false, kUnknownVersion};
    }
    counters_.add(detail::Counter::kWrites);
    const std::uint64_t version = stored->version;
    install_write_locked(shard, gate, h, key, std::move(*stored), weight, removals);
    gate.release_locked();
    return PutResult{true, version};
  }

  void erase_impl(const K& key) {
    const std::uint64_t h = hash_of(key);
    Shard& shard = shard_for(h);
    WriteGate gate(*this, shard, h, key);
    try {
      writer_.erase(key);
    } catch (...) {
      counters_.add(detail::Counter::kWriteFailures);
      throw;
    }
    counters_.add(detail::Counter::kWrites);
    Removals removals(*this);
    std::lock_guard lock(shard.mutex);
    drop_written_locked(shard, gate, h, key, RemovalCause::kErased, removals);
  }

  /// Ends a write of `key` (through `gate`) that leaves no value of it in
  /// the cache: an erase, a version conflict, a weigher that failed. Loads
  /// in progress are superseded and the cached entry is dropped.
  void drop_written_locked(Shard& shard, WriteGate& gate, std::uint64_t h, const K& key,
                           RemovalCause cause, Removals& removals) {
    (void)gate.supersede_locked();
    if (Entry* e = find_locked(shard, h, key)) remove_locked(shard, e, cause, removals);
    gate.release_locked();
  }

  /// The weight of a value the store now holds for `key` (whose write gate
  /// is `gate`). If the weigher throws, the cached entry, now older than the
  /// store, is dropped before the exception propagates: the next get loads
  /// the stored value.
  std::uint32_t weigh_written(Shard& shard, WriteGate& gate, std::uint64_t h, const K& key,
                              const V& value) {
    try {
      return weigh(key, value);
    } catch (...) {
      Removals removals(*this);
      std::lock_guard lock(shard.mutex);
      drop_written_locked(shard, gate, h, key, RemovalCause::kInvalidated, removals);
      throw;
    }
  }

  /// Caches the outcome of a successful write of `key` (state: its gate).
  void install_write_locked(Shard& shard, WriteGate& gate, std::uint64_t h, const K& key,
                            Versioned<V>&& stored, std::uint32_t weight, Removals& removals) {
    const std::uint64_t floor = gate.supersede_locked();
    Entry* current = find_locked(shard, h, key);
    if (is_older(stored.version, floor) ||
        (current != nullptr && !current->negative && is_older(stored.version, current->version))) {
      // The store reported an older version than one we hold or were told
      // of: trust neither and let the next get load the current row.
      if (current != nullptr) remove_locked(shard, current, RemovalCause::kInvalidated, removals);
      return;
    }
    try {
      store_locked(shard, h, key, current, std::move(stored), {}, weight, removals,
                   Admission::kAlways);
    } catch (...) {
      // Out of memory: the store has the new value, so the old one must go.
      if (current != nullptr) remove_locked(shard, current, RemovalCause::kReplaced, removals);
      throw;
    }
  }

  // -- the shard's table and policy ------------------------------------------

  /// How a new key enters a full shard. Loads and fills go through the
  /// policy's admission (an admission policy may refuse the newcomer: that is
  /// what keeps scans out). Writes make room first, so that the written value
  /// is cached and the next get is a hit (contract point 5).
  enum class Admission { kByPolicy, kAlways };

  /// Caches `item` for `key`, replacing `current` (the entry now held for
  /// `key`, or nullptr), then evicts while the shard is over capacity. A value
  /// heavier than the shard's whole share is not cached.
  void store_locked(Shard& shard, std::uint64_t h, const K& key, Entry* current,
                    Versioned<V>&& item, std::chrono::nanoseconds ttl, std::uint32_t weight,
                    Removals& removals, Admission admission = Admission::kByPolicy) {
    if (weight > shard.capacity) {
      counters_.add(detail::Counter::kRejectedOversized);
      if (current != nullptr) remove_locked(shard, current, RemovalCause::kReplaced, removals);
      return;
    }
    const std::int64_t now = now_ns();
    if constexpr (kInPlaceWrites) {
      if (current != nullptr && !current->negative && entries_.weight(*current) == weight) {
        update_in_place_locked(shard, h, *current, times_for(h, ttl, now), std::move(item),
                               removals);
        return;
      }
    }
    EntryOwner fresh(entries_, shard.blocks,
                     make_entry(shard, times_for(h, ttl, now), weight, h, key, std::move(item)));
    link_locked(shard, current, fresh, removals, admission);
  }

  /// Rewrites a cached value in place (`h`: its key's hash), under the
  /// sequence lock of its write slot: no new entry, no change to the table
  /// or the policy's lists, nothing to reclaim. The policy sees it as it
  /// would see the entry replaced.
  void update_in_place_locked(Shard& shard, std::uint64_t h, Entry& e, detail::EntryTimes times,
                              Versioned<V>&& item, Removals& removals) noexcept {
    drain_reads_locked(shard);
    removals.note(e, RemovalCause::kReplaced);  // copies the old value first
    shard.write_slots.begin_write(h);
    detail::store_shared(e.value, item.value);
    detail::store_shared(e.version, item.version);
    entries_.store_times(e, times);
    shard.write_slots.end_write(h);
    e.refresh_started.store(false, std::memory_order_relaxed);
    shard.policy.on_update(e);
  }

  /// Caches "not found" for `key` for the negative TTL.
  void store_negative_locked(Shard& shard, std::uint64_t h, const K& key, Entry* current,
                             std::int64_t now, Removals& removals) {
    const detail::EntryTimes times{now + options_.negative_ttl.count(), detail::kNever};
    const std::uint64_t version = current != nullptr ? current->version : kUnknownVersion;
    EntryOwner fresh(entries_, shard.blocks, make_entry(shard, times, 1, h, key, version));
    link_locked(shard, current, fresh, removals);
  }

  void link_locked(Shard& shard, Entry* current, EntryOwner& fresh, Removals& removals,
                   Admission admission = Admission::kByPolicy) {
    drain_reads_locked(shard);
    fresh->resident.store(true, std::memory_order_relaxed);
    if (current != nullptr && admission == Admission::kAlways &&
        entries_.weight(*fresh) > entries_.weight(*current)) {
      // A write of a heavier value makes room for the difference first, as
      // a write of a new key does: evicting after the replacement could pick
      // the value just written. The room may come from `current` itself
      // (then the write is linked as a new key; `current` is only compared).
      evict_locked(shard, removals, entries_.weight(*fresh) - entries_.weight(*current));
      if (find_locked(shard, fresh->hash, fresh->key) != current) current = nullptr;
    }
    if (current != nullptr) {
      shard.table.replace(current, fresh.get());
      shard.policy.on_replace(*current, *fresh);
      shard.weight = shard.weight - entries_.weight(*current) + entries_.weight(*fresh);
      fresh.release();
      removals.note(*current, RemovalCause::kReplaced);
      retire_locked(shard, current);
    } else {
      if (admission == Admission::kAlways) evict_locked(shard, removals, entries_.weight(*fresh));
      shard.table.insert(fresh.get(), [] { return epochs().stamp(); });
      shard.weight += entries_.weight(*fresh);
      shard.policy.on_insert(*fresh.release());
      // A grown table keeps its old bucket array until readers are done
      // with it (and so may the policy): free it soon, even if nothing is
      // evicted meanwhile.
      if (shard.has_retired_memory() && ++shard.inserts_since_reclaim >= shard.reclaim_every) {
        shard.inserts_since_reclaim = 0;
        reclaim_locked(shard, /*wait=*/false);
      }
    }
    evict_locked(shard, removals);
    publish_size_locked(shard);
  }

  /// Evicts until `incoming` more weight fits in the shard's share.
  void evict_locked(Shard& shard, Removals& removals, std::size_t incoming = 0) {
    std::int64_t now = -1;
    while (shard.weight + incoming > shard.capacity) {
      Entry* victim = shard.policy.evict();
      if (victim == nullptr) break;
      shard.table.unlink(victim);
      shard.weight -= entries_.weight(*victim);
      if (has_time_ && now < 0) now = now_ns();
      if (has_time_ && expired(*victim, now)) {
        counters_.add(detail::Counter::kExpirations);
        removals.note(*victim, RemovalCause::kExpired);
      } else {
        counters_.add(detail::Counter::kEvictions);
        removals.note(*victim, RemovalCause::kEvicted);
      }
      retire_locked(shard, victim);
    }
  }

  void remove_locked(Shard& shard, Entry* e, RemovalCause cause, Removals& removals) noexcept {
    drain_reads_locked(shard);
    shard.table.unlink(e);
    shard.policy.on_remove(*e);
    shard.weight -= entries_.weight(*e);
    removals.note(*e, cause);
    retire_locked(shard, e);
    publish_size_locked(shard);
  }

  /// Stores only what changed: readers of the shard's table share these
  /// lines, and most puts replace an entry by one of the same weight.
  static void publish_size_locked(Shard& shard) noexcept {
    if (shard.size.load(std::memory_order_relaxed) != shard.table.size()) {
      shard.size.store(shard.table.size(), std::memory_order_relaxed);
    }
    if (shard.weight_published.load(std::memory_order_relaxed) != shard.weight) {
      shard.weight_published.store(shard.weight, std::memory_order_relaxed);
    }
  }

  /// A new entry, in a block of the shard's pool.
  template <class... Args>
  Entry* make_entry(Shard& shard, detail::EntryTimes times, std::uint32_t weight,
                    Args&&... args) const {
    void* block = shard.blocks.allocate();
    try {
      return entries_.create_in(block, times, weight, std::forward<Args>(args)...);
    } catch (...) {
      shard.blocks.deallocate(block);
      throw;
    }
  }

  /// Destroys an entry no reader can still see, and gives its block back to
  /// the shard's pool for the next one.
  void free_entry_locked(Shard& shard, Entry* e) const noexcept {
    entries_.destroy(e, shard.blocks);
    shard.frees.store(shard.frees.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  /// Hands an unlinked entry to epoch reclamation. Lock-free readers may still
  /// be copying it, so it is freed only after every reader that might have
  /// seen it has left its epoch guard. It is stamped by the next reclaim.
  void retire_locked(Shard& shard, Entry* e) noexcept {
    e->resident.store(false, std::memory_order_relaxed);
    if (shard.retired.size() == shard.retired_capacity) reclaim_locked(shard, /*wait=*/true);
    shard.retired.push_back(Retired{e, kUnstamped});  // within the reserved capacity
    if (shard.retired.size() >= shard.reclaim_at) reclaim_locked(shard, /*wait=*/false);
  }

  /// Frees the retired entries (and bucket arrays) no reader can still see.
  /// With `wait`, first waits for every retired entry to become free-able;
  /// reader critical sections are short and never block, so this is brief.
  ///
  /// Stamping: the entries retired since the last reclaim were all unlinked
  /// before this call (under the shard lock, which orders other threads'
  /// unlinks before it), so one `stamp()` now, a read-modify-write that reads
  /// the latest epoch, is at least the stamp each would have got when it was
  /// unlinked, and makes their unlinks visible to whoever advances the epoch
  /// past it, exactly as a stamp per entry did. A later stamp only frees later.
  ///
  /// Advancing: moving the epoch costs a barrier on every running thread, so
  /// it is only tried once half the retired capacity is in use; other shards'
  /// and caches' advances free this shard's entries too.
  void reclaim_locked(Shard& shard, bool wait) noexcept {
    std::uint64_t now = epochs().stamp();
    // The list is in the order of retirement, and so of stamps: the
    // unstamped entries are its tail, and the free-able ones its head.
    for (auto r = shard.retired.rbegin(); r != shard.retired.rend() && r->stamp == kUnstamped;
         ++r) {
      r->stamp = now;
    }
    if (wait && !shard.retired.empty()) {
      now = wait_for_grace(shard.retired.back().stamp);
    } else if (shard.retired.size() >= shard.retired_capacity / 2 || shard.has_retired_memory()) {
      now = epochs().try_advance();
    }
    const auto safe = [now](std::uint64_t stamp) {
      return detail::EpochDomain::safe_to_free(stamp, now);
    };
    // No reader that could have seen these entries is still reading, so no
    // new record of them can reach the read buffer: empty it of the old ones.
    if constexpr (!kConcurrentAccess) {
      shard.reads.drain_all([&](Entry& e) {
        if (e.resident.load(std::memory_order_relaxed)) shard.policy.on_access(e);
      });
    }
    auto kept = shard.retired.begin();
    for (; kept != shard.retired.end() && safe(kept->stamp); ++kept) {
      free_entry_locked(shard, kept->entry);
    }
    shard.retired.erase(shard.retired.begin(), kept);
    shard.table.reclaim(safe);
    if constexpr (kPolicyRetires) shard.policy.reclaim(safe);
    shard.reclaim_at = std::min(shard.retired_capacity, shard.retired.size() + shard.reclaim_every);
  }

  /// Waits until an object retired at `stamp` may be freed; returns the epoch.
  static std::uint64_t wait_for_grace(std::uint64_t stamp) noexcept {
    std::uint64_t now = epochs().try_advance();
    while (!detail::EpochDomain::safe_to_free(stamp, now)) {
      std::this_thread::yield();
      now = epochs().try_advance();
    }
    return now;
  }

  Options options_;
  detail::EntryLayout<Entry> entries_{false, false};  // set with has_time_
  detail::EpochDomain* epoch_domain_ = &epochs();     // read on every hit: no static-init check
  std::uint64_t seed_;
  std::shared_ptr<const Clock> clock_;
  unsigned shard_bits_ = 0;
  bool has_time_ = false;
  std::optional<detail::ObjectArray<Shard>> shard_storage_;  // one block: a hit indexes it
  std::vector<Shard*> shards_;                               // the same, to iterate
  mutable detail::StripedCounters counters_;
  std::unique_ptr<detail::LoadSlots> load_slots_;
  hooks_type hooks_;
  // Background refreshes: counted so that the destructor can wait for them.
  std::mutex tasks_mutex_;
  std::condition_variable tasks_done_;
  std::size_t outstanding_tasks_ = 0;
  std::once_flag pool_once_;
  std::unique_ptr<detail::ThreadPool> pool_;
  [[no_unique_address]] Loader loader_;
  [[no_unique_address]] Writer writer_;
  [[no_unique_address]] Hash hash_;
  [[no_unique_address]] KeyEqual key_equal_;
};

/// Builds a cache whose Loader and Writer types are deduced:
/// `auto cache = rtcache::make_cache<int, std::string>(options, loader, writer);`
template <class K, class V, class Policy = DefaultPolicy, class Loader, class Writer = NoWriter>
[[nodiscard]] ReadThroughCache<K, V, Loader, Writer, Policy> make_cache(
    Options options, Loader loader, Writer writer = {}, CacheHooks<K, V> hooks = {}) {
  return ReadThroughCache<K, V, Loader, Writer, Policy>(std::move(options), std::move(loader),
                                                        std::move(writer), std::move(hooks));
}

}  // namespace rtcache
