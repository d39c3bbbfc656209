#pragma once

/// \file
/// The umbrella header of rtcache: includes the whole public API.

#include "clock.hpp"               // IWYU pragma: export
#include "concepts.hpp"            // IWYU pragma: export
#include "errors.hpp"              // IWYU pragma: export
#include "hooks.hpp"               // IWYU pragma: export
#include "options.hpp"             // IWYU pragma: export
#include "policy/clock.hpp"        // IWYU pragma: export
#include "policy/fifo.hpp"         // IWYU pragma: export
#include "policy/lru.hpp"          // IWYU pragma: export
#include "policy/s3fifo.hpp"       // IWYU pragma: export
#include "policy/sieve.hpp"        // IWYU pragma: export
#include "policy/w_tinylfu.hpp"    // IWYU pragma: export
#include "read_through_cache.hpp"  // IWYU pragma: export
#include "stats.hpp"               // IWYU pragma: export
#include "versioned.hpp"           // IWYU pragma: export
