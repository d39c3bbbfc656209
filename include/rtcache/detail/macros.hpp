#pragma once

/// \file
/// Compiler hints used by the library (and only by it).

/// Keeps a cold function out of its callers, so that the hot path that calls
/// it keeps a small stack frame and stays in the instruction cache.
#if defined(__GNUC__) || defined(__clang__)
#define RTCACHE_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define RTCACHE_NOINLINE __declspec(noinline)
#else
#define RTCACHE_NOINLINE
#endif

/// Inlines a small function on the hit path into every caller: GCC's
/// heuristics otherwise leave some out of line, at a cost of about a tenth
/// of a hit.
#if defined(__GNUC__) || defined(__clang__)
#define RTCACHE_ALWAYS_INLINE [[gnu::always_inline]]
#else
#define RTCACHE_ALWAYS_INLINE
#endif

/// RTCACHE_TSAN / RTCACHE_ASAN: defined when the library is built under
/// ThreadSanitizer / AddressSanitizer (GCC's and Clang's ways of saying so).
#if defined(__SANITIZE_THREAD__)
#define RTCACHE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RTCACHE_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define RTCACHE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RTCACHE_ASAN 1
#endif
#endif
