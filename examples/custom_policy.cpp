// A user-written eviction policy: random eviction, plugged into
// ReadThroughCache through the rtcache::EvictionPolicy concept.
//
// A policy is two types:
// - `Hook`: per-entry state. Every cache entry derives from it, so the policy
//   keeps no map of its own: here, the entry's slot in an array.
// - `Shard<Entry>`: per-shard state, called by the cache under the shard's
//   lock (it must not lock; it should not allocate per call): on_insert,
//   on_access, on_replace (a new entry takes an old one's place), on_remove,
//   and evict(), which picks a victim, forgets it and returns it. Optional:
//   on_update(e), for a write that rewrites a small value in place (values
//   one atomic access copies); without it, as here, such writes replace the
//   entry and the cache calls on_replace.
//
// Random eviction needs no bookkeeping on a hit, and unlike LRU it does not
// collapse when a loop over the data is a little larger than the cache: LRU
// then evicts exactly the key that is needed next, every time.
//
//   g++ -std=c++20 -I include examples/custom_policy.cpp -pthread

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <rtcache/rtcache.hpp>
#include <vector>

struct RandomEviction {
  struct Hook {
    std::size_t slot = 0;  // the entry's index in Shard::entries_
  };

  template <class Entry>
  class Shard {
   public:
    Shard(std::size_t capacity, std::uint64_t seed) : random_(seed | 1) {
      entries_.reserve(capacity + 1);  // the cache inserts first, then evicts
    }

    // The cache's hooks are noexcept: the vector was sized up front (a
    // shard holds at most its capacity, and one more while it inserts).
    void on_insert(Entry& e) noexcept {
      e.slot = entries_.size();
      entries_.push_back(&e);
    }
    void on_access(Entry&) noexcept {}  // a hit changes nothing
    void on_replace(Entry& old, Entry& fresh) noexcept {
      fresh.slot = old.slot;
      entries_[old.slot] = &fresh;
    }
    void on_remove(Entry& e) noexcept { remove_at(e.slot); }

    Entry* evict() noexcept {
      if (entries_.empty()) return nullptr;
      Entry* victim = entries_[next_random() % entries_.size()];
      remove_at(victim->slot);
      return victim;
    }

   private:
    void remove_at(std::size_t slot) noexcept {  // O(1): the last entry fills the hole
      entries_[slot] = entries_.back();
      entries_[slot]->slot = slot;
      entries_.pop_back();
    }
    std::uint64_t next_random() noexcept {  // xorshift64*
      random_ ^= random_ >> 12;
      random_ ^= random_ << 25;
      random_ ^= random_ >> 27;
      return random_ * 0x2545F4914F6CDD1DULL;
    }

    std::vector<Entry*> entries_;
    std::uint64_t random_;
  };
};

static_assert(rtcache::EvictionPolicy<RandomEviction>);

/// Reads keys 0..119 in a loop, ten times, through a cache of 100 entries.
template <class Policy>
void run_loop(const char* name) {
  auto cache = rtcache::make_cache<int, int, Policy>(
      rtcache::Options{.capacity = 100, .shards = 1, .seed = 7},
      [](const int& key) { return key * key; });
  for (int round = 0; round < 10; ++round) {
    for (int key = 0; key < 120; ++key) (void)cache.get(key);
  }
  const rtcache::Stats stats = cache.stats();
  std::printf("  %-16s %4.1f%% hits (%llu evictions, size %zu of %zu)\n", name,
              stats.hit_ratio() * 100, static_cast<unsigned long long>(stats.evictions),
              cache.size(), cache.capacity());
}

int main() {
  std::printf("Keys 0..119 in a loop, ten times, through a cache of 100 entries:\n");
  run_loop<rtcache::policy::Lru>("LRU:");
  run_loop<RandomEviction>("random eviction:");
  return 0;
}
