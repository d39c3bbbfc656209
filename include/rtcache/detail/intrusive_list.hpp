#pragma once

#include <cstddef>

namespace rtcache::detail {

/// The links of an entry in one intrusive doubly linked list.
struct ListHook {
  ListHook* prev = nullptr;
  ListHook* next = nullptr;

  [[nodiscard]] bool linked() const noexcept { return next != nullptr; }
};

/// A circular doubly linked list of `T`s, where `T` derives from `ListHook`.
/// It owns nothing and allocates nothing; every operation is O(1) except
/// `size()`, which it does not have.
template <class T>
class IntrusiveList {
 public:
  IntrusiveList() noexcept { head_.prev = head_.next = &head_; }
  IntrusiveList(const IntrusiveList&) = delete;
  IntrusiveList& operator=(const IntrusiveList&) = delete;

  [[nodiscard]] bool empty() const noexcept { return head_.next == &head_; }

  /// The least recently pushed element, or nullptr.
  [[nodiscard]] T* front() const noexcept { return empty() ? nullptr : as_t(head_.next); }
  /// The most recently pushed element, or nullptr.
  [[nodiscard]] T* back() const noexcept { return empty() ? nullptr : as_t(head_.prev); }

  void push_back(T& item) noexcept { link_before(hook(item), &head_); }
  void push_front(T& item) noexcept { link_before(hook(item), head_.next); }

  void erase(T& item) noexcept {
    ListHook* h = hook(item);
    h->prev->next = h->next;
    h->next->prev = h->prev;
    h->prev = h->next = nullptr;
  }

  void move_to_back(T& item) noexcept {
    if (head_.prev == hook(item)) return;
    erase(item);
    push_back(item);
  }

  /// `fresh` takes the place of `old`, which leaves the list.
  void replace(T& old, T& fresh) noexcept {
    ListHook* o = hook(old);
    ListHook* f = hook(fresh);
    f->prev = o->prev;
    f->next = o->next;
    f->prev->next = f;
    f->next->prev = f;
    o->prev = o->next = nullptr;
  }

  /// The element after `item` (towards the back), or nullptr at the end.
  [[nodiscard]] T* next(const T& item) const noexcept {
    const ListHook* n = hook(item)->next;
    return n == &head_ ? nullptr : as_t(const_cast<ListHook*>(n));
  }
  /// The element before `item` (towards the front), or nullptr at the start.
  [[nodiscard]] T* prev(const T& item) const noexcept {
    const ListHook* p = hook(item)->prev;
    return p == &head_ ? nullptr : as_t(const_cast<ListHook*>(p));
  }

  /// Counts the elements: O(n), for tests and invariant checks.
  [[nodiscard]] std::size_t count() const noexcept {
    std::size_t n = 0;
    for (const ListHook* h = head_.next; h != &head_; h = h->next) ++n;
    return n;
  }

  /// True when the links are consistent in both directions.
  [[nodiscard]] bool well_formed() const noexcept {
    const ListHook* h = &head_;
    do {
      if (h->next == nullptr || h->next->prev != h) return false;
      h = h->next;
    } while (h != &head_);
    return true;
  }

 private:
  static ListHook* hook(T& item) noexcept { return static_cast<ListHook*>(&item); }
  static const ListHook* hook(const T& item) noexcept {
    return static_cast<const ListHook*>(&item);
  }
  static T* as_t(ListHook* h) noexcept { return static_cast<T*>(h); }

  static void link_before(ListHook* h, ListHook* position) noexcept {
    h->next = position;
    h->prev = position->prev;
    position->prev->next = h;
    position->prev = h;
  }

  ListHook head_;
};

}  // namespace rtcache::detail
