// W-TinyLFU and its frequency sketch: exact victims on short, hand-computed
// sequences; the sketch's counting, saturation, halving and cache-line
// layout; seeded, reproducible admission; and the window's adaptation.

#include <cstddef>
#include <cstdint>
#include <rtcache/detail/frequency_sketch.hpp>
#include <rtcache/detail/hash.hpp>
#include <rtcache/policy/w_tinylfu.hpp>
#include <set>
#include <thread>
#include <vector>

#include "support/catch.hpp"
#include "support/policy_harness.hpp"

using rtcache::detail::FrequencySketch;
using Harness = rtcache::test::PolicyHarness<rtcache::policy::WTinyLfu>;
using Keys = std::vector<int>;

namespace {
std::uint64_t hash_of(std::uint64_t i) { return rtcache::detail::mix64(i * 7919 + 1); }
}  // namespace

// -- the sketch -------------------------------------------------------------

TEST_CASE("the sketch's and the history's sizes are bounded for any capacity") {
  // Contract point 10: no capacity makes the sizing undefined. Evaluated at
  // compile time, where an overflow in std::bit_ceil would not compile.
  constexpr std::size_t kMax = SIZE_MAX;
  static_assert(FrequencySketch::block_count_for(kMax) == FrequencySketch::kMaxBlocks);
  static_assert(FrequencySketch::block_count_for(kMax / 2 + 1) == FrequencySketch::kMaxBlocks);
  static_assert(FrequencySketch::block_count_for(std::size_t{1} << 62) ==
                FrequencySketch::kMaxBlocks);
  using Shard = Harness::Shard;
  static_assert(Shard::history_slots_for(kMax) == std::size_t{1} << 28);
  static_assert(Shard::history_slots_for(kMax / 4 + 1) == std::size_t{1} << 28);
  // Ordinary capacities: two words per entry in whole 8-word blocks, four
  // history slots per entry, both rounded up to a power of two.
  CHECK(FrequencySketch::block_count_for(0) == 1);
  CHECK(FrequencySketch::block_count_for(4) == 1);
  CHECK(FrequencySketch::block_count_for(5) == 2);
  CHECK(FrequencySketch::block_count_for(1000) == 256);
  CHECK(FrequencySketch::block_count_for(std::size_t{1} << 28) == FrequencySketch::kMaxBlocks);
  CHECK(Shard::history_slots_for(0) == 8);
  CHECK(Shard::history_slots_for(2) == 8);
  CHECK(Shard::history_slots_for(3) == 16);
  CHECK(Shard::history_slots_for(1000) == 4096);
}

TEST_CASE("the sketch counts increments per key") {
  FrequencySketch sketch(1000, 42);
  CHECK(sketch.frequency(hash_of(1)) == 0);
  for (int i = 0; i < 3; ++i) sketch.increment(hash_of(1));
  sketch.increment(hash_of(2));
  CHECK(sketch.frequency(hash_of(1)) == 3);
  CHECK(sketch.frequency(hash_of(2)) == 1);
  CHECK(sketch.frequency(hash_of(3)) == 0);
  CHECK(sketch.additions() == 4);
}

TEST_CASE("the sketch's counters saturate at 15") {
  FrequencySketch sketch(1000, 42);
  for (int i = 0; i < 40; ++i) sketch.increment(hash_of(7));
  CHECK(sketch.frequency(hash_of(7)) == 15);
  CHECK(sketch.additions() == 15);  // increments past saturation are not counted
}

TEST_CASE("halving ages every counter") {
  FrequencySketch sketch(1000, 42);
  for (int i = 0; i < 15; ++i) sketch.increment(hash_of(1));
  for (int i = 0; i < 5; ++i) sketch.increment(hash_of(2));
  sketch.increment(hash_of(3));
  sketch.halve();
  CHECK(sketch.frequency(hash_of(1)) == 7);
  CHECK(sketch.frequency(hash_of(2)) == 2);
  CHECK(sketch.frequency(hash_of(3)) == 0);
  sketch.halve();
  CHECK(sketch.frequency(hash_of(1)) == 3);
  CHECK(sketch.frequency(hash_of(2)) == 1);
}

