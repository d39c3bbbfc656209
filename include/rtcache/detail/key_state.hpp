#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "../versioned.hpp"

namespace rtcache::detail {

/// What every load in progress has, whatever its value type: the thread
/// running the loader, and whether it has finished.
///
/// A load is registered before it starts: a get_all claims all its keys
/// before it loads any, a refresh waits for the executor, a get may wait for
/// a load permit. Until it starts, nobody waits for it: any caller that finds
/// it and can run the loader now starts it and runs it (a loader may ask for
/// such a key, or an executor thread for a refresh queued behind it), and
/// the others that claimed it wait for that caller. Whoever starts it
/// finishes it.
class FlightBase {
 public:
  FlightBase() noexcept = default;

  /// The thread running the loader, once started (set under the shard lock;
  /// read also by `LoadWaits`, without that lock).
  [[nodiscard]] std::thread::id owner() const noexcept {
    return owner_.load(std::memory_order_acquire);
  }

  /// Whether a caller runs the loader: it has an owner (set under the
  /// shard lock).
  [[nodiscard]] bool started() const noexcept { return owner() != std::thread::id{}; }
  /// Under the shard lock: the calling thread runs the loader from now on.
  void start() noexcept { owner_.store(std::this_thread::get_id(), std::memory_order_release); }
  /// Under the shard lock, before it starts: one more caller that will
  /// start it or wait for whoever does.
  void add_claim() noexcept { ++claims_; }
  /// Under the shard lock, before it starts: a caller gives its claim up
  /// (it failed before it could run the load). True if none is left: the
  /// load is then nobody's, and must be unregistered.
  [[nodiscard]] bool drop_claim() noexcept { return --claims_ == 0; }

  /// True once the outcome is published: nobody waits for it any longer.
  [[nodiscard]] bool done() const noexcept { return done_.load(std::memory_order_acquire); }

  void wait() const noexcept {
    while (!done_.load(std::memory_order_acquire)) done_.wait(false, std::memory_order_acquire);
  }

 protected:
  void publish() noexcept {
    done_.store(true, std::memory_order_release);
    done_.notify_all();
  }

 private:
  std::atomic<std::thread::id> owner_{};
  std::atomic<bool> done_{false};
  std::uint32_t claims_ = 0;  // under the shard lock, until started
};

/// Which load each thread waits for, over every cache of the process, so
/// that a wait that would close a cycle is refused instead of deadlocking:
/// the loader of A, on one thread, asks for B while the loader of B, on
/// another, asks for A (or longer cycles, across caches). Only threads that
/// join another thread's load pass through here, under one mutex: they are
/// about to block anyway.
class LoadWaits {
 public:
  /// Registers the calling thread as waiting for `load` for its lifetime.
  class Wait {
   public:
    /// Throws `RecursiveCallError` if the thread running `load` waits, through
    /// a chain of loads, for the calling thread.
    explicit Wait(const FlightBase& load) : waits_(instance()), me_(std::this_thread::get_id()) {
      std::lock_guard lock(waits_.mutex_);
      // Each thread waits for at most one load, so the chain ends or comes
      // back to this thread. (Only started loads are waited for, so each has
      // its owner: the last thread to close a cycle always finds it, and the
      // map never holds one. The bound on the steps is only a guard.) A
      // finished load ends the chain: its owner waits for nothing through it
      // (get_all finishes its own loads before it waits for others').
      std::size_t steps = waits_.waiting_.size() + 1;
      for (const FlightBase* next = &load; next != nullptr && !next->done() && steps-- > 0;) {
        const std::thread::id owner = next->owner();
        if (owner == me_) {
          throw RecursiveCallError(
              "rtcache: loaders wait for each other in a cycle (a loader asked a cache for a key "
              "whose load waits, directly or through other loads, for this one); that would "
              "deadlock");
        }
        const auto it = waits_.waiting_.find(owner);
        next = it == waits_.waiting_.end() ? nullptr : it->second;
      }
      waits_.waiting_.emplace(me_, &load);
    }
    ~Wait() {
      std::lock_guard lock(waits_.mutex_);
      waits_.waiting_.erase(me_);
    }
    Wait(const Wait&) = delete;
    Wait& operator=(const Wait&) = delete;

   private:
    LoadWaits& waits_;
    std::thread::id me_;
  };

 private:
  static LoadWaits& instance() {
    static LoadWaits waits;
    return waits;
  }

  std::mutex mutex_;
  // A load stays alive while a thread waits for it (the waiter holds it), so
  // the pointers here are valid while the mutex is held.
  std::unordered_map<std::thread::id, const FlightBase*> waiting_;
};

/// One loader call in progress, shared by the thread that runs it and every
/// thread that waits for it. The outcome is written once, before `done_` is
/// released, and only read after `done_` is seen set.
template <class V>
class LoadFlight : public FlightBase {
 public:
  /// Set (under the shard lock) when a put, erase or invalidate of the key
  /// finished while this load ran: its result is then not installed, and
  /// callers that arrive after that wait for it and then load afresh.
  bool superseded = false;

  void complete(std::optional<Versioned<V>> outcome) noexcept(
      std::is_nothrow_move_constructible_v<V>) {
    outcome_ = std::move(outcome);
    publish();
  }

  void fail(std::exception_ptr error) noexcept {
    error_ = std::move(error);
    publish();
  }

