#pragma once

// A thread-safe fake store for the model-checked stress test: it keeps, per
// key, every acknowledged write and delete with its version (the key's
// history), injects faults (throws from the loader and the writer, short
// stalls), and checks on every loader call that no other load of that key is
// running.
//
// Versions: each key has a counter that never goes back, not even across a
// delete (a delete is a version too, with no value). So the versions of one
// key are totally ordered, and "the state of key k at version n" is either a
// value or "absent". Version 0 is the state before any write: absent.
//
// Values are 64-bit tokens: the key in the top 16 bits, then the writing
// thread and a sequence number, so a value names its key and is unique.
//
// Memory stays bounded for long soaks: a key's history is pruned below the
// lowest version any running check could still need (see `Bounds`).

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <rtcache/versioned.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace rtcache::test::model {

using Key = int;
using Value = std::uint64_t;

[[nodiscard]] constexpr Value make_value(Key key, unsigned thread, std::uint64_t sequence) {
  return (static_cast<std::uint64_t>(key) << 48) |
         (static_cast<std::uint64_t>(thread & 0xff) << 40) |
         (sequence & ((std::uint64_t{1} << 40) - 1));
}
[[nodiscard]] constexpr Key key_of(Value value) { return static_cast<Key>(value >> 48); }

/// What the store throws when a fault is injected.
struct InjectedFault : std::runtime_error {
  explicit InjectedFault(const char* where) : std::runtime_error(where) {}
};

/// How often the store misbehaves, per call, in thousandths.
struct FaultPlan {
  unsigned loader_throw_per_mille = 30;
  unsigned writer_throw_per_mille = 30;
  unsigned stall_per_mille = 100;
  unsigned max_stall_yields = 16;  // a stall is 1..max yields: microseconds, never a sleep
};

/// A small per-thread generator (xorshift64*), so that fault decisions need
/// no shared state.
class FastRandom {
 public:
  explicit FastRandom(std::uint64_t seed) : state_(seed * 0x9e3779b97f4a7c15ULL + 1) {}
  std::uint64_t next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545f4914f6cdd1dULL;
  }
  unsigned below(unsigned n) { return static_cast<unsigned>(next() % n); }
  bool per_mille(unsigned p) { return below(1000) < p; }

 private:
  std::uint64_t state_;
};

/// Violations found by any thread: a count and the first few messages.
class Violations {
 public:
  void report(std::string message) {
    count_.fetch_add(1);
    std::lock_guard lock(mutex_);
    if (messages_.size() < kKept) messages_.push_back(std::move(message));
  }
  [[nodiscard]] std::uint64_t count() const { return count_.load(); }
  [[nodiscard]] std::vector<std::string> messages() const {
    std::lock_guard lock(mutex_);
    return messages_;
  }

 private:
  static constexpr std::size_t kKept = 20;
  std::atomic<std::uint64_t> count_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> messages_;
};

/// The lowest version each thread's running check may still look up, per
/// key, so that the store can prune history below all of them.
///
/// A check of key k publishes 0 ("reading"), then reads the acknowledged
/// version a, then publishes a. A pruner reads the acknowledged version
/// first, then every published bound: either it sees the check's bound, or
/// the check read the acknowledged version after the pruner did and so
/// needs nothing the pruner drops (acknowledged versions only grow).
class Bounds {
 public:
  static constexpr std::uint64_t kIdle = std::numeric_limits<std::uint64_t>::max();

  Bounds(unsigned threads, int keys)
      : keys_(keys), slots_(static_cast<std::size_t>(threads) * static_cast<std::size_t>(keys)) {
    for (auto& s : slots_) s.store(kIdle);
  }
  void set(unsigned thread, Key key, std::uint64_t bound) { slot(thread, key).store(bound); }
  void clear(unsigned thread, Key key) { slot(thread, key).store(kIdle); }
  [[nodiscard]] std::uint64_t lowest(Key key, std::uint64_t start) const {
    for (std::size_t t = 0; t < slots_.size() / static_cast<std::size_t>(keys_); ++t) {
      start = std::min(
          start,
          slots_[t * static_cast<std::size_t>(keys_) + static_cast<std::size_t>(key)].load());
    }
    return start;
  }

 private:
  std::atomic<std::uint64_t>& slot(unsigned thread, Key key) {
    return slots_[static_cast<std::size_t>(thread) * static_cast<std::size_t>(keys_) +
                  static_cast<std::size_t>(key)];
  }
  int keys_;
  std::vector<std::atomic<std::uint64_t>> slots_;
};

class HistoryStore {
 public:
  HistoryStore(int keys, unsigned threads, FaultPlan plan, Violations& violations)
      : keys_(keys), plan_(plan), violations_(violations), bounds_(threads, keys) {
    rows_.reserve(static_cast<std::size_t>(keys));
    for (int k = 0; k < keys; ++k) rows_.push_back(std::make_unique<Row>());
  }

  HistoryStore(const HistoryStore&) = delete;
  HistoryStore& operator=(const HistoryStore&) = delete;

