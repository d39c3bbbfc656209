#pragma once

/// \file
/// The optional Redis tier of rtcache: a shared second level (L2) behind the
/// in-process caches of many instances, and the invalidation messages
/// between them. Needs hiredis; link `rtcache::redis` (see the README).
///
/// `rtcache/redis/local_server.hpp` (not included here) starts a private
/// redis-server, for tests and demos.

#include "redis/codec.hpp"       // IWYU pragma: export
#include "redis/connection.hpp"  // IWYU pragma: export
#include "redis/options.hpp"     // IWYU pragma: export
#include "redis/tier.hpp"        // IWYU pragma: export
