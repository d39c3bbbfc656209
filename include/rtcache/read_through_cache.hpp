#pragma once

/// \file
/// ReadThroughCache: a bounded, thread-safe cache that is the application's
/// one door to its data store.

#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "concepts.hpp"
#include "detail/chained_table.hpp"
#include "detail/entry.hpp"
#include "detail/epoch.hpp"
#include "detail/hash.hpp"
#include "detail/key_state.hpp"
#include "detail/read_buffer.hpp"
#include "detail/striped_counters.hpp"
#include "errors.hpp"
#include "options.hpp"
#include "policy/lru.hpp"
#include "stats.hpp"
#include "versioned.hpp"

namespace rtcache {

/// The eviction policy used when none is named.
using DefaultPolicy = policy::Lru;

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
///
/// Thread safety: every member may be called from any number of threads at
/// once. The loader and writer are called concurrently for different keys, so
/// they must be thread-safe themselves; they run with no cache lock held and
/// may use the cache for other keys.
///
/// Exceptions: an exception from the loader or writer propagates to the
/// caller (and to every caller waiting for that load) and leaves the cache as
/// it was. `std::bad_alloc` leaves the cache consistent. `Hash` and `KeyEqual`
/// must not throw.
///
/// Complexity: hits, puts and erases are O(1) on average plus the loader or
/// writer call; `invalidate_all` is O(size).
///
/// The cache holds at most `Options::capacity` entries: each of its
/// power-of-two shards (lock stripes) holds an exact share of it.
template <class K, class V, class Loader, class Writer = NoWriter, class Policy = DefaultPolicy,
          class Hash = std::hash<K>, class KeyEqual = std::equal_to<K>>
class ReadThroughCache {
  static_assert(LoaderFor<Loader, K, V>,
                "rtcache: the Loader must be callable as loader(const K&) and return "
                "std::optional<V> (std::nullopt: not found), std::optional<Versioned<V>>, "
                "V or Versioned<V>");
  static_assert(std::same_as<Writer, NoWriter> || WriterFor<Writer, K, V>,
                "rtcache: the Writer must be callable as writer(const K&, const V&), or have a "
                "member write(const K&, const V&), returning void, V or Versioned<V>");
  static_assert(EvictionPolicy<Policy>,
                "rtcache: the Policy must satisfy rtcache::EvictionPolicy: a Hook type and a "
                "Shard<Entry> class with on_insert, on_access, on_replace, on_remove and evict");
  static_assert(std::copy_constructible<K>, "rtcache: keys must be copy-constructible");
  static_assert(std::copy_constructible<V>, "rtcache: values must be copy-constructible");

 public:
  using key_type = K;
  using mapped_type = V;
  using loader_type = Loader;
  using writer_type = Writer;
  using policy_type = Policy;

  /// Builds an empty cache. Throws `std::invalid_argument` for invalid options.
  explicit ReadThroughCache(Options options, Loader loader = Loader{}, Writer writer = Writer{},
                            Hash hash = Hash{}, KeyEqual key_equal = KeyEqual{})
      : options_(options),
        seed_(options.seed ? *options.seed : detail::random_seed()),
        shard_bits_(0),
        counters_(std::thread::hardware_concurrency()),
        loader_(std::move(loader)),
        writer_(std::move(writer)),
        hash_(std::move(hash)),
        key_equal_(std::move(key_equal)) {
    const std::size_t shard_count =
        detail::validate_and_pick_shards(options_, std::thread::hardware_concurrency());
    options_.shards = shard_count;
    while ((std::size_t{1} << shard_bits_) < shard_count) ++shard_bits_;
    shards_.reserve(shard_count);
    for (std::size_t i = 0; i < shard_count; ++i) {
      // Shard i holds capacity / shards entries, the first (capacity % shards)
      // one more: the shares add up to the capacity exactly.
      const std::size_t share =
          options_.capacity / shard_count + (i < options_.capacity % shard_count ? 1 : 0);
      shards_.push_back(std::make_unique<Shard>(share, detail::mix64(seed_ + i)));
    }
  }

  ReadThroughCache(const ReadThroughCache&) = delete;
  ReadThroughCache& operator=(const ReadThroughCache&) = delete;

  /// Destroys the entries. No call may be in progress.
  ~ReadThroughCache() {
    for (auto& shard : shards_) {
      shard->table.for_each([](Entry& e) { delete &e; });
      shard->table.clear();
      for (const Retired& r : shard->retired) delete r.entry;
    }
  }

