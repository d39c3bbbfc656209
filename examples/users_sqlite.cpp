// A user service over a SQLite `users` table, with rtcache in front of it.
//
// - Reads are read-through: a miss runs the loader, a SELECT, and the row's
//   `version` column becomes the version of the cached entry.
// - Writes are write-through with optimistic locking: `put_if_version` runs
//     UPDATE users SET name = ?, email = ?, version = version + 1
//     WHERE id = ? AND version = ? RETURNING version
//   in the writer. When another writer got there first, no row comes back,
//   the cache drops its copy and the caller sees `applied == false`. The
//   caller then re-reads with `get_versioned` and tries again (update_user).
//
// Two service instances (think: two processes) share one database here, so
// that one of them can be caught holding an old version.
//
//   g++ -std=c++20 -I include examples/users_sqlite.cpp -lsqlite3 -pthread

#include <sqlite3.h>

#include <cstdint>
#include <iostream>
#include <mutex>
#include <optional>
#include <rtcache/rtcache.hpp>
#include <stdexcept>
#include <string>

struct User {
  std::string name;
  std::string email;
};

/// The users table, through one SQLite connection and prepared statements.
/// Each query holds `mutex_`: a prepared statement must not be stepped by two
/// threads at once. (A busy server would keep one connection per thread.)
class UsersTable {
 public:
  explicit UsersTable(const char* path) {
    if (sqlite3_open(path, &db_) != SQLITE_OK) fail("open");
    exec(
        "CREATE TABLE IF NOT EXISTS users(id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "email TEXT NOT NULL, version INTEGER NOT NULL)");
    select_ = prepare("SELECT name, email, version FROM users WHERE id = ?");
    upsert_ = prepare(
        "INSERT INTO users(id, name, email, version) VALUES(?1, ?2, ?3, 1) "
        "ON CONFLICT(id) DO UPDATE SET name = ?2, email = ?3, version = version + 1 "
        "RETURNING version");
    update_if_version_ = prepare(
        "UPDATE users SET name = ?2, email = ?3, version = version + 1 "
        "WHERE id = ?1 AND version = ?4 RETURNING version");
    delete_ = prepare("DELETE FROM users WHERE id = ?");
  }
  UsersTable(const UsersTable&) = delete;
  UsersTable& operator=(const UsersTable&) = delete;
  ~UsersTable() {
    for (sqlite3_stmt* s : {select_, upsert_, update_if_version_, delete_}) sqlite3_finalize(s);
    sqlite3_close(db_);
  }

  /// The loader's query: the user and its version, or nullopt (not found).
  std::optional<rtcache::Versioned<User>> select(int id) {
    std::lock_guard lock(mutex_);
    Statement q(select_);
    sqlite3_bind_int(select_, 1, id);
    const int rc = sqlite3_step(select_);
    if (rc == SQLITE_DONE) return std::nullopt;
    if (rc != SQLITE_ROW) fail("select");
    return rtcache::Versioned<User>{User{text(select_, 0), text(select_, 1)},
                                    static_cast<std::uint64_t>(sqlite3_column_int64(select_, 2))};
  }

  /// Inserts or overwrites the user; returns the stored version.
  std::uint64_t upsert(int id, const User& user) {
    std::lock_guard lock(mutex_);
    return returned_version(upsert_, id, user).value();
  }

  /// Writes only if the row is still at `expected`; nullopt on a conflict.
  std::optional<std::uint64_t> update_if_version(int id, const User& user, std::uint64_t expected) {
    std::lock_guard lock(mutex_);
    sqlite3_bind_int64(update_if_version_, 4, static_cast<sqlite3_int64>(expected));
    return returned_version(update_if_version_, id, user);
  }

  void remove(int id) {
    std::lock_guard lock(mutex_);
    Statement q(delete_);
    sqlite3_bind_int(delete_, 1, id);
    if (sqlite3_step(delete_) != SQLITE_DONE) fail("delete");
  }

 private:
  /// Resets a statement when a query is done with it.
  struct Statement {
    explicit Statement(sqlite3_stmt* s) : s(s) {}
    ~Statement() {
      sqlite3_reset(s);
      sqlite3_clear_bindings(s);
    }
    sqlite3_stmt* s;
  };

