#pragma once

/// \file
/// Exceptions rtcache throws itself (user exceptions from loaders and writers
/// pass through unchanged).

#include <stdexcept>
#include <string>

namespace rtcache {

/// A loader asked the cache for the very key it is loading, or a writer wrote
/// the key it is writing. Waiting would deadlock, so the inner call throws this.
class RecursiveCallError : public std::logic_error {
 public:
  explicit RecursiveCallError(const std::string& what) : std::logic_error(what) {}
};

}  // namespace rtcache
