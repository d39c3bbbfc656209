// S3-FIFO: exact victims on short, hand-computed sequences (checked against
// the evict-then-insert order of the paper's pseudo code). With a capacity of
// 10 the small queue holds 1 entry, the main queue 9, the ghost queue 9.
// Then the ghost queue's growth.

#include <cstddef>
#include <cstdint>
#include <rtcache/detail/ghost_queue.hpp>
#include <rtcache/policy/s3fifo.hpp>
#include <vector>

#include "support/catch.hpp"
#include "support/policy_harness.hpp"

using Harness = rtcache::test::PolicyHarness<rtcache::policy::S3Fifo>;
using Keys = std::vector<int>;

namespace {
Keys ghosts(const Harness& h) {
  Keys keys;
  // Ghosts are hashes; map them back through the harness's hash function.
  h.shard().for_each_ghost([&](std::uint64_t hash) {
    for (int k = 0; k < 100; ++k) {
      if (Harness::hash_of(k) == hash) keys.push_back(k);
    }
  });
  return keys;
}
}  // namespace

TEST_CASE("S3-FIFO sends one-hit wonders through the small queue to the ghost queue") {
  Harness h(10);
  for (int k = 1; k <= 10; ++k) h.get(k);
  h.get(11);  // 1 was never hit: evicted, remembered as a ghost
  CHECK(h.take_evicted() == Keys{1});
  CHECK(ghosts(h) == Keys{1});
  CHECK(h.get(2));
  h.get(12);  // 2 was hit: promoted to the main queue; 3 goes instead
  CHECK(h.take_evicted() == Keys{3});
  CHECK(h.shard().main_size() == 1);
  h.get(1);  // a ghost hit: 4 makes room, and 1 goes straight to the main queue
  CHECK(h.take_evicted() == Keys{4});
  CHECK(ghosts(h) == Keys{3, 4});
  CHECK(h.shard().main_size() == 2);
  CHECK(h.order() == Keys{5, 6, 7, 8, 9, 10, 11, 12, 2, 1});
  CHECK(h.check());
}

TEST_CASE("S3-FIFO's main queue gives entries with a frequency another round") {
  Harness h(10);
  for (int k = 1; k <= 10; ++k) h.get(k);
  for (int k = 1; k <= 9; ++k) CHECK(h.get(k));
  h.get(11);  // 1..9 promoted (frequency reset to 0), 10 evicted
  CHECK(h.take_evicted() == Keys{10});
  CHECK(h.shard().main_size() == 9);
  CHECK(h.get(1));  // frequency 1 in the main queue
  h.get(12);
  CHECK(h.take_evicted() == Keys{11});
  h.get(10);  // ghost hit: 12 evicted from the small queue, 10 joins the main queue
  CHECK(h.take_evicted() == Keys{12});
  CHECK(h.shard().small_size() == 0);
  h.get(13);  // small queue empty: the main queue evicts; 1 goes round, 2 goes
  CHECK(h.take_evicted() == Keys{2});
  h.get(14);
  CHECK(h.take_evicted() == Keys{13});
  CHECK(ghosts(h) == Keys{11, 12, 13});
  CHECK(h.order() == Keys{14, 3, 4, 5, 6, 7, 8, 9, 10, 1});
  CHECK(h.check());
}

TEST_CASE("S3-FIFO frequencies saturate at 3") {
  Harness h(10);
  for (int k = 1; k <= 10; ++k) h.get(k);
  for (int i = 0; i < 10; ++i) CHECK(h.get(5));
  CHECK(h.entry(5).frequency.load() == 3);
}

TEST_CASE("S3-FIFO works with fewer than ten entries (no small-queue share)") {
  Harness h(3);
  for (int k = 1; k <= 3; ++k) h.get(k);
  CHECK(h.get(2));
  h.get(4);  // 1 goes; 2 is promoted on the way
  CHECK(h.take_evicted() == Keys{1});
  h.get(5);
  CHECK(h.take_evicted() == Keys{3});
  h.get(1);  // ghost hit
  CHECK(h.take_evicted() == Keys{4});
  CHECK(h.check());
}

// -- the ghost queue --------------------------------------------------------

namespace {
std::vector<std::uint64_t> hashes(const rtcache::detail::GhostQueue& q) {
  std::vector<std::uint64_t> out;
  q.for_each([&](std::uint64_t h) { out.push_back(h); });
  return out;
}
}  // namespace

TEST_CASE("a grown ghost queue keeps its ghosts in order and holds more") {
  using Hashes = std::vector<std::uint64_t>;
  rtcache::detail::GhostQueue q(5);
  for (std::uint64_t h = 1; h <= 6; ++h) q.push(h * 0x9e3779b97f4a7c15ULL);  // forgets the 1st
  CHECK(q.remove(4 * 0x9e3779b97f4a7c15ULL));  // a hole in the middle of the pool
  q.grow(3);                                   // not larger: nothing changes
  CHECK(q.capacity() == 5);
  q.grow(12);
  CHECK(q.capacity() == 12);
  const auto h = [](std::uint64_t i) { return i * 0x9e3779b97f4a7c15ULL; };
  CHECK(hashes(q) == Hashes{h(2), h(3), h(5), h(6)});
  CHECK(q.check_invariants());
  for (std::uint64_t i = 7; i <= 14; ++i) q.push(h(i));  // 12 ghosts: nothing forgotten
  CHECK(q.size() == 12);
  CHECK(hashes(q) ==
        Hashes{h(2), h(3), h(5), h(6), h(7), h(8), h(9), h(10), h(11), h(12), h(13), h(14)});
  q.push(h(15));  // full: the oldest goes
  CHECK(!q.contains(h(2)));
  CHECK(hashes(q).front() == h(3));
  CHECK(hashes(q).back() == h(15));
  CHECK(q.check_invariants());

  rtcache::detail::GhostQueue empty(0);
  empty.push(h(1));
  CHECK(empty.size() == 0);
  empty.grow(2);
  empty.push(h(1));
  empty.push(h(2));
  CHECK(hashes(empty) == Hashes{h(1), h(2)});
  CHECK(empty.check_invariants());
}
