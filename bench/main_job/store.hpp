#pragma once

/// \file
/// The stores the main job runs against: a real SQLite database file and a
/// simulated store with a configurable round-trip latency. Both hold the same
/// `users(id, name, email, version)` rows, count the queries they serve (per
/// key too) and the most queries in flight at once.

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "measure.hpp"

namespace main_job {

/// One row of the users table. `version` is the row's version column: rows
/// start at 1 and every write adds one, so the value a cache holds carries the
/// version it was read at (that is how both patterns can check freshness).
struct UserRow {
  std::string name;
  std::string email;
  std::uint64_t version = 0;
};

inline std::string seeded_name(Key id) { return "user-" + std::to_string(id); }
inline std::string seeded_email(Key id) { return "user-" + std::to_string(id) + "@example.com"; }

/// A users table keyed 1..rows. Thread-safe. `read` and `write` are the
/// queries the application issues and are counted; `peek` reads without
/// latency or counting (for setting up and checking a run).
class Store {
 public:
  Store(std::string name, std::size_t rows)
      : name_(std::move(name)),
        rows_(rows),
        reads_per_key_(std::make_unique<std::atomic<std::uint32_t>[]>(rows + 1)) {}
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  virtual ~Store() = default;

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
  /// A one-line description for the report.
  [[nodiscard]] virtual std::string describe() const = 0;

  /// The row of `id`, or nullopt.
  std::optional<UserRow> read(Key id) {
    InFlight counted(*this);
    reads_.fetch_add(1, std::memory_order_relaxed);
    if (id >= 1 && static_cast<std::size_t>(id) <= rows_) {
      reads_per_key_[static_cast<std::size_t>(id)].fetch_add(1, std::memory_order_relaxed);
    }
    return do_read(id, true);
  }

  /// Sets the name and email of `id`, adds one to its version and returns the
  /// stored row. Throws std::out_of_range when there is no such row.
  UserRow write(Key id, const std::string& name, const std::string& email) {
    InFlight counted(*this);
    writes_.fetch_add(1, std::memory_order_relaxed);
    return do_write(id, name, email);
  }

  /// Reads `id` without latency and without counting it.
  std::optional<UserRow> peek(Key id) { return do_read(id, false); }

