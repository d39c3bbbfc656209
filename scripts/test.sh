#!/usr/bin/env bash
# Builds rtcache and runs its tests in each configuration (a CMake preset):
# debug, asan (AddressSanitizer + UBSan) and tsan (ThreadSanitizer).
#
#   ./scripts/test.sh                            # all three
#   RTCACHE_TEST_CONFIGS="tsan" ./scripts/test.sh  # just one
#
# Run as root on Debian, it first installs the packages the build needs.
# Sanitizer options (ASAN_OPTIONS, TSAN_OPTIONS, ...) are set by the test
# presets in CMakePresets.json. Exits non-zero if any configuration fails.
#
# Nearly all of the time goes to compiling (the tests themselves run in about
# a minute per configuration), so the sanitizer presets are set for compile
# time: asan builds at -O0 (measured on tests/stress/model_test.cpp, GCC 12:
# 48 s against 113 s at -O1 -g), tsan keeps -O1 (its run time needs it) with
# line tables only (-g1: 32 s against 45 s). Stack traces keep file and line.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

read -ra configs <<<"${RTCACHE_TEST_CONFIGS:-debug asan tsan}"
packages=(cmake g++ make ninja-build catch2 clang-format libbenchmark-dev libsqlite3-dev zlib1g-dev redis-server libhiredis-dev)
jobs=$(nproc)

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

# ThreadSanitizer (GCC 12, Clang < 18) aborts with "unexpected memory mapping"
# on kernels with a high vm.mmap_rnd_bits (32 on recent Ubuntu). Running the
# tsan tests without ASLR avoids that, where setarch is allowed to.
run_tests() {
  local config=$1
  if [[ $config == tsan ]] && setarch "$(uname -m)" -R true 2>/dev/null; then
    setarch "$(uname -m)" -R ctest --preset "$config" -j "$jobs"
  else
    ctest --preset "$config" -j "$jobs"
  fi
}

install_missing_packages "${packages[@]}"

summary=()
failed=0
for config in "${configs[@]}"; do
  echo "== $config"
  start=$SECONDS
  if ! cmake --preset "$config"; then
    result="FAILED (configure)"
  elif ! cmake --build --preset "$config" -j "$jobs"; then
    result="FAILED (build)"
  elif ! run_tests "$config"; then
    result="FAILED (tests)"
  else
    result="passed"
  fi
  [[ $result == passed ]] || failed=1
  summary+=("$(printf '%-8s %s in %ds' "$config" "$result" $((SECONDS - start)))")
done

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
exit "$failed"
