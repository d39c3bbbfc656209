#pragma once

#include <cstddef>
#include <memory>
#include <new>

namespace rtcache::detail {

/// A fixed number of objects in one allocation, built in place by a factory
/// (`make(i, address)` constructs object `i` at `address`) and destroyed in
/// reverse order. For objects that are neither copyable nor movable, and
/// that a hot path indexes without following a pointer per object.
template <class T>
class ObjectArray {
 public:
  template <class Make>
  ObjectArray(std::size_t n, Make&& make) : size_(n), items_(std::allocator<T>().allocate(n)) {
    try {
      for (; built_ < n; ++built_) make(built_, items_ + built_);
    } catch (...) {
      release();
      throw;
    }
  }
  ~ObjectArray() { release(); }
  ObjectArray(const ObjectArray&) = delete;
  ObjectArray& operator=(const ObjectArray&) = delete;

  T& operator[](std::size_t i) const noexcept { return items_[i]; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  void release() noexcept {
    while (built_ > 0) std::destroy_at(items_ + --built_);
    std::allocator<T>().deallocate(items_, size_);
  }

  std::size_t size_;
  T* items_;
  std::size_t built_ = 0;
};

}  // namespace rtcache::detail