TEST_CASE("the sketch halves by itself after its sample size of increments") {
  FrequencySketch sketch(64, 42);
  CHECK(sketch.sample_size() == 64 * FrequencySketch::kSamplesPerEntry);
  for (int i = 0; i < 15; ++i) sketch.increment(hash_of(0));
  // Fill the rest of the sample with other keys, stopping one short.
  std::uint64_t other = 1;
  while (sketch.additions() + 1 < sketch.sample_size()) sketch.increment(hash_of(other++));
  CHECK(sketch.frequency(hash_of(0)) == 15);
  sketch.increment(hash_of(other));
  CHECK(sketch.frequency(hash_of(0)) == 7);
  CHECK(sketch.additions() < sketch.sample_size() / 2 + 1);
}

TEST_CASE("a resized sketch starts over, sized for its new capacity, and retires its old table") {
  FrequencySketch sketch(256, 42);
  for (int i = 0; i < 5; ++i) sketch.increment(hash_of(1));
  REQUIRE(sketch.frequency(hash_of(1)) == 5);
  const std::uint16_t generation = sketch.generation();
  CHECK_FALSE(sketch.has_retired());
  sketch.resize(4096);
  CHECK(sketch.block_count() == FrequencySketch::block_count_for(4096));
  CHECK(sketch.sample_size() == 4096 * FrequencySketch::kSamplesPerEntry);
  CHECK(sketch.frequency(hash_of(1)) == 0);
  CHECK(sketch.additions() == 0);
  // Saturation marks of the old table must not skip increments in the new.
  CHECK(sketch.generation() != generation);
  sketch.increment(hash_of(1));
  CHECK(sketch.frequency(hash_of(1)) == 1);
  // The old table waits until the caller says no reader can hold it.
  CHECK(sketch.has_retired());
  sketch.reclaim([](std::uint64_t) { return false; });
  CHECK(sketch.has_retired());
  sketch.reclaim([](std::uint64_t) { return true; });
  CHECK_FALSE(sketch.has_retired());
}

