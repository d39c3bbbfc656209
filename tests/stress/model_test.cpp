// The model-checked stress test (issue 7): eight threads run random reads,
// batch reads, writes, conditional writes, deletes and invalidations on a
// small key space, against a store that throws and stalls at random, and
// every result is checked against the store's history (see
// support/model_checker.hpp for the list of checks). Runs are bounded by
// operation count, never by time; rtcache-soak runs the same check for as
// long as asked.

#include <rtcache/policy/clock.hpp>
#include <rtcache/policy/fifo.hpp>
#include <rtcache/policy/lru.hpp>
#include <rtcache/policy/s3fifo.hpp>
#include <rtcache/policy/sieve.hpp>
#include <rtcache/policy/w_tinylfu.hpp>
#include <string>

#include "support/catch.hpp"
#include "support/model_checker.hpp"

using rtcache::test::model::HistoryBatchLoader;
using rtcache::test::model::HistoryLoader;
using rtcache::test::model::ModelConfig;
using rtcache::test::model::ModelResult;
using rtcache::test::model::run_model;

namespace {

void require_clean(const ModelConfig& config, const ModelResult& result) {
  for (const auto& message : result.messages) UNSCOPED_INFO(message);
  INFO("operations=" << result.operations << " faults_injected=" << result.faults_injected()
                     << " (loader throws " << result.loader_throws << ", writer throws "
                     << result.writer_throws << ", stalls " << result.stalls
                     << ") violations=" << result.violations);
  CHECK(result.violations == 0);
  CHECK(result.operations == config.threads * config.operations_per_thread);
  // The faults really happened (a stress test without them proves less).
  CHECK(result.loader_throws > 0);
  CHECK(result.writer_throws > 0);
  CHECK(result.stalls > 0);
  // And the paths worth checking were taken.
  INFO("hits " << result.stats.hits << ", misses " << result.stats.misses << ", coalesced waits "
               << result.stats.coalesced_waits << ", evictions " << result.stats.evictions
               << ", version conflicts " << result.stats.version_conflicts << ", refreshes "
               << result.stats.refreshes << ", stale served " << result.stats.stale_served
               << ", expirations " << result.stats.expirations);
  CHECK(result.stats.evictions > 0);
  CHECK(result.stats.version_conflicts > 0);
  if (config.freshness) {
    CHECK(result.stats.refreshes > 0);
    CHECK(result.stats.expirations > 0);
  }
}

ModelConfig config_for(std::size_t capacity, std::size_t shards, int keys, std::uint64_t seed) {
  ModelConfig config;
  config.threads = 8;
  config.keys = keys;
  config.capacity = capacity;
  config.shards = shards;
  config.operations_per_thread = 1000;
  config.seed = seed;
  return config;
}

}  // namespace

TEMPLATE_TEST_CASE("model check: concurrent operations with faults never break an invariant",
                   "[stress][model]", rtcache::policy::Lru, rtcache::policy::Fifo,
                   rtcache::policy::Clock, rtcache::policy::Sieve, rtcache::policy::S3Fifo,
                   rtcache::policy::WTinyLfu, rtcache::policy::WTinyLfuClock) {
  SECTION("12 keys, capacity 6 in 2 shards, one loader call per key") {
    const auto config = config_for(6, 2, 12, 1);
    require_clean(config, run_model<TestType, HistoryLoader>(config));
  }
  SECTION("8 keys, capacity 3 in 1 shard, batch loader for get_all") {
    const auto config = config_for(3, 1, 8, 2);
    require_clean(config, run_model<TestType, HistoryBatchLoader>(config));
  }
  SECTION(
      "16 keys, capacity 8 in 4 shards, TTLs, negative caching, refresh, stale-if-error, 2 loads "
      "at most") {
    auto config = config_for(8, 4, 16, 3);
    config.freshness = true;
    config.faults.loader_throw_per_mille = 150;  // so that stale-if-error has work
    require_clean(config, run_model<TestType, HistoryBatchLoader>(config));
  }
}

TEST_CASE("model check: the checker itself catches a lying cache", "[stress][model]") {
  // A cache that serves a value that was never written must be reported:
  // run the checker's own value check through a store with no history.
  rtcache::test::model::Violations violations;
  rtcache::test::model::HistoryStore store(2, 1, rtcache::test::model::FaultPlan{0, 0, 0, 1},
                                           violations);
  CHECK(!store.version_of(0, rtcache::test::model::make_value(0, 0, 1)).has_value());
  CHECK(store.absent_since(0, 0) == std::optional<std::uint64_t>(0));
  store.write(0, rtcache::test::model::make_value(0, 0, 1));
  CHECK(store.version_of(0, rtcache::test::model::make_value(0, 0, 1)) ==
        std::optional<std::uint64_t>(1));
  CHECK(!store.absent_since(0, 1).has_value());  // present since version 1
  store.erase(0);
  CHECK(store.absent_since(0, 1) == std::optional<std::uint64_t>(2));
}
