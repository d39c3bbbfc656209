// Issue 7, miss flood: many threads look up keys the store does not have.
// Without protection every lookup reaches the store (coalescing only merges
// lookups that overlap in time). With negative caching, each missing key
// costs one store call in all; with max_concurrent_loads, the store never
// sees more calls at once than the bound. The table of store calls and peak
// concurrency is printed with the test's output (docs/reliability.md quotes it).
//
// Bounded by operation count; the only assertions are exact counts and upper
// bounds, never times.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iomanip>
#include <memory>
#include <optional>
#include <random>
#include <rtcache/rtcache.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/catch.hpp"

using namespace std::chrono_literals;

namespace {

constexpr int kThreads = 8;
constexpr int kLookupsPerThread = 400;
constexpr int kMissingKeys = 64;

/// A store with no rows: every read says "not found", slowly (a few yields,
/// so that calls overlap), and the store counts calls and peak concurrency.
struct EmptyStore {
  std::atomic<int> calls{0};
  std::atomic<int> running{0};
  std::atomic<int> peak{0};
};

struct EmptyLoader {
  EmptyStore* store;
  std::optional<int> operator()(const int&) const {
    store->calls.fetch_add(1);
    const int now = store->running.fetch_add(1) + 1;
    int seen = store->peak.load();
    while (seen < now && !store->peak.compare_exchange_weak(seen, now)) {
    }
    for (int i = 0; i < 20; ++i) std::this_thread::yield();
    store->running.fetch_sub(1);
    return std::nullopt;
  }
};

struct Flood {
  int lookups = 0;
  int store_calls = 0;
  int peak = 0;
  int wrong = 0;
};

Flood flood(std::chrono::nanoseconds negative_ttl, std::size_t max_concurrent_loads) {
  EmptyStore store;
  auto clock = std::make_shared<rtcache::ManualClock>();  // never advanced: nothing expires
  rtcache::ReadThroughCache<int, int, EmptyLoader> cache(
      rtcache::Options{.capacity = 1024,
                       .shards = 4,
                       .seed = 1,
                       .negative_ttl = negative_ttl,
                       .max_concurrent_loads = max_concurrent_loads,
                       .clock = clock},
      EmptyLoader{&store});
  std::atomic<int> wrong{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937 random(static_cast<unsigned>(t));
        for (int i = 0; i < kLookupsPerThread; ++i) {
          const int key = 1'000'000 + static_cast<int>(random() % kMissingKeys);
          if (cache.get(key).has_value()) wrong.fetch_add(1);
        }
      });
    }
  }
  return Flood{kThreads * kLookupsPerThread, store.calls.load(), store.peak.load(), wrong.load()};
}

std::string row(const char* name, const Flood& f) {
  std::ostringstream out;
  out << std::left << std::setw(44) << name << std::right << std::setw(8) << f.lookups
      << std::setw(12) << f.store_calls << std::setw(10) << f.peak;
  return out.str();
}

}  // namespace

TEST_CASE(
    "a flood of lookups for missing keys: negative caching and max_concurrent_loads bound the "
    "store's load") {
  const Flood plain = flood(0ns, 0);
  const Flood bounded = flood(0ns, 2);
  const Flood negative = flood(1h, 0);
  const Flood both = flood(1h, 2);
  WARN(kThreads << " threads x " << kLookupsPerThread << " lookups over " << kMissingKeys
                << " missing keys\n"
                << std::left << std::setw(44) << "configuration" << std::right << std::setw(8)
                << "lookups" << std::setw(12) << "store calls" << std::setw(10) << "peak\n"
                << row("no protection", plain) << '\n'
                << row("max_concurrent_loads = 2", bounded) << '\n'
                << row("negative_ttl = 1h", negative) << '\n'
                << row("negative_ttl = 1h, max_concurrent_loads = 2", both));

  for (const Flood* f : {&plain, &bounded, &negative, &both}) CHECK(f->wrong == 0);

  // Unprotected: a load serves at most one lookup per thread, so the store
  // sees at least lookups / threads calls.
  CHECK(plain.store_calls >= kLookupsPerThread);
  CHECK(plain.peak <= kThreads);

  // The bound holds whatever the timing.
  CHECK(bounded.peak <= 2);
  CHECK(bounded.store_calls >= kLookupsPerThread);

  // Negative caching: one store call per missing key, in all.
  CHECK(negative.store_calls == kMissingKeys);
  CHECK(both.store_calls == kMissingKeys);
  CHECK(both.peak <= 2);
}