  /// The value of `key`: from the cache, or else from the loader (coalesced
  /// with any load of `key` in progress). `std::nullopt` when the store has no
  /// such key. Throws what the loader throws, and `RecursiveCallError` when
  /// called from the loader of `key` itself.
  [[nodiscard]] std::optional<V> get(const K& key) { return lookup_or_load<false>(key); }

  /// Like `get`, with the version of the value.
  [[nodiscard]] std::optional<Versioned<V>> get_versioned(const K& key) {
    return lookup_or_load<true>(key);
  }

  /// The cached value of `key`, or `std::nullopt`; never calls the loader.
  [[nodiscard]] std::optional<V> get_if_present(const K& key) const {
    const std::uint64_t h = hash_of(key);
    Shard& shard = shard_for(h);
    std::optional<V> found;
    if (try_hit<false>(shard, h, key, found)) return found;
    {
      // A concurrent grow can hide an entry from the lock-free lookup.
      std::lock_guard lock(shard.mutex);
      if (Entry* e = find_locked(shard, h, key)) {
        access_locked(shard, *e);
        counters_.add(detail::Counter::kHits);
        return e->value;
      }
    }
    counters_.add(detail::Counter::kMisses);
    return std::nullopt;
  }

  /// Writes `value` to the store through the writer, then caches what the
  /// store holds. Writes of one key run one at a time, so the cache ends with
  /// the value of the write that completed last. If the writer throws, the
  /// cache is unchanged and the exception propagates.
  void put(const K& key, V value) {
    static_assert(!std::same_as<Writer, NoWriter>,
                  "rtcache: put() needs a Writer; this cache was declared read-only (NoWriter)");
    const std::uint64_t h = hash_of(key);
    Shard& shard = shard_for(h);
    WriteGate gate(shard, key);
    Versioned<V> stored = call_writer(key, std::move(value));
    std::lock_guard lock(shard.mutex);
    install_write_locked(shard, gate.state(), h, key, std::move(stored));
  }

  /// Writes `value` only if the store holds `key` at version `expected`
  /// (compare-and-set, done by the writer's `write_if_version`). On success
  /// the cache holds the new value and version. On a conflict the store is
  /// unchanged, the cached entry is dropped so that the next `get` loads the
  /// winner, and the result says `applied == false`.
  PutResult put_if_version(const K& key, V value, std::uint64_t expected) {
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
    static_assert(DeletingWriterFor<Writer, K>,
                  "rtcache: erase() needs a Writer that can delete: give it a member "
                  "erase(const K&) that removes the key from the store");
    if constexpr (DeletingWriterFor<Writer, K>) erase_impl(key);
  }

  /// Drops `key` from this cache only (the store is not touched). A load of
  /// `key` in progress will not be installed.
  void invalidate(const K& key) {
    const std::uint64_t h = hash_of(key);
    Shard& shard = shard_for(h);
    std::lock_guard lock(shard.mutex);
    if (auto it = shard.pending.find(key); it != shard.pending.end()) {
      supersede_load_locked(it->second);
    }
    if (Entry* e = find_locked(shard, h, key)) remove_locked(shard, e);
  }

  /// Drops every entry from this cache; loads in progress will not be installed.
  void invalidate_all() {
    std::vector<Entry*> dropped;
    for (auto& shard_ptr : shards_) {
      Shard& shard = *shard_ptr;
      std::lock_guard lock(shard.mutex);
      dropped.reserve(dropped.size() + shard.table.size());  // may throw: nothing changed yet
      for (auto& [key, state] : shard.pending) supersede_load_locked(state);
      drain_reads_locked(shard);
      shard.table.for_each([&](Entry& e) {
        shard.policy.on_remove(e);
        e.resident.store(false, std::memory_order_relaxed);
        dropped.push_back(&e);
      });
      shard.table.clear();
      shard.size.store(0, std::memory_order_relaxed);
    }
    // Readers may still be copying some of them: free after a grace period,
    // with every read buffer emptied of them first.
    const std::uint64_t stamp = epochs().stamp();
    wait_for_grace(stamp);
    for (auto& shard_ptr : shards_) {
      std::lock_guard lock(shard_ptr->mutex);
      shard_ptr->reads.drain_all([](Entry&) {});
    }
    for (Entry* e : dropped) delete e;
  }

