// Quality bar: the hit path allocates nothing, and a cache allocates for
// what it holds, not for its capacity in weight. This executable replaces the
// global operator new to count allocations, and checks that gets of cached
// keys make none, whatever the policy (the default takes hits lock-free, LRU
// through the read buffer and its drains, SIEVE with a visited bit).

#include <malloc.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <rtcache/rtcache.hpp>
#include <string>

#include "support/catch.hpp"

namespace {
std::atomic<std::size_t> g_allocations{0};
std::atomic<std::size_t> g_live_bytes{0};    // allocated and not yet freed
std::atomic<std::size_t> g_refused_size{0};  // allocations of this size throw (0: none)

void* counted(std::size_t size, std::size_t alignment) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (size != 0 && size == g_refused_size.load(std::memory_order_relaxed)) throw std::bad_alloc();
  void* p = nullptr;
  if (alignment <= alignof(std::max_align_t)) {
    p = std::malloc(size == 0 ? 1 : size);
  } else if (posix_memalign(&p, alignment, size == 0 ? 1 : size) != 0) {
    p = nullptr;
  }
  if (p == nullptr) throw std::bad_alloc();
  g_live_bytes.fetch_add(malloc_usable_size(p), std::memory_order_relaxed);
  return p;
}

// Out of line, so that the compiler does not pair this free with the
// operator new it was given (it warns of a mismatch, wrongly, for
// replacement functions).
[[gnu::noinline]] void release(void* p) noexcept {
  g_live_bytes.fetch_sub(malloc_usable_size(p), std::memory_order_relaxed);
  std::free(p);
}

constexpr std::size_t kPlain = alignof(std::max_align_t);
}  // namespace

