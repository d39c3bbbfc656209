// The main job: read-through/write-through against cache-aside, measured on
// a real SQLite database and on simulated stores of 50 µs and 1 ms round
// trip. Both patterns use the same cache class, options and eviction policy;
// they differ only in who orchestrates the store calls (see patterns.hpp).
//
//   rtcache_main_job [--quick] [--results-dir DIR]
//
// Prints one table to stdout, progress to stderr, and writes
// DIR/main_job.json (Google Benchmark's JSON format) and DIR/main_job.svg.

#include <stdlib.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <rtcache/rtcache.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "measure.hpp"
#include "patterns.hpp"
#include "report.hpp"
#include "store.hpp"

namespace main_job {
namespace {

using namespace std::chrono_literals;

// ---------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------

struct Config {
  bool quick = false;
  std::filesystem::path results_dir = "results";
  std::uint64_t seed = 20240601;

  std::size_t rows = 100'000;     // users in every store
  std::size_t capacity = 10'000;  // cache capacity (entries), the same for both patterns
  double zipf = 0.99;             // skew of the read workload

  // 1. Hit path.
  unsigned hit_threads = 2;
  std::chrono::milliseconds hit_duration = 1000ms;
  std::size_t hit_warmup_reads = 300'000;
  std::size_t keys_per_thread = std::size_t{1} << 20;

  // 2. Stampede.
  unsigned stampede_threads = 32;
  std::size_t stampede_keys = 16;
  unsigned stampede_rounds = 3;

  // 3. and 4. Read after write, write latency: operations per run, fewer on slow stores.
  std::size_t ops = 2000;
  std::chrono::milliseconds ops_budget = 600ms;
  std::size_t ops_keys = 1000;

  // 5. Staleness.
  unsigned stale_readers = 4;
  unsigned stale_writers = 2;
  std::size_t stale_keys = 32;
  std::chrono::milliseconds stale_duration = 2000ms;
  std::chrono::microseconds reader_pause = 20us;
  std::chrono::microseconds writer_pause = 500us;

  // 6. Warming.
  unsigned warm_threads = 8;
  std::size_t warm_bound = 2;  // store queries at once when warming with a bound
  std::size_t warm_keys = 2000;

  void make_quick() {
    quick = true;
    rows = 10'000;
    capacity = 1'000;
    hit_duration = 100ms;
    hit_warmup_reads = 20'000;
    keys_per_thread = std::size_t{1} << 15;
    stampede_keys = 8;
    stampede_rounds = 1;
    ops = 200;
    ops_budget = 60ms;
    ops_keys = 100;
    stale_duration = 250ms;
    warm_keys = 200;
  }

  [[nodiscard]] rtcache::Options cache_options() const {
    return rtcache::Options{.capacity = capacity, .shards = 0, .seed = seed};
  }
};

/// A store under test, with the latency it is expected to have (0: unknown,
/// fast), used to size runs so that slow stores do not take minutes.
struct Target {
  Store* store;
  std::chrono::nanoseconds nominal;

