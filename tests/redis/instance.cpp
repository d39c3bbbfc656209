// One instance of a service, as its own process, for the two-process tests:
// a cache with the Redis tier in front of a SQLite table kv(id, value,
// version) shared with the other instance. The test drives it through stdin
// and reads one reply line per command on stdout:
//
//   get K                 value <version> <text> | none
//   local K               value <text> | none           (never loads)
//   put K TEXT            version <N>
//   erase K               ok
//   get_range FROM TO     ok             (gets keys FROM..TO, in order)
//   stats                 db_loads=N l2_hits=N ... connected=0|1 size=N
//   wait_message K V      ok | timeout   (until a message for key K at version V arrived)
//   wait_disconnects N    ok | timeout
//   wait_reconnects N     ok | timeout
//   quit                  (exits; so does end of input)
//
//   redis_test_instance --port P --db PATH --id NAME [--no-l2]

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <mutex>
#include <optional>
#include <rtcache/redis.hpp>
#include <rtcache/rtcache.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace {

/// The kv table, through one connection; every query holds the mutex.
class Table {
 public:
  explicit Table(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) fail("open");
    sqlite3_busy_timeout(db_, 10'000);  // the other process may hold the write lock
    select_ = prepare("SELECT value, version FROM kv WHERE id = ?");
    upsert_ = prepare(
        "INSERT INTO kv(id, value, version) VALUES(?1, ?2, 1) "
        "ON CONFLICT(id) DO UPDATE SET value = ?2, version = version + 1 RETURNING version");
    delete_ = prepare("DELETE FROM kv WHERE id = ?");
  }
  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;
  ~Table() {
    for (sqlite3_stmt* s : {select_, upsert_, delete_}) sqlite3_finalize(s);
    sqlite3_close(db_);
  }

  std::optional<rtcache::Versioned<std::string>> select(int id) {
    std::lock_guard lock(mutex_);
    loads_.fetch_add(1);
    Reset reset{select_};
    sqlite3_bind_int(select_, 1, id);
    const int rc = sqlite3_step(select_);
    if (rc == SQLITE_DONE) return std::nullopt;
    if (rc != SQLITE_ROW) fail("select");
    return rtcache::Versioned<std::string>{
        reinterpret_cast<const char*>(sqlite3_column_text(select_, 0)),
        static_cast<std::uint64_t>(sqlite3_column_int64(select_, 1))};
  }

  rtcache::Versioned<std::string> upsert(int id, const std::string& value) {
    std::lock_guard lock(mutex_);
    Reset reset{upsert_};
    sqlite3_bind_int(upsert_, 1, id);
    sqlite3_bind_text(upsert_, 2, value.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(upsert_) != SQLITE_ROW) fail("upsert");
    const auto version = static_cast<std::uint64_t>(sqlite3_column_int64(upsert_, 0));
    if (sqlite3_step(upsert_) != SQLITE_DONE) fail("upsert");
    return {value, version};
  }

  void remove(int id) {
    std::lock_guard lock(mutex_);
    Reset reset{delete_};
    sqlite3_bind_int(delete_, 1, id);
    if (sqlite3_step(delete_) != SQLITE_DONE) fail("delete");
  }

  [[nodiscard]] std::uint64_t loads() const { return loads_.load(); }

 private:
  struct Reset {
    sqlite3_stmt* s;
    ~Reset() {
      sqlite3_reset(s);
      sqlite3_clear_bindings(s);
    }
  };
  sqlite3_stmt* prepare(const char* sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) fail("prepare");
    return s;
  }
  [[noreturn]] void fail(const char* what) const {
    throw std::runtime_error(std::string("sqlite ") + what + ": " + sqlite3_errmsg(db_));
  }

  sqlite3* db_ = nullptr;
  sqlite3_stmt* select_ = nullptr;
  sqlite3_stmt* upsert_ = nullptr;
  sqlite3_stmt* delete_ = nullptr;
  std::mutex mutex_;
  std::atomic<std::uint64_t> loads_{0};
};

struct TableWriter {
  Table* table;
  rtcache::Versioned<std::string> write(const int& id, const std::string& value) {
    return table->upsert(id, value);
  }
  void erase(const int& id) { table->remove(id); }
};

