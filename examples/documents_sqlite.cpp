// Documents of very different sizes in a SQLite table, cached with a budget
// in bytes rather than in entries.
//
// - A weigher gives each entry the size of its document, so
//   `Options::capacity` is a memory budget (here 1 MiB).
// - The cache allocates for the documents it holds, not per byte of budget.
// - The default policy measures its regions in bytes too. A report that
//   reads every document once passes through without pushing out the
//   documents in daily use. The same budget under LRU loses them all.
//
//   g++ -std=c++20 -I include examples/documents_sqlite.cpp -lsqlite3 -pthread

#include <sqlite3.h>

#include <cstddef>
#include <iostream>
#include <mutex>
#include <optional>
#include <rtcache/rtcache.hpp>
#include <stdexcept>
#include <string>

/// The documents table, through one SQLite connection; each query holds
/// `mutex_` (a prepared statement must not be stepped by two threads at once).
class DocumentsTable {
 public:
  DocumentsTable() {
    if (sqlite3_open(":memory:", &db_) != SQLITE_OK) fail("open");
    exec("CREATE TABLE documents(id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
    select_ = prepare("SELECT body FROM documents WHERE id = ?");
    upsert_ = prepare(
        "INSERT INTO documents(id, body) VALUES(?1, ?2) ON CONFLICT(id) DO UPDATE SET body = ?2");
  }
  DocumentsTable(const DocumentsTable&) = delete;
  DocumentsTable& operator=(const DocumentsTable&) = delete;
  ~DocumentsTable() {
    sqlite3_finalize(select_);
    sqlite3_finalize(upsert_);
    sqlite3_close(db_);
  }

  /// The loader's query: the document, or nullopt when there is none.
  std::optional<std::string> select(int id) {
    std::lock_guard lock(mutex_);
    ++reads_;
    Reset reset{select_};
    sqlite3_bind_int(select_, 1, id);
    const int rc = sqlite3_step(select_);
    if (rc == SQLITE_DONE) return std::nullopt;
    if (rc != SQLITE_ROW) fail("select");
    const auto* body = reinterpret_cast<const char*>(sqlite3_column_text(select_, 0));
    return std::string(body, static_cast<std::size_t>(sqlite3_column_bytes(select_, 0)));
  }

  /// The writer's statement.
  void upsert(int id, const std::string& body) {
    std::lock_guard lock(mutex_);
    Reset reset{upsert_};
    sqlite3_bind_int(upsert_, 1, id);
    sqlite3_bind_text(upsert_, 2, body.data(), static_cast<int>(body.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(upsert_) != SQLITE_DONE) fail("upsert");
  }

  /// SELECTs run so far.
  int reads() {
    std::lock_guard lock(mutex_);
    return reads_;
  }

 private:
  struct Reset {
    sqlite3_stmt* statement;
    ~Reset() {
      sqlite3_reset(statement);
      sqlite3_clear_bindings(statement);
    }
  };

  [[noreturn]] void fail(const char* what) const {
    throw std::runtime_error(std::string("sqlite ") + what + ": " + sqlite3_errmsg(db_));
  }
  void exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail("exec");
  }
  sqlite3_stmt* prepare(const char* sql) {
    sqlite3_stmt* statement = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &statement, nullptr) != SQLITE_OK) fail("prepare");
    return statement;
  }

  sqlite3* db_ = nullptr;
  sqlite3_stmt* select_ = nullptr;
  sqlite3_stmt* upsert_ = nullptr;
  std::mutex mutex_;
  int reads_ = 0;
};

constexpr int kDocuments = 2000;  // 200 bytes to 8 KB each, about 8 MB in all
constexpr int kHot = 100;         // the documents in daily use, about 400 KB
constexpr std::size_t kBudget = std::size_t{1} << 20;

std::string document(int id) {
  const auto size = static_cast<std::size_t>(200 + (id * 7919) % 7800);
  return std::string(size, static_cast<char>('a' + id % 26));
}

/// A day of traffic against the table through a cache with `Policy`: the hot
/// documents are read a few times, then a report reads every document once,
/// then the hot documents are read again.
template <class Policy>
void run(const char* name, DocumentsTable& table) {
  rtcache::CacheHooks<int, std::string> hooks{
      .weigher = [](const int&, const std::string& body) { return body.size(); }};
  auto cache = rtcache::make_cache<int, std::string, Policy>(
      rtcache::Options{.capacity = kBudget, .shards = 4, .seed = 1},
      [&](const int& id) { return table.select(id); },
      [&](const int& id, const std::string& body) { table.upsert(id, body); }, hooks);

  for (int round = 0; round < 5; ++round) {
    for (int id = 0; id < kHot; ++id) (void)cache.get(id);
  }
  cache.put(7, document(7) + " (edited)");  // written through to the table first

  // The report: it reads every document once, counting their bytes. get_with
  // hands it each cached body itself (a get would copy it, up to 8 KB);
  // a body not cached is loaded first, as get would.
  std::size_t report_bytes = 0;
  for (int id = 0; id < kDocuments; ++id) {
    const bool found =
        cache.get_with(id, [&](const std::string& body) { report_bytes += body.size(); });
    if (!found) throw std::logic_error("the report missed a document");
  }
  std::size_t table_bytes = 0;
  for (int id = 0; id < kDocuments; ++id) table_bytes += table.select(id)->size();
  if (report_bytes != table_bytes) throw std::logic_error("the report read other documents");

  int kept = 0;
  for (int id = 0; id < kHot; ++id) kept += cache.get_if_present(id) ? 1 : 0;
  const int reads_before = table.reads();
  for (int id = 0; id < kHot; ++id) (void)cache.get(id);
  std::cout << name << ": hot documents still cached after the report: " << kept << " of " << kHot
            << "; database reads to serve them again: " << table.reads() - reads_before
            << "; cached " << cache.size() << " documents, " << cache.weight() << " of " << kBudget
            << " bytes\n";
  if (cache.get(7) != document(7) + " (edited)") throw std::logic_error("lost the edit");
  table.upsert(7, document(7));  // as it was, for the next run
}

int main() {
  DocumentsTable table;
  for (int id = 0; id < kDocuments; ++id) table.upsert(id, document(id));
  run<rtcache::DefaultPolicy>("default policy (W-TinyLFU)", table);
  run<rtcache::policy::Lru>("LRU", table);
}