  [[nodiscard]] std::size_t ops(const Config& config) const {
    if (nominal.count() == 0) return config.ops;
    const auto fit = static_cast<std::size_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(config.ops_budget) / nominal);
    return std::clamp<std::size_t>(fit, 20, config.ops);
  }
};

// ---------------------------------------------------------------------------
// Plumbing
// ---------------------------------------------------------------------------

const Clock::time_point g_start = Clock::now();

void progress(const std::string& what) {
  const double seconds = std::chrono::duration<double>(Clock::now() - g_start).count();
  std::fprintf(stderr, "[%6.1fs] %s\n", seconds, what.c_str());
}

/// Runs `body(i)` on `count` new threads and `main_body()` on this one, waits
/// for all, and rethrows the first exception any of them threw.
template <class Body, class MainBody>
void run_threads(unsigned count, Body body, MainBody main_body) {
  std::mutex mutex;
  std::exception_ptr error;
  auto keep = [&] {
    std::lock_guard lock(mutex);
    if (!error) error = std::current_exception();
  };
  std::vector<std::thread> threads;
  threads.reserve(count);
  for (unsigned i = 0; i < count; ++i) {
    threads.emplace_back([&, i] {
      try {
        body(i);
      } catch (...) {
        keep();
      }
    });
  }
  try {
    main_body();
  } catch (...) {
    keep();
  }
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

template <class Body>
void run_threads(unsigned count, Body body) {
  run_threads(count, std::move(body), [] {});
}

UserRow require(std::optional<UserRow> row, Key id) {
  if (!row) throw std::runtime_error("user " + std::to_string(id) + " not found");
  return std::move(*row);
}

std::string written_name(Key id, std::uint64_t n) {
  return "user-" + std::to_string(id) + "-write-" + std::to_string(n);
}

// ---------------------------------------------------------------------------
// 1. Hit path: Zipf reads at steady state
// ---------------------------------------------------------------------------

struct HitPathResult {
  LatencyHistogram latency;
  std::uint64_t reads = 0;
  double seconds = 0;
  double cpu_nanos_per_read = 0;
  double hit_ratio = 0;
  std::uint64_t store_reads = 0;
};

template <class Service>
HitPathResult run_hit_path(Store& store, const Config& config, const std::vector<Key>& warmup,
                           const std::vector<std::vector<Key>>& streams) {
  Service service(store, config.cache_options());
  // Steady state first: replay a prefix of the workload, filling misses from
  // the store without its latency (the same for both patterns).
  for (const Key id : warmup) {
    if (!service.cached(id)) service.prime(id, require(store.peek(id), id));
  }
  store.reset_counters();
  const rtcache::Stats before = service.stats();

  const unsigned threads = config.hit_threads;
  std::vector<LatencyHistogram> histograms(threads);
  std::vector<std::uint64_t> reads(threads, 0);
  std::atomic<bool> stop{false};
  std::latch ready(threads + 1);
  Clock::time_point start;
  std::uint64_t cpu_start = 0;
  run_threads(
      threads,
      [&](unsigned t) {
        ready.arrive_and_wait();
        const std::vector<Key>& keys = streams[t];
        LatencyHistogram& histogram = histograms[t];
        std::size_t i = 0;
        std::uint64_t n = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          for (int batch = 0; batch < 64; ++batch) {
            const Key id = keys[i];
            i = i + 1 == keys.size() ? 0 : i + 1;
            const auto begin = Clock::now();
            const std::optional<UserRow> row = service.read(id);
            histogram.record(nanos_between(begin, Clock::now()));
            if (!row) throw std::runtime_error("hit path: user not found");
            ++n;
          }
        }
        reads[t] = n;
      },
      [&] {
        ready.arrive_and_wait();
        cpu_start = process_cpu_nanos();
        start = Clock::now();
        std::this_thread::sleep_for(config.hit_duration);
        stop.store(true, std::memory_order_relaxed);
      });
  HitPathResult result;
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const std::uint64_t cpu = process_cpu_nanos() - cpu_start;
  for (unsigned t = 0; t < threads; ++t) {
    result.latency.merge(histograms[t]);
    result.reads += reads[t];
  }
  const rtcache::Stats after = service.stats();
  const auto hits = static_cast<double>(after.hits - before.hits);
  const auto misses = static_cast<double>(after.misses - before.misses);
  result.hit_ratio = hits + misses == 0 ? 0 : hits / (hits + misses);
  result.store_reads = store.reads();
  result.cpu_nanos_per_read =
      result.reads == 0 ? 0 : static_cast<double>(cpu) / static_cast<double>(result.reads);
  return result;
}

// ---------------------------------------------------------------------------
// 2. Cold-start stampede
// ---------------------------------------------------------------------------

struct StampedeResult {
  double mean_queries_per_key = 0;
  std::uint32_t max_queries_per_key = 0;
  double mean_seconds = 0;  // from the start until every thread has every key
  std::uint32_t peak_concurrency = 0;
  unsigned rounds = 0;
};

template <class Service>
StampedeResult run_stampede(Store& store, const Config& config, const std::vector<Key>& hot) {
  StampedeResult result;
  const unsigned threads = config.stampede_threads;
  double total_queries = 0;
  double total_seconds = 0;
  for (unsigned round = 0; round < config.stampede_rounds; ++round) {
    Service service(store, config.cache_options());  // empty: a cold start
    store.reset_counters();
    std::latch start(threads);
    std::vector<Clock::time_point> begin(threads);
    std::vector<Clock::time_point> end(threads);
    run_threads(threads, [&](unsigned t) {
      start.arrive_and_wait();
      begin[t] = Clock::now();
      for (const Key id : hot) require(service.read(id), id);
      end[t] = Clock::now();
    });
    total_seconds += std::chrono::duration<double>(*std::max_element(end.begin(), end.end()) -
                                                   *std::min_element(begin.begin(), begin.end()))
                         .count();
    for (const Key id : hot) {
      total_queries += store.reads_of(id);
      result.max_queries_per_key = std::max(result.max_queries_per_key, store.reads_of(id));
    }
    result.peak_concurrency = std::max(result.peak_concurrency, store.peak_concurrency());
    ++result.rounds;
  }
  result.mean_queries_per_key =
      total_queries / static_cast<double>(hot.size() * config.stampede_rounds);
  result.mean_seconds = total_seconds / config.stampede_rounds;
  return result;
}

// ---------------------------------------------------------------------------
// 3. Read after write
// ---------------------------------------------------------------------------

struct ReadAfterWriteResult {
  LatencyHistogram latency;
  std::uint64_t reads = 0;
  std::uint64_t store_reads = 0;
  std::uint64_t fresh = 0;  // reads that returned the version just written (or newer)
};

template <class Service>
ReadAfterWriteResult run_read_after_write(Store& store, const Config& config,
                                          const std::vector<Key>& keys, std::size_t ops) {
  Service service(store, config.cache_options());
  for (const Key id : keys) require(service.read(id), id);
  ReadAfterWriteResult result;
  for (std::size_t i = 0; i < ops; ++i) {
    const Key id = keys[i % keys.size()];
    const std::uint64_t version = service.write(id, written_name(id, i), seeded_email(id));
    const std::uint64_t reads_before = store.reads();
    const auto begin = Clock::now();
    const UserRow row = require(service.read(id), id);
    result.latency.record(nanos_between(begin, Clock::now()));
    result.store_reads += store.reads() - reads_before;
    if (row.version >= version) ++result.fresh;
    ++result.reads;
  }
  return result;
}

// ---------------------------------------------------------------------------
// 4. Write latency
// ---------------------------------------------------------------------------

struct WriteLatencyResult {
  LatencyHistogram latency;
  double cpu_nanos_per_write = 0;
};

/// Times `write(id, name, email)` on `ops` writes spread over `keys`.
template <class Write>
WriteLatencyResult time_writes(const std::vector<Key>& keys, std::size_t ops, Write write) {
  WriteLatencyResult result;
  const std::uint64_t cpu_start = process_cpu_nanos();
  for (std::size_t i = 0; i < ops; ++i) {
    const Key id = keys[i % keys.size()];
    const std::string name = written_name(id, i);
    const std::string email = seeded_email(id);
    const auto begin = Clock::now();
    write(id, name, email);
    result.latency.record(nanos_between(begin, Clock::now()));
  }
  result.cpu_nanos_per_write =
      static_cast<double>(process_cpu_nanos() - cpu_start) / static_cast<double>(ops);
  return result;
}

template <class Service>
WriteLatencyResult run_service_writes(Store& store, const Config& config,
                                      const std::vector<Key>& keys, std::size_t ops) {
  Service service(store, config.cache_options());
  for (const Key id : keys) require(service.read(id), id);  // written keys are cached
  return time_writes(keys, ops, [&](Key id, const std::string& name, const std::string& email) {
    service.write(id, name, email);
  });
}

WriteLatencyResult run_store_writes(Store& store, const std::vector<Key>& keys, std::size_t ops) {
  return time_writes(keys, ops, [&](Key id, const std::string& name, const std::string& email) {
    store.write(id, name, email);
  });
}

// ---------------------------------------------------------------------------
// 5. Staleness under concurrent readers and writers
// ---------------------------------------------------------------------------

/// For each key, the newest version a writer has had acknowledged and when.
/// A read is stale when it returns a version older than the one acknowledged
/// before the read began.
class AcknowledgedWrites {
 public:
  explicit AcknowledgedWrites(std::size_t keys) : slots_(std::make_unique<Slot[]>(keys)) {}