  [[nodiscard]] std::uint64_t reads() const noexcept {
    return reads_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t writes() const noexcept {
    return writes_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint32_t reads_of(Key id) const noexcept {
    return reads_per_key_[static_cast<std::size_t>(id)].load(std::memory_order_relaxed);
  }
  /// The most reads and writes that were in progress at the same time.
  [[nodiscard]] std::uint32_t peak_concurrency() const noexcept {
    return peak_.load(std::memory_order_relaxed);
  }

  /// Zeroes the counters. Call only while no query is in progress.
  void reset_counters() noexcept {
    reads_.store(0, std::memory_order_relaxed);
    writes_.store(0, std::memory_order_relaxed);
    peak_.store(0, std::memory_order_relaxed);
    for (std::size_t i = 0; i <= rows_; ++i) reads_per_key_[i].store(0, std::memory_order_relaxed);
  }

 protected:
  virtual std::optional<UserRow> do_read(Key id, bool with_latency) = 0;
  virtual UserRow do_write(Key id, const std::string& name, const std::string& email) = 0;

 private:
  /// Counts a query in flight for its lifetime and keeps the peak.
  class InFlight {
   public:
    explicit InFlight(Store& store) : store_(store) {
      const std::uint32_t now = store_.in_flight_.fetch_add(1, std::memory_order_relaxed) + 1;
      std::uint32_t peak = store_.peak_.load(std::memory_order_relaxed);
      while (now > peak &&
             !store_.peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
      }
    }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;
    ~InFlight() { store_.in_flight_.fetch_sub(1, std::memory_order_relaxed); }

   private:
    Store& store_;
  };

  std::string name_;
  std::size_t rows_;
  std::atomic<std::uint64_t> reads_{0};
  std::atomic<std::uint64_t> writes_{0};
  std::atomic<std::uint32_t> in_flight_{0};
  std::atomic<std::uint32_t> peak_{0};
  std::unique_ptr<std::atomic<std::uint32_t>[]> reads_per_key_;
};

// ---------------------------------------------------------------------------
// SQLite
// ---------------------------------------------------------------------------

/// A real SQLite database file: WAL journal, `synchronous=NORMAL` (commits
/// reach the WAL file, fsync happens at checkpoints: the usual setting for
/// WAL), prepared statements, and one connection per thread at a time, taken
/// from a pool. Connections are opened with SQLITE_OPEN_NOMUTEX (SQLite's
/// multi-thread mode): safe because a connection is only ever used by the
/// thread that leased it.
class SqliteStore final : public Store {
 public:
  /// Creates `file` with the users table and `rows` rows, in one transaction.
  SqliteStore(std::filesystem::path file, std::size_t rows)
      : Store("sqlite", rows), file_(std::move(file)) {
    if (sqlite3_threadsafe() == 0) {
      throw std::runtime_error("SQLite was built without thread support");
    }
    auto setup = std::make_unique<Connection>(file_);
    setup->exec("PRAGMA journal_mode=WAL");
    setup->exec(
        "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, "
        "version INTEGER NOT NULL)");
    setup->exec("BEGIN");
    {
      const std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> insert(
          setup->prepare("INSERT INTO users(id, name, email, version) VALUES(?, ?, ?, 1)"),
          &sqlite3_finalize);
      for (std::size_t i = 1; i <= rows; ++i) {
        const auto id = static_cast<Key>(i);
        const std::string name = seeded_name(id);
        const std::string email = seeded_email(id);
        sqlite3_bind_int64(insert.get(), 1, id);
        sqlite3_bind_text(insert.get(), 2, name.c_str(), static_cast<int>(name.size()),
                          SQLITE_TRANSIENT);
        sqlite3_bind_text(insert.get(), 3, email.c_str(), static_cast<int>(email.size()),
                          SQLITE_TRANSIENT);
        setup->step_done(insert.get(), "insert");
        sqlite3_reset(insert.get());
      }
    }
    setup->exec("COMMIT");
    setup->exec("PRAGMA wal_checkpoint(TRUNCATE)");
    setup->prepare_queries();
    idle_.push_back(std::move(setup));
  }

  [[nodiscard]] std::string describe() const override {
    return std::string("SQLite ") + sqlite3_libversion() +
           " file database (WAL, synchronous=NORMAL, " + std::to_string(rows()) + " rows) at " +
           file_.string();
  }

  /// The number of connections opened so far (the most threads that queried at once).
  [[nodiscard]] std::size_t connections() const {
    std::lock_guard lock(mutex_);
    return opened_;
  }

 protected:
  std::optional<UserRow> do_read(Key id, bool /*with_latency*/) override {
    Lease lease(*this);
    sqlite3_stmt* select = lease->select;
    Reset reset(select);
    sqlite3_bind_int64(select, 1, id);
    const int rc = lease->step_first(select);
    if (rc == SQLITE_DONE) return std::nullopt;
    if (rc != SQLITE_ROW) lease->fail("select", rc);
    UserRow row;
    row.name = column_text(select, 0);
    row.email = column_text(select, 1);
    row.version = static_cast<std::uint64_t>(sqlite3_column_int64(select, 2));
    return row;
  }

  UserRow do_write(Key id, const std::string& name, const std::string& email) override {
    Lease lease(*this);
    sqlite3_stmt* update = lease->update;
    Reset reset(update);
    sqlite3_bind_text(update, 1, name.c_str(), static_cast<int>(name.size()), SQLITE_STATIC);
    sqlite3_bind_text(update, 2, email.c_str(), static_cast<int>(email.size()), SQLITE_STATIC);
    sqlite3_bind_int64(update, 3, id);
    // RETURNING: the write happens in the first step; stepping to SQLITE_DONE
    // finishes the statement, which commits the autocommit transaction.
    int rc = lease->step_first(update);
    if (rc == SQLITE_DONE) throw std::out_of_range("no user " + std::to_string(id));
    if (rc != SQLITE_ROW) lease->fail("update", rc);
    const auto version = static_cast<std::uint64_t>(sqlite3_column_int64(update, 0));
    while ((rc = sqlite3_step(update)) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) lease->fail("update", rc);
    return UserRow{name, email, version};
  }

 private:
  static std::string column_text(sqlite3_stmt* statement, int column) {
    const auto* text = sqlite3_column_text(statement, column);
    const int bytes = sqlite3_column_bytes(statement, column);
    return text == nullptr
               ? std::string{}
               : std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(bytes));
  }

  /// One connection and its prepared statements.
  struct Connection {
    explicit Connection(const std::filesystem::path& file) {
      const int rc = sqlite3_open_v2(
          file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
          nullptr);
      if (rc != SQLITE_OK) {
        const std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
        sqlite3_close(db);
        throw std::runtime_error("sqlite open " + file.string() + ": " + message);
      }
      sqlite3_busy_timeout(db, 10'000);
      exec("PRAGMA synchronous=NORMAL");
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection() {
      for (sqlite3_stmt* s : {select, update}) sqlite3_finalize(s);
      sqlite3_close(db);
    }

    void prepare_queries() {
      select = prepare("SELECT name, email, version FROM users WHERE id = ?");
      update = prepare(
          "UPDATE users SET name = ?, email = ?, version = version + 1 WHERE id = ? "
          "RETURNING version");
    }

    sqlite3_stmt* prepare(const char* sql) {
      sqlite3_stmt* statement = nullptr;
      if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &statement, nullptr) !=
          SQLITE_OK) {
        throw std::runtime_error(std::string("sqlite prepare: ") + sqlite3_errmsg(db));
      }
      return statement;
    }

    void exec(const char* sql) {
      char* error = nullptr;
      if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
        const std::string message = error != nullptr ? error : "unknown error";
        sqlite3_free(error);
        throw std::runtime_error(std::string("sqlite ") + sql + ": " + message);
      }
    }

    /// The first sqlite3_step of a statement, started over while the database
    /// stays busy beyond the busy timeout (nothing has happened yet then).
    int step_first(sqlite3_stmt* statement) {
      for (;;) {
        const int rc = sqlite3_step(statement);
        if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED) return rc;
        sqlite3_reset(statement);
        std::this_thread::yield();
      }
    }