  /// Caches `value` as the store's current value of `key`, at `version`,
  /// without calling the writer: for values learned elsewhere (a cache-aside
  /// fill, a message from another instance). Refused, like a load, when the
  /// cache holds a newer version. Does not affect loads in progress.
  void fill(const K& key, V value, std::uint64_t version = kUnknownVersion) {
    const std::uint64_t h = hash_of(key);
    Shard& shard = shard_for(h);
    std::lock_guard lock(shard.mutex);
    Entry* current = find_locked(shard, h, key);
    if (current != nullptr && is_older(version, current->version)) return;
    store_locked(shard, h, key, current, Versioned<V>{std::move(value), version});
  }

  /// The number of cached entries (a snapshot, summed over the shards).
  [[nodiscard]] std::size_t size() const noexcept {
    std::size_t total = 0;
    for (const auto& shard : shards_) total += shard->size.load(std::memory_order_relaxed);
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
    return s;
  }

  /// For tests: the shard `key` belongs to.
  [[nodiscard]] std::size_t shard_index_of(const K& key) const noexcept {
    return shard_index(hash_of(key));
  }

  /// For tests: calls `check(policy, resident_count)` on each shard's policy
  /// under its lock and returns true when every call does, and every shard's
  /// table agrees with its size and capacity.
  template <class Check>
  [[nodiscard]] bool check_shards(Check&& check) const {
    for (const auto& shard : shards_) {
      std::lock_guard lock(shard->mutex);
      const std::size_t resident = shard->table.size();
      if (resident > shard->capacity) return false;
      if (resident != shard->size.load(std::memory_order_relaxed)) return false;
      if (!check(shard->policy, resident)) return false;
    }
    return true;
  }

  /// For tests: the number of keys with a load or write in progress.
  [[nodiscard]] std::size_t pending_count() const {
    std::size_t total = 0;
    for (const auto& shard : shards_) {
      std::lock_guard lock(shard->mutex);
      total += shard->pending.size();
    }
    return total;
  }

 private:
  using Entry = detail::Entry<K, V, typename Policy::Hook>;
  using ShardPolicy = typename Policy::template Shard<Entry>;
  using Flight = detail::LoadFlight<V>;
  using State = detail::KeyState<V>;

  /// Policies whose `on_access` only sets atomic bits in the entry (CLOCK,
  /// SIEVE, S3-FIFO) take hits directly from lock-free readers; the others
  /// (LRU, W-TinyLFU) receive them through the shard's read buffer.
  static constexpr bool kConcurrentAccess = [] {
    if constexpr (requires { Policy::kConcurrentAccess; }) {
      return static_cast<bool>(Policy::kConcurrentAccess);
    } else {
      return false;
    }
  }();

  /// An unlinked entry and the epoch it was unlinked in.
  struct Retired {
    Entry* entry;
    std::uint64_t stamp;
  };
  static constexpr std::size_t kRetiredCapacity = 64;

  static detail::EpochDomain& epochs() noexcept { return detail::EpochDomain::instance(); }

  /// One lock stripe: its table, its policy, its in-progress registry and its
  /// lock, on cache lines of its own.
  struct alignas(64) Shard {
    Shard(std::size_t share, std::uint64_t seed)
        : capacity(share), reads(std::thread::hardware_concurrency()), policy(share, seed) {
      retired.reserve(kRetiredCapacity);
    }

    mutable std::mutex mutex;
    std::condition_variable write_done;  // a write of some key in this shard finished
    const std::size_t capacity;
    std::atomic<std::size_t> size{0};
    detail::ChainedTable<Entry> table;
    mutable detail::ReadBuffer<Entry> reads;    // hits not yet shown to the policy
    mutable std::atomic<bool> draining{false};  // a reader is replaying `reads`
    mutable ShardPolicy policy;
    std::vector<Retired> retired;  // unlinked, waiting for readers to leave
    std::unordered_map<K, State, Hash, KeyEqual> pending;
  };

  /// Admits one write of a key at a time: the constructor waits until no
  /// other write of the key is in progress, the destructor lets the next in.
  class WriteGate {
   public:
    WriteGate(Shard& shard, const K& key) : shard_(shard), key_(key) {
      std::unique_lock lock(shard.mutex);
      state_ = &shard.pending.try_emplace(key).first->second;
      const auto me = std::this_thread::get_id();
      if (state_->writer == me) {
        throw RecursiveCallError(
            "rtcache: the writer of a key wrote or erased that same key through the cache; "
            "that would deadlock");
      }
      if (state_->writer != std::thread::id{}) {
        ++state_->waiting_writers;
        shard.write_done.wait(lock, [&] { return state_->writer == std::thread::id{}; });
        --state_->waiting_writers;
      }
      state_->writer = me;
    }

