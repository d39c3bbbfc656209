#pragma once

// A thread-safe in-memory "database" for tests: rows with versions, call
// counters, and switches that make the next calls fail.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <rtcache/versioned.hpp>
#include <stdexcept>
#include <string>
#include <thread>

namespace rtcache::test {

struct StoreError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class K = int, class V = std::string>
class FakeStore {
 public:
  /// Sets a row directly (another process writing): bumps its version.
  std::uint64_t set(const K& key, V value) {
    std::lock_guard lock(mutex_);
    auto& row = rows_[key];
    row.value = std::move(value);
    return ++row.version;
  }

  void remove(const K& key) {
    std::lock_guard lock(mutex_);
    rows_.erase(key);
  }

  std::optional<Versioned<V>> read(const K& key) {
    reads_.fetch_add(1);
    if (fail_reads_.load()) throw StoreError("store unavailable (read)");
    std::lock_guard lock(mutex_);
    auto it = rows_.find(key);
    if (it == rows_.end()) return std::nullopt;
    return it->second;
  }

  Versioned<V> write(const K& key, const V& value) {
    writes_.fetch_add(1);
    if (fail_writes_.load()) throw StoreError("store unavailable (write)");
    std::lock_guard lock(mutex_);
    auto& row = rows_[key];
    row.value = value;
    ++row.version;
    return row;
  }

  std::optional<Versioned<V>> write_if_version(const K& key, const V& value,
                                               std::uint64_t expected) {
    writes_.fetch_add(1);
    if (fail_writes_.load()) throw StoreError("store unavailable (write)");
    std::lock_guard lock(mutex_);
    auto it = rows_.find(key);
    const std::uint64_t current = it == rows_.end() ? 0 : it->second.version;
    if (current != expected) return std::nullopt;
    auto& row = rows_[key];
    row.value = value;
    row.version = current + 1;
    return row;
  }

  void erase(const K& key) {
    deletes_.fetch_add(1);
    if (fail_writes_.load()) throw StoreError("store unavailable (delete)");
    std::lock_guard lock(mutex_);
    rows_.erase(key);
  }

  std::optional<Versioned<V>> peek(const K& key) const {
    std::lock_guard lock(mutex_);
    auto it = rows_.find(key);
    if (it == rows_.end()) return std::nullopt;
    return it->second;
  }

  void fail_reads(bool on) { fail_reads_.store(on); }
  void fail_writes(bool on) { fail_writes_.store(on); }

  [[nodiscard]] int reads() const { return reads_.load(); }
  [[nodiscard]] int writes() const { return writes_.load(); }
  [[nodiscard]] int deletes() const { return deletes_.load(); }

 private:
  mutable std::mutex mutex_;
  std::map<K, Versioned<V>> rows_;
  std::atomic<bool> fail_reads_{false};
  std::atomic<bool> fail_writes_{false};
  std::atomic<int> reads_{0};
  std::atomic<int> writes_{0};
  std::atomic<int> deletes_{0};
};

/// A writer over a FakeStore: writes, deletes and writes conditionally.
template <class K = int, class V = std::string>
struct StoreWriter {
  FakeStore<K, V>* store;
  Versioned<V> write(const K& key, const V& value) { return store->write(key, value); }
  void erase(const K& key) { store->erase(key); }
  std::optional<Versioned<V>> write_if_version(const K& key, const V& value,
                                               std::uint64_t expected) {
    return store->write_if_version(key, value, expected);
  }
};

/// A loader over a FakeStore, with an optional hook run before each read (to
/// pause a load at a latch, or call the cache back).
template <class K = int, class V = std::string>
struct StoreLoader {
  FakeStore<K, V>* store;
  std::function<void(const K&)>* before_read = nullptr;
  std::optional<Versioned<V>> operator()(const K& key) const {
    if (before_read != nullptr && *before_read) (*before_read)(key);
    return store->read(key);
  }
};

/// Spins (yielding) until `done()` holds: for waiting on another thread's
/// progress that the test can observe, never on time.
template <class Predicate>
void spin_until(Predicate done) {
  while (!done()) std::this_thread::yield();
}

/// Waits for `call` (a std::future) with a generous bound: a deadlocked call
/// cannot be unwound (its threads never return), so the run ends here with a
/// message instead of hanging until the test driver's timeout.
template <class Future>
auto finishes(Future& call, const char* what) {
  if (call.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    std::fprintf(stderr, "DEADLOCK: %s did not return within 60 s\n", what);
    std::fflush(stderr);
    std::_Exit(1);
  }
  return call.get();
}

}  // namespace rtcache::test