  /// Seeds this thread's fault generator (each worker calls it first).
  static void seed_thread(std::uint64_t seed) { random() = FastRandom(seed); }

  /// The version the calling thread's last successful write or delete
  /// created; 0 after a refused conditional write.
  static std::uint64_t& last_write_version() {
    thread_local std::uint64_t version = 0;
    return version;
  }

  // -- the loader's side -----------------------------------------------------

  std::optional<Versioned<Value>> read(Key key) {
    loader_calls_.fetch_add(1);
    InFlight guard(*this, key);
    maybe_stall();
    if (random().per_mille(plan_.loader_throw_per_mille)) {
      loader_throws_.fetch_add(1);
      throw InjectedFault("injected loader fault");
    }
    auto row = current(key);
    maybe_stall();  // a slow load: the row may be overwritten before it returns
    return row;
  }

  std::vector<std::pair<Key, std::optional<Versioned<Value>>>> read_all(
      const std::vector<Key>& keys) {
    loader_calls_.fetch_add(1);
    std::vector<std::unique_ptr<InFlight>> guards;
    for (Key k : keys) guards.push_back(std::make_unique<InFlight>(*this, k));
    maybe_stall();
    if (random().per_mille(plan_.loader_throw_per_mille)) {
      loader_throws_.fetch_add(1);
      throw InjectedFault("injected batch loader fault");
    }
    std::vector<std::pair<Key, std::optional<Versioned<Value>>>> found;
    for (Key k : keys) {
      auto row = current(k);
      if (row || k % 2 == 0)
        found.emplace_back(k, std::move(row));  // odd keys: "absent" by omission
    }
    maybe_stall();
    return found;
  }

  // -- the writer's side -----------------------------------------------------

  Versioned<Value> write(Key key, Value value) {
    before_write();
    Versioned<Value> stored;
    {
      Row& row = *rows_[static_cast<std::size_t>(key)];
      std::lock_guard lock(row.mutex);
      stored = append_locked(key, row, value);
    }
    after_write();
    return stored;
  }

  std::optional<Versioned<Value>> write_if_version(Key key, Value value, std::uint64_t expected) {
    before_write();
    std::optional<Versioned<Value>> stored;
    {
      Row& row = *rows_[static_cast<std::size_t>(key)];
      std::lock_guard lock(row.mutex);
      const std::uint64_t current = row.present ? row.counter : 0;
      if (current == expected) stored = append_locked(key, row, value);
    }
    if (!stored) {
      conflicts_.fetch_add(1);
      last_write_version() = 0;
    }
    after_write();
    return stored;
  }

  void erase(Key key) {
    before_write();
    {
      Row& row = *rows_[static_cast<std::size_t>(key)];
      std::lock_guard lock(row.mutex);
      append_locked(key, row, std::nullopt);
    }
    after_write();
  }

  // -- the checker's side ----------------------------------------------------

  /// The highest version whose write or delete has returned to its caller
  /// (the caller acknowledges it).
  [[nodiscard]] std::uint64_t acknowledged(Key key) const {
    return rows_[static_cast<std::size_t>(key)]->acknowledged.load();
  }
  void acknowledge(Key key, std::uint64_t version) {
    auto& a = rows_[static_cast<std::size_t>(key)]->acknowledged;
    std::uint64_t seen = a.load();
    while (seen < version && !a.compare_exchange_weak(seen, version)) {
    }
  }

  /// Starts a check of `key` by `thread`: returns the acknowledged version,
  /// and keeps the history from it on until `end_check`.
  std::uint64_t begin_check(unsigned thread, Key key) {
    bounds_.set(thread, key, 0);
    const std::uint64_t acked = acknowledged(key);
    bounds_.set(thread, key, acked);
    return acked;
  }
  void end_check(unsigned thread, Key key) { bounds_.clear(thread, key); }

  /// The version at which `value` was written to `key`, if it still is in
  /// the kept history (it is whenever a check could legitimately see it).
  [[nodiscard]] std::optional<std::uint64_t> version_of(Key key, Value value) const {
    const Row& row = *rows_[static_cast<std::size_t>(key)];
    std::lock_guard lock(row.mutex);
    for (auto it = row.history.rbegin(); it != row.history.rend(); ++it) {
      if (it->value && *it->value == value) return it->version;
    }
    return std::nullopt;
  }

  /// True when `key` held `value` at `version`.
  [[nodiscard]] bool held(Key key, std::uint64_t version, Value value) const {
    const Row& row = *rows_[static_cast<std::size_t>(key)];
    std::lock_guard lock(row.mutex);
    for (const Record& r : row.history) {
      if (r.version == version) return r.value && *r.value == value;
    }
    return false;
  }

  /// The lowest version >= `bound` at which `key` was absent, if any.
  [[nodiscard]] std::optional<std::uint64_t> absent_since(Key key, std::uint64_t bound) const {
    const Row& row = *rows_[static_cast<std::size_t>(key)];
    std::lock_guard lock(row.mutex);
    for (const Record& r : row.history) {
      if (r.version >= bound && !r.value) return r.version;
    }
    return std::nullopt;
  }