    WriteGate(const WriteGate&) = delete;
    WriteGate& operator=(const WriteGate&) = delete;

    ~WriteGate() {
      bool wake = false;
      {
        std::lock_guard lock(shard_.mutex);
        state_->writer = std::thread::id{};
        wake = state_->waiting_writers > 0;
        if (state_->idle()) shard_.pending.erase(key_);
      }
      if (wake) shard_.write_done.notify_all();
    }

    State& state() const noexcept { return *state_; }

   private:
    Shard& shard_;
    const K& key_;
    State* state_ = nullptr;
  };

  // -- hashing -------------------------------------------------------------

  std::uint64_t hash_of(const K& key) const noexcept {
    return detail::mix64(static_cast<std::uint64_t>(hash_(key)) ^ seed_);
  }
  std::size_t shard_index(std::uint64_t h) const noexcept {
    return shard_bits_ == 0 ? 0 : static_cast<std::size_t>(h >> (64 - shard_bits_));
  }
  Shard& shard_for(std::uint64_t h) const noexcept { return *shards_[shard_index(h)]; }

  Entry* find_locked(const Shard& shard, std::uint64_t h, const K& key) const {
    return shard.table.find(h, [&](const Entry& e) { return key_equal_(e.key, key); });
  }

  static bool is_older(std::uint64_t candidate, std::uint64_t current) noexcept {
    return candidate != kUnknownVersion && candidate < current;
  }

  // -- reading -------------------------------------------------------------

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

