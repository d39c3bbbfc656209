// Cache-busting scan (issue 7): for each eviction policy, the hit ratio of a
// hot Zipf workload alone, and with a stream of unique keys (a scan: each key
// requested once, never again) mixed in 50/50. Only the hot requests are
// scored, so the second column says how much of the hot set the scan pushed
// out. A scan-resistant policy barely moves; LRU does not resist.
//
//   rtcache-scan-resistance           the full run (a few seconds per policy)
//   rtcache-scan-resistance --quick   a short run (ctest smoke test)
//
// Single-threaded and deterministic: keys are drawn before the run from a
// fixed seed, the cache has one shard (so each policy sees the whole
// workload) and a fixed seed. Prints a Markdown table.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <rtcache/policy/clock.hpp>
#include <rtcache/policy/fifo.hpp>
#include <rtcache/policy/lru.hpp>
#include <rtcache/policy/s3fifo.hpp>
#include <rtcache/policy/sieve.hpp>
#include <rtcache/policy/w_tinylfu.hpp>
#include <rtcache/rtcache.hpp>
#include <string>
#include <type_traits>
#include <vector>

namespace {

constexpr std::uint64_t kScanBase = std::uint64_t{1} << 40;

struct Workload {
  std::size_t hot_keys;
  double zipf_exponent;
  std::size_t capacity;
  std::size_t warmup;    // hot requests before scoring starts
  std::size_t measured;  // hot requests scored
};

/// Ranks 1..n drawn with probability proportional to 1 / rank^s.
class Zipf {
 public:
  Zipf(std::size_t n, double s) : cdf_(n) {
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) {
      sum += 1.0 / std::pow(static_cast<double>(i + 1), s);
      cdf_[i] = sum;
    }
    for (double& c : cdf_) c /= sum;
  }
  template <class Random>
  std::uint64_t operator()(Random& random) const {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(random);
    return static_cast<std::uint64_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
  }

 private:
  std::vector<double> cdf_;
};

/// A bijective mixer (splitmix64's finalizer), to scatter ranks over keys.
std::uint64_t scramble(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// The request stream: hot keys, each followed by a unique scan key if
/// `scan`. Scan keys live far above the hot keys and never repeat.
std::vector<std::uint64_t> requests(const Workload& w, bool scan) {
  std::mt19937_64 random(20240611);
  const Zipf zipf(w.hot_keys, w.zipf_exponent);
  std::vector<std::uint64_t> out;
  const std::size_t hot = w.warmup + w.measured;
  out.reserve(scan ? 2 * hot : hot);
  std::uint64_t next_scan_key = kScanBase;
  for (std::size_t i = 0; i < hot; ++i) {
    // Scrambled, so that hot keys are not a dense range.
    out.push_back(scramble(zipf(random)) >> 24);
    if (scan) out.push_back(next_scan_key++);
  }
  return out;
}

bool is_scan_key(std::uint64_t key) { return key >= kScanBase; }

thread_local bool loaded = false;

struct Loader {
  std::uint64_t operator()(const std::uint64_t& key) const {
    loaded = true;
    return key;
  }
};

/// The hot requests' hit ratio after the warm-up.
template <class Policy>
double hot_hit_ratio(const Workload& w, const std::vector<std::uint64_t>& stream) {
  rtcache::ReadThroughCache<std::uint64_t, std::uint64_t, Loader, rtcache::NoWriter, Policy> cache(
      rtcache::Options{.capacity = w.capacity, .shards = 1, .seed = 1}, Loader{});
  std::size_t hot_seen = 0;
  std::size_t scored = 0;
  std::size_t hits = 0;
  for (const std::uint64_t key : stream) {
    loaded = false;
    (void)cache.get(key);
    if (is_scan_key(key)) continue;
    if (++hot_seen <= w.warmup) continue;
    ++scored;
    if (!loaded) ++hits;
  }
  return scored == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(scored);
}

template <class Policy>
void report(const char* name, const Workload& w, const std::vector<std::uint64_t>& plain,
            const std::vector<std::uint64_t>& scanned) {
  const double without = hot_hit_ratio<Policy>(w, plain);
  const double with = hot_hit_ratio<Policy>(w, scanned);
  const bool is_default = std::is_same_v<Policy, rtcache::DefaultPolicy>;
  std::printf("| %-28s | %8.1f%% | %13.1f%% | %+7.1f pts |\n",
              (std::string(name) + (is_default ? " (default)" : "")).c_str(), 100 * without,
              100 * with, 100 * (with - without));
  std::fflush(stdout);
}

void table(const Workload& w) {
  const auto plain = requests(w, false);
  const auto scanned = requests(w, true);
  std::printf(
      "%zu hot keys, Zipf s = %.2f, capacity %zu (1 shard); %zu hot requests scored "
      "after %zu of warm-up; the scan adds one never-repeated key after every hot "
      "request\n\n",
      w.hot_keys, w.zipf_exponent, w.capacity, w.measured, w.warmup);
  std::printf("| policy                       | no scan   | with 50%% scan  | change      |\n");
  std::printf("|------------------------------|----------:|---------------:|------------:|\n");
  report<rtcache::policy::Lru>("LRU", w, plain, scanned);
  report<rtcache::policy::Fifo>("FIFO", w, plain, scanned);
  report<rtcache::policy::Clock>("CLOCK", w, plain, scanned);
  report<rtcache::policy::Sieve>("SIEVE", w, plain, scanned);
  report<rtcache::policy::S3Fifo>("S3-FIFO", w, plain, scanned);
  report<rtcache::policy::WTinyLfu>("W-TinyLFU (LRU)", w, plain, scanned);
  report<rtcache::policy::WTinyLfuClock>("W-TinyLFU (CLOCK)", w, plain, scanned);
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  std::printf("rtcache scan resistance: the hot set's hit ratio, without and with a scan\n\n");
  if (quick) {
    table(Workload{2'000, 0.99, 200, 10'000, 20'000});
    return 0;
  }
  table(Workload{10'000, 0.99, 1'000, 100'000, 500'000});
  table(Workload{10'000, 0.80, 1'000, 100'000, 500'000});
  return 0;
}