  /// The store's current row.
  [[nodiscard]] std::optional<Versioned<Value>> current(Key key) const {
    const Row& row = *rows_[static_cast<std::size_t>(key)];
    std::lock_guard lock(row.mutex);
    if (!row.present) return std::nullopt;
    return Versioned<Value>{row.value, row.counter};
  }

  [[nodiscard]] std::uint64_t loader_calls() const { return loader_calls_.load(); }
  [[nodiscard]] std::uint64_t loader_throws() const { return loader_throws_.load(); }
  [[nodiscard]] std::uint64_t writer_throws() const { return writer_throws_.load(); }
  [[nodiscard]] std::uint64_t writes() const { return writes_.load(); }
  [[nodiscard]] std::uint64_t conflicts() const { return conflicts_.load(); }
  [[nodiscard]] std::uint64_t stalls() const { return stalls_.load(); }

 private:
  struct Record {
    std::uint64_t version;
    std::optional<Value> value;  // nullopt: absent (deleted, or never written)
  };

  struct Row {
    mutable std::mutex mutex;
    std::uint64_t counter = 0;
    bool present = false;
    Value value = 0;
    std::deque<Record> history{Record{0, std::nullopt}};
    unsigned appends_since_prune = 0;
    std::atomic<std::uint64_t> acknowledged{0};
    std::atomic<int> loads_in_flight{0};
  };

  /// Marks a load of `key` in progress; reports a second one.
  class InFlight {
   public:
    InFlight(HistoryStore& store, Key key) : store_(store), key_(key) {
      const int before = store_.rows_[static_cast<std::size_t>(key)]->loads_in_flight.fetch_add(1);
      if (before != 0) {
        store_.violations_.report("two loader calls for key " + std::to_string(key) +
                                  " ran at the same time");
      }
    }
    ~InFlight() { store_.rows_[static_cast<std::size_t>(key_)]->loads_in_flight.fetch_sub(1); }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;

   private:
    HistoryStore& store_;
    Key key_;
  };

  static FastRandom& random() {
    thread_local FastRandom generator(std::hash<std::thread::id>{}(std::this_thread::get_id()));
    return generator;
  }

  void maybe_stall() {
    if (!random().per_mille(plan_.stall_per_mille)) return;
    stalls_.fetch_add(1);
    const unsigned yields = 1 + random().below(plan_.max_stall_yields);
    for (unsigned i = 0; i < yields; ++i) std::this_thread::yield();
  }

  void before_write() {
    maybe_stall();
    if (random().per_mille(plan_.writer_throw_per_mille)) {
      writer_throws_.fetch_add(1);
      throw InjectedFault("injected writer fault");  // before the store changes
    }
  }

  void after_write() {
    maybe_stall();  // a slow ack: the store has changed, the cache not yet
  }

  Versioned<Value> append_locked(Key key, Row& row, std::optional<Value> value) {
    const std::uint64_t version = ++row.counter;
    row.present = value.has_value();
    row.value = value.value_or(0);
    row.history.push_back(Record{version, value});
    writes_.fetch_add(1);
    last_write_version() = version;
    if (++row.appends_since_prune >= kPruneEvery) {
      row.appends_since_prune = 0;
      const std::uint64_t low = bounds_.lowest(key, row.acknowledged.load());
      while (row.history.size() > 1 && row.history.front().version < low) row.history.pop_front();
    }
    return Versioned<Value>{row.value, version};
  }

  static constexpr unsigned kPruneEvery = 64;

  int keys_;
  FaultPlan plan_;
  Violations& violations_;
  Bounds bounds_;
  std::vector<std::unique_ptr<Row>> rows_;
  std::atomic<std::uint64_t> loader_calls_{0};
  std::atomic<std::uint64_t> loader_throws_{0};
  std::atomic<std::uint64_t> writer_throws_{0};
  std::atomic<std::uint64_t> writes_{0};
  std::atomic<std::uint64_t> conflicts_{0};
  std::atomic<std::uint64_t> stalls_{0};
};

/// The loader: one key at a time.
struct HistoryLoader {
  HistoryStore* store;
  std::optional<Versioned<Value>> operator()(const Key& key) const { return store->read(key); }
};

/// The loader with a batch call, used by get_all.
struct HistoryBatchLoader {
  HistoryStore* store;
  std::optional<Versioned<Value>> operator()(const Key& key) const { return store->read(key); }
  std::vector<std::pair<Key, std::optional<Versioned<Value>>>> load_all(
      const std::vector<Key>& keys) const {
    return store->read_all(keys);
  }
};

/// The writer: writes, deletes and writes conditionally.
struct HistoryWriter {
  HistoryStore* store;
  Versioned<Value> write(const Key& key, const Value& value) { return store->write(key, value); }
  void erase(const Key& key) { store->erase(key); }
  std::optional<Versioned<Value>> write_if_version(const Key& key, const Value& value,
                                                   std::uint64_t expected) {
    return store->write_if_version(key, value, expected);
  }
};

}  // namespace rtcache::test::model