  /// The loader's result; rethrows its exception. Only after `wait()`.
  [[nodiscard]] const std::optional<Versioned<V>>& outcome() const {
    if (error_) std::rethrow_exception(error_);
    return outcome_;
  }

 private:
  std::optional<Versioned<V>> outcome_;
  std::exception_ptr error_;
};

/// What is in progress for one key: at most one load, and the writes that
/// take the write gate's registry path (see `WriteSlots`), one at a time. It
/// exists only while something is in progress (the shard erases it when
/// `idle()`), so the registry never outgrows the work under way. Every field
/// is read and written under the shard lock, except `writing`.
template <class V>
struct KeyState {
  std::shared_ptr<LoadFlight<V>> load;  ///< the load in progress, if any
  std::thread::id writer;               ///< the thread whose write is in progress, if any
  std::uint32_t waiting_writers = 0;    ///< writers queued behind it (spinning or asleep)
  std::uint32_t sleeping_writers = 0;   ///< those of them asleep on the shard's condition
  /// The newest version another instance announced for the key while this
  /// work was in progress: a write that returns an older one is not cached.
  std::uint64_t version_floor = 0;
  /// `writer != id{}`, for queued writers to poll without the lock (a hint:
  /// they take the lock and check `writer` before going in). Written under
  /// the lock.
  std::atomic<bool> writing{false};

  [[nodiscard]] bool idle() const noexcept {
    return load == nullptr && writer == std::thread::id{} && waiting_writers == 0;
  }
};

/// The keys of one shard with work in progress, and their `KeyState`s: a
/// chained hash table on the cache's (already mixed) hash, used only under
/// the shard lock. A state stays at its address until erased. Erased nodes
/// are kept on a short free list, so that a put or load of a key with
/// nothing else in progress allocates nothing here.
template <class K, class V, class KeyEqual>
class KeyRegistry {
 public:
  using State = KeyState<V>;

  explicit KeyRegistry(KeyEqual key_equal = KeyEqual{})
      : key_equal_(std::move(key_equal)), buckets_(kMinBuckets) {}

  ~KeyRegistry() {
    for (Node* head : buckets_) {
      while (head != nullptr) delete std::exchange(head, head->next);
    }
    while (free_ != nullptr) delete std::exchange(free_, free_->next);
  }

  KeyRegistry(const KeyRegistry&) = delete;
  KeyRegistry& operator=(const KeyRegistry&) = delete;

  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  /// The state of `key` (hash `h`), or nullptr.
  [[nodiscard]] State* find(std::uint64_t h, const K& key) noexcept {
    for (Node* n = buckets_[index(h)]; n != nullptr; n = n->next) {
      if (n->hash == h && key_equal_(*n->key, key)) return &n->state;
    }
    return nullptr;
  }

  /// The state of `key`, made (idle) if there is none. May throw
  /// `std::bad_alloc` or what copying the key throws, changing nothing.
  State& get(std::uint64_t h, const K& key) {
    if (State* found = find(h, key)) return *found;
    if (size_ >= buckets_.size()) grow();
    Node* n = free_;
    if (n != nullptr) {
      n->key.emplace(key);  // may throw: the node stays free
      free_ = n->next;
      --free_count_;
    } else {
      auto fresh = std::make_unique<Node>();
      fresh->key.emplace(key);
      n = fresh.release();
    }
    n->hash = h;
    Node*& head = buckets_[index(h)];
    n->next = head;
    head = n;
    ++size_;
    return n->state;
  }

  /// Removes `state` (which must be idle and in the registry).
  void erase(std::uint64_t h, State& state) noexcept {
    for (Node** link = &buckets_[index(h)]; *link != nullptr; link = &(*link)->next) {
      Node* n = *link;
      if (&n->state != &state) continue;
      *link = n->next;
      --size_;
      n->key.reset();
      n->state.version_floor = 0;  // the rest of an idle state is already reset
      if (free_count_ < kMaxFree) {
        n->next = free_;
        free_ = n;
        ++free_count_;
      } else {
        delete n;
      }
      return;
    }
  }

  /// Calls `f(key, state)` for every key; `f` must not change the registry.
  template <class F>
  void for_each(F&& f) {
    for (Node* head : buckets_) {
      for (Node* n = head; n != nullptr; n = n->next) f(std::as_const(*n->key), n->state);
    }
  }

 private:
  static constexpr std::size_t kMinBuckets = 8;
  static constexpr std::size_t kMaxFree = 16;

  struct Node {
    Node* next = nullptr;
    std::uint64_t hash = 0;
    std::optional<K> key;
    State state;
  };

  std::size_t index(std::uint64_t h) const noexcept {
    // The low bits: the shard index takes the high ones.
    return static_cast<std::size_t>(h) & (buckets_.size() - 1);
  }

  void grow() {
    std::vector<Node*> fresh(buckets_.size() * 2, nullptr);
    for (Node* head : buckets_) {
      while (head != nullptr) {
        Node* n = std::exchange(head, head->next);
        Node*& to = fresh[static_cast<std::size_t>(n->hash) & (fresh.size() - 1)];
        n->next = to;
        to = n;
      }
    }
    buckets_.swap(fresh);
  }

  [[no_unique_address]] KeyEqual key_equal_;
  std::vector<Node*> buckets_;
  std::size_t size_ = 0;
  Node* free_ = nullptr;
  std::size_t free_count_ = 0;
};

}  // namespace rtcache::detail
