/// \file
/// rtcache-bench: the hit path of ReadThroughCache against the caches a C++
/// user would pick instead (issue 4).
///
/// Benchmarks are named `<size>/<workload>/<contender>` and run at 1, 2 and 4
/// threads (the unlocked maps at 1 thread only), in real time:
///
/// - size: `small` = 2^15 key slots over 2^15 / 3 items, scrambled Zipf(0.99)
///   (cache-resident, as Caffeine's GetPutBenchmark: about 11,000 distinct
///   keys); `large` = 2^20 slots over 2^20 / 3 items (about 330,000 keys).
/// - workload: `read100`, `read75` (every fourth operation is a write) and
///   `write100`. Caches are prefilled with every key of the walk and hold them
///   all, so reads are hits; the hit ratio is the `hit_ratio` counter.
/// - items_per_second is the total over all threads. The summary printed at
///   the end gives ns per operation per thread (threads / throughput) and the
///   ratios that issue 4's goals name.

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "contenders.hpp"
#include "memory_latency.hpp"
#include "zipf_keys.hpp"

namespace rtcache_bench {
namespace {

enum class Size { kSmall, kLarge };
enum class Workload { kRead100, kRead75, kWrite100 };

constexpr std::array kSizes{Size::kSmall, Size::kLarge};
constexpr std::array kWorkloads{Workload::kRead100, Workload::kRead75, Workload::kWrite100};

const char* name_of(Size size) { return size == Size::kSmall ? "small" : "large"; }
const char* name_of(Workload workload) {
  switch (workload) {
    case Workload::kRead100:
      return "read100";
    case Workload::kRead75:
      return "read75";
    case Workload::kWrite100:
      return "write100";
  }
  return "?";
}

constexpr std::uint64_t kKeySeed = 0x1234'5678'9ABCULL;

std::array<std::atomic<const KeySet*>, 2> g_key_sets{};

/// The key walk of `size`, generated on first use (never while timing).
const KeySet& key_set(Size size) {
  auto make = [](std::size_t slots) {
    return make_scrambled_zipf_keys(slots, slots / 3, kKeySeed);
  };
  if (size == Size::kSmall) {
    static const KeySet small = make(std::size_t{1} << 15);
    g_key_sets[0] = &small;
    return small;
  }
  static const KeySet large = make(std::size_t{1} << 20);
  g_key_sets[1] = &large;
  return large;
}

/// Capacity: one entry per slot, so at least every distinct key fits.
std::size_t capacity_for(const KeySet& keys) { return keys.slots; }

/// One prefilled instance of contender C per size, shared by every benchmark
/// (and every thread) that uses it. Writes only rewrite keys of the walk, so
/// the instance keeps holding exactly the walk's keys.
template <class C>
C& shared_instance(Size size) {
  static std::mutex mutex;
  static std::array<std::unique_ptr<C>, 2> instances;
  std::lock_guard lock(mutex);
  auto& slot = instances[static_cast<std::size_t>(size)];
  if (!slot) {
    const KeySet& keys = key_set(size);
    slot = std::make_unique<C>(capacity_for(keys));
    for (Key key : keys.distinct) slot->write(key, key);
  }
  return *slot;
}

template <class C, Workload W>
void run_hit_path(benchmark::State& state, Size size) {
  const KeySet& keys = key_set(size);
  C& cache = shared_instance<C>(size);
  const Key* const walk = keys.keys.data();
  const std::size_t mask = keys.slots - 1;
  const std::size_t start = static_cast<std::size_t>(state.thread_index()) * keys.slots /
                            static_cast<std::size_t>(state.threads());
  const std::uint64_t loads_before = t_loads;
  std::size_t i = start;
  for (auto _ : state) {
    const Key key = walk[i & mask];
    if constexpr (W == Workload::kRead100) {
      benchmark::DoNotOptimize(cache.read(key));
    } else if constexpr (W == Workload::kWrite100) {
      cache.write(key, i);
    } else {
      if ((i & 3) == 3) {
        cache.write(key, i);
      } else {
        benchmark::DoNotOptimize(cache.read(key));
      }
    }
    ++i;
  }
  const std::size_t ops = i - start;
  state.SetItemsProcessed(static_cast<std::int64_t>(ops));
  std::size_t reads = ops;
  if constexpr (W == Workload::kWrite100) reads = 0;
  if constexpr (W == Workload::kRead75) reads = ops - (i / 4 - start / 4);  // i % 4 == 3 wrote
  if (reads > 0) {
    const double misses = static_cast<double>(t_loads - loads_before);
    state.counters["hit_ratio"] = benchmark::Counter(1.0 - misses / static_cast<double>(reads),
                                                     benchmark::Counter::kAvgThreads);
  }
}

template <class C>
void register_contender(const char* contender) {
  for (Size size : kSizes) {
    for (Workload workload : kWorkloads) {
      const std::string name =
          std::string(name_of(size)) + "/" + name_of(workload) + "/" + contender;
      benchmark::internal::Benchmark* b = nullptr;
      switch (workload) {
        case Workload::kRead100:
          b = benchmark::RegisterBenchmark(name.c_str(), run_hit_path<C, Workload::kRead100>, size);
          break;
        case Workload::kRead75:
          b = benchmark::RegisterBenchmark(name.c_str(), run_hit_path<C, Workload::kRead75>, size);
          break;
        case Workload::kWrite100:
          b = benchmark::RegisterBenchmark(name.c_str(), run_hit_path<C, Workload::kWrite100>,
                                           size);
          break;
      }
      b->UseRealTime()->Threads(1);
      if (C::kThreadSafe) b->Threads(2)->Threads(4);
    }
  }
}

// -- the summary ------------------------------------------------------------

struct Result {
  double items_per_second = 0;
  std::optional<double> hit_ratio;
  double cpu_share = 0;      ///< CPU time / real time (of one thread, for 1-thread runs)
  double cpu_ns_per_op = 0;  ///< CPU time per operation (meaningful for 1-thread runs)
};

/// The 1-minute load average, or -1 where /proc/loadavg is missing.
double load_average() {
  double load = -1;
  if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &load) != 1) load = -1;
    std::fclose(f);
  }
  return load;
}

