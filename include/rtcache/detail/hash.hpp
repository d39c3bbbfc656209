#pragma once

#include <bit>
#include <cstdint>
#include <random>

namespace rtcache::detail {

/// A 64-bit finalizer (the one of splitmix64, Steele et al., "Fast splittable
/// pseudorandom number generators", OOPSLA 2014): every input bit flips about
/// half of the output bits. `std::hash` is the identity on integers, so the
/// cache never uses its bits directly.
[[nodiscard]] constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// A fresh seed from the operating system's entropy source.
[[nodiscard]] inline std::uint64_t random_seed() {
  std::random_device device;
  return (std::uint64_t{device()} << 32) ^ std::uint64_t{device()};
}

}  // namespace rtcache::detail