  /// The hit path: no lock, no allocation, and no write to memory that all
  /// readers of the shard write (the epoch announcement is per thread, the
  /// counters and read buffer are striped). Copies the value into `out` and
  /// returns true on a hit.
  template <bool kWithVersion>
  bool try_hit(Shard& shard, std::uint64_t h, const K& key, Result<kWithVersion>& out) const {
    detail::EpochGuard guard;
    Entry* e =
        shard.table.find(h, [&](const Entry& candidate) { return key_equal_(candidate.key, key); });
    if (e == nullptr) return false;
    if constexpr (kWithVersion) {
      out.emplace(Versioned<V>{e->value, e->version});
    } else {
      out.emplace(e->value);
    }
    record_access(shard, *e);
    counters_.add(detail::Counter::kHits);
    return true;
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
  void access_locked(Shard& shard, Entry& e) const noexcept {
    drain_reads_locked(shard);
    if (e.resident.load(std::memory_order_relaxed)) shard.policy.on_access(e);
  }

  static void drain_reads_locked(Shard& shard) noexcept {
    if constexpr (!kConcurrentAccess) {
      shard.reads.drain([&](Entry& e) {
        if (e.resident.load(std::memory_order_relaxed)) shard.policy.on_access(e);
      });
    }
  }

  template <bool kWithVersion>
  Result<kWithVersion> lookup_or_load(const K& key) {
    const std::uint64_t h = hash_of(key);
    Shard& shard = shard_for(h);
    {
      Result<kWithVersion> found;
      if (try_hit<kWithVersion>(shard, h, key, found)) return found;
    }
    bool counted_miss = false;
    for (;;) {
      std::unique_lock lock(shard.mutex);
      if (Entry* e = find_locked(shard, h, key)) {
        access_locked(shard, *e);
        if (!counted_miss) counters_.add(detail::Counter::kHits);
        if constexpr (kWithVersion) {
          return Versioned<V>{e->value, e->version};
        } else {
          return e->value;
        }
      }
      auto it = shard.pending.find(key);
      if (it != shard.pending.end() && it->second.load != nullptr) {
        std::shared_ptr<Flight> flight = it->second.load;
        if (flight->owner() == std::this_thread::get_id()) {
          throw RecursiveCallError(
              "rtcache: the loader of a key asked the cache for that same key; that would "
              "deadlock");
        }
        const bool joined_superseded = flight->superseded;
        lock.unlock();
        if (!counted_miss) counters_.add(detail::Counter::kMisses);
        counted_miss = true;
        counters_.add(detail::Counter::kCoalescedWaits);
        flight->wait();
        // A load that was superseded before we joined may hold a value older
        // than a write that finished before we arrived: load afresh.
        if (joined_superseded) continue;
        const auto& outcome = flight->outcome();
        if (!outcome) return std::nullopt;
        return project<kWithVersion>(*outcome);
      }
      auto flight = std::make_shared<Flight>(std::this_thread::get_id());
      if (it == shard.pending.end()) it = shard.pending.try_emplace(key).first;
      it->second.load = flight;
      lock.unlock();
      if (!counted_miss) counters_.add(detail::Counter::kMisses);
      const auto& outcome = run_load(shard, h, key, *flight);
      if (!outcome) return std::nullopt;
      return project<kWithVersion>(*outcome);
    }
  }

  /// Runs the loader for `key` (registered as `flight`), installs its result
  /// unless superseded, and releases the waiters. Returns the flight's outcome.
  const std::optional<Versioned<V>>& run_load(Shard& shard, std::uint64_t h, const K& key,
                                              Flight& flight) {
    counters_.add(detail::Counter::kLoads);
    std::optional<Versioned<V>> outcome;
    const auto start = std::chrono::steady_clock::now();
    try {
      outcome = to_versioned(std::invoke(loader_, key));
    } catch (...) {
      add_load_time(start);
      counters_.add(detail::Counter::kLoadFailures);
      {
        std::lock_guard lock(shard.mutex);
        finish_load_locked(shard, key);
      }
      flight.fail(std::current_exception());
      throw;
    }
    add_load_time(start);
    try {
      std::lock_guard lock(shard.mutex);
      finish_load_locked(shard, key);
      if (outcome && !flight.superseded) {
        Entry* current = find_locked(shard, h, key);
        if (current != nullptr && is_older(outcome->version, current->version)) {
          // A newer value arrived while we loaded: serve it, keep it.
          outcome = Versioned<V>{current->value, current->version};
        } else {
          store_locked(shard, h, key, current, Versioned<V>(*outcome));
        }
      }
    } catch (...) {
      flight.fail(std::current_exception());
      throw;
    }
    flight.complete(std::move(outcome));
    return flight.outcome();
  }

  void add_load_time(std::chrono::steady_clock::time_point start) noexcept {
    const auto elapsed = std::chrono::steady_clock::now() - start;
    counters_.add(detail::Counter::kLoadNanoseconds,
                  static_cast<std::uint64_t>(
                      std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count()));
  }

  void finish_load_locked(Shard& shard, const K& key) noexcept {
    auto it = shard.pending.find(key);
    if (it == shard.pending.end()) return;
    it->second.load.reset();
    if (it->second.idle()) shard.pending.erase(it);
  }

  static void supersede_load_locked(State& state) noexcept {
    if (state.load != nullptr) state.load->superseded = true;
  }

  template <class R>
  static std::optional<Versioned<V>> to_versioned(R&& loaded) {
    using T = std::remove_cvref_t<R>;
    if constexpr (std::same_as<T, std::optional<Versioned<V>>>) {
      return std::forward<R>(loaded);
    } else if constexpr (std::same_as<T, Versioned<V>>) {
      return std::optional<Versioned<V>>(std::forward<R>(loaded));
    } else if constexpr (std::same_as<T, std::optional<V>>) {
      if (!loaded) return std::nullopt;
      return Versioned<V>{std::move(*loaded), kUnknownVersion};
    } else {
      return Versioned<V>{std::forward<R>(loaded), kUnknownVersion};
    }
  }

  // -- writing -------------------------------------------------------------

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
    WriteGate gate(shard, key);
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
    std::lock_guard lock(shard.mutex);
    if (!stored) {
      counters_.add(detail::Counter::kVersionConflicts);
      supersede_load_locked(gate.state());
      if (Entry* e = find_locked(shard, h, key)) remove_locked(shard, e);
      return PutResult{false, kUnknownVersion};
    }
    counters_.add(detail::Counter::kWrites);
    const std::uint64_t version = stored->version;
    install_write_locked(shard, gate.state(), h, key, std::move(*stored));
    return PutResult{true, version};
  }

  void erase_impl(const K& key) {
    const std::uint64_t h = hash_of(key);
    Shard& shard = shard_for(h);
    WriteGate gate(shard, key);
    try {
      writer_.erase(key);
    } catch (...) {
      counters_.add(detail::Counter::kWriteFailures);
      throw;
    }
    counters_.add(detail::Counter::kWrites);
    std::lock_guard lock(shard.mutex);
    supersede_load_locked(gate.state());
    if (Entry* e = find_locked(shard, h, key)) remove_locked(shard, e);
  }

