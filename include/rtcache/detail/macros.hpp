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