struct ResultKey {
  std::string size, workload, contender;
  int threads;
  auto operator<=>(const ResultKey&) const = default;
};

struct ContenderInfo {
  const char* name;
  const char* description;
};

/// The contenders in display order, with what they are.
constexpr std::array kContenders{
    ContenderInfo{"rtcache_default",
                  "rtcache::ReadThroughCache, rtcache::DefaultPolicy (get / put)"},
    ContenderInfo{"rtcache_sieve", "rtcache::ReadThroughCache, policy::Sieve (get / put)"},
    ContenderInfo{"mutex_lru", "std::mutex + std::unordered_map + std::list LRU (one lock)"},
    ContenderInfo{"shared_mutex_lru",
                  "same behind std::shared_mutex: lookup shared, hits do NOT reorder"},
    ContenderInfo{"tbb_chm", "tbb::concurrent_hash_map, no eviction"},
    ContenderInfo{"libcuckoo", "libcuckoo::cuckoohash_map, no eviction"},
    ContenderInfo{"std_umap_unlocked", "std::unordered_map, no lock, no eviction (1 thread)"},
    ContenderInfo{"absl_flat_unlocked", "absl::flat_hash_map, no lock, no eviction (1 thread)"},
};

constexpr std::array kThreadCounts{1, 2, 4};