  void acknowledge(std::size_t slot, std::uint64_t version, Clock::time_point when) {
    Slot& s = slots_[slot];
    std::lock_guard lock(s.mutex);
    if (version > s.version) {
      s.version = version;
      s.when = when;
    }
  }

  [[nodiscard]] std::pair<std::uint64_t, Clock::time_point> last(std::size_t slot) const {
    const Slot& s = slots_[slot];
    std::lock_guard lock(s.mutex);
    return {s.version, s.when};
  }

 private:
  struct alignas(64) Slot {
    mutable std::mutex mutex;
    std::uint64_t version = 0;
    Clock::time_point when{};
  };
  std::unique_ptr<Slot[]> slots_;
};

struct StalenessResult {
  std::uint64_t reads = 0;
  std::uint64_t stale_reads = 0;
  std::uint64_t writes = 0;
  LatencyHistogram stale_age;  // how long after the missed write was acknowledged
  std::vector<std::pair<std::size_t, std::uint64_t>> stale_values;  // (key slot, version) seen
  std::size_t keys = 0;
  std::size_t keys_left_stale = 0;  // cached older than the store once writes stopped
  double seconds = 0;
};

template <class Service>
StalenessResult run_staleness(Store& store, const Config& config, const std::vector<Key>& keys) {
  Service service(store, config.cache_options());
  for (const Key id : keys) require(service.read(id), id);
  AcknowledgedWrites acknowledged(keys.size());

  const unsigned readers = config.stale_readers;
  const unsigned writers = config.stale_writers;
  std::vector<StalenessResult> per_thread(readers + writers);
  std::atomic<bool> stop{false};
  std::latch ready(readers + writers + 1);
  Clock::time_point start;
  run_threads(
      readers + writers,
      [&](unsigned t) {
        ready.arrive_and_wait();
        std::mt19937_64 rng(config.seed + t);
        std::uniform_int_distribution<std::size_t> pick(0, keys.size() - 1);
        StalenessResult& mine = per_thread[t];
        std::uint64_t n = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          const std::size_t slot = pick(rng);
          const Key id = keys[slot];
          if (t < readers) {
            const auto [version, acknowledged_at] = acknowledged.last(slot);
            const UserRow row = require(service.read(id), id);
            ++mine.reads;
            if (row.version < version) {
              ++mine.stale_reads;
              mine.stale_age.record(nanos_between(acknowledged_at, Clock::now()));
              mine.stale_values.emplace_back(slot, row.version);
            }
            std::this_thread::sleep_for(config.reader_pause);
          } else {
            const std::uint64_t version = service.write(
                id, written_name(id, (std::uint64_t{t} << 32) | n++), seeded_email(id));
            acknowledged.acknowledge(slot, version, Clock::now());
            ++mine.writes;
            std::this_thread::sleep_for(config.writer_pause);
          }
        }
      },
      [&] {
        ready.arrive_and_wait();
        start = Clock::now();
        std::this_thread::sleep_for(config.stale_duration);
        stop.store(true, std::memory_order_relaxed);
      });
  StalenessResult result;
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (const StalenessResult& r : per_thread) {
    result.reads += r.reads;
    result.stale_reads += r.stale_reads;
    result.writes += r.writes;
    result.stale_age.merge(r.stale_age);
    result.stale_values.insert(result.stale_values.end(), r.stale_values.begin(),
                               r.stale_values.end());
  }
  // An episode: one stale value of one key, however many reads it served.
  std::sort(result.stale_values.begin(), result.stale_values.end());
  result.stale_values.erase(std::unique(result.stale_values.begin(), result.stale_values.end()),
                            result.stale_values.end());
  // Writes have stopped: what is still cached older than the store stays so
  // until it is evicted (or the key is written again).
  result.keys = keys.size();
  for (const Key id : keys) {
    const std::optional<UserRow> cached = service.cached(id);
    if (cached && cached->version < require(store.peek(id), id).version) ++result.keys_left_stale;
  }
  return result;
}

// ---------------------------------------------------------------------------
// 6. Warming the hot set (passive: by the first reads)
// ---------------------------------------------------------------------------

struct WarmingResult {
  double seconds = 0;
  std::uint64_t store_reads = 0;
  std::uint32_t peak_concurrency = 0;
};

