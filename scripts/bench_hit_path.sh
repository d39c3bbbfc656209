#!/usr/bin/env bash
# Builds and runs the hit-path benchmark of issue 4 (Release build):
#
#   rtcache-bench   rtcache against a mutex LRU, a shared_mutex LRU,
#                   tbb::concurrent_hash_map, libcuckoo and unlocked
#                   std::unordered_map / absl::flat_hash_map; writes
#                   results/hit_path.json and prints a summary (ns per op per
#                   thread, ratios against each baseline, the issue's goals),
#                   also kept in results/hit_path.txt.
#   rtcache-memory  bytes per entry beyond sizeof(K) + sizeof(V) at 1M entries
#                   (results/hit_path_memory.txt).
#
#   ./scripts/bench_hit_path.sh                         # full run, about 4 minutes
#   ./scripts/bench_hit_path.sh --benchmark_filter=small/read100   # extra flags go to rtcache-bench
#   RTCACHE_BENCH_REPETITIONS=1 ./scripts/bench_hit_path.sh        # quicker, noisier
#
# Each benchmark runs RTCACHE_BENCH_REPETITIONS times (default 5), randomly
# interleaved with the others, for RTCACHE_BENCH_MIN_TIME seconds each
# (default 0.15); the summary uses the median. Interleaving spreads a burst of
# load from other processes over all contenders instead of one. Keep the
# machine otherwise idle while it runs: the summary warns when it was not.
# RTCACHE_BENCH_JOBS (build jobs, default 2), RTCACHE_BENCH_PRESET (default
# release). Run as root on Debian, it first installs the packages of the
# baselines that are missing (each baseline is skipped if its package is not
# there).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

preset=${RTCACHE_BENCH_PRESET:-release}
min_time=${RTCACHE_BENCH_MIN_TIME:-0.15}
repetitions=${RTCACHE_BENCH_REPETITIONS:-5}
jobs=${RTCACHE_BENCH_JOBS:-2}
packages=(cmake g++ ninja-build libbenchmark-dev libtbb-dev libcuckoo-dev libabsl-dev)

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

install_missing_packages "${packages[@]}"

echo "== configuring and building ($preset)"
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$jobs" --target rtcache-bench rtcache-memory

bin=build/$preset/bench/hit_path
mkdir -p results

echo "== rtcache-bench (${repetitions} x ${min_time}s per benchmark)"
"$bin/rtcache-bench" \
  --benchmark_min_time="$min_time" \
  --benchmark_repetitions="$repetitions" \
  --benchmark_enable_random_interleaving=true \
  --benchmark_display_aggregates_only=true \
  --benchmark_out=results/hit_path.json \
  --benchmark_out_format=json \
  "$@" | tee results/hit_path.txt

echo
echo "== rtcache-memory"
"$bin/rtcache-memory" | tee results/hit_path_memory.txt