std::string fixed(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

std::string padded(const std::string& text, std::size_t width, bool right = true) {
  if (text.size() >= width) return text;
  const std::string pad(width - text.size(), ' ');
  return right ? pad + text : text + pad;
}

/// The console reporter, which also keeps each run's throughput and prints
/// the summary once every benchmark has run.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  using benchmark::ConsoleReporter::ConsoleReporter;

  void ReportRuns(const std::vector<Run>& runs) override {
    benchmark::ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) record(run);
  }

  void Finalize() override {
    benchmark::ConsoleReporter::Finalize();
    if (!results_.empty()) print_summary(GetOutputStream());
  }

 private:
  void record(const Run& run) {
    if (run.error_occurred) return;
    // With repetitions, the median stands for the run; otherwise the last.
    const bool aggregate = run.run_type == Run::RT_Aggregate;
    if (aggregate && run.aggregate_name != "median") return;
    const std::string& name = run.run_name.function_name;
    const auto first = name.find('/');
    const auto second = name.find('/', first + 1);
    if (first == std::string::npos || second == std::string::npos) return;
    ResultKey key{name.substr(0, first), name.substr(first + 1, second - first - 1),
                  name.substr(second + 1), static_cast<int>(run.threads)};
    if (!aggregate && from_aggregate_.count(key) != 0) return;
    if (aggregate) from_aggregate_[key] = true;
    Result result;
    if (auto it = run.counters.find("items_per_second"); it != run.counters.end()) {
      result.items_per_second = it->second.value;
    }
    if (auto it = run.counters.find("hit_ratio"); it != run.counters.end()) {
      result.hit_ratio = it->second.value;
    }
    if (run.real_accumulated_time > 0) {
      result.cpu_share = run.cpu_accumulated_time / run.real_accumulated_time;
    }
    result.cpu_ns_per_op =
        run.GetAdjustedCPUTime() * 1e9 / benchmark::GetTimeUnitMultiplier(run.time_unit);
    if (result.items_per_second > 0) results_[key] = result;
  }

  const Result* find(const std::string& size, const std::string& workload,
                     const std::string& contender, int threads) const {
    auto it = results_.find(ResultKey{size, workload, contender, threads});
    return it == results_.end() ? nullptr : &it->second;
  }

  /// Nanoseconds per operation per thread: each thread's wall time per op.
  std::optional<double> ns_per_op(const std::string& size, const std::string& workload,
                                  const std::string& contender, int threads) const {
    const Result* r = find(size, workload, contender, threads);
    if (r == nullptr) return std::nullopt;
    return 1e9 * threads / r->items_per_second;
  }

  std::optional<double> throughput(const std::string& size, const std::string& workload,
                                   const std::string& contender, int threads) const {
    const Result* r = find(size, workload, contender, threads);
    if (r == nullptr) return std::nullopt;
    return r->items_per_second;
  }

  bool has_contender(const std::string& contender) const {
    return std::any_of(results_.begin(), results_.end(),
                       [&](const auto& entry) { return entry.first.contender == contender; });
  }

  void print_summary(std::ostream& out) const {
    out << "\n==== rtcache-bench summary ====\n";
    double share_sum = 0;
    int share_count = 0;
    for (const auto& [key, result] : results_) {
      if (key.threads == 1 && result.cpu_share > 0) {
        share_sum += result.cpu_share;
        ++share_count;
      }
    }
    out << "machine: " << std::thread::hardware_concurrency() << " hardware threads; load average "
        << fixed(start_load_, 2) << " at start, " << fixed(load_average(), 2) << " at end";
    if (share_count > 0) {
      const double share = share_sum / share_count;
      out << "; 1-thread runs got " << fixed(100 * share, 0)
          << "% of a core (CPU time / real time)";
      if (share < 0.9)
        out << "\n  WARNING: the machine was busy; absolute numbers are inflated and ratios noisy";
    }
    out << "\nmemory latency now, ns per dependent load over random 64-byte lines:";
    for (const std::size_t kib : {32, 256, 1024, 4096, 32768}) {
      out << "  "
          << (kib < 1024 ? std::to_string(kib) + " KiB" : std::to_string(kib / 1024) + " MiB")
          << " " << fixed(chase_latency_ns(kib * 1024, std::size_t{1} << 21), 1);
    }
    out << "\n";
    for (std::size_t i = 0; i < g_key_sets.size(); ++i) {
      const KeySet* keys = g_key_sets[i].load();
      if (keys == nullptr) continue;
      out << (i == 0 ? "small" : "large") << ": " << keys->slots
          << " key slots, YCSB scrambled Zipf(0.99) over " << keys->items << " items; "
          << keys->distinct.size() << " distinct keys; cache capacity " << capacity_for(*keys)
          << "\n";
    }
    out << "contenders:\n";
    for (const auto& c : kContenders) {
      if (has_contender(c.name)) out << "  " << padded(c.name, 20, false) << c.description << "\n";
    }

    out << "\nns per operation per thread (= threads / total throughput; lower is better).\n"
           "Note: Google Benchmark's Time column above is per-thread wall time divided by the\n"
           "operations of all threads, i.e. this number divided by the thread count.\n"
           "'1 thr CPU' is CPU time per operation at 1 thread: it leaves out the time the\n"
           "thread was descheduled, so it stays meaningful on a busy machine.\n";
    out << padded("size", 6, false) << padded("workload", 10, false)
        << padded("contender", 20, false) << padded("1 thr", 9) << padded("2 thr", 9)
        << padded("4 thr", 9) << padded("Mops/s@2", 10) << padded("hit ratio", 11)
        << padded("1 thr CPU", 11) << "\n";
    for (const char* size : {"small", "large"}) {
      for (const char* workload : {"read100", "read75", "write100"}) {
        for (const auto& c : kContenders) {
          std::string line =
              padded(size, 6, false) + padded(workload, 10, false) + padded(c.name, 20, false);
          bool any = false;
          double min_hit = 2;
          for (int threads : kThreadCounts) {
            const auto ns = ns_per_op(size, workload, c.name, threads);
            line += padded(ns ? fixed(*ns, 1) : "-", 9);
            any = any || ns.has_value();
            if (const Result* r = find(size, workload, c.name, threads); r && r->hit_ratio) {
              min_hit = std::min(min_hit, *r->hit_ratio);
            }
          }
          const auto ops2 = throughput(size, workload, c.name, 2);
          line += padded(ops2 ? fixed(*ops2 / 1e6, 1) : "-", 10);
          line += padded(min_hit <= 1 ? fixed(min_hit * 100, 2) + "%" : "-", 11);
          const Result* single = find(size, workload, c.name, 1);
          line += padded(single ? fixed(single->cpu_ns_per_op, 1) : "-", 11);
          if (any) out << line << "\n";
        }
      }
    }

    const std::array baselines{"mutex_lru", "shared_mutex_lru",  "tbb_chm",
                               "libcuckoo", "std_umap_unlocked", "absl_flat_unlocked"};
    for (const char* rt : {"rtcache_default", "rtcache_sieve"}) {
      if (!has_contender(rt)) continue;
      out << "\n" << rt << " throughput / baseline throughput, same threads (>1: rtcache faster)\n";
      std::string header =
          padded("size", 6, false) + padded("workload", 10, false) + padded("thr", 4, false);
      for (const char* b : baselines) {
        if (has_contender(b)) header += padded(b, 19);
      }
      out << header << "\n";
      for (const char* size : {"small", "large"}) {
        for (const char* workload : {"read100", "read75", "write100"}) {
          for (int threads : kThreadCounts) {
            const auto mine = throughput(size, workload, rt, threads);
            if (!mine) continue;
            std::string line = padded(size, 6, false) + padded(workload, 10, false) +
                               padded(std::to_string(threads), 4, false);
            for (const char* b : baselines) {
              if (!has_contender(b)) continue;
              const auto theirs = throughput(size, workload, b, threads);
              line += padded(theirs ? fixed(*mine / *theirs, 2) + "x" : "-", 19);
            }
            out << line << "\n";
          }
        }
      }
    }

    out << "\nissue 4 goals (small = the goal; large = for information)\n";
    for (const char* rt : {"rtcache_default", "rtcache_sieve"}) {
      if (!has_contender(rt)) continue;
      for (const char* size : {"small", "large"}) {
        const bool goal = std::string(size) == "small";
        auto line = [&](const std::string& what, std::optional<double> ratio, double target,
                        bool at_most) {
          out << "  " << padded(rt, 16, false) << padded(size, 6, false) << padded(what, 50, false);
          if (!ratio) {
            out << "n/a (not measured)\n";
            return;
          }
          const bool met = at_most ? *ratio <= target : *ratio >= target;
          out << padded(fixed(*ratio, 2) + "x", 8) << "  (goal " << (at_most ? "<= " : ">= ")
              << fixed(target, 1) << "x)" << (goal ? (met ? "  met" : "  NOT MET") : "") << "\n";
        };
        auto ratio = [](std::optional<double> a, std::optional<double> b) -> std::optional<double> {
          if (!a || !b) return std::nullopt;
          return *a / *b;
        };
        line("(1) read100 1 thr ns/op vs std_umap_unlocked",
             ratio(ns_per_op(size, "read100", rt, 1),
                   ns_per_op(size, "read100", "std_umap_unlocked", 1)),
             2.0, true);
        line("(1) read100 1 thr ns/op vs absl_flat_unlocked",
             ratio(ns_per_op(size, "read100", rt, 1),
                   ns_per_op(size, "read100", "absl_flat_unlocked", 1)),
             2.0, true);
        auto cpu_ns = [&](const char* contender) -> std::optional<double> {
          const Result* r = find(size, "read100", contender, 1);
          if (r == nullptr) return std::nullopt;
          return r->cpu_ns_per_op;
        };
        line("(1) same, CPU time: vs std_umap_unlocked",
             ratio(cpu_ns(rt), cpu_ns("std_umap_unlocked")), 2.0, true);
        line("(1) same, CPU time: vs absl_flat_unlocked",
             ratio(cpu_ns(rt), cpu_ns("absl_flat_unlocked")), 2.0, true);
        line("(2) read100 throughput 2 thr / 1 thr",
             ratio(throughput(size, "read100", rt, 2), throughput(size, "read100", rt, 1)), 1.8,
             false);
        line("(2) read100 2 thr throughput vs mutex_lru",
             ratio(throughput(size, "read100", rt, 2), throughput(size, "read100", "mutex_lru", 2)),
             3.0, false);
        line("(2) read100 2 thr throughput vs libcuckoo",
             ratio(throughput(size, "read100", rt, 2), throughput(size, "read100", "libcuckoo", 2)),
             1.0, false);
        line("(3) read75 2 thr throughput vs tbb_chm",
             ratio(throughput(size, "read75", rt, 2), throughput(size, "read75", "tbb_chm", 2)),
             1.5, false);
      }
    }
    out.flush();
  }

  double start_load_ = load_average();
  std::map<ResultKey, Result> results_;
  std::map<ResultKey, bool> from_aggregate_;
};

