// Two instances of a service, each with its own in-process cache, sharing
// one SQLite database and one Redis through rtcache's Redis tier:
//
// - Redis is a shared second level: a key one instance loaded from the
//   database is found in Redis by the other, so the database sees one read
//   per key, not one per instance;
// - a write through one instance publishes an invalidation, and the other
//   instance's next get sees the new value;
// - if Redis dies, both go on with the database alone, and recover when it
//   returns.
//
// The instances live in one process here to keep the example short; each has
// its own database connection, Redis connections and subscriber, exactly as
// two processes would.
//
//   two_instances                # starts a private redis-server (must be in PATH)
//   two_instances 127.0.0.1 6379 # or uses yours (keys "demo:*" are written)
//
//   g++ -std=c++20 -I include examples/two_instances/two_instances.cpp -lhiredis -lsqlite3 -pthread

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <rtcache/redis.hpp>
#include <rtcache/redis/local_server.hpp>
#include <rtcache/rtcache.hpp>
#include <stdexcept>
#include <string>

namespace {

/// A products(id, name, version) table through one SQLite connection.
class Products {
 public:
  explicit Products(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) throw std::runtime_error("open failed");
    sqlite3_busy_timeout(db_, 5000);
    exec(
        "CREATE TABLE IF NOT EXISTS products(id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "version INTEGER NOT NULL)");
    select_ = prepare("SELECT name, version FROM products WHERE id = ?");
    upsert_ = prepare(
        "INSERT INTO products(id, name, version) VALUES(?1, ?2, 1) "
        "ON CONFLICT(id) DO UPDATE SET name = ?2, version = version + 1 RETURNING version");
  }
  Products(const Products&) = delete;
  Products& operator=(const Products&) = delete;
  ~Products() {
    sqlite3_finalize(select_);
    sqlite3_finalize(upsert_);
    sqlite3_close(db_);
  }

  std::optional<rtcache::Versioned<std::string>> select(int id) {
    std::lock_guard lock(mutex_);
    ++reads_;
    sqlite3_bind_int(select_, 1, id);
    std::optional<rtcache::Versioned<std::string>> row;
    if (sqlite3_step(select_) == SQLITE_ROW) {
      row = rtcache::Versioned<std::string>{
          reinterpret_cast<const char*>(sqlite3_column_text(select_, 0)),
          static_cast<std::uint64_t>(sqlite3_column_int64(select_, 1))};
    }
    sqlite3_reset(select_);
    return row;
  }

  rtcache::Versioned<std::string> upsert(int id, const std::string& name) {
    std::lock_guard lock(mutex_);
    sqlite3_bind_int(upsert_, 1, id);
    sqlite3_bind_text(upsert_, 2, name.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(upsert_) != SQLITE_ROW) throw std::runtime_error(sqlite3_errmsg(db_));
    const auto version = static_cast<std::uint64_t>(sqlite3_column_int64(upsert_, 0));
    sqlite3_step(upsert_);  // to the end: commits
    sqlite3_reset(upsert_);
    return {name, version};
  }

  void exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
      throw std::runtime_error(sqlite3_errmsg(db_));
    }
  }

  [[nodiscard]] int reads() const { return reads_.load(); }

 private:
  sqlite3_stmt* prepare(const char* sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) {
      throw std::runtime_error(sqlite3_errmsg(db_));
    }
    return s;
  }

  sqlite3* db_ = nullptr;
  sqlite3_stmt* select_ = nullptr;
  sqlite3_stmt* upsert_ = nullptr;
  std::mutex mutex_;
  std::atomic<int> reads_{0};
};

struct ProductLoader {
  Products* table;
  std::optional<rtcache::Versioned<std::string>> operator()(const int& id) const {
    return table->select(id);
  }
};

struct ProductWriter {
  Products* table;
  rtcache::Versioned<std::string> write(const int& id, const std::string& name) {
    return table->upsert(id, name);
  }
};

using Tier = rtcache::redis::Tier<int, std::string>;

