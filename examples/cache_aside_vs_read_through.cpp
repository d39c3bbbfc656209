// The same small service written twice: product prices over a database.
//
// PricesCacheAside is cache-aside as it is usually hand-written: every read
// path checks the cache, queries the database on a miss and fills the cache;
// every write path updates the database and must remember to invalidate.
// PricesReadThrough hands both jobs to rtcache: the cache calls the loader
// and the writer, and the application only says get and put.
//
// main() then runs both through the same steps and counts database reads,
// and replays the classic cache-aside race step by step: a reader's query
// returns the old price, a write completes, and only then does the reader
// fill the cache, which now holds the old price until it is evicted.
//
//   g++ -std=c++20 -I include examples/cache_aside_vs_read_through.cpp -pthread

#include <atomic>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <rtcache/rtcache.hpp>
#include <semaphore>
#include <stdexcept>
#include <string>
#include <thread>

/// The database: a price and a version per product id.
class ProductDatabase {
 public:
  std::optional<rtcache::Versioned<int>> read(int id) {
    reads_.fetch_add(1);
    std::optional<rtcache::Versioned<int>> row;
    {
      std::lock_guard lock(mutex_);
      if (auto it = rows_.find(id); it != rows_.end()) row = it->second;
    }
    if (pause_next_read_.exchange(false)) {  // for the race replay in main()
      read_done_.release();
      resume_.acquire();
    }
    return row;
  }

  rtcache::Versioned<int> write(int id, int price) {
    std::lock_guard lock(mutex_);
    rtcache::Versioned<int>& row = rows_[id];
    row.value = price;
    ++row.version;
    return row;
  }

  int reads() const { return reads_.load(); }

  /// Makes the next read stop after querying, until resume() is called.
  void pause_next_read() { pause_next_read_.store(true); }
  void wait_until_paused() { read_done_.acquire(); }
  void resume() { resume_.release(); }

 private:
  std::mutex mutex_;
  std::map<int, rtcache::Versioned<int>> rows_;
  std::atomic<int> reads_{0};
  std::atomic<bool> pause_next_read_{false};
  std::binary_semaphore read_done_{0};
  std::binary_semaphore resume_{0};
};

// --- Cache-aside: the application orchestrates -----------------------------

class PricesCacheAside {
 public:
  explicit PricesCacheAside(ProductDatabase& db) : db_(db), cache_({.capacity = 1000}) {}

  std::optional<int> price(int id) {
    if (auto cached = cache_.get_if_present(id)) return cached;  // 1. check the cache
    auto row = db_.read(id);                                     // 2. miss: query the db
    if (!row) return std::nullopt;
    cache_.fill(id, row->value, row->version);  // 3. fill the cache
    return row->value;
  }

  void set_price(int id, int price) {
    db_.write(id, price);   // 1. write the db
    cache_.invalidate(id);  // 2. invalidate (in every write path, or readers see old data)
  }

 private:
  struct NoLoader {  // the cache never loads by itself here
    std::optional<int> operator()(const int&) const { throw std::logic_error("unused"); }
  };
  ProductDatabase& db_;
  rtcache::ReadThroughCache<int, int, NoLoader> cache_;
};

// --- Read-through/write-through: the cache orchestrates --------------------

class PricesReadThrough {
 public:
  explicit PricesReadThrough(ProductDatabase& db) : cache_({.capacity = 1000}, {&db}, {&db}) {}

  std::optional<int> price(int id) { return cache_.get(id); }
  void set_price(int id, int price) { cache_.put(id, price); }

 private:
  struct Load {
    ProductDatabase* db;
    std::optional<rtcache::Versioned<int>> operator()(const int& id) const { return db->read(id); }
  };
  struct Write {
    ProductDatabase* db;
    rtcache::Versioned<int> operator()(const int& id, const int& price) const {
      return db->write(id, price);
    }
  };
  rtcache::ReadThroughCache<int, int, Load, Write> cache_;
};

// --- The same steps for both ------------------------------------------------

template <class Service>
void read_after_write(const char* name) {
  ProductDatabase db;
  db.write(1, 10);
  Service prices(db);
  prices.price(1);  // miss: loads 10
  prices.price(1);  // hit
  prices.set_price(1, 11);
  const int after = prices.price(1).value();  // cache-aside: a miss; write-through: a hit
  std::cout << name << "price after the write: " << after << ", database reads: " << db.reads()
            << "\n";
}

template <class Service>
void replay_race(const char* name) {
  ProductDatabase db;
  db.write(1, 10);
  Service prices(db);
  db.pause_next_read();
  std::thread reader([&] { prices.price(1); });  // misses, reads 10 from the db, pauses
  db.wait_until_paused();
  prices.set_price(1, 12);  // the write completes while the reader is paused
  db.resume();              // the reader carries on: fills the cache (or not)
  reader.join();
  const int now = prices.price(1).value();
  std::cout << name << "after the write, price(1) = " << now
            << (now == 12 ? " (fresh)" : " (stale: the db has 12; it stays until evicted)") << "\n";
}

int main() {
  std::cout << "Read after write:\n";
  read_after_write<PricesCacheAside>("  cache-aside:        ");
  read_after_write<PricesReadThrough>("  read/write-through: ");

  std::cout << "A slow reader racing a writer:\n";
  replay_race<PricesCacheAside>("  cache-aside:        ");
  replay_race<PricesReadThrough>("  read/write-through: ");
  return 0;
}
