#pragma once

// An executor for tests: tasks wait in a queue until the test runs them.

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

namespace rtcache::test {

class ManualExecutor {
 public:
  /// What to put in `Options::executor`.
  [[nodiscard]] std::function<void(std::function<void()>)> executor() {
    return [queue = queue_](std::function<void()> task) {
      std::lock_guard lock(queue->mutex);
      queue->tasks.push_back(std::move(task));
    };
  }

  [[nodiscard]] std::size_t queued() const {
    std::lock_guard lock(queue_->mutex);
    return queue_->tasks.size();
  }

  /// Runs the queued tasks (and those they queue) on this thread.
  std::size_t run_all() {
    std::size_t ran = 0;
    for (;;) {
      std::function<void()> task;
      {
        std::lock_guard lock(queue_->mutex);
        if (queue_->tasks.empty()) return ran;
        task = std::move(queue_->tasks.front());
        queue_->tasks.pop_front();
      }
      task();
      ++ran;
    }
  }

 private:
  struct Queue {
    mutable std::mutex mutex;
    std::deque<std::function<void()>> tasks;
  };
  std::shared_ptr<Queue> queue_ = std::make_shared<Queue>();
};

}  // namespace rtcache::test