    void step_done(sqlite3_stmt* statement, const char* what) {
      const int rc = step_first(statement);
      if (rc != SQLITE_DONE) fail(what, rc);
    }

    [[noreturn]] void fail(const char* what, int rc) {
      throw std::runtime_error(std::string("sqlite ") + what + ": " + sqlite3_errstr(rc) + ": " +
                               sqlite3_errmsg(db));
    }

    sqlite3* db = nullptr;
    sqlite3_stmt* select = nullptr;
    sqlite3_stmt* update = nullptr;
  };

  /// Resets a statement and clears its bindings at the end of a scope.
  class Reset {
   public:
    explicit Reset(sqlite3_stmt* statement) : statement_(statement) {}
    Reset(const Reset&) = delete;
    Reset& operator=(const Reset&) = delete;
    ~Reset() {
      sqlite3_reset(statement_);
      sqlite3_clear_bindings(statement_);
    }

   private:
    sqlite3_stmt* statement_;
  };

  /// A connection borrowed from the pool (opened if none is idle) for one query.
  class Lease {
   public:
    explicit Lease(SqliteStore& store) : store_(store) {
      {
        std::lock_guard lock(store_.mutex_);
        if (!store_.idle_.empty()) {
          connection_ = std::move(store_.idle_.back());
          store_.idle_.pop_back();
          return;
        }
        ++store_.opened_;
      }
      connection_ = std::make_unique<Connection>(store_.file_);
      connection_->prepare_queries();
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() {
      std::lock_guard lock(store_.mutex_);
      store_.idle_.push_back(std::move(connection_));
    }
    Connection* operator->() const noexcept { return connection_.get(); }

   private:
    SqliteStore& store_;
    std::unique_ptr<Connection> connection_;
  };

  std::filesystem::path file_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::size_t opened_ = 1;
};

// ---------------------------------------------------------------------------
// Simulated store
// ---------------------------------------------------------------------------

/// An in-memory users table behind a simulated network round trip. A query
/// travels to the store (one leg), is applied or read there at one instant,
/// and the answer travels back (the other leg). Each leg takes half the
/// round-trip latency on average: a fixed half of that, plus an exponentially
/// distributed rest, the long tail real networks have. The store's own work
/// takes no time.
class SimulatedStore final : public Store {
 public:
  SimulatedStore(std::string name, std::chrono::nanoseconds round_trip, std::size_t rows)
      : Store(std::move(name), rows), round_trip_(round_trip), table_(rows + 1) {
    for (std::size_t i = 1; i <= rows; ++i) {
      const auto id = static_cast<Key>(i);
      table_[i] = UserRow{seeded_name(id), seeded_email(id), 1};
    }
  }

  [[nodiscard]] std::string describe() const override {
    return "simulated store, " + format_nanos(static_cast<double>(round_trip_.count())) +
           " mean round trip (in memory, " + std::to_string(rows()) + " rows)";
  }

  [[nodiscard]] std::chrono::nanoseconds round_trip() const noexcept { return round_trip_; }

 protected:
  std::optional<UserRow> do_read(Key id, bool with_latency) override {
    if (with_latency) travel();
    std::optional<UserRow> row;
    if (id >= 1 && static_cast<std::size_t>(id) < table_.size()) {
      std::lock_guard lock(stripe(id));
      row = table_[static_cast<std::size_t>(id)];
    }
    if (with_latency) travel();
    return row;
  }

  UserRow do_write(Key id, const std::string& name, const std::string& email) override {
    if (id < 1 || static_cast<std::size_t>(id) >= table_.size()) {
      throw std::out_of_range("no user " + std::to_string(id));
    }
    travel();
    UserRow stored;
    {
      std::lock_guard lock(stripe(id));
      UserRow& row = table_[static_cast<std::size_t>(id)];
      row.name = name;
      row.email = email;
      ++row.version;
      stored = row;
    }
    travel();
    return stored;
  }

 private:
  std::mutex& stripe(Key id) { return stripes_[static_cast<std::size_t>(id) % stripes_.size()]; }

  /// Sleeps for one leg of the round trip.
  void travel() const {
    thread_local std::mt19937_64 rng(std::random_device{}());
    const double half = static_cast<double>(round_trip_.count()) / 2;
    std::exponential_distribution<double> tail(1.0 / (half / 2));
    const double leg = half / 2 + tail(rng);
    std::this_thread::sleep_for(std::chrono::nanoseconds(static_cast<std::int64_t>(leg)));
  }

  std::chrono::nanoseconds round_trip_;
  std::vector<UserRow> table_;
  std::array<std::mutex, 64> stripes_;
};

}  // namespace main_job
