#pragma once

/// \file
/// rtcache::redis::Connection: one blocking connection to a Redis server,
/// over hiredis, with connect and command timeouts.

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace rtcache::redis {

/// A connection that failed: it could not be opened, or a command could not
/// be sent or answered (the server went away, a timeout). The connection is
/// unusable afterwards; open a new one.
class ConnectionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One reply from the server: a thin owner of a hiredis `redisReply`.
class Reply {
 public:
  Reply() = default;
  explicit Reply(redisReply* reply) noexcept : reply_(reply) {}

  [[nodiscard]] bool is_nil() const noexcept { return type() == REDIS_REPLY_NIL; }
  [[nodiscard]] bool is_error() const noexcept { return type() == REDIS_REPLY_ERROR; }
  [[nodiscard]] bool is_string() const noexcept {
    return type() == REDIS_REPLY_STRING || type() == REDIS_REPLY_STATUS;
  }
  [[nodiscard]] bool is_integer() const noexcept { return type() == REDIS_REPLY_INTEGER; }
  [[nodiscard]] bool is_array() const noexcept { return type() == REDIS_REPLY_ARRAY; }

  /// The text of a string, status or error reply (empty otherwise).
  [[nodiscard]] std::string_view text() const noexcept {
    if (!reply_ || reply_->str == nullptr) return {};
    return {reply_->str, static_cast<std::size_t>(reply_->len)};
  }
  [[nodiscard]] long long integer() const noexcept { return reply_ ? reply_->integer : 0; }
  [[nodiscard]] std::size_t size() const noexcept {
    return is_array() ? static_cast<std::size_t>(reply_->elements) : 0;
  }
  /// Element `i` of an array reply, as text (for pub/sub messages).
  [[nodiscard]] std::string_view element_text(std::size_t i) const noexcept {
    if (i >= size() || reply_->element[i]->str == nullptr) return {};
    return {reply_->element[i]->str, static_cast<std::size_t>(reply_->element[i]->len)};
  }

 private:
  [[nodiscard]] int type() const noexcept { return reply_ ? reply_->type : REDIS_REPLY_NIL; }

  struct Free {
    void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
  };
  std::unique_ptr<redisReply, Free> reply_;
};

/// A blocking connection to one Redis server.
///
/// Thread safety: none; use one connection from one thread at a time.
/// Exceptions: `ConnectionError` when the connection cannot be opened or
/// breaks; after that the object is unusable (`broken()` is true). An error
/// *reply* (a script error, a wrong type) is not an exception: it is a
/// `Reply` with `is_error()`.
class Connection {
 public:
  /// Connects to `host:port`, waiting at most `connect_timeout`; commands
  /// then wait at most `command_timeout` for their reply (0: no limit).
  Connection(const std::string& host, int port, std::chrono::milliseconds connect_timeout,
             std::chrono::milliseconds command_timeout) {
    context_.reset(redisConnectWithTimeout(host.c_str(), port, to_timeval(connect_timeout)));
    if (!context_) throw ConnectionError("rtcache::redis: cannot allocate a connection");
    if (context_->err != 0) {
      throw ConnectionError("rtcache::redis: cannot connect to " + host + ":" +
                            std::to_string(port) + ": " + context_->errstr);
    }
    set_command_timeout(command_timeout);
  }

  /// How long a command (or `read_reply`) waits for the server; 0: forever.
  void set_command_timeout(std::chrono::milliseconds timeout) {
    if (redisSetTimeout(context_.get(), to_timeval(timeout)) != REDIS_OK) fail();
  }

  /// Turns on TCP keepalive probes, so that a blocking read notices a server
  /// host that vanished without closing the connection.
  void enable_keepalive() {
    if (redisEnableKeepAlive(context_.get()) != REDIS_OK) fail();
  }

  /// Sends one command (binary-safe arguments) and waits for its reply.
  Reply command(std::initializer_list<std::string_view> args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (std::string_view a : args) {
      argv.push_back(a.empty() ? "" : a.data());
      lengths.push_back(a.size());
    }
    void* reply = redisCommandArgv(context_.get(), static_cast<int>(argv.size()), argv.data(),
                                   lengths.data());
    if (reply == nullptr) fail();
    return Reply(static_cast<redisReply*>(reply));
  }

  /// Waits for the next reply the server pushes (pub/sub messages).
  Reply read_reply() {
    void* reply = nullptr;
    if (redisGetReply(context_.get(), &reply) != REDIS_OK || reply == nullptr) fail();
    return Reply(static_cast<redisReply*>(reply));
  }

  /// Like `read_reply`, but waits at most `timeout` for the reply to start
  /// arriving: nothing if none did (the connection stays usable). Once it
  /// has started, waits for the rest as `read_reply` does.
  std::optional<Reply> read_reply_for(std::chrono::milliseconds timeout) {
    void* reply = nullptr;
    if (redisReaderGetReply(context_->reader, &reply) != REDIS_OK) {  // one already read?
      throw ConnectionError(std::string("rtcache::redis: bad reply: ") + context_->reader->errstr);
    }
    if (reply != nullptr) return Reply(static_cast<redisReply*>(reply));
    pollfd p{};
    p.fd = context_->fd;
    p.events = POLLIN;
    const auto ms = std::min<std::chrono::milliseconds::rep>(timeout.count(), 1 << 30);
    const int ready = ::poll(&p, 1, static_cast<int>(std::max<decltype(ms)>(ms, 0)));
    if (ready == 0 || (ready < 0 && errno == EINTR)) return std::nullopt;
    return read_reply();  // data, the end of the stream or an error: it will not block long
  }

  /// Makes a `read_reply` blocked in another thread return (with an error),
  /// without freeing anything: the owner still destroys the connection.
  /// Safe to call from another thread while the connection is in use.
  void interrupt() const noexcept { ::shutdown(context_->fd, SHUT_RDWR); }

  [[nodiscard]] bool broken() const noexcept { return context_->err != 0; }

  /// Broken because a command or read waited longer than its timeout (as
  /// opposed to: the server closed the connection, or another failure).
  [[nodiscard]] bool timed_out() const noexcept { return timed_out_; }

 private:
  [[noreturn]] void fail() {
    const int error = errno;  // hiredis leaves the failed call's errno for an I/O error
    timed_out_ = context_->err == REDIS_ERR_IO && is_timeout(error);
    throw ConnectionError(std::string("rtcache::redis: connection failed: ") +
                          (context_->err != 0 ? context_->errstr : "no reply"));
  }

  static bool is_timeout(int error) noexcept {
    if (error == EAGAIN || error == ETIMEDOUT) return true;
#if EWOULDBLOCK != EAGAIN
    if (error == EWOULDBLOCK) return true;
#endif
    return false;
  }

  static timeval to_timeval(std::chrono::milliseconds ms) noexcept {
    timeval tv{};
    tv.tv_sec = static_cast<decltype(tv.tv_sec)>(ms.count() / 1000);
    tv.tv_usec = static_cast<decltype(tv.tv_usec)>((ms.count() % 1000) * 1000);
    return tv;
  }

  struct Free {
    void operator()(redisContext* c) const noexcept { redisFree(c); }
  };
  std::unique_ptr<redisContext, Free> context_;
  bool timed_out_ = false;
};

}  // namespace rtcache::redis
