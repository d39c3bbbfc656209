#pragma once

// Belady's clairvoyant policy (Belady, "A study of replacement algorithms for
// a virtual-storage computer", IBM Systems Journal 1966), computed directly
// from each request's next use: on a miss the key is admitted, and when the
// cache is over capacity the resident key used farthest in the future (or
// never again) leaves, which may be the new key itself (bypass). No real
// policy can hit more often. This is a bound, not a cache.

#include <cstddef>
#include <cstdint>
#include <queue>
#include <unordered_map>
#include <utility>
#include <vector>

namespace rtcache::bench {

/// The number of hits of Belady's policy with bypass on `keys` at `capacity`.
inline std::uint64_t belady_hits(const std::vector<std::uint64_t>& keys, std::size_t capacity) {
  const std::size_t n = keys.size();
  // next_use[i]: the position of the next request for keys[i], or a distinct
  // value past the end when there is none.
  std::vector<std::size_t> next_use(n);
  {
    std::unordered_map<std::uint64_t, std::size_t> later;
    later.reserve(n);
    for (std::size_t i = n; i-- > 0;) {
      auto [it, fresh] = later.try_emplace(keys[i], n + i);
      next_use[i] = it->second;
      it->second = i;
    }
  }
  // Resident keys by their next use; stale heap items are skipped lazily.
  std::unordered_map<std::uint64_t, std::size_t> resident;
  resident.reserve(capacity * 2);
  std::priority_queue<std::pair<std::size_t, std::uint64_t>> farthest;
  std::uint64_t hits = 0;
  for (std::size_t i = 0; i < n; ++i) {
    auto [it, inserted] = resident.try_emplace(keys[i], next_use[i]);
    if (!inserted) {
      ++hits;
      it->second = next_use[i];
    }
    farthest.emplace(next_use[i], keys[i]);
    while (resident.size() > capacity) {
      const auto [when, key] = farthest.top();
      farthest.pop();
      auto victim = resident.find(key);
      if (victim != resident.end() && victim->second == when) resident.erase(victim);
    }
  }
  return hits;
}

}  // namespace rtcache::bench
