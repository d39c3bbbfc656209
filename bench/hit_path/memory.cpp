/// \file
/// rtcache-memory: bytes per entry beyond sizeof(K) + sizeof(V), for
/// K = V = std::uint64_t, measured by counting every allocation.
///
///     rtcache-memory [entries]      (default 1000000)
///
/// This executable replaces the global operator new and delete to count live
/// bytes three ways:
/// - requested: the sizes the program asked for;
/// - usable: malloc_usable_size() of each block, i.e. with the allocator's
///   rounding (glibc adds an 8-byte header to each block besides);
/// - arena: glibc's own statistics, mallinfo2() uordblks + hblkhd, which
///   include block headers and mmapped blocks.
/// Each cache is built with capacity = entries and filled with `entries`
/// distinct (scrambled) keys through put (or the baselines' equivalent); the
/// bytes are divided by the entries the cache then holds (a sharded cache may
/// hold slightly fewer: each shard holds an exact share of the capacity).

#include <malloc.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <rtcache/policy/lru.hpp>
#include <rtcache/policy/s3fifo.hpp>
#include <rtcache/read_through_cache.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "lru_baselines.hpp"
#include "zipf_keys.hpp"

#if __has_include(<rtcache/policy/sieve.hpp>)
#include <rtcache/policy/sieve.hpp>
#define RTCACHE_MEMORY_HAVE_SIEVE 1
#endif
#if __has_include(<rtcache/policy/w_tinylfu.hpp>)
#include <rtcache/policy/w_tinylfu.hpp>
#define RTCACHE_MEMORY_HAVE_WTINYLFU 1
#endif

// -- counting allocator -------------------------------------------------------

