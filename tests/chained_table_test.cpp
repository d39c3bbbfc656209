// The shard's hash table on its own: its bucket count stops at the ceiling
// its shard's capacity asks for (not the next power of two), both kinds of
// grow (doubling, and the last one, to the ceiling) keep every chain's order,
// and a reader without the lock that looks again under it never misses a key
// while the table grows.

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <random>
#include <rtcache/detail/chained_table.hpp>
#include <rtcache/detail/hash.hpp>
#include <thread>
#include <vector>

#include "support/catch.hpp"

namespace {

struct TestEntry {
  TestEntry(std::uint64_t k, std::uint64_t h) : hash(static_cast<std::uint32_t>(h)), key(k) {}
  const std::uint32_t hash;
  std::atomic<TestEntry*> chain_next{nullptr};
  const std::uint64_t key;
};

using Table = rtcache::detail::ChainedTable<TestEntry>;
static_assert(Table::kMaxLoadNum == 9 && Table::kMaxLoadDen == 8,
              "the bucket counts below assume kMaxLoad = 9/8");

constexpr auto kNoStamp = [] { return std::uint64_t{0}; };

std::uint64_t hash_of(std::uint64_t key) { return rtcache::detail::mix64(key); }

/// The bucket of `hash` among `n`: multiply-shift over its low 32 bits.
std::size_t bucket_of(std::uint64_t hash, std::size_t n) {
  return static_cast<std::size_t>((std::uint64_t{static_cast<std::uint32_t>(hash)} * n) >> 32);
}

/// Entries with stable addresses, and the table that links them.
struct Filled {
  explicit Filled(std::size_t max_entries) : table(Table::kMinBuckets, max_entries) {}
  TestEntry& insert(std::uint64_t key, std::uint64_t hash) {
    TestEntry& e = entries.emplace_back(key, hash);
    table.insert(&e, kNoStamp);
    return e;
  }
  TestEntry* find(std::uint64_t key, std::uint64_t hash) const {
    return table.find(hash, [&](const TestEntry& e) { return e.key == key; });
  }
  std::deque<TestEntry> entries;
  Table table;
};

}  // namespace

TEST_CASE("a table filled to its most entries has exactly ceil(max / kMaxLoad) buckets") {
  constexpr std::size_t kMax = 1000;
  Filled t(kMax);
  REQUIRE(t.table.bucket_ceiling() == 889);  // ceil(1000 * 8 / 9)
  std::vector<std::size_t> counts{t.table.bucket_count()};
  for (std::uint64_t k = 0; k < kMax; ++k) {
    t.insert(k, hash_of(k));
    if (t.table.bucket_count() != counts.back()) counts.push_back(t.table.bucket_count());
  }
  // Doubling at one entry per bucket while below the ceiling, then
  // straight to the ceiling instead of to 1024.
  CHECK(counts == std::vector<std::size_t>{8, 16, 32, 64, 128, 256, 512, 889});
  CHECK(!std::has_single_bit(t.table.bucket_count()));
  // A shard inserts before it evicts: one entry more does not grow it.
  t.insert(kMax, hash_of(kMax));
  CHECK(t.table.bucket_count() == 889);
  CHECK(t.table.size() == kMax + 1);
  for (const TestEntry& e : t.entries) REQUIRE(t.find(e.key, hash_of(e.key)) == &e);
  CHECK(t.find(kMax + 1, hash_of(kMax + 1)) == nullptr);
}

TEST_CASE("find answers for a key at any place in its chain, and for absent keys") {
  // `find` tries the first or the second entry of the chain (picked without
  // a branch), then walks the whole chain: every case of that choice.
  Filled t(5);  // eight buckets, never more
  REQUIRE(t.table.bucket_count() == Table::kMinBuckets);
  // Hashes below 2^32 / 8 all go to bucket 0; the high half plays no part.
  constexpr std::uint64_t kH1 = 11, kH2 = 22, kH3 = 33, kOther = 44;
  REQUIRE(bucket_of(kOther, Table::kMinBuckets) == 0);
  TestEntry& a = t.insert(1, kH1);
  SECTION("a chain of one") {
    CHECK(t.find(1, kH1) == &a);
    CHECK(t.find(2, kH1) == nullptr);     // the first's hash, another key
    CHECK(t.find(2, kOther) == nullptr);  // another hash: no second to try
  }
  SECTION("a longer chain") {
    TestEntry& b = t.insert(2, kH2);
    TestEntry& c = t.insert(3, kH3);
    TestEntry& d = t.insert(4, kH1);      // the first's hash, another key
    CHECK(t.find(1, kH1) == &a);          // first
    CHECK(t.find(2, kH2) == &b);          // second
    CHECK(t.find(3, kH3) == &c);          // third
    CHECK(t.find(4, kH1) == &d);          // fourth, behind an entry of its hash
    CHECK(t.find(5, kH2) == nullptr);     // the second's hash, another key
    CHECK(t.find(5, kOther) == nullptr);  // no entry has its hash
    t.table.unlink(&a);
    CHECK(t.find(1, kH1) == nullptr);
    CHECK(t.find(2, kH2) == &b);  // first now
    CHECK(t.find(4, kH1) == &d);
  }
  CHECK(t.find(1, std::uint64_t{1} << 31) == nullptr);  // an empty bucket
}

