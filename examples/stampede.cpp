// 64 threads ask a cold cache for the same key at the same moment. The loader
// is slow (100 ms, standing in for an expensive query). rtcache runs it once:
// the first get starts the load, the 63 others wait for it and all receive
// its value. With a hand-written cache-aside, each of the 64 misses would run
// the query itself (a "cache stampede" on the database).
//
//   g++ -std=c++20 -I include examples/stampede.cpp -pthread

#include <atomic>
#include <chrono>
#include <iostream>
#include <latch>
#include <rtcache/rtcache.hpp>
#include <string>
#include <thread>
#include <vector>

int main() {
  using namespace std::chrono_literals;
  constexpr int kThreads = 64;

  std::atomic<int> loader_calls{0};
  auto cache = rtcache::make_cache<std::string, std::string>(
      rtcache::Options{.capacity = 1000}, [&](const std::string& key) {
        loader_calls.fetch_add(1);
        std::this_thread::sleep_for(100ms);  // the slow query
        return "value of " + key;            // every key exists: return V itself
      });

  std::latch start(kThreads);
  std::atomic<int> served{0};
  const auto begin = std::chrono::steady_clock::now();
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&] {
        start.arrive_and_wait();  // all threads ask at once
        if (cache.get("config") == "value of config") served.fetch_add(1);
      });
    }
  }  // jthreads join here
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - begin);

  const rtcache::Stats stats = cache.stats();
  std::cout << served << " of " << kThreads << " threads got the value in " << elapsed.count()
            << " ms\n"
            << "loader calls: " << loader_calls << "\n"
            << "gets that waited for that load: " << stats.coalesced_waits << "\n";
  return served == kThreads && loader_calls == 1 ? 0 : 1;
}