namespace {

std::atomic<std::int64_t> g_requested{0};
std::atomic<std::int64_t> g_usable{0};
std::atomic<std::int64_t> g_blocks{0};
std::atomic<std::int64_t> g_unsized_frees{0};

void* counted_alloc(std::size_t size, std::size_t alignment) noexcept {
  void* p = nullptr;
  if (alignment <= alignof(std::max_align_t)) {
    p = std::malloc(size == 0 ? 1 : size);
  } else if (posix_memalign(&p, alignment, size == 0 ? 1 : size) != 0) {
    p = nullptr;
  }
  if (p != nullptr) {
    g_requested.fetch_add(static_cast<std::int64_t>(size), std::memory_order_relaxed);
    g_usable.fetch_add(static_cast<std::int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
    g_blocks.fetch_add(1, std::memory_order_relaxed);
  }
  return p;
}

void* counted_alloc_or_throw(std::size_t size, std::size_t alignment) {
  void* p = counted_alloc(size, alignment);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

/// `size` is the requested size when the caller knows it (sized delete);
/// otherwise the usable size stands in for it, and the free is counted.
void counted_free(void* p, std::size_t size, bool sized) noexcept {
  if (p == nullptr) return;
  const auto usable = static_cast<std::int64_t>(malloc_usable_size(p));
  if (!sized) g_unsized_frees.fetch_add(1, std::memory_order_relaxed);
  g_requested.fetch_sub(sized ? static_cast<std::int64_t>(size) : usable,
                        std::memory_order_relaxed);
  g_usable.fetch_sub(usable, std::memory_order_relaxed);
  g_blocks.fetch_sub(1, std::memory_order_relaxed);
  std::free(p);
}

constexpr std::size_t kDefaultAlign = alignof(std::max_align_t);

}  // namespace

void* operator new(std::size_t n) { return counted_alloc_or_throw(n, kDefaultAlign); }
void* operator new[](std::size_t n) { return counted_alloc_or_throw(n, kDefaultAlign); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return counted_alloc(n, kDefaultAlign);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return counted_alloc(n, kDefaultAlign);
}
void* operator new(std::size_t n, std::align_val_t a) {
  return counted_alloc_or_throw(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return counted_alloc_or_throw(n, static_cast<std::size_t>(a));
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_alloc(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_alloc(n, static_cast<std::size_t>(a));
}

void operator delete(void* p) noexcept { counted_free(p, 0, false); }
void operator delete[](void* p) noexcept { counted_free(p, 0, false); }
void operator delete(void* p, std::size_t n) noexcept { counted_free(p, n, true); }
void operator delete[](void* p, std::size_t n) noexcept { counted_free(p, n, true); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p, 0, false); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p, 0, false); }
void operator delete(void* p, std::align_val_t) noexcept { counted_free(p, 0, false); }
void operator delete[](void* p, std::align_val_t) noexcept { counted_free(p, 0, false); }
void operator delete(void* p, std::size_t n, std::align_val_t) noexcept {
  counted_free(p, n, true);
}
void operator delete[](void* p, std::size_t n, std::align_val_t) noexcept {
  counted_free(p, n, true);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  counted_free(p, 0, false);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  counted_free(p, 0, false);
}

// -- measurements ---------------------------------------------------------------

namespace {

using Key = std::uint64_t;
using Value = std::uint64_t;
constexpr double kPayload = sizeof(Key) + sizeof(Value);
constexpr double kOverheadGoal = 48;

struct Snapshot {
  std::int64_t requested, usable, blocks, arena;
  static Snapshot take() {
    const struct mallinfo2 info = mallinfo2();
    return {g_requested.load(), g_usable.load(), g_blocks.load(),
            static_cast<std::int64_t>(info.uordblks + info.hblkhd)};
  }
};

struct Measurement {
  std::string name;
  std::size_t entries = 0;
  double requested = 0, usable = 0, arena = 0, blocks = 0;  // per entry
  double at_construction = 0;  // requested bytes per entry before the first put
};

/// Requested bytes when the container under measurement was constructed,
/// before anything was put (set by the builders through `mark_constructed`).
std::int64_t g_requested_at_construction = 0;

void mark_constructed() { g_requested_at_construction = g_requested.load(); }

template <class Build>
Measurement measure(const std::string& name, Build&& build) {
  malloc_trim(0);
  const Snapshot before = Snapshot::take();
  Measurement m;
  m.name = name;
  g_requested_at_construction = before.requested;
  {
    auto holder = build();  // returns (owner, entries held)
    const Snapshot after = Snapshot::take();
    m.entries = holder.second;
    const double n = static_cast<double>(m.entries == 0 ? 1 : m.entries);
    m.requested = static_cast<double>(after.requested - before.requested) / n;
    m.usable = static_cast<double>(after.usable - before.usable) / n;
    m.arena = static_cast<double>(after.arena - before.arena) / n;
    m.blocks = static_cast<double>(after.blocks - before.blocks) / n;
    m.at_construction = static_cast<double>(g_requested_at_construction - before.requested) / n;
  }
  return m;
}

struct KeyLoader {
  Value operator()(const Key& key) const noexcept { return key; }
};
struct NoopWriter {
  void operator()(const Key&, const Value&) const noexcept {}
};

/// With `weight`, the cache has a weigher that gives every entry that
/// weight (as a byte-weighted cache of entries of that size would), and a
/// capacity of exactly that much per key.
template <class Policy>
Measurement measure_rtcache(const std::string& name, const std::vector<Key>& keys,
                            std::size_t weight = 0) {
  return measure(name, [&] {
    using Cache = rtcache::ReadThroughCache<Key, Value, KeyLoader, NoopWriter, Policy>;
    rtcache::CacheHooks<Key, Value> hooks;
    if (weight != 0) hooks.weigher = [weight](const Key&, const Value&) { return weight; };
    auto cache = std::make_unique<Cache>(
        rtcache::Options{.capacity = keys.size() * (weight != 0 ? weight : 1), .seed = 42},
        KeyLoader{}, NoopWriter{}, std::move(hooks));
    mark_constructed();
    for (Key key : keys) cache->put(key, key);
    const std::size_t held = cache->size();
    return std::pair{std::move(cache), held};
  });
}

Measurement measure_mutex_lru(const std::vector<Key>& keys) {
  return measure("mutex_lru (std::mutex + unordered_map + list)", [&] {
    auto cache = std::make_unique<rtcache_bench::LruCache<Key, Value>>(keys.size());
    mark_constructed();
    for (Key key : keys) cache->put(key, key);
    const std::size_t held = cache->size();
    return std::pair{std::move(cache), held};
  });
}

Measurement measure_unordered_map(const std::vector<Key>& keys) {
  return measure("std::unordered_map<K, V> (no eviction)", [&] {
    auto map = std::make_unique<std::unordered_map<Key, Value>>();
    mark_constructed();
    for (Key key : keys) map->insert_or_assign(key, key);
    const std::size_t held = map->size();
    return std::pair{std::move(map), held};
  });
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t entries = 1'000'000;
  if (argc > 1) {
    char* end = nullptr;
    const unsigned long long parsed = std::strtoull(argv[1], &end, 10);
    if (end == argv[1] || *end != '\0' || parsed == 0) {
      std::fprintf(stderr, "usage: %s [entries > 0]\n", argv[0]);
      return 2;
    }
    entries = static_cast<std::size_t>(parsed);
  }

  std::vector<Key> keys(entries);
  for (std::size_t i = 0; i < entries; ++i) keys[i] = rtcache_bench::scramble(i);

  std::vector<Measurement> results;
  results.push_back(measure_rtcache<rtcache::DefaultPolicy>("rtcache DefaultPolicy", keys));
  results.push_back(measure_rtcache<rtcache::policy::Lru>("rtcache policy::Lru", keys));
#ifdef RTCACHE_MEMORY_HAVE_SIEVE
  results.push_back(measure_rtcache<rtcache::policy::Sieve>("rtcache policy::Sieve", keys));
#endif
#ifdef RTCACHE_MEMORY_HAVE_WTINYLFU
  results.push_back(measure_rtcache<rtcache::policy::WTinyLfu>("rtcache policy::WTinyLfu", keys));
#endif
  results.push_back(measure_rtcache<rtcache::policy::S3Fifo>("rtcache policy::S3Fifo", keys));
  // Weighed in bytes: the capacity is 16 times larger, the entries the same.
  results.push_back(measure_rtcache<rtcache::DefaultPolicy>(
      "rtcache DefaultPolicy, weighed in bytes", keys, sizeof(Key) + sizeof(Value)));
  results.push_back(measure_rtcache<rtcache::policy::S3Fifo>(
      "rtcache policy::S3Fifo, weighed in bytes", keys, sizeof(Key) + sizeof(Value)));
  results.push_back(measure_mutex_lru(keys));
  results.push_back(measure_unordered_map(keys));

  std::printf("rtcache-memory: K = V = std::uint64_t, capacity %zu, %zu distinct keys put\n",
              entries, entries);
  std::printf("bytes per held entry; overhead = total - sizeof(K) - sizeof(V) = total - %.0f\n\n",
              kPayload);
  std::printf("%-46s %9s %10s %10s %10s %10s %8s %8s %8s\n", "cache", "entries", "requested",
              "overhead", "usable", "arena", "blocks", "fixed", "by puts");
  for (const auto& m : results) {
    std::printf("%-46s %9zu %10.1f %10.1f %10.1f %10.1f %8.2f %8.1f %8.1f\n", m.name.c_str(),
                m.entries, m.requested, m.requested - kPayload, m.usable, m.arena, m.blocks,
                m.at_construction, m.requested - m.at_construction);
  }
  std::printf(
      "\n  requested: bytes asked of operator new; usable: malloc_usable_size (allocator "
      "rounding);\n"
      "  arena: glibc mallinfo2 in-use bytes (with block headers); blocks: live allocations per "
      "entry;\n"
      "  fixed: of requested, what the constructor allocated (structures sized by capacity:\n"
      "  frequency sketch, history, buffers; their share per entry at capacity); by puts: the "
      "rest\n"
      "  (entries and the table's growth); weighed in bytes: a weigher gives each entry 16,\n"
      "  and the capacity is 16 per key\n");
  if (g_unsized_frees.load() != 0) {
    std::printf("  (%lld unsized deletes were counted at their usable size)\n",
                static_cast<long long>(g_unsized_frees.load()));
  }

  const Measurement& rt = results.front();
  const Measurement* lru = nullptr;
  for (const auto& m : results) {
    if (m.name.rfind("mutex_lru", 0) == 0) lru = &m;
  }
  auto verdict = [](double overhead) { return overhead <= kOverheadGoal ? "met" : "NOT MET"; };
  std::printf(
      "\nrtcache DefaultPolicy overhead per entry (goal <= %.0f B): %.1f B requested (%s), "
      "%.1f B usable (%s), %.1f B arena\n",
      kOverheadGoal, rt.requested - kPayload, verdict(rt.requested - kPayload),
      rt.usable - kPayload, verdict(rt.usable - kPayload), rt.arena - kPayload);
  if (lru != nullptr) {
    std::printf(
        "ratio rtcache DefaultPolicy / mutex_lru, total bytes per entry: %.2f requested, "
        "%.2f usable, %.2f arena\n",
        rt.requested / lru->requested, rt.usable / lru->usable, rt.arena / lru->arena);
  }
  return 0;
}
