// Lock-free hits read values that writers replace and evict at the same time:
// a reader must never see a torn or freed value, whatever V is. Values here
// are strings long enough to live on the heap, and each one says which key
// and version it belongs to, so a reader can check every value it gets; and
// small structs, which writes of a cached key rewrite in place, whose halves
// must agree with each other and with the version read with them.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>
#include <rtcache/rtcache.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/catch.hpp"

namespace {

std::string value_for(std::uint64_t key, std::uint64_t version) {
  std::string v = std::to_string(key) + ":" + std::to_string(version) + ":";
  v.append(64, static_cast<char>('a' + (key + version) % 26));
  return v;
}

bool well_formed(std::uint64_t key, const std::string& v) {
  const auto first = v.find(':');
  const auto second = v.find(':', first + 1);
  if (first == std::string::npos || second == std::string::npos) return false;
  if (std::stoull(v.substr(0, first)) != key) return false;
  const std::uint64_t version = std::stoull(v.substr(first + 1, second - first - 1));
  return v == value_for(key, version);
}

/// Runs `read(random, i)` for i < `operations` on each of `readers` threads
/// while each of `writers` threads runs `write(random)` in a loop; returns
/// once the readers are done and the writers have stopped.
template <class Read, class Write>
void readers_against_writers(int readers, int operations, int writers, Read read, Write write) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> reading;
  std::vector<std::thread> writing;
  for (int r = 0; r < readers; ++r) {
    reading.emplace_back([&, r] {
      std::mt19937_64 random(static_cast<std::uint64_t>(r));
      for (int i = 0; i < operations; ++i) read(random, i);
    });
  }
  for (int w = 0; w < writers; ++w) {
    writing.emplace_back([&, w] {
      std::mt19937_64 random(static_cast<std::uint64_t>(99 + w));
      while (!stop.load()) write(random);
    });
  }
  for (auto& t : reading) t.join();
  stop = true;
  for (auto& t : writing) t.join();
}

template <class Policy>
void hammer() {
  constexpr std::uint64_t kKeys = 256;
  constexpr int kReaders = 3;
  constexpr int kOperations = 20000;
  std::atomic<std::uint64_t> next_version{1};
  auto cache = rtcache::make_cache<std::uint64_t, std::string, Policy>(
      rtcache::Options{.capacity = 64, .shards = 2, .seed = 3},
      [](const std::uint64_t& key) { return value_for(key, 0); },
      [](const std::uint64_t&, const std::string&) {});
  std::atomic<int> bad{0};
  readers_against_writers(
      kReaders, kOperations, 1,
      [&](std::mt19937_64& random, int i) {
        const std::uint64_t key = random() % kKeys;
        const auto v = (i % 2 == 0) ? cache.get(key) : cache.get_if_present(key);
        if (v && !well_formed(key, *v)) bad.fetch_add(1);
      },
      [&](std::mt19937_64& random) {
        const std::uint64_t key = random() % kKeys;
        switch (random() % 8) {
          case 0:
            cache.invalidate(key);
            break;
          case 1:
            if (random() % 64 == 0) cache.invalidate_all();
            break;
          default:
            cache.put(key, value_for(key, next_version.fetch_add(1)));
            break;
        }
      });
  CHECK(bad.load() == 0);
  CHECK(cache.size() <= 64);
  CHECK(cache.check_shards(
      [](const auto& policy, std::size_t resident) { return policy.check_invariants(resident); }));
}

/// Rewritten in place (8 bytes, trivially copyable): `check` is a function of
/// the key and `version`, so a copy mixing two writes shows.
struct Stamp {
  std::uint32_t version;
  std::uint32_t check;
};

std::uint32_t check_of(std::uint64_t key, std::uint32_t version) {
  return static_cast<std::uint32_t>(((key + 1) * 0x9E3779B97F4A7C15ULL ^ version) >> 17);
}

Stamp stamp_for(std::uint64_t key, std::uint32_t version) {
  return Stamp{version, check_of(key, version)};
}

template <class Policy>
void hammer_in_place(rtcache::Options options) {
  constexpr std::uint64_t kKeys = 64;
  constexpr int kReaders = 2;
  constexpr int kWriters = 2;
  constexpr int kOperations = 20000;
  std::atomic<std::uint32_t> next_version{1};
  // The store's version of a written value is the one it carries.
  auto cache = rtcache::make_cache<std::uint64_t, Stamp, Policy>(
      std::move(options),
      [](const std::uint64_t& key) {
        return rtcache::Versioned<Stamp>{stamp_for(key, 0), 0};
      },
      [](const std::uint64_t&, const Stamp& v) {
        return rtcache::Versioned<Stamp>{v, v.version};
      });
  std::atomic<int> bad{0};
  std::atomic<int> hits{0};
  readers_against_writers(
      kReaders, kOperations, kWriters,
      [&](std::mt19937_64& random, int i) {
        const std::uint64_t key = random() % kKeys;
        if (i % 2 == 0) {
          const auto v = cache.get_versioned(key);
          if (v && (v->value.check != check_of(key, v->value.version) ||
                    v->version != v->value.version)) {
            bad.fetch_add(1);
          }
        } else if (const auto v = cache.get_if_present(key)) {
          hits.fetch_add(1, std::memory_order_relaxed);
          if (v->check != check_of(key, v->version)) bad.fetch_add(1);
        }
      },
      [&](std::mt19937_64& random) {
        const std::uint64_t key = random() % kKeys;
        if (random() % 16 == 0) {
          cache.invalidate(key);
        } else {
          cache.put(key, stamp_for(key, next_version.fetch_add(1)));
        }
      });
  CHECK(bad.load() == 0);
  CHECK(hits.load() > 0);
  CHECK(cache.size() <= 32);
  CHECK(cache.check_shards(
      [](const auto& policy, std::size_t resident) { return policy.check_invariants(resident); }));
}

}  // namespace

TEST_CASE("values rewritten in place are never read torn (W-TinyLFU CLOCK)") {
  static_assert(rtcache::detail::kAtomicallyCopyable<Stamp>);
  SECTION("without times: get reads the value alone") {
    hammer_in_place<rtcache::policy::WTinyLfuClock>(
        rtcache::Options{.capacity = 32, .shards = 2, .seed = 3});
  }
  SECTION("with times, copied with the value") {
    hammer_in_place<rtcache::policy::WTinyLfuClock>(rtcache::Options{
        .capacity = 32, .shards = 2, .seed = 3, .expire_after_write = std::chrono::hours(1)});
  }
}

TEST_CASE("values rewritten in place are never read torn (LRU, buffered accesses)") {
  hammer_in_place<rtcache::policy::Lru>(rtcache::Options{.capacity = 32, .shards = 2, .seed = 3});
}

TEST_CASE("lock-free hits never see a torn or freed value (LRU, buffered accesses)") {
  hammer<rtcache::policy::Lru>();
}

TEST_CASE(
    "lock-free hits never see a torn or freed value (W-TinyLFU CLOCK, policy updated by "
    "readers)") {
  hammer<rtcache::policy::WTinyLfuClock>();
}