TEST_CASE("a table's ceiling is ceil(max / kMaxLoad), never below the minimum bucket count") {
  CHECK(Filled(1).table.bucket_ceiling() == 1);
  CHECK(Filled(9).table.bucket_ceiling() == 8);
  CHECK(Filled(10).table.bucket_ceiling() == 9);
  CHECK(Filled(124999).table.bucket_ceiling() == 111111);
  CHECK(Filled(125000).table.bucket_ceiling() == 111112);
  Filled tiny(5);  // needs 5 buckets, has the minimum
  for (std::uint64_t k = 0; k < 6; ++k) tiny.insert(k, hash_of(k));
  CHECK(tiny.table.bucket_count() == Table::kMinBuckets);
  for (const TestEntry& e : tiny.entries) CHECK(tiny.find(e.key, hash_of(e.key)) == &e);
}

TEST_CASE("a table without a bound keeps doubling") {
  Filled t(Table::kUnbounded);
  for (std::uint64_t k = 0; k < 1000; ++k) t.insert(k, hash_of(k));
  CHECK(t.table.bucket_count() == 1024);  // grew at 512 entries in 512 buckets
  for (const TestEntry& e : t.entries) REQUIRE(t.find(e.key, hash_of(e.key)) == &e);
}

// A model of the chains: an insert appends to its chain; a grow takes the
// old chains in order and appends each entry to its new chain. The table
// must hold the same chains in the same order, whether the grow doubled or
// went to the ceiling (700 entries: 512 -> 623 buckets, so most new chains
// take entries from two old ones).
TEST_CASE("new entries go at the end of their chain, and both kinds of grow keep the order") {
  for (const std::size_t max : {40, 700, 1000, 3000}) {
    Filled t(max);
    std::vector<std::vector<const TestEntry*>> model(t.table.bucket_count());
    auto same_as_model = [&] {
      std::vector<const TestEntry*> in_table;
      t.table.for_each([&](const TestEntry& e) { in_table.push_back(&e); });
      std::vector<const TestEntry*> in_model;
      for (const auto& chain : model) in_model.insert(in_model.end(), chain.begin(), chain.end());
      return in_table == in_model;
    };
    for (std::uint64_t k = 0; k < max; ++k) {
      // Few distinct hashes: entries of one hash share a chain, inserted
      // far apart.
      const std::uint64_t hash = hash_of(k % (max / 3));
      const std::size_t before = t.table.bucket_count();
      const TestEntry& e = t.insert(k, hash);
      if (t.table.bucket_count() != before) {
        std::vector<std::vector<const TestEntry*>> grown(t.table.bucket_count());
        for (const auto& chain : model) {
          for (const TestEntry* old : chain)
            grown[bucket_of(old->hash, grown.size())].push_back(old);
        }
        model = std::move(grown);
        model[bucket_of(hash, model.size())].push_back(&e);
        REQUIRE(same_as_model());
      } else {
        model[bucket_of(hash, model.size())].push_back(&e);
      }
    }
    CAPTURE(max);
    CHECK(t.table.bucket_count() == t.table.bucket_ceiling());
    CHECK(same_as_model());
    for (const TestEntry& e : t.entries) REQUIRE(t.find(e.key, e.hash) == &e);
  }
}

