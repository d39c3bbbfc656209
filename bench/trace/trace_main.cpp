// rtcache-trace: replays key-access traces through a real ReadThroughCache and
// prints its hit ratio per trace, policy and capacity, as TSV.
//
//   rtcache-trace --policy NAME[,NAME...] --capacity N[,N...] [--shards S]
//                 [--weights MAX] FILE...
//
// Each request is a get(); the loader counts its calls, so a miss is a loader
// call and hits = requests - loads. `optimal` is Belady's bound, computed
// directly (see belady.hpp).

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <iostream>
#include <limits>
#include <rtcache/policy/clock.hpp>
#include <rtcache/policy/fifo.hpp>
#include <rtcache/policy/lru.hpp>
#include <rtcache/policy/s3fifo.hpp>
#include <rtcache/policy/sieve.hpp>
#include <rtcache/policy/w_tinylfu.hpp>
#include <rtcache/rtcache.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "belady.hpp"
#include "trace_reader.hpp"

namespace {

using rtcache::bench::TraceError;

constexpr std::uint64_t kSeed = 0x5eed'0f'7ace;      // fixed: runs are reproducible
constexpr std::size_t kProgressThreshold = 200'000;  // requests
constexpr std::string_view kPolicies[] = {"lru",    "fifo",      "clock",           "sieve",
                                          "s3fifo", "w_tinylfu", "w_tinylfu_clock", "optimal"};

constexpr const char* kUsage =
    "usage: rtcache-trace --policy NAME[,NAME...] --capacity N[,N...] [--shards S]\n"
    "                     [--weights MAX] FILE...\n"
    "\n"
    "Replays each trace (one decimal key per line; .gz files are read directly)\n"
    "through a ReadThroughCache with each policy and capacity, and prints TSV:\n"
    "  trace  policy  capacity  shards  requests  hits  hit_ratio\n"
    "\n"
    "  --policy    lru, fifo, clock, sieve, s3fifo, w_tinylfu, w_tinylfu_clock (the\n"
    "              default policy), or optimal\n"
    "              (Belady's clairvoyant bound, with bypass; it ignores --shards)\n"
    "  --capacity  entries the cache holds (weight, with --weights)\n"
    "  --shards    lock stripes, a power of two no larger than the capacity (default 1);\n"
    "              the capacity is split across them\n"
    "  --weights   gives the cache a weigher: each key weighs 1 to MAX, from a hash of\n"
    "              the key (the same in every run); --capacity is then in weight\n"
    "              (not with optimal, which counts entries)\n";

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Config {
  std::vector<std::string> policies;
  std::vector<std::size_t> capacities;
  std::size_t shards = 1;
  std::size_t max_weight = 0;  // 0: no weigher
  std::vector<std::string> files;
};

std::vector<std::string> split(std::string_view list) {
  std::vector<std::string> items;
  while (true) {
    const auto comma = list.find(',');
    items.emplace_back(list.substr(0, comma));
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return items;
}

std::size_t parse_count(const std::string& text, const char* option) {
  std::size_t value = 0;
  bool ok = !text.empty();
  for (char c : text) {
    if (c < '0' || c > '9' || value > (std::numeric_limits<std::size_t>::max() - 9) / 10) {
      ok = false;
      break;
    }
    value = value * 10 + static_cast<std::size_t>(c - '0');
  }
  if (!ok || value == 0) {
    throw UsageError(std::string(option) + " expects positive integers (got '" + text + "')");
  }
  return value;
}

Config parse_arguments(int argc, char** argv) {
  Config config;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      std::exit(0);
    }
    std::string value;
    std::string name = arg;
    if (arg.rfind("--", 0) == 0) {
      if (const auto eq = arg.find('='); eq != std::string::npos) {
        name = arg.substr(0, eq);
        value = arg.substr(eq + 1);
      } else if (arg == "--policy" || arg == "--capacity" || arg == "--shards" ||
                 arg == "--weights") {
        if (i + 1 == argc) throw UsageError(arg + " needs a value");
        value = argv[++i];
      }
    }
    if (name == "--policy") {
      for (const std::string& policy : split(value)) {
        bool known = false;
        for (std::string_view p : kPolicies) known = known || p == policy;
        if (!known) {
          throw UsageError("unknown policy '" + policy +
                           "' (expected lru, fifo, clock, sieve, s3fifo, w_tinylfu, "
                           "w_tinylfu_clock or optimal)");
        }
        config.policies.push_back(policy);
      }
    } else if (name == "--capacity") {
      for (const std::string& c : split(value))
        config.capacities.push_back(parse_count(c, "--capacity"));
    } else if (name == "--shards") {
      config.shards = parse_count(value, "--shards");
    } else if (name == "--weights") {
      config.max_weight = parse_count(value, "--weights");
    } else if (arg.rfind("--", 0) == 0 && arg != "--") {
      throw UsageError("unknown option " + arg);
    } else if (arg == "--") {
      for (++i; i < argc; ++i) config.files.emplace_back(argv[i]);
    } else {
      config.files.push_back(arg);
    }
  }
  if (config.policies.empty()) throw UsageError("--policy is required");
  if (config.capacities.empty()) throw UsageError("--capacity is required");
  if (config.files.empty()) throw UsageError("no trace file given");
  if (config.max_weight != 0) {
    for (const std::string& policy : config.policies) {
      if (policy == "optimal") throw UsageError("--weights does not apply to optimal");
    }
  }
  if ((config.shards & (config.shards - 1)) != 0) {
    throw UsageError("--shards must be a power of two (got " + std::to_string(config.shards) + ")");
  }
  return config;
}

