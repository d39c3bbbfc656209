#pragma once

/// \file
/// Exceptions rtcache throws itself (user exceptions from loaders and writers
/// pass through unchanged).

#include <stdexcept>
#include <string>

namespace rtcache {

/// A loader asked the cache for the very key it is loading (or for a key
/// whose load waits, through other loads, for this one), or a writer wrote
/// the key it is writing, or `get_with`'s function changed a cache. Waiting
/// would deadlock, so the inner call throws this.
class RecursiveCallError : public std::logic_error {
 public:
  explicit RecursiveCallError(const std::string& what) : std::logic_error(what) {}
};

}  // namespace rtcache