struct Messages {
  std::mutex mutex;
  std::set<std::pair<std::string, std::uint64_t>> seen;
};

constexpr std::chrono::milliseconds kWaitLimit{20'000};

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  std::string db_path;
  std::string id;
  bool l2 = true;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--port" && i + 1 < argc) {
      port = std::stoi(argv[++i]);
    } else if (arg == "--db" && i + 1 < argc) {
      db_path = argv[++i];
    } else if (arg == "--id" && i + 1 < argc) {
      id = argv[++i];
    } else if (arg == "--no-l2") {
      l2 = false;
    } else {
      std::cerr << "usage: redis_test_instance --port P --db PATH --id NAME [--no-l2]\n";
      return 2;
    }
  }

  Table table(db_path);
  Messages messages;
  rtcache::redis::TierOptions options;
  options.port = port;
  options.instance_id = id;
  options.key_prefix = "kv:";
  options.channel = "kv:invalidations";
  options.shared_l2 = l2;
  options.connect_timeout = std::chrono::milliseconds(500);
  options.command_timeout = std::chrono::milliseconds(2000);
  options.reconnect_backoff_min = std::chrono::milliseconds(5);
  options.reconnect_backoff_max = std::chrono::milliseconds(50);
  options.on_message = [&messages](std::string_view key, std::uint64_t version) {
    std::lock_guard lock(messages.mutex);
    messages.seen.emplace(std::string(key), version);
  };

  rtcache::redis::Tier<int, std::string> tier(options);
  auto cache = rtcache::make_cache<int, std::string>(
      rtcache::Options{.capacity = 10'000},
      tier.loader([&table](const int& key) { return table.select(key); }),
      tier.writer(TableWriter{&table}));
  auto attachment = tier.attach(cache);

  auto wait = [&](auto predicate) {
    return tier.wait_for(predicate, kWaitLimit) ? "ok" : "timeout";
  };

  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string command;
    in >> command;
    std::ostringstream out;
    try {
      if (command == "get") {
        int key = 0;
        in >> key;
        if (auto v = cache.get_versioned(key)) {
          out << "value " << v->version << ' ' << v->value;
        } else {
          out << "none";
        }
      } else if (command == "local") {
        int key = 0;
        in >> key;
        if (auto v = cache.get_if_present(key)) {
          out << "value " << *v;
        } else {
          out << "none";
        }
      } else if (command == "put") {
        int key = 0;
        in >> key;
        std::string value;
        std::getline(in >> std::ws, value);
        cache.put(key, value);
        out << "version " << cache.get_versioned(key)->version;
      } else if (command == "get_range") {
        int from = 0;
        int to = 0;
        in >> from >> to;
        for (int key = from; key <= to; ++key) (void)cache.get(key);
        out << "ok";
      } else if (command == "erase") {
        int key = 0;
        in >> key;
        cache.erase(key);
        out << "ok";
      } else if (command == "stats") {
        const auto s = tier.stats();
        out << "db_loads=" << table.loads() << " l2_hits=" << s.l2_hits
            << " l2_misses=" << s.l2_misses << " l2_errors=" << s.l2_errors
            << " l2_skipped=" << s.l2_skipped << " published=" << s.published
            << " postponed=" << s.postponed << " received=" << s.received
            << " disconnects=" << s.disconnects << " reconnects=" << s.reconnects
            << " connected=" << s.connected << " size=" << cache.size();
      } else if (command == "wait_message") {
        std::string key;
        std::uint64_t version = 0;
        in >> key >> version;
        out << wait([&](const auto&) {
          std::lock_guard lock(messages.mutex);
          return messages.seen.count({key, version}) > 0;
        });
      } else if (command == "wait_disconnects" || command == "wait_reconnects") {
        std::uint64_t n = 0;
        in >> n;
        const bool disconnects = command == "wait_disconnects";
        out << wait(
            [&](const auto& s) { return (disconnects ? s.disconnects : s.reconnects) >= n; });
      } else if (command == "quit") {
        break;
      } else {
        out << "error unknown command " << command;
      }
    } catch (const std::exception& e) {
      out.str("");
      out << "error " << e.what();
    }
    std::cout << out.str() << std::endl;
  }
  return 0;
}
