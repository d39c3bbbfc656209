#pragma once

// A fake shard for driving an eviction policy directly, the way the cache
// does: a map from key to heap-allocated entry, insertion then eviction while
// over capacity, hits, replacements and removals. Every victim is checked to
// be a resident entry, and the harness reports the victims in order.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <rtcache/detail/entry.hpp>
#include <rtcache/detail/hash.hpp>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace rtcache::test {

template <class Policy>
class PolicyHarness {
 public:
  using Entry = detail::Entry<int, int, typename Policy::Hook>;
  using Shard = typename Policy::template Shard<Entry>;

  explicit PolicyHarness(std::size_t capacity, std::uint64_t seed = 1)
      : capacity_(capacity), shard_(capacity, seed) {}

  PolicyHarness(const PolicyHarness&) = delete;
  PolicyHarness& operator=(const PolicyHarness&) = delete;

  /// The hash the entry of `key` carries: well mixed, as the cache's are,
  /// and cut to the low 32 bits that entries keep.
  static std::uint64_t hash_of(int key) {
    return static_cast<std::uint32_t>(detail::mix64(static_cast<std::uint64_t>(key)));
  }

  /// A read: a hit is shown to the policy, a miss inserts the key (as a
  /// loader would) and evicts while over capacity. Returns whether it hit.
  bool get(int key) {
    if (auto it = entries_.find(key); it != entries_.end()) {
      shard_.on_access(*it->second);
      return true;
    }
    insert(key, key);
    return false;
  }

  /// A write: replaces the entry of a resident key, else inserts it.
  void put(int key, int value) {
    if (auto it = entries_.find(key); it != entries_.end()) {
      auto fresh = make_entry(key, value, it->second->version + 1);
      shard_.on_replace(*it->second, *fresh);
      it->second = std::move(fresh);
      return;
    }
    insert(key, value);
  }

  /// A write that rewrites the resident entry in place (as the cache does
  /// for values it can copy atomically), else inserts the key.
  void update(int key, int value) {
    if (auto it = entries_.find(key); it != entries_.end()) {
      Entry& e = *it->second;
      e.value = value;
      ++e.version;
      shard_.on_update(e);
      return;
    }
    insert(key, value);
  }

  /// A removal by the cache (erase or invalidate). Returns whether the key was resident.
  bool erase(int key) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return false;
    shard_.on_remove(*it->second);
    entries_.erase(it);
    return true;
  }

  /// Asks the policy for a victim directly (as when the shard is over capacity).
  /// Returns its key, or -1 when the policy returned nullptr.
  int evict_one() {
    Entry* victim = shard_.evict();
    if (victim == nullptr) return -1;
    return take_victim(victim);
  }

  /// The keys evicted since the last call, in eviction order.
  std::vector<int> take_evicted() { return std::exchange(evicted_, {}); }

  [[nodiscard]] bool contains(int key) const { return entries_.count(key) != 0; }
  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  [[nodiscard]] std::size_t capacity() const { return capacity_; }
  [[nodiscard]] bool check() const { return shard_.check_invariants(entries_.size()); }
  [[nodiscard]] Shard& shard() { return shard_; }
  [[nodiscard]] const Shard& shard() const { return shard_; }
  [[nodiscard]] Entry& entry(int key) { return *entries_.at(key); }

  /// The resident keys in the policy's `for_each_in_eviction_order`.
  [[nodiscard]] std::vector<int> order() const {
    std::vector<int> keys;
    shard_.for_each_in_eviction_order([&](const Entry& e) { keys.push_back(e.key); });
    return keys;
  }

 private:
  static std::unique_ptr<Entry> make_entry(int key, int value, std::uint64_t version) {
    return std::make_unique<Entry>(hash_of(key), key, Versioned<int>{value, version});
  }

  void insert(int key, int value) {
    auto fresh = make_entry(key, value, 1);
    Entry& e = *fresh;
    entries_.emplace(key, std::move(fresh));
    shard_.on_insert(e);
    while (entries_.size() > capacity_) {
      Entry* victim = shard_.evict();
      if (victim == nullptr) throw std::logic_error("evict() returned nullptr while over capacity");
      take_victim(victim);
    }
  }

  int take_victim(Entry* victim) {
    auto it = entries_.find(victim->key);
    if (it == entries_.end() || it->second.get() != victim) {
      throw std::logic_error("evict() returned an entry that is not resident: key " +
                             std::to_string(victim->key));
    }
    const int key = victim->key;
    evicted_.push_back(key);
    entries_.erase(it);
    return key;
  }

  std::size_t capacity_;
  Shard shard_;  // owns no entry: it only links them
  std::map<int, std::unique_ptr<Entry>> entries_;
  std::vector<int> evicted_;
};

}  // namespace rtcache::test