// Readers without the lock may miss a key while entries move to a new array,
// and always find it when they look again under the lock (and walk finite
// chains: a cycle would hang the test). Many small tables, so that the readers meet many grows of
// both kinds.
TEST_CASE("a reader that looks again under the lock never misses a key during any grow") {
  constexpr int kReaders = 2;
  constexpr int kRounds = 20;
  std::atomic<int> lost{0};
  for (const std::size_t max : {700, 1000}) {
    for (int round = 0; round < kRounds; ++round) {
      Filled t(max);
      std::mutex mutex;  // the shard lock
      std::atomic<std::size_t> inserted{0};
      std::atomic<std::uint64_t> lookups{0};
      std::vector<std::thread> readers;
      for (int r = 0; r < kReaders; ++r) {
        readers.emplace_back([&, r] {
          std::mt19937_64 random(static_cast<std::uint64_t>(round * kReaders + r));
          for (std::size_t n = inserted.load(std::memory_order_acquire); n < max;
               n = inserted.load(std::memory_order_acquire)) {
            if (n == 0) continue;
            const std::uint64_t key = random() % n;
            lookups.fetch_add(1, std::memory_order_relaxed);
            const TestEntry* e = t.find(key, hash_of(key));
            if (e == nullptr) {
              std::lock_guard lock(mutex);
              e = t.find(key, hash_of(key));
            }
            if (e == nullptr) lost.fetch_add(1);
          }
        });
      }
      for (std::uint64_t k = 0; k < max; ++k) {
        {
          std::lock_guard lock(mutex);
          t.insert(k, hash_of(k));
        }
        inserted.store(k + 1, std::memory_order_release);
        // Now and then, let the readers catch up, so that they are walking
        // chains whenever the table grows (after the last insert, they stop).
        const std::uint64_t seen = lookups.load(std::memory_order_relaxed);
        while (k % 16 == 0 && k + 1 < max &&
               lookups.load(std::memory_order_relaxed) < seen + kReaders) {
          std::this_thread::yield();
        }
      }
      for (auto& reader : readers) reader.join();
      REQUIRE(t.table.bucket_count() == t.table.bucket_ceiling());
    }
  }
  CHECK(lost.load() == 0);
}

// Readers that may not take the lock (a lookup inside get_with's function,
// invalidate_if's walk): `find_settled` and a walk checked with
// `settled_grows` / `no_grow_since` never miss a key that was inserted before
// they started, however the grows fall. The plain `find` is run beside them,
// to count the misses a grow caused (not asserted: that depends on timing).
TEST_CASE("settled lookups and walks without the lock never miss a key during any grow") {
  constexpr int kRounds = 20;
  std::atomic<int> lost_finds{0};
  std::atomic<int> lost_walks{0};
  std::atomic<int> hidden{0};
  std::atomic<int> walks_redone{0};
  for (const std::size_t max : {700, 1000}) {
    for (int round = 0; round < kRounds; ++round) {
      Filled t(max);
      std::atomic<std::size_t> inserted{0};
      std::atomic<std::uint64_t> lookups{0};
      std::thread finder([&] {
        std::mt19937_64 random(static_cast<std::uint64_t>(round));
        for (std::size_t n = inserted.load(std::memory_order_acquire); n < max;
             n = inserted.load(std::memory_order_acquire)) {
          if (n == 0) continue;
          const std::uint64_t key = random() % n;
          lookups.fetch_add(1, std::memory_order_relaxed);
          const auto matches = [&](const TestEntry& e) { return e.key == key; };
          if (t.table.find(hash_of(key), matches) == nullptr) hidden.fetch_add(1);
          if (t.table.find_settled(hash_of(key), matches) == nullptr) lost_finds.fetch_add(1);
        }
      });
      std::thread walker([&] {
        for (std::size_t n = inserted.load(std::memory_order_acquire); n < max;
             n = inserted.load(std::memory_order_acquire)) {
          for (;;) {
            const std::uint32_t grows = t.table.settled_grows();
            std::size_t seen = 0;  // of the keys inserted before the walk
            t.table.for_each([&](const TestEntry& e) { seen += e.key < n ? 1 : 0; });
            if (t.table.no_grow_since(grows)) {
              if (seen != n) lost_walks.fetch_add(1);
              break;
            }
            walks_redone.fetch_add(1);
          }
          lookups.fetch_add(1, std::memory_order_relaxed);
        }
      });
      for (std::uint64_t k = 0; k < max; ++k) {
        t.insert(k, hash_of(k));  // one writer: no lock needed here
        inserted.store(k + 1, std::memory_order_release);
        const std::uint64_t seen = lookups.load(std::memory_order_relaxed);
        while (k % 16 == 0 && k + 1 < max && lookups.load(std::memory_order_relaxed) < seen + 2) {
          std::this_thread::yield();
        }
      }
      finder.join();
      walker.join();
    }
  }
  INFO("plain finds a grow hid: " << hidden.load() << "; walks redone: " << walks_redone.load());
  CHECK(lost_finds.load() == 0);
  CHECK(lost_walks.load() == 0);
}
