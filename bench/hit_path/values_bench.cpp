/// \file
/// rtcache-bench-values: a hit's cost by value type, through `get` (which
/// returns a copy) and `get_with` (which hands the cached value to a
/// function), on the small key set of rtcache-bench (scrambled Zipf(0.99),
/// cache-resident), at 1 and 2 threads.
///
/// Benchmarks are named `<value>/<read>`: value `uint64` (8 bytes, read with
/// one atomic load either way), `string64` (a 64-character `std::string`,
/// whose copy allocates) and `shared_ptr` (a `std::shared_ptr<const
/// std::string>`, whose copy updates the reference count twice); read `get`
/// or `get_with`. The summary prints ns per hit per thread and `get`'s time
/// over `get_with`'s, measured in the same run.

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <rtcache/rtcache.hpp>
#include <string>
#include <utility>
#include <vector>

#include "zipf_keys.hpp"

namespace rtcache_bench {
namespace {

using Key = std::uint64_t;
constexpr std::uint64_t kKeySeed = 0x1234'5678'9ABCULL;
constexpr std::size_t kSlots = std::size_t{1} << 15;

const KeySet& keys() {
  static const KeySet set = make_scrambled_zipf_keys(kSlots, kSlots / 3, kKeySeed);
  return set;
}

std::string text_of(Key key) { return std::string(64, static_cast<char>('a' + key % 26)); }

/// How each value type is made, and what a reader takes from it (so that
/// both reads do the same work on the value).
struct Uint64 {
  using V = std::uint64_t;
  static constexpr const char* kName = "uint64";
  static V make(Key key) { return key; }
  static std::size_t use(const V& v) { return static_cast<std::size_t>(v); }
};
struct String64 {
  using V = std::string;
  static constexpr const char* kName = "string64";
  static V make(Key key) { return text_of(key); }
  static std::size_t use(const V& v) { return v.size() + static_cast<unsigned char>(v[0]); }
};
struct SharedPtr {
  using V = std::shared_ptr<const std::string>;
  static constexpr const char* kName = "shared_ptr";
  static V make(Key key) { return std::make_shared<const std::string>(text_of(key)); }
  static std::size_t use(const V& v) { return v->size() + static_cast<unsigned char>((*v)[0]); }
};

template <class T>
auto& cache_of() {
  static auto cache = rtcache::make_cache<Key, typename T::V>(
      rtcache::Options{.capacity = kSlots, .seed = 7}, [](const Key& key) { return T::make(key); });
  static std::once_flag filled;
  std::call_once(filled, [] {
    for (Key key : keys().distinct) (void)cache.get(key);
  });
  return cache;
}

template <class T, bool kWith>
void run(benchmark::State& state) {
  auto& cache = cache_of<T>();
  const Key* const walk = keys().keys.data();
  const std::size_t mask = kSlots - 1;
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * kSlots /
                  static_cast<std::size_t>(state.threads());
  std::size_t sum = 0;
  for (auto _ : state) {
    const Key key = walk[i & mask];
    if constexpr (kWith) {
      (void)cache.get_with(key, [&](const typename T::V& v) { sum += T::use(v); });
    } else {
      sum += T::use(*cache.get(key));
    }
    ++i;
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

template <class T>
void register_type() {
  const std::string name = T::kName;
  benchmark::RegisterBenchmark((name + "/get").c_str(), run<T, false>)
      ->UseRealTime()
      ->Threads(1)
      ->Threads(2);
  benchmark::RegisterBenchmark((name + "/get_with").c_str(), run<T, true>)
      ->UseRealTime()
      ->Threads(1)
      ->Threads(2);
}

/// The console reporter, plus the summary: ns per hit per thread, and get
/// over get_with.
class Summary : public benchmark::ConsoleReporter {
 public:
  using benchmark::ConsoleReporter::ConsoleReporter;

  void ReportRuns(const std::vector<Run>& runs) override {
    benchmark::ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      const bool aggregate = run.run_type == Run::RT_Aggregate;
      if (aggregate && run.aggregate_name != "median") continue;
      const auto it = run.counters.find("items_per_second");
      if (it == run.counters.end() || it->second.value <= 0) continue;
      // ns per hit per thread: threads over the total throughput.
      ns_[{run.run_name.function_name, static_cast<int>(run.threads)}] =
          1e9 * static_cast<double>(run.threads) / it->second.value;
    }
  }

  void Finalize() override {
    benchmark::ConsoleReporter::Finalize();
    std::ostream& out = GetOutputStream();
    out << "\nrtcache-bench-values summary (ns per hit per thread; get / get_with: how many "
           "times longer a hit takes through get)\n";
    for (const char* type : {Uint64::kName, String64::kName, SharedPtr::kName}) {
      for (int threads : {1, 2}) {
        const auto get = ns_.find({std::string(type) + "/get", threads});
        const auto with = ns_.find({std::string(type) + "/get_with", threads});
        if (get == ns_.end() || with == ns_.end()) continue;
        char line[160];
        std::snprintf(line, sizeof line,
                      "  %-10s %d thr: get %7.1f  get_with %7.1f  get / get_with %5.2fx\n", type,
                      threads, get->second, with->second, get->second / with->second);
        out << line;
      }
    }
  }

 private:
  std::map<std::pair<std::string, int>, double> ns_;
};

}  // namespace
}  // namespace rtcache_bench

int main(int argc, char** argv) {
  rtcache_bench::register_type<rtcache_bench::Uint64>();
  rtcache_bench::register_type<rtcache_bench::String64>();
  rtcache_bench::register_type<rtcache_bench::SharedPtr>();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  rtcache_bench::Summary reporter(isatty(STDOUT_FILENO) != 0
                                      ? benchmark::ConsoleReporter::OO_ColorTabular
                                      : benchmark::ConsoleReporter::OO_Tabular);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