void register_all() {
  register_contender<RtcacheContender<rtcache::DefaultPolicy>>("rtcache_default");
#ifdef RTCACHE_BENCH_HAVE_SIEVE
  register_contender<RtcacheContender<rtcache::policy::Sieve>>("rtcache_sieve");
#else
  std::fprintf(stderr,
               "rtcache-bench: skipping rtcache_sieve (rtcache/policy/sieve.hpp not found)\n");
#endif
  register_contender<LruContender<std::mutex>>("mutex_lru");
  register_contender<LruContender<std::shared_mutex>>("shared_mutex_lru");
#ifdef RTCACHE_BENCH_HAVE_TBB
  register_contender<TbbContender>("tbb_chm");
#else
  std::fprintf(stderr,
               "rtcache-bench: skipping tbb_chm (libtbb-dev not found at configure time)\n");
#endif
#ifdef RTCACHE_BENCH_HAVE_LIBCUCKOO
  register_contender<CuckooContender>("libcuckoo");
#else
  std::fprintf(stderr,
               "rtcache-bench: skipping libcuckoo (libcuckoo-dev not found at configure time)\n");
#endif
  register_contender<UnlockedContender<std::unordered_map<Key, Value>>>("std_umap_unlocked");
#ifdef RTCACHE_BENCH_HAVE_ABSL
  register_contender<UnlockedContender<absl::flat_hash_map<Key, Value>>>("absl_flat_unlocked");
#else
  std::fprintf(
      stderr,
      "rtcache-bench: skipping absl_flat_unlocked (libabsl-dev not found at configure time)\n");
#endif
}

}  // namespace
}  // namespace rtcache_bench

int main(int argc, char** argv) {
  rtcache_bench::register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  rtcache_bench::SummaryReporter reporter(isatty(STDOUT_FILENO) != 0
                                              ? benchmark::ConsoleReporter::OO_ColorTabular
                                              : benchmark::ConsoleReporter::OO_Tabular);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