/// Reports progress on stderr, only when it is a terminal.
class Progress {
 public:
  Progress(const std::string& label, std::size_t total)
      : label_(label),
        total_(total),
        active_(total >= kProgressThreshold && isatty(STDERR_FILENO) == 1) {}
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  ~Progress() {
    if (active_) std::fprintf(stderr, "\r%*s\r", static_cast<int>(label_.size()) + 8, "");
  }

  void update(std::size_t done) {
    if (!active_ || (done & 0xffff) != 0) return;
    std::fprintf(stderr, "\r%s %3zu%%", label_.c_str(), done * 100 / total_);
    std::fflush(stderr);
  }

 private:
  std::string label_;
  std::size_t total_;
  bool active_;
};

/// A loader that counts its calls; every key exists and is its own value.
struct CountingLoader {
  std::uint64_t* calls;
  std::uint64_t operator()(const std::uint64_t& key) const {
    ++*calls;
    return key;
  }
};

template <class Policy>
std::uint64_t replay(const std::vector<std::uint64_t>& keys, std::size_t capacity,
                     std::size_t shards, std::size_t max_weight, Progress& progress) {
  std::uint64_t loads = 0;
  rtcache::CacheHooks<std::uint64_t, std::uint64_t> hooks;
  if (max_weight != 0) {
    hooks.weigher = [max_weight](const std::uint64_t& key, const std::uint64_t&) {
      return 1 + static_cast<std::size_t>(rtcache::detail::mix64(key ^ kSeed) % max_weight);
    };
  }
  rtcache::ReadThroughCache<std::uint64_t, std::uint64_t, CountingLoader, rtcache::NoWriter, Policy>
      cache(rtcache::Options{.capacity = capacity, .shards = shards, .seed = kSeed},
            CountingLoader{&loads}, rtcache::NoWriter{}, std::move(hooks));
  for (std::size_t i = 0; i < keys.size(); ++i) {
    (void)cache.get(keys[i]);
    progress.update(i);
  }
  return keys.size() - loads;
}

std::uint64_t hits_for(const std::string& policy, const std::vector<std::uint64_t>& keys,
                       std::size_t capacity, const Config& config, Progress& progress) {
  namespace p = rtcache::policy;
  const std::size_t shards = config.shards;
  const std::size_t w = config.max_weight;
  if (policy == "lru") return replay<p::Lru>(keys, capacity, shards, w, progress);
  if (policy == "fifo") return replay<p::Fifo>(keys, capacity, shards, w, progress);
  if (policy == "clock") return replay<p::Clock>(keys, capacity, shards, w, progress);
  if (policy == "sieve") return replay<p::Sieve>(keys, capacity, shards, w, progress);
  if (policy == "s3fifo") return replay<p::S3Fifo>(keys, capacity, shards, w, progress);
  if (policy == "w_tinylfu") return replay<p::WTinyLfu>(keys, capacity, shards, w, progress);
  if (policy == "w_tinylfu_clock") {
    return replay<p::WTinyLfuClock>(keys, capacity, shards, w, progress);
  }
  return rtcache::bench::belady_hits(keys, capacity);
}

/// The hit ratio in percent with two decimals, rounded half up exactly (so
/// 54415 hits of 100000 requests print as 54.42).
std::string percent(std::uint64_t hits, std::uint64_t requests) {
  if (requests == 0) return "0.00";
  std::uint64_t hundredths = 0;
  if (hits <= std::numeric_limits<std::uint64_t>::max() / 20'000) {
    hundredths = (hits * 20'000 + requests) / (2 * requests);
  } else {
    hundredths = static_cast<std::uint64_t>(
        static_cast<long double>(hits) * 10'000.0L / static_cast<long double>(requests) + 0.5L);
  }
  char text[32];
  std::snprintf(text, sizeof text, "%llu.%02llu", static_cast<unsigned long long>(hundredths / 100),
                static_cast<unsigned long long>(hundredths % 100));
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  Config config;
  try {
    config = parse_arguments(argc, argv);
  } catch (const UsageError& e) {
    std::cerr << "rtcache-trace: " << e.what() << "\n\n" << kUsage;
    return 2;
  }
  try {
    for (std::size_t capacity : config.capacities) {
      if (capacity < config.shards) {
        throw UsageError("--capacity " + std::to_string(capacity) + " is smaller than --shards " +
                         std::to_string(config.shards));
      }
    }
    bool header_printed = false;
    for (const std::string& file : config.files) {
      const std::vector<std::uint64_t> keys = rtcache::bench::read_trace(file);
      if (!std::exchange(header_printed, true)) {
        std::cout << "trace\tpolicy\tcapacity\tshards\trequests\thits\thit_ratio\n";
      }
      const std::string name = rtcache::bench::trace_name(file);
      for (const std::string& policy : config.policies) {
        for (std::size_t capacity : config.capacities) {
          const std::size_t shards = policy == "optimal" ? 1 : config.shards;
          Progress progress(name + " " + policy + " " + std::to_string(capacity), keys.size());
          const std::uint64_t hits = hits_for(policy, keys, capacity, config, progress);
          std::cout << name << '\t' << policy << '\t' << capacity << '\t' << shards << '\t'
                    << keys.size() << '\t' << hits << '\t' << percent(hits, keys.size()) << '\n'
                    << std::flush;
        }
      }
    }
  } catch (const UsageError& e) {
    std::cerr << "rtcache-trace: " << e.what() << '\n';
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "rtcache-trace: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
