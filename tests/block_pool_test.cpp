// The shard's entry memory on its own: blocks are distinct, aligned and
// reused last-freed first; chunks grow from 16 blocks to 1024; a 64-byte
// block starts a cache line; and a cache's entries come from its pools (a
// freed entry's block serves the next one, so a cache that replaces entries
// stops asking for memory).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <rtcache/detail/block_pool.hpp>
#include <rtcache/read_through_cache.hpp>
#include <set>
#include <string>
#include <vector>

#include "support/catch.hpp"

namespace {

using rtcache::detail::BlockPool;

std::uintptr_t address(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

}  // namespace

TEST_CASE("a pool's blocks are distinct, aligned and a stride apart within a chunk") {
  for (std::size_t size : {8, 24, 40, 56, 64, 72, 88, 128}) {
    BlockPool pool(size, 8);
    CHECK(pool.stride() >= size);
    CHECK(pool.stride() % 8 == 0);
    CHECK(pool.stride() < size + 8);  // no more than the alignment's rounding
    std::vector<void*> blocks;
    for (int i = 0; i < 100; ++i) blocks.push_back(pool.allocate());
    std::vector<std::uintptr_t> sorted;
    for (void* b : blocks) sorted.push_back(address(b));
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 1; i < sorted.size(); ++i) {
      REQUIRE(sorted[i] - sorted[i - 1] >= pool.stride());  // no two overlap
    }
    // The first chunk's 16 blocks follow each other.
    for (std::size_t i = 1; i < 16; ++i) {
      CHECK(address(blocks[i]) - address(blocks[i - 1]) == pool.stride());
    }
    for (void* b : blocks) CHECK(address(b) % 8 == 0);
    CHECK(pool.handed_out() == 100);
    for (void* b : blocks) pool.deallocate(b);
  }
}

TEST_CASE("64-byte blocks start cache lines") {
  BlockPool pool(64, 8);
  CHECK(pool.stride() == 64);
  for (int i = 0; i < 1000; ++i) REQUIRE(address(pool.allocate()) % 64 == 0);
}

TEST_CASE("over-aligned blocks keep their alignment") {
  BlockPool pool(80, 128);
  CHECK(pool.stride() == 128);
  for (int i = 0; i < 100; ++i) REQUIRE(address(pool.allocate()) % 128 == 0);
}

TEST_CASE("a freed block is handed out again, last freed first, before any new memory") {
  BlockPool pool(48, 8);
  void* a = pool.allocate();
  void* b = pool.allocate();
  void* c = pool.allocate();
  const std::size_t bytes = pool.bytes();
  pool.deallocate(a);
  pool.deallocate(c);
  CHECK(pool.allocate() == c);
  CHECK(pool.allocate() == a);
  CHECK(pool.allocate() != b);
  CHECK(pool.bytes() == bytes);
  CHECK(pool.handed_out() == 6);
}

TEST_CASE("chunks double from 16 blocks up to 1024") {
  BlockPool pool(64, 8);
  std::size_t blocks = 0;
  std::vector<std::size_t> chunk_sizes;
  std::size_t bytes = 0;
  while (blocks < 5000) {
    (void)pool.allocate();
    ++blocks;
    if (pool.bytes() != bytes) {
      chunk_sizes.push_back((pool.bytes() - bytes) / pool.stride());
      bytes = pool.bytes();
    }
  }
  REQUIRE(chunk_sizes.size() >= 8);
  CHECK(chunk_sizes[0] == 16);
  CHECK(chunk_sizes[1] == 32);
  CHECK(chunk_sizes[6] == 1024);
  CHECK(chunk_sizes[7] == 1024);
  // Never more than one chunk's worth beyond what was handed out.
  CHECK(pool.bytes() / pool.stride() < blocks + 1024);
}

TEST_CASE("a cache that keeps replacing entries reuses their blocks") {
  // String values are not rewritten in place: each put makes a new entry,
  // and the one it replaces is freed once no reader can see it.
  auto cache = rtcache::make_cache<std::uint64_t, std::string>(
      rtcache::Options{.capacity = 64, .shards = 1, .seed = 3},
      [](const std::uint64_t&) { return std::string("loaded"); },
      [](const std::uint64_t&, const std::string&) {});
  for (std::uint64_t k = 0; k < 64; ++k) cache.put(k, "first");
  std::size_t memory_after_warm_up = 0;
  for (int round = 0; round < 200; ++round) {
    for (std::uint64_t k = 0; k < 64; ++k) cache.put(k, std::to_string(round));
    if (round == 49) memory_after_warm_up = cache.entry_memory();
  }
  CHECK(cache.entries_made() == 64 + 200 * 64);
  // 12,864 entries made, but the memory stopped growing once the live and
  // retired entries had their blocks: each freed entry's block served a
  // later one.
  CHECK(cache.entry_memory() == memory_after_warm_up);
  CHECK(cache.entry_memory() < 2048 * 128);
  for (std::uint64_t k = 0; k < 64; ++k) REQUIRE(cache.get(k) == "199");
}
