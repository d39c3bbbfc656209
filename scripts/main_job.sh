#!/usr/bin/env bash
# The main job: measures read-through/write-through (rtcache) against
# cache-aside on a real SQLite database and on simulated stores, prints one
# comparison table, and writes results/main_job.json (Google Benchmark's JSON
# format) and results/main_job.svg.
#
#   ./scripts/main_job.sh           # the full run: under a minute on 2 cores
#   ./scripts/main_job.sh --quick   # small sizes, a few seconds
#   RTCACHE_RESULTS_DIR=out ./scripts/main_job.sh   # results elsewhere
#
# Builds the Release preset (build/release), only the rtcache_main_job target.
# Run as root on Debian, it first installs the packages the build needs.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# What `cmake --preset release` needs: the compiler, CMake, Ninja (the
# presets' generator), Catch2 (the tests are configured too) and SQLite.
packages=(cmake g++ make ninja-build catch2 libsqlite3-dev)
jobs=${RTCACHE_JOBS:-$(nproc)}
results_dir=${RTCACHE_RESULTS_DIR:-results}

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

install_missing_packages "${packages[@]}"

echo "== configuring (cmake --preset release)" >&2
cmake --preset release >/dev/null
echo "== building rtcache_main_job" >&2
cmake --build --preset release --target rtcache_main_job -j "$jobs"

echo "== running the main job" >&2
build/release/bench/main_job/rtcache_main_job --results-dir "$results_dir" "$@"

echo "Results are in $(realpath "$results_dir"): main_job.json (all the numbers), main_job.svg (charts)."