template <class Service>
WarmingResult run_passive_warming(Store& store, const Config& config, const std::vector<Key>& hot) {
  const unsigned threads = config.warm_threads;
  std::vector<std::vector<Key>> orders(threads, hot);
  for (unsigned t = 0; t < threads; ++t) {
    std::mt19937_64 rng(config.seed + 100 + t);
    std::shuffle(orders[t].begin(), orders[t].end(), rng);
  }
  Service service(store, config.cache_options());
  store.reset_counters();
  std::latch start(threads);
  std::vector<Clock::time_point> begin(threads);
  std::vector<Clock::time_point> end(threads);
  run_threads(threads, [&](unsigned t) {
    start.arrive_and_wait();
    begin[t] = Clock::now();
    for (const Key id : orders[t]) require(service.read(id), id);
    end[t] = Clock::now();
  });
  WarmingResult result;
  result.seconds = std::chrono::duration<double>(*std::max_element(end.begin(), end.end()) -
                                                 *std::min_element(begin.begin(), begin.end()))
                       .count();
  result.store_reads = store.reads();
  result.peak_concurrency = store.peak_concurrency();
  return result;
}

/// Warming with a bound on store concurrency: read-through calls
/// `cache.warm(hot, {.max_concurrency = bound})`; cache-aside runs `bound`
/// workers of its own that query and fill.
template <class Service>
WarmingResult run_bounded_warming(Store& store, const Config& config, const std::vector<Key>& hot) {
  Service service(store, config.cache_options());
  store.reset_counters();
  const auto begin = Clock::now();
  service.warm(hot, config.warm_bound);
  WarmingResult result;
  result.seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  result.store_reads = store.reads();
  result.peak_concurrency = store.peak_concurrency();
  return result;
}

// ---------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------

class Report {
 public:
  Report()
      : table_({"Scenario / measure", "Store", CacheAsideUsers::kLabel, ReadThroughUsers::kLabel}) {
  }

  void row(const std::string& measure, const std::string& store, const std::string& cache_aside,
           const std::string& read_through) {
    table_.add_row({measure, store, cache_aside, read_through});
  }

  void add(BenchmarkEntry entry) { entries_.push_back(std::move(entry)); }
  void add(BarPanel panel) { panels_.push_back(std::move(panel)); }

  [[nodiscard]] const Table& table() const { return table_; }
  [[nodiscard]] const std::vector<BenchmarkEntry>& entries() const { return entries_; }
  [[nodiscard]] const std::vector<BarPanel>& panels() const { return panels_; }

 private:
  Table table_;
  std::vector<BenchmarkEntry> entries_;
  std::vector<BarPanel> panels_;
};

BenchmarkEntry entry(const std::string& scenario, const Store& store, const std::string& pattern,
                     std::uint64_t iterations, double real_time, double cpu_time,
                     const std::string& unit, unsigned threads) {
  BenchmarkEntry e;
  e.name = scenario + "/" + store.name() + "/" + pattern;
  e.iterations = iterations;
  e.real_time = real_time;
  e.cpu_time = cpu_time;
  e.time_unit = unit;
  e.threads = threads;
  return e;
}

std::string mean_and_max(double mean, std::uint32_t max) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.1f (max %u)", mean, max);
  return buffer;
}

// ---------------------------------------------------------------------------
// Context of the run, in Google Benchmark's "context" shape
// ---------------------------------------------------------------------------

std::vector<ContextValue> context(const Config& config, const std::string& executable,
                                  double wall_seconds) {
  std::vector<ContextValue> c;
  char date[64];
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S%z", &local);
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  double mhz = 0;
  {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line)) {
      if (line.rfind("cpu MHz", 0) == 0) {
        mhz = std::atof(line.substr(line.find(':') + 1).c_str());
        break;
      }
    }
  }
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) != 3) load[0] = load[1] = load[2] = 0;

  c.push_back({"date", json_string(date)});
  c.push_back({"host_name", json_string(host)});
  c.push_back({"executable", json_string(executable)});
  c.push_back({"num_cpus", std::to_string(std::thread::hardware_concurrency())});
  c.push_back({"mhz_per_cpu", json_number(std::round(mhz))});
  c.push_back({"cpu_scaling_enabled", "false"});
  c.push_back({"caches", "[]"});
  c.push_back({"load_avg", "[" + json_number(load[0]) + "," + json_number(load[1]) + "," +
                               json_number(load[2]) + "]"});
#ifdef NDEBUG
  c.push_back({"library_build_type", json_string("release")});
#else
  c.push_back({"library_build_type", json_string("debug")});
#endif
  c.push_back({"rtcache_main_job_quick", config.quick ? "true" : "false"});
  c.push_back({"sqlite_version", json_string(sqlite3_libversion())});
  c.push_back({"rows", std::to_string(config.rows)});
  c.push_back({"cache_capacity", std::to_string(config.capacity)});
  c.push_back({"cache_policy", json_string("rtcache::DefaultPolicy (policy::WTinyLfuClock)")});
  c.push_back({"zipf_exponent", json_number(config.zipf)});
  c.push_back({"wall_time_s", json_number(wall_seconds)});
  return c;
}

/// A fresh directory for the database, removed with everything in it at the end.
class TemporaryDirectory {
 public:
  TemporaryDirectory() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "rtcache-main-job-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("cannot create a temporary directory in " +
                               std::filesystem::temp_directory_path().string());
    }
    path_ = pattern;
  }
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;
  ~TemporaryDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