  /// Runs a write with `RETURNING version`: the version, or nullopt if no row changed.
  std::optional<std::uint64_t> returned_version(sqlite3_stmt* s, int id, const User& user) {
    Statement q(s);
    sqlite3_bind_int(s, 1, id);
    sqlite3_bind_text(s, 2, user.name.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, user.email.c_str(), -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) return std::nullopt;
    if (rc != SQLITE_ROW) fail("write");
    const auto version = static_cast<std::uint64_t>(sqlite3_column_int64(s, 0));
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) fail("write");  // stepping to the end commits
    return version;
  }

  static std::string text(sqlite3_stmt* s, int column) {
    return reinterpret_cast<const char*>(sqlite3_column_text(s, column));
  }
  sqlite3_stmt* prepare(const char* sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) fail("prepare");
    return s;
  }
  void exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail("exec");
  }
  [[noreturn]] void fail(const char* what) {
    throw std::runtime_error(std::string("sqlite ") + what + ": " + sqlite3_errmsg(db_));
  }

  sqlite3* db_ = nullptr;
  sqlite3_stmt* select_ = nullptr;
  sqlite3_stmt* upsert_ = nullptr;
  sqlite3_stmt* update_if_version_ = nullptr;
  sqlite3_stmt* delete_ = nullptr;
  std::mutex mutex_;
};

// The loader and the writer: thin adapters from the cache to the table.
struct LoadUser {
  UsersTable* table;
  std::optional<rtcache::Versioned<User>> operator()(const int& id) const {
    return table->select(id);
  }
};

struct WriteUser {
  UsersTable* table;
  // put(): insert or overwrite; the cache keeps the version the store returned.
  rtcache::Versioned<User> write(const int& id, const User& user) const {
    return {user, table->upsert(id, user)};
  }
  // put_if_version(): compare-and-set on the version column.
  std::optional<std::uint64_t> write_if_version(const int& id, const User& user,
                                                std::uint64_t expected) const {
    return table->update_if_version(id, user, expected);
  }
  // erase(): delete-through.
  void erase(const int& id) const { table->remove(id); }
};

using UserCache = rtcache::ReadThroughCache<int, User, LoadUser, WriteUser>;

/// Read-modify-write with optimistic locking: read the user and its version,
/// change it, and write it back only if nobody wrote in between. On a conflict
/// the cache has dropped its copy, so the next get_versioned loads the
/// winner's row; apply the change to that and try again.
template <class Change>
std::uint64_t update_user(UserCache& users, int id, Change change) {
  for (int attempt = 1; attempt <= 5; ++attempt) {
    std::optional<rtcache::Versioned<User>> current = users.get_versioned(id);
    if (!current) throw std::runtime_error("no user " + std::to_string(id));
    User changed = current->value;
    change(changed);
    const rtcache::PutResult result = users.put_if_version(id, changed, current->version);
    if (result.applied) return result.version;
    std::cout << "  conflict: version " << current->version
              << " is no longer current; re-reading and retrying\n";
  }
  throw std::runtime_error("user " + std::to_string(id) + ": too many conflicts");
}

void print(const char* who, const std::optional<rtcache::Versioned<User>>& user) {
  std::cout << who;
  if (user) {
    std::cout << user->value.name << " <" << user->value.email << ">, version " << user->version
              << "\n";
  } else {
    std::cout << "(no such user)\n";
  }
}

int main() {
  UsersTable table(":memory:");
  UserCache instance_a(rtcache::Options{.capacity = 10'000}, LoadUser{&table}, WriteUser{&table});
  UserCache instance_b(rtcache::Options{.capacity = 10'000}, LoadUser{&table}, WriteUser{&table});

  instance_a.put(1, User{"Ada", "ada@example.com"});  // write-through: INSERT, then cached
  print("A reads user 1: ", instance_a.get_versioned(1));
  print("B reads user 1: ", instance_b.get_versioned(1));  // B's cache loads it

  // B changes the email. A's cache still holds version 1.
  const std::uint64_t b_version =
      update_user(instance_b, 1, [](User& u) { u.email = "ada@lovelace.org"; });
  std::cout << "B changed the email: version " << b_version << "\n";

  // A changes the name, starting from its cached version 1: the UPDATE finds
  // version 2 in the table and changes nothing; A re-reads and retries.
  std::cout << "A changes the name:\n";
  const std::uint64_t a_version =
      update_user(instance_a, 1, [](User& u) { u.name = "Ada Lovelace"; });
  std::cout << "  retried and applied at version " << a_version << "\n";
  print("The table holds:  ", table.select(1));  // both changes, none lost

  // Each instance's cache hears of the other's writes only if told.
  print("B's cache still:  ", instance_b.get_versioned(1));
  instance_b.invalidate(1);  // e.g. on a change notification
  print("B after invalidate: ", instance_b.get_versioned(1));

  print("A reads user 42: ", instance_a.get_versioned(42));  // not found is an answer
  instance_a.erase(1);                                       // delete-through
  print("After A erases user 1, the table: ", table.select(1));

  const rtcache::Stats stats = instance_a.stats();
  std::cout << "A: " << stats.loads << " loads, " << stats.writes << " writes, "
            << stats.version_conflicts << " version conflict(s)\n";
  return 0;
}
