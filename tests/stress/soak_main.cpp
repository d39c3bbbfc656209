// rtcache-soak: the model-checked stress test of tests/stress/model_test.cpp,
// for as long as asked. Rounds cycle through every eviction policy, both
// loader kinds (one key per call, and batches for get_all) and four shapes
// (capacity, shards, key space; one with TTLs, negative caching, refresh,
// stale-if-error and a load bound on a manual clock), each with a fresh cache
// and store and the full check at its end.
//
//   rtcache-soak [seconds]          run for that long (default 60)
//   rtcache-soak --operations N     about N operations, every policy, loader
//                                   and shape once (for ctest)
//
// Prints exactly one line on stdout:
//   operations=<n> faults_injected=<n> violations=<n>
// and the first violations, if any, on stderr. Exits 1 on any violation.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iterator>
#include <rtcache/policy/clock.hpp>
#include <rtcache/policy/fifo.hpp>
#include <rtcache/policy/lru.hpp>
#include <rtcache/policy/s3fifo.hpp>
#include <rtcache/policy/sieve.hpp>
#include <rtcache/policy/w_tinylfu.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/model_checker.hpp"

namespace {

using namespace rtcache::test::model;

struct Run {
  std::string name;
  ModelResult (*run)(const ModelConfig&);
};

template <class Policy>
void add_policy(std::vector<Run>& runs, const std::string& name) {
  runs.push_back(Run{name + ", one key per load", &run_model<Policy, HistoryLoader>});
  runs.push_back(Run{name + ", batch loader", &run_model<Policy, HistoryBatchLoader>});
}

struct Shape {
  std::size_t capacity;
  std::size_t shards;
  int keys;
  bool freshness;  // TTLs, negative caching, refresh, stale-if-error, load bound
};
constexpr Shape kShapes[] = {
    {6, 2, 12, false}, {3, 1, 8, false}, {8, 4, 16, true}, {12, 4, 16, false}};

int usage() {
  std::fprintf(stderr, "usage: rtcache-soak [seconds] | --operations N\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 60;
  std::uint64_t operations = 0;
  if (argc == 3 && std::strcmp(argv[1], "--operations") == 0) {
    operations = std::strtoull(argv[2], nullptr, 10);
    if (operations == 0) return usage();
  } else if (argc == 2) {
    seconds = std::strtod(argv[1], nullptr);
    if (seconds <= 0) return usage();
  } else if (argc != 1) {
    return usage();
  }

  std::vector<Run> runs;
  add_policy<rtcache::policy::Lru>(runs, "LRU");
  add_policy<rtcache::policy::Fifo>(runs, "FIFO");
  add_policy<rtcache::policy::Clock>(runs, "CLOCK");
  add_policy<rtcache::policy::Sieve>(runs, "SIEVE");
  add_policy<rtcache::policy::S3Fifo>(runs, "S3-FIFO");
  add_policy<rtcache::policy::WTinyLfu>(runs, "W-TinyLFU");
  add_policy<rtcache::policy::WTinyLfuClock>(runs, "W-TinyLFU (CLOCK)");

  ModelResult total;
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                    std::chrono::duration<double>(seconds));
  for (std::uint64_t round = 0;; ++round) {
    ModelConfig config;
    const Shape& shape = kShapes[round / runs.size() % std::size(kShapes)];
    config.capacity = shape.capacity;
    config.shards = shape.shards;
    config.keys = shape.keys;
    config.freshness = shape.freshness;
    if (shape.freshness) config.faults.loader_throw_per_mille = 150;
    config.seed = round + 1;
    std::atomic<bool> stop{false};
    std::thread timer;
    if (operations != 0) {
      // Every policy, loader and shape once, sharing the budget.
      config.operations_per_thread = std::max<std::uint64_t>(
          1, operations / (config.threads * runs.size() * std::size(kShapes)));
    } else {
      config.operations_per_thread = 0;
      config.stop = &stop;
      const auto round_end =
          std::min(deadline, std::chrono::steady_clock::now() + std::chrono::seconds(2));
      timer = std::thread([&stop, round_end] {
        std::this_thread::sleep_until(round_end);
        stop = true;
      });
    }
    const Run& run = runs[round % runs.size()];
    ModelResult result = run.run(config);
    for (auto& message : result.messages) {
      message = "[" + run.name + ", capacity " + std::to_string(shape.capacity) + ", " +
                std::to_string(shape.shards) + " shards, " + std::to_string(shape.keys) + " keys" +
                (shape.freshness ? ", freshness" : "") + ", seed " + std::to_string(config.seed) +
                "] " + message;
    }
    total += result;
    if (timer.joinable()) timer.join();
    if (operations != 0 ? round + 1 == runs.size() * std::size(kShapes)
                        : std::chrono::steady_clock::now() >= deadline) {
      break;
    }
  }

  for (const auto& message : total.messages)
    std::fprintf(stderr, "violation: %s\n", message.c_str());
  std::printf("operations=%llu faults_injected=%llu violations=%llu\n",
              static_cast<unsigned long long>(total.operations),
              static_cast<unsigned long long>(total.faults_injected()),
              static_cast<unsigned long long>(total.violations));
  return total.violations == 0 ? 0 : 1;
}