int run(const Config& config, const std::string& executable) {
#ifdef __linux__
  // Sleep as long as asked, not up to 50 µs longer: the simulated stores'
  // latencies are sleeps. (Threads created later inherit the slack.)
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
#endif
  const TemporaryDirectory directory;
  progress("creating the SQLite database (" + std::to_string(config.rows) + " rows) in " +
           directory.path().string());
  SqliteStore sqlite(directory.path() / "users.db", config.rows);
  SimulatedStore sim_fast("sim_50us", 50us, config.rows);
  SimulatedStore sim_slow("sim_1ms", 1ms, config.rows);
  const std::vector<Target> targets = {
      {&sqlite, 0ns}, {&sim_fast, sim_fast.round_trip()}, {&sim_slow, sim_slow.round_trip()}};
  std::vector<std::string> store_names;
  for (const Target& t : targets) store_names.push_back(t.store->name());

  const ZipfKeys zipf(config.rows, config.zipf, config.seed);
  Report report;
  report.row("0 Cache logic the application writes", "any",
             "read: check, query, fill; write: write, invalidate", "none: get(), put()");

  // 1. Hit path ------------------------------------------------------------
  {
    const std::vector<Key> warmup = zipf.draw(config.hit_warmup_reads, config.seed + 1);
    std::vector<std::vector<Key>> streams;
    for (unsigned t = 0; t < config.hit_threads; ++t) {
      streams.push_back(zipf.draw(config.keys_per_thread, config.seed + 10 + t));
    }
    BarPanel panel{"1. Hit path: read p50",
                   "µs",
                   true,
                   store_names,
                   {CacheAsideUsers::kLabel, ReadThroughUsers::kLabel},
                   {}};
    const std::string title = "1 Hit path: Zipf " + short_number(config.zipf) + " reads, " +
                              std::to_string(config.hit_threads) + " threads, read p50 / p99";
    std::vector<std::pair<HitPathResult, HitPathResult>> results;
    for (const Target& t : targets) {
      progress("1/6 hit path: " + t.store->name() + ", cache-aside");
      HitPathResult aside = run_hit_path<CacheAsideUsers>(*t.store, config, warmup, streams);
      progress("1/6 hit path: " + t.store->name() + ", read-through");
      HitPathResult through = run_hit_path<ReadThroughUsers>(*t.store, config, warmup, streams);
      panel.values.push_back(
          {aside.latency.percentile(0.5) / 1e3, through.latency.percentile(0.5) / 1e3});
      for (const auto* r : {&aside, &through}) {
        const char* pattern = r == &aside ? CacheAsideUsers::kName : ReadThroughUsers::kName;
        BenchmarkEntry e = entry("hit_path", *t.store, pattern, r->reads, r->latency.mean(),
                                 r->cpu_nanos_per_read, "ns", config.hit_threads);
        e.label = "real_time: mean read latency; cpu_time: process CPU time per read";
        e.counters = {{"p50_ns", r->latency.percentile(0.5)},
                      {"p99_ns", r->latency.percentile(0.99)},
                      {"items_per_second", static_cast<double>(r->reads) / r->seconds},
                      {"hit_ratio", r->hit_ratio},
                      {"store_reads", static_cast<double>(r->store_reads)}};
        report.add(std::move(e));
      }
      results.emplace_back(std::move(aside), std::move(through));
    }
    for (std::size_t i = 0; i < targets.size(); ++i) {
      const auto& [aside, through] = results[i];
      report.row(i == 0 ? title : "", store_names[i],
                 format_pair(aside.latency.percentile(0.5), aside.latency.percentile(0.99)),
                 format_pair(through.latency.percentile(0.5), through.latency.percentile(0.99)));
    }
    for (std::size_t i = 0; i < targets.size(); ++i) {
      const auto& [aside, through] = results[i];
      auto cell = [](const HitPathResult& r) {
        return format_count(static_cast<double>(r.reads) / r.seconds) + " reads/s, " +
               format_percent(r.hit_ratio) + " hits";
      };
      report.row(i == 0 ? "  throughput, hit ratio" : "", store_names[i], cell(aside),
                 cell(through));
    }
    report.add(std::move(panel));
  }

  // 2. Stampede -------------------------------------------------------------
  {
    const std::vector<Key> hot = zipf.hottest(config.stampede_keys);
    for (const Key id : hot) require(sqlite.peek(id), id);  // the same page cache for both
    BarPanel panel{"2. Cold stampede: store reads per key",
                   "reads per key",
                   false,
                   store_names,
                   {CacheAsideUsers::kLabel, ReadThroughUsers::kLabel},
                   {}};
    const std::string title = "2 Cold stampede: " + std::to_string(config.stampede_threads) +
                              " threads read the same " + std::to_string(hot.size()) +
                              " keys; store reads per key";
    std::vector<std::pair<StampedeResult, StampedeResult>> results;
    for (const Target& t : targets) {
      progress("2/6 stampede: " + t.store->name());
      const StampedeResult aside = run_stampede<CacheAsideUsers>(*t.store, config, hot);
      const StampedeResult through = run_stampede<ReadThroughUsers>(*t.store, config, hot);
      panel.values.push_back({aside.mean_queries_per_key, through.mean_queries_per_key});
      for (const auto* r : {&aside, &through}) {
        const char* pattern = r == &aside ? CacheAsideUsers::kName : ReadThroughUsers::kName;
        BenchmarkEntry e = entry("stampede", *t.store, pattern, r->rounds, r->mean_seconds * 1e3,
                                 r->mean_seconds * 1e3, "ms", config.stampede_threads);
        e.label = "real_time: until every thread has read every hot key";
        e.counters = {{"store_reads_per_key", r->mean_queries_per_key},
                      {"store_reads_per_key_max", r->max_queries_per_key},
                      {"peak_store_concurrency", r->peak_concurrency},
                      {"hot_keys", static_cast<double>(hot.size())}};
        report.add(std::move(e));
      }
      results.emplace_back(aside, through);
    }
    for (std::size_t i = 0; i < targets.size(); ++i) {
      const auto& [aside, through] = results[i];
      report.row(i == 0 ? title : "", store_names[i],
                 mean_and_max(aside.mean_queries_per_key, aside.max_queries_per_key),
                 mean_and_max(through.mean_queries_per_key, through.max_queries_per_key));
    }
    for (std::size_t i = 0; i < targets.size(); ++i) {
      const auto& [aside, through] = results[i];
      auto cell = [](const StampedeResult& r) {
        return format_nanos(r.mean_seconds * 1e9) + ", peak " + std::to_string(r.peak_concurrency) +
               " in flight";
      };
      report.row(i == 0 ? "  time until all are served, peak store concurrency" : "",
                 store_names[i], cell(aside), cell(through));
    }
    report.add(std::move(panel));
  }

  const std::vector<Key> key_set = zipf.hottest(config.ops_keys);

  // 3. Read after write -----------------------------------------------------
  {
    BarPanel panel{"3. Read after write: read p50",
                   "µs",
                   true,
                   store_names,
                   {CacheAsideUsers::kLabel, ReadThroughUsers::kLabel},
                   {}};
    std::vector<std::pair<ReadAfterWriteResult, ReadAfterWriteResult>> results;
    for (const Target& t : targets) {
      progress("3/6 read after write: " + t.store->name());
      const std::size_t ops = t.ops(config);
      ReadAfterWriteResult aside =
          run_read_after_write<CacheAsideUsers>(*t.store, config, key_set, ops);
      ReadAfterWriteResult through =
          run_read_after_write<ReadThroughUsers>(*t.store, config, key_set, ops);
      panel.values.push_back(
          {aside.latency.percentile(0.5) / 1e3, through.latency.percentile(0.5) / 1e3});
      for (const auto* r : {&aside, &through}) {
        const char* pattern = r == &aside ? CacheAsideUsers::kName : ReadThroughUsers::kName;
        BenchmarkEntry e = entry("read_after_write", *t.store, pattern, r->reads, r->latency.mean(),
                                 r->latency.mean(), "ns", 1);
        e.label = "the read that follows each write of the same key";
        e.counters = {
            {"p50_ns", r->latency.percentile(0.5)},
            {"p99_ns", r->latency.percentile(0.99)},
            {"store_reads_per_read",
             static_cast<double>(r->store_reads) / static_cast<double>(r->reads)},
            {"fresh_fraction", static_cast<double>(r->fresh) / static_cast<double>(r->reads)}};
        report.add(std::move(e));
      }
      results.emplace_back(std::move(aside), std::move(through));
    }
    for (std::size_t i = 0; i < targets.size(); ++i) {
      const auto& [aside, through] = results[i];
      auto cell = [](const ReadAfterWriteResult& r) {
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%.2f",
                      static_cast<double>(r.store_reads) / static_cast<double>(r.reads));
        return std::string(buffer);
      };
      report.row(i == 0 ? "3 Read after write: store reads per read of the key just written" : "",
                 store_names[i], cell(aside), cell(through));
    }
    for (std::size_t i = 0; i < targets.size(); ++i) {
      const auto& [aside, through] = results[i];
      report.row(i == 0 ? "  that read's latency p50 / p99" : "", store_names[i],
                 format_pair(aside.latency.percentile(0.5), aside.latency.percentile(0.99)),
                 format_pair(through.latency.percentile(0.5), through.latency.percentile(0.99)));
    }
    report.add(std::move(panel));
  }

  // 4. Write latency --------------------------------------------------------
  {
    BarPanel panel{"4. Write latency p50",
                   "µs",
                   true,
                   store_names,
                   {"store alone", CacheAsideUsers::kLabel, ReadThroughUsers::kLabel},
                   {}};
    struct Row {
      WriteLatencyResult alone, aside, through;
    };
    std::vector<Row> results;
    for (const Target& t : targets) {
      progress("4/6 write latency: " + t.store->name());
      const std::size_t ops = t.ops(config);
      Row r{run_store_writes(*t.store, key_set, ops),
            run_service_writes<CacheAsideUsers>(*t.store, config, key_set, ops),
            run_service_writes<ReadThroughUsers>(*t.store, config, key_set, ops)};
      panel.values.push_back({r.alone.latency.percentile(0.5) / 1e3,
                              r.aside.latency.percentile(0.5) / 1e3,
                              r.through.latency.percentile(0.5) / 1e3});
      const std::pair<const WriteLatencyResult*, const char*> runs[] = {
          {&r.alone, "store_only"}, {&r.aside, "cache_aside"}, {&r.through, "write_through"}};
      for (const auto& [w, pattern] : runs) {
        BenchmarkEntry e = entry("write_latency", *t.store, pattern, w->latency.count(),
                                 w->latency.mean(), w->cpu_nanos_per_write, "ns", 1);
        e.counters = {{"p50_ns", w->latency.percentile(0.5)},
                      {"p99_ns", w->latency.percentile(0.99)}};
        report.add(std::move(e));
      }
      results.push_back(std::move(r));
    }
    for (std::size_t i = 0; i < targets.size(); ++i) {
      const Row& r = results[i];
      report.row(
          i == 0 ? "4 Write latency p50 / p99 (write + invalidate; put)" : "", store_names[i],
          format_pair(r.aside.latency.percentile(0.5), r.aside.latency.percentile(0.99)),
          format_pair(r.through.latency.percentile(0.5), r.through.latency.percentile(0.99)));
    }
    for (std::size_t i = 0; i < targets.size(); ++i) {
      const Row& r = results[i];
      const std::string alone =
          format_pair(r.alone.latency.percentile(0.5), r.alone.latency.percentile(0.99));
      report.row(i == 0 ? "  the store's write alone, p50 / p99 (same baseline)" : "",
                 store_names[i], alone, alone);
    }
    report.add(std::move(panel));
  }

  // 5. Staleness ------------------------------------------------------------
  {
    const std::vector<Key> keys = zipf.hottest(config.stale_keys);
    BarPanel panel{"5. Stale reads after acknowledged writes",
                   "% of reads",
                   false,
                   store_names,
                   {CacheAsideUsers::kLabel, ReadThroughUsers::kLabel},
                   {}};
    std::vector<std::pair<StalenessResult, StalenessResult>> results;
    for (const Target& t : targets) {
      progress("5/6 staleness: " + t.store->name() + ", cache-aside");
      StalenessResult aside = run_staleness<CacheAsideUsers>(*t.store, config, keys);
      progress("5/6 staleness: " + t.store->name() + ", read-through");
      StalenessResult through = run_staleness<ReadThroughUsers>(*t.store, config, keys);
      auto fraction = [](const StalenessResult& r) {
        return r.reads == 0 ? 0.0
                            : static_cast<double>(r.stale_reads) / static_cast<double>(r.reads);
      };
      panel.values.push_back({fraction(aside) * 100, fraction(through) * 100});
      for (const auto* r : {&aside, &through}) {
        const char* pattern = r == &aside ? CacheAsideUsers::kName : ReadThroughUsers::kName;
        BenchmarkEntry e =
            entry("staleness", *t.store, pattern, 1, r->seconds * 1e3, r->seconds * 1e3, "ms",
                  config.stale_readers + config.stale_writers);
        e.label = "stale: a read older than the last write acknowledged before it began";
        e.counters = {{"reads", static_cast<double>(r->reads)},
                      {"writes", static_cast<double>(r->writes)},
                      {"stale_reads", static_cast<double>(r->stale_reads)},
                      {"stale_fraction", fraction(*r)},
                      {"stale_episodes", static_cast<double>(r->stale_values.size())},
                      {"stale_age_p50_ns", r->stale_age.percentile(0.5)},
                      {"stale_age_max_ns", static_cast<double>(r->stale_age.max())},
                      {"keys_left_stale", static_cast<double>(r->keys_left_stale)}};
        report.add(std::move(e));
      }
      results.emplace_back(std::move(aside), std::move(through));
    }
    const std::string title = "5 Staleness: " + std::to_string(config.stale_readers) +
                              " readers, " + std::to_string(config.stale_writers) + " writers on " +
                              std::to_string(keys.size()) + " keys; stale reads";
    for (std::size_t i = 0; i < targets.size(); ++i) {
      const auto& [aside, through] = results[i];
      auto cell = [](const StalenessResult& r) {
        const double f =
            r.reads == 0 ? 0.0 : static_cast<double>(r.stale_reads) / static_cast<double>(r.reads);
        return format_percent(f) + " (" + format_count(static_cast<double>(r.stale_reads)) +
               " of " + format_count(static_cast<double>(r.reads)) + ")";
      };
      report.row(i == 0 ? title : "", store_names[i], cell(aside), cell(through));
    }
    for (std::size_t i = 0; i < targets.size(); ++i) {
      const auto& [aside, through] = results[i];
      auto cell = [](const StalenessResult& r) -> std::string {
        if (r.stale_reads == 0) return "-";
        return format_pair(r.stale_age.percentile(0.5), static_cast<double>(r.stale_age.max())) +
               " in " + std::to_string(r.stale_values.size()) + " episodes";
      };
      report.row(i == 0 ? "  stale for p50 / max since the missed write's ack; episodes" : "",
                 store_names[i], cell(aside), cell(through));
    }
    for (std::size_t i = 0; i < targets.size(); ++i) {
      const auto& [aside, through] = results[i];
      auto cell = [](const StalenessResult& r) {
        return std::to_string(r.keys_left_stale) + " of " + std::to_string(r.keys);
      };
      report.row(i == 0 ? "  keys still stale after writes stop (until evicted)" : "",
                 store_names[i], cell(aside), cell(through));
    }
    report.add(std::move(panel));
  }

  // 6. Warming --------------------------------------------------------------
  {
    const std::vector<Key> hot = zipf.hottest(config.warm_keys);
    BarPanel panel{"6. Passive warming: time",
                   "ms",
                   true,
                   store_names,
                   {CacheAsideUsers::kLabel, ReadThroughUsers::kLabel},
                   {}};
    std::vector<std::pair<WarmingResult, WarmingResult>> results;
    for (const Target& t : targets) {
      progress("6/6 warming: " + t.store->name());
      const WarmingResult aside = run_passive_warming<CacheAsideUsers>(*t.store, config, hot);
      const WarmingResult through = run_passive_warming<ReadThroughUsers>(*t.store, config, hot);
      panel.values.push_back({aside.seconds * 1e3, through.seconds * 1e3});
      for (const auto* r : {&aside, &through}) {
        const char* pattern = r == &aside ? CacheAsideUsers::kName : ReadThroughUsers::kName;
        BenchmarkEntry e = entry("warming_passive", *t.store, pattern, 1, r->seconds * 1e3,
                                 r->seconds * 1e3, "ms", config.warm_threads);
        e.label = "every thread reads the whole hot set, each in its own order";
        e.counters = {{"hot_keys", static_cast<double>(hot.size())},
                      {"store_reads", static_cast<double>(r->store_reads)},
                      {"store_reads_per_key",
                       static_cast<double>(r->store_reads) / static_cast<double>(hot.size())},
                      {"peak_store_concurrency", r->peak_concurrency}};
        report.add(std::move(e));
      }
      results.emplace_back(aside, through);
    }
    const std::string title = "6 Passive warming: " + std::to_string(config.warm_threads) +
                              " threads read " + std::to_string(hot.size()) +
                              " cold hot keys; time";
    for (std::size_t i = 0; i < targets.size(); ++i) {
      const auto& [aside, through] = results[i];
      report.row(i == 0 ? title : "", store_names[i], format_nanos(aside.seconds * 1e9),
                 format_nanos(through.seconds * 1e9));
    }
    for (std::size_t i = 0; i < targets.size(); ++i) {
      const auto& [aside, through] = results[i];
      auto cell = [&](const WarmingResult& r) {
        char buffer[64];
        std::snprintf(buffer, sizeof buffer, "%.2f, peak %u in flight",
                      static_cast<double>(r.store_reads) / static_cast<double>(hot.size()),
                      r.peak_concurrency);
        return std::string(buffer);
      };
      report.row(i == 0 ? "  store reads per key, peak store concurrency" : "", store_names[i],
                 cell(aside), cell(through));
    }
    report.add(std::move(panel));
    for (std::size_t i = 0; i < targets.size(); ++i) {
      const Target& t = targets[i];
      progress("6/6 bounded warming: " + t.store->name());
      const WarmingResult aside = run_bounded_warming<CacheAsideUsers>(*t.store, config, hot);
      const WarmingResult through = run_bounded_warming<ReadThroughUsers>(*t.store, config, hot);
      for (const auto* r : {&aside, &through}) {
        const char* pattern = r == &aside ? CacheAsideUsers::kName : ReadThroughUsers::kName;
        BenchmarkEntry e = entry("warming_bounded", *t.store, pattern, 1, r->seconds * 1e3,
                                 r->seconds * 1e3, "ms", static_cast<unsigned>(config.warm_bound));
        e.label = "the hot set loaded with a bound on concurrent store queries";
        e.counters = {{"hot_keys", static_cast<double>(hot.size())},
                      {"bound", static_cast<double>(config.warm_bound)},
                      {"store_reads", static_cast<double>(r->store_reads)},
                      {"peak_store_concurrency", r->peak_concurrency}};
        report.add(std::move(e));
      }
      auto cell = [](const WarmingResult& r) {
        char buffer[64];
        std::snprintf(buffer, sizeof buffer, "%s, peak %u in flight",
                      format_nanos(r.seconds * 1e9).c_str(), r.peak_concurrency);
        return std::string(buffer);
      };
      report.row(i == 0 ? "  bounded to " + std::to_string(config.warm_bound) +
                              " store queries at once: time, peak"
                        : "",
                 store_names[i], cell(aside) + " (own worker pool)",
                 cell(through) + " (cache.warm)");
    }
  }

  // Output ------------------------------------------------------------------
  const double wall = std::chrono::duration<double>(Clock::now() - g_start).count();
  std::filesystem::create_directories(config.results_dir);
  const auto json_file = config.results_dir / "main_job.json";
  const auto svg_file = config.results_dir / "main_job.svg";
  write_json(json_file, context(config, executable, wall), report.entries());
  write_svg(svg_file, "rtcache: cache-aside vs read-through/write-through (same cache, W-TinyLFU)",
            report.panels());
  progress("done");

  std::cout << "\nrtcache main job: cache-aside vs read-through/write-through"
            << (config.quick ? " (--quick: small sizes, numbers are rough)" : "") << "\n"
            << "Same cache class, options and policy in both columns (W-TinyLFU, the default "
               "policy; capacity "
            << config.capacity << ").\n"
            << "Stores: sqlite = " << sqlite.describe() << ";\n"
            << "        sim_50us / sim_1ms = " << sim_fast.describe() << " / 1 ms.\n\n";
  report.table().print(std::cout);
  std::cout << "\nWall time " << format_nanos(wall * 1e9) << " on "
            << std::thread::hardware_concurrency() << " CPUs. Results: " << json_file.string()
            << ", " << svg_file.string() << "\n";
  return 0;
}

void usage(std::ostream& out) {
  out << "usage: rtcache_main_job [--quick] [--results-dir DIR]\n"
         "  Measures read-through/write-through against cache-aside on SQLite and on\n"
         "  simulated stores; prints a table, writes DIR/main_job.json and DIR/main_job.svg.\n"
         "  --quick            small sizes, a few seconds (CI smoke run)\n"
         "  --results-dir DIR  where to write the results (default: results)\n";
}

}  // namespace
}  // namespace main_job

int main(int argc, char** argv) {
  main_job::Config config;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--quick") {
      config.make_quick();
    } else if (arg == "--results-dir" && i + 1 < argc) {
      config.results_dir = argv[++i];
    } else if (arg == "--help" || arg == "-h") {
      main_job::usage(std::cout);
      return 0;
    } else {
      std::cerr << "unknown argument: " << arg << "\n";
      main_job::usage(std::cerr);
      return 2;
    }
  }
  try {
    return main_job::run(config, argv[0]);
  } catch (const std::exception& e) {
    std::cerr << "rtcache_main_job: " << e.what() << "\n";
    return 1;
  }
}