  /// Caches the outcome of a successful write of `key` (state: its gate).
  void install_write_locked(Shard& shard, State& state, std::uint64_t h, const K& key,
                            Versioned<V>&& stored) {
    supersede_load_locked(state);
    Entry* current = find_locked(shard, h, key);
    if (current != nullptr && is_older(stored.version, current->version)) {
      // The store reported an older version than one we hold: trust neither
      // and let the next get load the current row.
      remove_locked(shard, current);
      return;
    }
    try {
      store_locked(shard, h, key, current, std::move(stored));
    } catch (...) {
      // Out of memory: the store has the new value, so the old one must go.
      if (current != nullptr) remove_locked(shard, current);
      throw;
    }
  }

  // -- the shard's table and policy ----------------------------------------

  /// Caches `item` for `key`, replacing `current` (the entry now held for
  /// `key`, or nullptr), then evicts while the shard is over capacity.
  void store_locked(Shard& shard, std::uint64_t h, const K& key, Entry* current,
                    Versioned<V>&& item) {
    drain_reads_locked(shard);
    auto fresh = std::make_unique<Entry>(h, key, std::move(item));
    fresh->resident.store(true, std::memory_order_relaxed);
    if (current != nullptr) {
      shard.table.replace(current, fresh.get());
      shard.policy.on_replace(*current, *fresh);
      fresh.release();
      retire_locked(shard, current);
      return;
    }
    shard.table.insert(fresh.get(), epochs().stamp());
    shard.policy.on_insert(*fresh.release());
    while (shard.table.size() > shard.capacity) {
      Entry* victim = shard.policy.evict();
      if (victim == nullptr) break;
      shard.table.unlink(victim);
      retire_locked(shard, victim);
      counters_.add(detail::Counter::kEvictions);
    }
    shard.size.store(shard.table.size(), std::memory_order_relaxed);
  }

  void remove_locked(Shard& shard, Entry* e) noexcept {
    drain_reads_locked(shard);
    shard.table.unlink(e);
    shard.policy.on_remove(*e);
    retire_locked(shard, e);
    shard.size.store(shard.table.size(), std::memory_order_relaxed);
  }

  /// Hands an unlinked entry to epoch reclamation. Lock-free readers may still
  /// be copying it, so it is freed only after every reader that might have
  /// seen it has left its epoch guard.
  void retire_locked(Shard& shard, Entry* e) noexcept {
    e->resident.store(false, std::memory_order_relaxed);
    if (shard.retired.size() == kRetiredCapacity) reclaim_locked(shard, /*wait=*/true);
    shard.retired.push_back(Retired{e, epochs().stamp()});  // within the reserved capacity
    if (shard.retired.size() >= kRetiredCapacity / 2) reclaim_locked(shard, /*wait=*/false);
  }

  /// Frees the retired entries (and bucket arrays) no reader can still see.
  /// With `wait`, first waits for every retired entry to become free-able;
  /// reader critical sections are short and never block, so this is brief.
  void reclaim_locked(Shard& shard, bool wait) noexcept {
    std::uint64_t now = epochs().try_advance();
    if (wait && !shard.retired.empty()) now = wait_for_grace(shard.retired.back().stamp);
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
    std::erase_if(shard.retired, [&](const Retired& r) {
      if (!safe(r.stamp)) return false;
      delete r.entry;
      return true;
    });
    shard.table.reclaim(safe);
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
  std::uint64_t seed_;
  unsigned shard_bits_;
  std::vector<std::unique_ptr<Shard>> shards_;
  mutable detail::StripedCounters counters_;
  [[no_unique_address]] Loader loader_;
  [[no_unique_address]] Writer writer_;
  [[no_unique_address]] Hash hash_;
  [[no_unique_address]] KeyEqual key_equal_;
};

/// Builds a cache whose Loader and Writer types are deduced:
/// `auto cache = rtcache::make_cache<int, std::string>(options, loader, writer);`
template <class K, class V, class Policy = DefaultPolicy, class Loader, class Writer = NoWriter>
[[nodiscard]] ReadThroughCache<K, V, Loader, Writer, Policy> make_cache(Options options,
                                                                        Loader loader,
                                                                        Writer writer = {}) {
  return ReadThroughCache<K, V, Loader, Writer, Policy>(options, std::move(loader),
                                                        std::move(writer));
}

}  // namespace rtcache