/// One instance of the service: its database connection, its tier and its
/// cache, attached (declared in this order, destroyed in reverse).
struct Instance {
  Instance(const char* name, const std::string& db_path, rtcache::redis::TierOptions options)
      : name(name),
        products(db_path),
        tier(named(std::move(options), name)),
        cache(rtcache::Options{.capacity = 10'000}, tier.loader(ProductLoader{&products}),
              tier.writer(ProductWriter{&products})),
        attachment(tier.attach(cache)) {}

  void show_get(int id) {
    const auto before = tier.stats();
    const auto found = cache.get_versioned(id);
    const auto after = tier.stats();
    std::cout << name << ": get(" << id << ") -> ";
    if (found) {
      std::cout << '"' << found->value << "\" (version " << found->version << ")";
    } else {
      std::cout << "not found";
    }
    std::cout << "  ["
              << (after.l2_hits > before.l2_hits ? "from Redis"
                  : after.l2_misses > before.l2_misses || after.l2_skipped > before.l2_skipped
                      ? "from the database"
                      : "from the local cache")
              << "]\n";
  }

  /// Waits for an event of the tier (a message, a disconnect, a reconnect).
  template <class Predicate>
  void wait_until(Predicate predicate, const char* what) {
    if (!tier.wait_for(predicate, std::chrono::seconds(10))) {
      throw std::runtime_error(name + ": waited in vain for " + what);
    }
  }

  static rtcache::redis::TierOptions named(rtcache::redis::TierOptions options, const char* name) {
    options.instance_id = name;
    return options;
  }

  std::string name;
  Products products;
  Tier tier;
  rtcache::ReadThroughCache<int, std::string, Tier::Loader<ProductLoader>,
                            Tier::Writer<ProductWriter>>
      cache;
  rtcache::redis::Attachment attachment;
};

/// Both instances read products 101 to 200, one after the other; returns the
/// database reads this took.
int read_all(Instance& first, Instance& second) {
  const int before = first.products.reads() + second.products.reads();
  for (int id = 101; id <= 200; ++id) (void)first.cache.get(id);
  for (int id = 101; id <= 200; ++id) (void)second.cache.get(id);
  return first.products.reads() + second.products.reads() - before;
}

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<rtcache::redis::LocalServer> own_server;
  rtcache::redis::TierOptions options;
  options.key_prefix = "demo:product:";
  options.channel = "demo:product:invalidations";
  options.reconnect_backoff_min = std::chrono::milliseconds(10);
  options.reconnect_backoff_max = std::chrono::milliseconds(100);
  if (argc == 3) {
    options.host = argv[1];
    options.port = std::stoi(argv[2]);
  } else {
    own_server = std::make_unique<rtcache::redis::LocalServer>();
    options.port = own_server->port();
    std::cout << "started a private redis-server on 127.0.0.1:" << options.port << "\n";
  }

  const auto dir = std::filesystem::temp_directory_path() /
                   ("rtcache-two-instances-" + std::to_string(options.port));
  std::filesystem::create_directories(dir);
  const std::string db_path = (dir / "products.db").string();
  std::filesystem::remove(db_path);
  {
    Products setup(db_path);
    setup.exec("PRAGMA journal_mode=WAL");
    setup.exec("BEGIN");
    for (int id = 1; id <= 200; ++id) setup.upsert(id, "product " + std::to_string(id));
    setup.upsert(1, "apple");  // version 2
    setup.exec("COMMIT");
  }

  {
    Instance a("A", db_path, options);
    Instance b("B", db_path, options);

    std::cout << "\n-- the shared L2\n";
    a.show_get(1);
    b.show_get(1);
    b.show_get(1);

    std::cout << "\n-- a write through A\n";
    a.cache.put(1, "apricot");
    std::cout << "A: put(1, \"apricot\")\n";
    b.wait_until([](const auto& s) { return s.received >= 1; }, "A's invalidation");
    std::cout << "B: invalidation received, local copy dropped: "
              << (b.cache.get_if_present(1) ? "no" : "yes") << "\n";
    b.show_get(1);

    std::cout << "\n-- both instances read products 101 to 200\n";
    const int reads_with_l2 = read_all(a, b);
    // The same with two instances that share only invalidations, not values.
    auto without = options;
    without.shared_l2 = false;
    without.channel = "demo:product:other-invalidations";
    Instance c("C", db_path, without);
    Instance d("D", db_path, without);
    const int reads_without_l2 = read_all(c, d);
    std::printf("database reads per key: %.2f with the shared L2, %.2f without\n",
                reads_with_l2 / 100.0, reads_without_l2 / 100.0);

    if (own_server) {
      std::cout << "\n-- Redis dies\n";
      own_server->stop();
      for (Instance* i : {&a, &b}) {
        i->wait_until([](const auto& s) { return !s.connected; }, "a disconnect");
      }
      std::cout << "both instances lost Redis and dropped their local caches\n";
      a.cache.put(2, "banana");
      std::cout << "A: put(2, \"banana\")  [the database only]\n";
      b.show_get(2);

      std::cout << "\n-- Redis returns\n";
      own_server->start();
      for (Instance* i : {&a, &b}) {
        i->wait_until([](const auto& s) { return s.reconnects >= 1; }, "a reconnect");
      }
      std::cout << "both instances reconnected\n";
      a.show_get(3);
      b.show_get(3);
    }

    for (Instance* i : {&a, &b}) {
      const auto s = i->tier.stats();
      std::cout << i->name << ": L2 hits " << s.l2_hits << ", misses " << s.l2_misses
                << ", messages sent " << s.published << ", received " << s.received
                << ", reconnects " << s.reconnects << "\n";
    }
  }
  std::filesystem::remove_all(dir);
  return 0;
}