void* operator new(std::size_t n) { return counted(n, kPlain); }
void* operator new[](std::size_t n) { return counted(n, kPlain); }
void* operator new(std::size_t n, std::align_val_t a) {
  return counted(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return counted(n, static_cast<std::size_t>(a));
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted(n, kPlain);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t& tag) noexcept {
  return operator new(n, tag);
}
void operator delete(void* p, const std::nothrow_t&) noexcept { release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { release(p); }
void operator delete(void* p) noexcept { release(p); }
void operator delete[](void* p) noexcept { release(p); }
void operator delete(void* p, std::size_t) noexcept { release(p); }
void operator delete[](void* p, std::size_t) noexcept { release(p); }
void operator delete(void* p, std::align_val_t) noexcept { release(p); }
void operator delete[](void* p, std::align_val_t) noexcept { release(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { release(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { release(p); }

TEMPLATE_TEST_CASE("a hit allocates nothing", "", rtcache::DefaultPolicy, rtcache::policy::WTinyLfu,
                   rtcache::policy::Lru, rtcache::policy::Sieve) {
  constexpr std::uint64_t kKeys = 512;
  auto cache = rtcache::make_cache<std::uint64_t, std::uint64_t, TestType>(
      rtcache::Options{.capacity = 1024, .shards = 4, .seed = 1},
      [](const std::uint64_t& key) { return key * 3; });
  const std::size_t before_loads = g_allocations.load();
  for (std::uint64_t k = 0; k < kKeys; ++k) REQUIRE(cache.get(k) == k * 3);
  // The counter sees the cache's own allocations: misses make entries.
  CHECK(g_allocations.load() > before_loads);

  const std::size_t before_hits = g_allocations.load();
  std::uint64_t sum = 0;
  for (int round = 0; round < 50; ++round) {
    for (std::uint64_t k = 0; k < kKeys; ++k) sum += *cache.get(k);
  }
  CHECK(g_allocations.load() == before_hits);
  CHECK(sum == 50 * 3 * (kKeys * (kKeys - 1) / 2));
  CHECK(cache.stats().hits == 50 * kKeys);
}

TEST_CASE("get_with hands a hit's string to the caller without copying it") {
  // A long std::string is on the heap: `get` must allocate its copy, while
  // `get_with` gives `f` the cached string itself.
  constexpr std::uint64_t kKeys = 64;
  auto cache = rtcache::make_cache<std::uint64_t, std::string>(
      rtcache::Options{.capacity = 128, .shards = 2, .seed = 1},
      [](const std::uint64_t& key) { return std::string(100, static_cast<char>('a' + key % 26)); });
  for (std::uint64_t k = 0; k < kKeys; ++k) REQUIRE(cache.get(k)->size() == 100);

  std::size_t before = g_allocations.load();
  for (std::uint64_t k = 0; k < kKeys; ++k)
    REQUIRE(cache.get(k)->front() == static_cast<char>('a' + k % 26));
  CHECK(g_allocations.load() - before == kKeys);  // one copy each

  // Counted here, checked after: no assertion runs (or allocates) between.
  before = g_allocations.load();
  std::size_t length = 0;
  std::size_t found = 0;
  std::size_t wrong = 0;
  for (int round = 0; round < 10; ++round) {
    for (std::uint64_t k = 0; k < kKeys; ++k) {
      found += cache.get_with(k, [&](const std::string& s) {
        wrong += s.front() != static_cast<char>('a' + k % 26);
        length += s.size();
      });
    }
  }
  CHECK(g_allocations.load() == before);
  CHECK(found == 10 * kKeys);
  CHECK(wrong == 0);
  CHECK(length == 10 * kKeys * 100);
  CHECK(cache.stats().hits == 11 * kKeys);
}

TEMPLATE_TEST_CASE("a write of a cached small value rewrites it in place and allocates nothing", "",
                   rtcache::DefaultPolicy, rtcache::policy::WTinyLfu, rtcache::policy::Lru,
                   rtcache::policy::Sieve) {
  // Values copied by one atomic access (here 8 bytes) are rewritten in the
  // entry: no new entry, nothing retired, nothing allocated. A string value
  // is replaced by a new entry.
  constexpr std::uint64_t kKeys = 512;
  auto cache = rtcache::make_cache<std::uint64_t, std::uint64_t, TestType>(
      rtcache::Options{.capacity = 1024, .shards = 4, .seed = 1},
      [](const std::uint64_t& key) { return key * 3; },
      [](const std::uint64_t&, const std::uint64_t&) {});
  for (std::uint64_t k = 0; k < kKeys; ++k) cache.put(k, k);
  const std::size_t made = cache.entries_made();
  CHECK(made == kKeys);
  const std::size_t before = g_allocations.load();
  for (int round = 1; round <= 20; ++round) {
    for (std::uint64_t k = 0; k < kKeys; ++k) cache.put(k, k + round);
  }
  CHECK(g_allocations.load() == before);
  CHECK(cache.entries_made() == made);
  for (std::uint64_t k = 0; k < kKeys; ++k) REQUIRE(cache.get(k) == k + 20);
  CHECK(cache.size() == kKeys);

  auto strings = rtcache::make_cache<std::uint64_t, std::string, TestType>(
      rtcache::Options{.capacity = 1024, .shards = 4, .seed = 1},
      [](const std::uint64_t&) { return std::string("loaded"); },
      [](const std::uint64_t&, const std::string&) {});
  strings.put(1, "a");
  const std::size_t strings_made = strings.entries_made();
  strings.put(1, "b");
  CHECK(strings.entries_made() == strings_made + 1);
  CHECK(strings.get(1) == "b");
}

// A weigher makes the capacity a weight (here bytes): the default policy
// sizes its sketch and its history of departed keys, and S3-FIFO its ghost
// queue, by the entries they come to hold. (They were sized as if each unit
// of weight were an entry: this cache asked for 256 MiB when built with the
// default policy, a 1 GiB one for 32 GiB.)
TEMPLATE_TEST_CASE("a weighted cache allocates for its entries, not its weight", "",
                   rtcache::DefaultPolicy, rtcache::policy::WTinyLfu, rtcache::policy::S3Fifo) {
  const std::size_t before = g_live_bytes.load();
  auto cache = rtcache::make_cache<int, std::string, TestType>(
      rtcache::Options{.capacity = std::size_t{8} << 20, .shards = 8, .seed = 1},
      [](const int&) { return std::string(1000, 'x'); }, [](const int&, const std::string&) {},
      rtcache::CacheHooks<int, std::string>{
          .weigher = [](const int&, const std::string& v) { return v.size(); }});
  const std::size_t built = g_live_bytes.load() - before;
  CHECK(built < (std::size_t{1} << 20));
  for (int k = 0; k < 8000; ++k) REQUIRE(cache.get(k));  // 8 MB of values
  const std::size_t filled = g_live_bytes.load() - before;
  CHECK(filled > 8'000'000);
  CHECK(filled < 11'000'000);  // the values, and up to 3 MB for entries and tables
}

// Growing the sketch and the history allocates inside the policy's
// `on_insert`, which cannot throw: out of memory, the shard keeps what it has
// and tries again at twice as many entries. Here the allocations the growth
// from 256 to 512 entries makes (8192 bytes each: the sketch's 128 blocks,
// the history's 2048 slots) are refused.
TEST_CASE("a weighted cache whose policy cannot grow its sketch keeps working") {
  auto cache = rtcache::make_cache<int, std::string>(
      rtcache::Options{.capacity = std::size_t{1} << 30, .shards = 1, .seed = 1},
      [](const int& k) { return std::to_string(k); }, [](const int&, const std::string&) {},
      rtcache::CacheHooks<int, std::string>{
          .weigher = [](const int&, const std::string& v) { return v.size(); }});
  const auto sized_for = [&](std::size_t entries) {
    return cache.check_shards([entries](const auto& p, std::size_t n) {
      return p.sized_for() == entries && p.check_invariants(n);
    });
  };
  for (int k = 0; k < 256; ++k) REQUIRE(cache.get(k));
  REQUIRE(sized_for(256));
  g_refused_size = 8192;
  CHECK(cache.get(256) == "256");  // the 257th entry: the growth fails
  g_refused_size = 0;
  CHECK(sized_for(256));
  CHECK(cache.get_if_present(256) == "256");
  for (int k = 257; k < 512; ++k) REQUIRE(cache.get(k));
  CHECK(sized_for(256));  // not retried before twice as many entries
  REQUIRE(cache.get(512));
  CHECK(sized_for(512));
  CHECK(cache.size() == 513);
}

namespace {
std::atomic<int> g_live_values{0};

/// A value that counts its live copies.
struct Counted {
  int v = 0;
  explicit Counted(int x) : v(x) { ++g_live_values; }
  Counted(const Counted& o) : v(o.v) { ++g_live_values; }
  Counted& operator=(const Counted&) = default;
  ~Counted() { --g_live_values; }
};
}  // namespace

TEST_CASE("invalidate_all that runs out of memory part way frees what it already dropped") {
  {
    auto cache = rtcache::make_cache<int, Counted>(
        rtcache::Options{.capacity = 1000, .shards = 2, .seed = 1},
        [](const int& k) { return Counted(k); });
    for (int k = 0; k < 100; ++k) cache.fill(k, Counted(k));
    REQUIRE(cache.size() == 100);
    REQUIRE(g_live_values == 100);
    // invalidate_all lists the entries it drops, shard by shard, reserving
    // room for each shard's before it changes it: the second shard's reserve
    // asks for all 100 pointers, and fails.
    g_refused_size = 100 * sizeof(void*);
    CHECK_THROWS_AS(cache.invalidate_all(), std::bad_alloc);
    g_refused_size = 0;
    // The first shard was emptied: its values were destroyed, not leaked.
    CHECK(g_live_values == static_cast<int>(cache.size()));
    CHECK(cache.size() < 100);
    CHECK(cache.get(0).has_value());  // the cache works on
  }
  CHECK(g_live_values == 0);
}