TEST_CASE("a key's four counters lie in one 64-byte cache line") {
  FrequencySketch sketch(10'000, 3);
  for (std::uint64_t i = 0; i < 10'000; ++i) {
    std::set<std::uintptr_t> lines;
    std::set<std::pair<const std::uint64_t*, unsigned>> counters;
    sketch.for_each_counter(hash_of(i), [&](const std::uint64_t* word, unsigned shift) {
      lines.insert(reinterpret_cast<std::uintptr_t>(word) / 64);
      counters.insert({word, shift});
    });
    REQUIRE(lines.size() == 1);
    REQUIRE(counters.size() == 4);  // four distinct counters, one per row
  }
}

TEST_CASE("where a key's counters are depends on the seed") {
  FrequencySketch a(10'000, 1);
  FrequencySketch b(10'000, 2);
  REQUIRE(a.block_count() == b.block_count());
  int same_block = 0;
  for (std::uint64_t i = 0; i < 1000; ++i) {
    if (a.block_of(hash_of(i)) == b.block_of(hash_of(i))) ++same_block;
  }
  // By chance about 1000 / block_count() keys share a block in both.
  CHECK(same_block < 20);
}

// -- the policy -------------------------------------------------------------

namespace {
unsigned frequency(Harness& h, int key) {
  return h.shard().sketch().frequency(Harness::hash_of(key));
}
}  // namespace

TEST_CASE(
    "W-TinyLFU admits a candidate used two more times than the victim, or one more and used "
    "since") {
  // Capacity 10: no window (1% rounded down), so each new key competes as
  // soon as it is inserted while the main space (10 entries, 8 protected at
  // most) is full, and flows straight into probation while it has room. The
  // shard's clock counts requests: 1 for the first.
  Harness h(10);
  REQUIRE(h.shard().window_capacity() == 0);
  REQUIRE(h.shard().protected_capacity() == 8);
  h.get(1);         // request 1: into probation
  CHECK(h.get(1));  // request 2: a probation hit, promoted
  CHECK(h.get(1));
  for (int k = 2; k <= 10; ++k) h.get(k);  // requests 4 to 12, each last used then
  CHECK(h.take_evicted().empty());
  CHECK(h.shard().window_size() == 0);
  CHECK(h.shard().probation_size() == 9);
  CHECK(h.shard().protected_size() == 1);
  REQUIRE(frequency(h, 1) == 3);
  REQUIRE(frequency(h, 2) == 1);

  // Request 13: the candidate 11, seen once, ties with the victim, the least
  // used of the eight oldest on probation: 2 (1 use), not 1 (protected).
  h.get(11);
  CHECK(h.take_evicted() == Keys{11});

  // Make room and fill it with keys used after 11's first visit: requests 14
  // to 22 flow into probation without competing.
  for (int k = 2; k <= 10; ++k) CHECK(h.erase(k));
  for (int k = 21; k <= 29; ++k) h.get(k);
  CHECK(h.take_evicted().empty());

  // Request 23: 11 again, 2 uses against the victim 21's one: a lead of one
  // use only, and its previous use (13) came before 21's last (14): out.
  h.get(11);
  REQUIRE(frequency(h, 11) == 2);
  CHECK(h.take_evicted() == Keys{11});

  // Request 24: 11 again, 3 uses: two more than 21, which goes.
  h.get(11);
  REQUIRE(frequency(h, 11) == 3);
  CHECK(h.take_evicted() == Keys{21});
  CHECK(h.contains(11));

  // Request 25: 12, new, ties with the victim, now 22; it leaves at 25.
  h.get(12);
  CHECK(h.take_evicted() == Keys{12});
  // Request 26: 12 again leads 22 by one use only, but its previous use (25)
  // came after 22's last one (15): it gets in.
  h.get(12);
  REQUIRE(frequency(h, 12) == 2);
  REQUIRE(frequency(h, 22) == 1);
  CHECK(h.take_evicted() == Keys{22});
  CHECK(h.contains(12));
  CHECK(h.contains(1));
  CHECK(h.check());
}

TEST_CASE("W-TinyLFU moves the window's overflow to probation at once while the cache fills") {
  // 1000 entries: a window of 10. Before the cache is full nothing competes;
  // the window keeps its size and the rest waits on probation, where hits
  // promote it.
  Harness h(1000);
  REQUIRE(h.shard().window_capacity() == 10);
  for (int k = 0; k < 500; ++k) h.get(k);
  CHECK(h.take_evicted().empty());
  CHECK(h.shard().window_size() == 10);
  CHECK(h.shard().probation_size() == 490);
  for (int k = 0; k < 100; ++k) CHECK(h.get(k));
  CHECK(h.shard().protected_size() == 100);
  CHECK(h.shard().probation_size() == 390);
  CHECK(h.check());
}

TEST_CASE("W-TinyLFU promotes probation hits to the protected segment, which demotes its oldest") {
  Harness h(10);
  // 1..10 move to probation at the 11th request; 11 ties with the victim, 1.
  for (int k = 1; k <= 11; ++k) h.get(k);
  CHECK(h.take_evicted() == Keys{11});
  for (int k = 1; k <= 8; ++k) CHECK(h.get(k));
  CHECK(h.shard().protected_size() == 8);
  CHECK(h.shard().probation_size() == 2);
  CHECK(h.get(9));  // the protected segment is full: 1, its oldest, is demoted
  CHECK(h.shard().protected_size() == 8);
  CHECK(h.shard().probation_size() == 2);
  CHECK(h.order() == Keys{10, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(h.check());
}

TEST_CASE("W-TinyLFU works for tiny shards") {
  for (std::size_t capacity : {1u, 2u, 3u}) {
    Harness h(capacity);
    for (int round = 0; round < 50; ++round) {
      for (int k = 0; k < 5; ++k) {
        h.get(k);
        REQUIRE(h.size() <= capacity);
        REQUIRE(h.check());
      }
    }
    // Each eviction removes one entry, so the shard stays full.
    CHECK(h.size() == capacity);
  }
}

namespace {
// A skewed random workload over a small cache: candidates and victims often
// tie, at frequencies where the random admission plays.
Keys victims_with_seed(std::uint64_t seed) {
  Harness h(50, seed);
  std::uint64_t x = 12345;
  for (int i = 0; i < 200'000; ++i) {
    x = rtcache::detail::mix64(x);
    // Key k with probability about 1/k: a few hot keys, a long tail.
    const int k = static_cast<int>(1000.0 / (1.0 + static_cast<double>(x % 1000)));
    h.get(k);
  }
  return h.take_evicted();
}
}  // namespace

TEST_CASE("W-TinyLFU's admission is reproducible for a given seed") {
  const Keys victims = victims_with_seed(7);
  CHECK(victims.size() > 1000);
  CHECK(victims == victims_with_seed(7));
  CHECK(victims != victims_with_seed(8));
}

TEST_CASE("W-TinyLFU keeps a stable set on a loop larger than the cache") {
  // A loop over 150 keys with room for 100: LRU would never hit; a frozen
  // set of 100 entries hits about 100 / 150 of the time.
  Harness h(100);
  std::size_t hits = 0;
  std::size_t requests = 0;
  for (int round = 0; round < 400; ++round) {
    for (int k = 0; k < 150; ++k) {
      hits += h.get(k) ? 1 : 0;
      ++requests;
    }
  }
  CHECK(static_cast<double>(hits) / static_cast<double>(requests) > 0.6);
  CHECK(h.shard().window_capacity() < 10);
  CHECK(h.check());
}

TEST_CASE("W-TinyLFU keeps a stable set on a loop in a shard that stores coarse clocks") {
  // Above 4096 entries the table of departed keys stores clocks in units of
  // several requests (here 4): the loop's reuse distances still show.
  Harness h(10'000);
  std::size_t hits = 0;
  std::size_t requests = 0;
  for (int round = 0; round < 30; ++round) {
    for (int k = 0; k < 15'000; ++k) {
      hits += h.get(k) ? 1 : 0;
      ++requests;
    }
  }
  CHECK(static_cast<double>(hits) / static_cast<double>(requests) > 0.55);
  CHECK(h.check());
}

TEST_CASE("W-TinyLFU grows its window when recency pays") {
  // Each key is used twice, 30 keys (61 requests) apart, and then never
  // again: the main space cannot help (a key admitted on its second use is
  // not used again), only a window large enough to hold a key until its
  // second use gets hits.
  Harness h(100);
  const std::size_t initial = h.shard().window_capacity();
  int next = 0;
  for (int i = 0; i < 100'000; ++i) {
    const int base = next;
    h.get(base);
    h.get(base - 30);
    ++next;
  }
  CHECK(h.shard().window_capacity() > initial);
  CHECK(h.check());
}

// -- the CLOCK variant ----------------------------------------------------------

namespace {
using ClockHarness = rtcache::test::PolicyHarness<rtcache::policy::WTinyLfuClock>;

template <class H>
bool in_order(const H& h, int key) {
  for (int k : h.order()) {
    if (k == key) return true;
  }
  return false;
}
}  // namespace

TEST_CASE("the sketch's shared increment reports saturation until the next halving") {
  FrequencySketch sketch(1000, 42);
  const std::uint64_t key = hash_of(5);
  for (int i = 0; i < 15; ++i) CHECK_FALSE(sketch.increment_shared(key));
  CHECK(sketch.frequency(key) == 15);
  CHECK(sketch.additions() == 15);
  CHECK(sketch.increment_shared(key));  // all four counters already at 15
  CHECK(sketch.additions() == 15);
  const std::uint16_t before = sketch.generation();
  sketch.halve();
  CHECK(sketch.generation() != before);
  CHECK(sketch.generation() != 0);
  CHECK_FALSE(sketch.increment_shared(key));
  CHECK(sketch.frequency(key) == 8);
}

TEST_CASE("the sketch halves a shared sample only when asked") {
  FrequencySketch sketch(64, 42);
  std::uint64_t key = 0;
  while (sketch.additions() < sketch.sample_size()) sketch.increment_shared(hash_of(key++));
  const std::uint16_t before = sketch.generation();
  CHECK(sketch.generation() == before);  // increment_shared never halves by itself
  sketch.halve_if_due();
  CHECK(sketch.generation() != before);
  CHECK(sketch.additions() < sketch.sample_size() / 2 + 1);
}

TEST_CASE("the sketch's shared increments from many threads stay within bounds") {
  FrequencySketch sketch(1000, 42);
  constexpr int kThreads = 4;
  constexpr int kRounds = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&sketch, t] {
      for (int i = 0; i < kRounds; ++i) {
        sketch.increment_shared(hash_of(1));                      // shared by all
        sketch.increment_shared(hash_of(100 + t * kRounds + i));  // one each
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(sketch.frequency(hash_of(1)) == 15);
  // A call counts one addition if it raised at least one of the key's four
  // counters. Alone, the shared key's calls raise all four at once, 15 times;
  // racing, a call that loses the race for one word still raises the others,
  // and a later call raises the one left behind: up to 4 x 15 additions.
  CHECK(sketch.additions() <= 4 * 15 + std::size_t{kThreads} * kRounds);
  CHECK(sketch.additions() >= 15 + std::size_t{kThreads} * kRounds / 2);
}

TEST_CASE("W-TinyLFU (CLOCK): a hit moves nothing; the window's oldest gets a second chance") {
  // Capacity 200: a window of 2, a main space of 198.
  ClockHarness h(200);
  REQUIRE(h.shard().window_capacity() == 2);
  for (int k = 0; k < 200; ++k) h.get(k);  // 0..197 on probation, 198 and 199 in the window
  CHECK(h.take_evicted().empty());
  REQUIRE(h.shard().window_size() == 2);
  const auto before = h.order();
  CHECK(h.get(198));  // the window's oldest
  CHECK(h.get(3));    // on probation
  CHECK(h.order() == before);
  CHECK(h.shard().protected_size() == 0);  // promoted when its turn comes, not at the hit

  // 200 overflows the window: 198, referenced, goes to the back, and 199 is
  // the candidate; it ties with the victim 0 (one use each) and is rejected.
  // 3, referenced among the oldest on probation, is promoted first.
  h.get(200);
  CHECK(h.take_evicted() == Keys{199});
  CHECK(h.contains(198));
  CHECK(h.shard().protected_size() == 1);
  CHECK(h.check());

  // 201: the window holds 200, 198, 201, and 200, used once, is rejected.
  // 202: now 198 is the window's oldest, unreferenced, and competes: two
  // uses against 0's one, and used after it: in; 0 leaves.
  h.get(201);
  CHECK(h.take_evicted() == Keys{200});
  h.get(202);
  CHECK(h.take_evicted() == Keys{0});
  CHECK(h.contains(198));
  CHECK(in_order(h, 3));
  CHECK(h.check());
}

TEST_CASE("W-TinyLFU (CLOCK): a replaced entry keeps its key's saturation mark") {
  // A write replaces the entry; the key's sketch counters are the same, so
  // the new entry's hits may skip the sketch as the old one's did (without
  // this, every write of a hot key cost its next hit four shared CASes).
  ClockHarness h(200);
  for (int i = 0; i < 20; ++i) h.get(5);
  const std::uint16_t mark = h.entry(5).saturated_in.load();
  REQUIRE(mark != 0);
  h.put(5, 50);
  CHECK(h.entry(5).value == 50);
  CHECK(h.entry(5).saturated_in.load() == mark);
  CHECK(h.check());

  h.get(6);  // a key seen once is not saturated, and its replacement neither
  h.put(6, 60);
  CHECK(h.entry(6).saturated_in.load() == 0);
}
