#pragma once

#include <cstdint>
#include <vector>

namespace rtcache::detail {

/// Objects replaced in a structure that lock-free readers traverse (a hash
/// table's bucket array, a frequency sketch's table), each with the epoch
/// stamp taken after its replacement was published, kept until `reclaim`
/// finds the stamp safe (see epoch.hpp). Call `reserve_one` before
/// publishing, so that the `add` after it cannot fail.
template <class T>
class RetiredList {
 public:
  void reserve_one() { items_.reserve(items_.size() + 1); }
  /// After `reserve_one`: does not allocate.
  void add(std::uint64_t stamp, T object) { items_.push_back(Item{stamp, object}); }

  [[nodiscard]] bool empty() const noexcept { return items_.empty(); }

  /// Calls `destroy(object)` for each object whose stamp satisfies
  /// `safe(stamp)`, and forgets it.
  template <class Safe, class Destroy>
  void reclaim(Safe&& safe, Destroy&& destroy) noexcept {
    std::erase_if(items_, [&](const Item& item) {
      if (!safe(item.stamp)) return false;
      destroy(item.object);
      return true;
    });
  }

  /// When no reader is left (the owner's destructor).
  template <class Destroy>
  void destroy_all(Destroy&& destroy) noexcept {
    for (const Item& item : items_) destroy(item.object);
    items_.clear();
  }

 private:
  struct Item {
    std::uint64_t stamp;
    T object;
  };
  std::vector<Item> items_;
};

}  // namespace rtcache::detail
