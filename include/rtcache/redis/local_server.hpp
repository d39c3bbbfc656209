#pragma once

/// \file
/// rtcache::redis::LocalServer: a private `redis-server` on 127.0.0.1 at a
/// free port, for tests and demos (POSIX). Nothing is persisted.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "connection.hpp"

extern char** environ;  // NOLINT: POSIX

namespace rtcache::redis {

/// Runs `redis-server --port <port> --bind 127.0.0.1 --save "" --appendonly no`
/// as a child process; its log goes to a temporary file (see `log()`).
///
/// The constructor returns once the server answers PING; `stop()` kills it
/// with SIGKILL (as a crash would), `start()` runs it again on the same port.
/// The destructor stops it. Not thread-safe: one owner thread.
class LocalServer {
 public:
  struct Options {
    /// The server's executable (looked up in PATH).
    std::string executable = "redis-server";
    /// 0: a free port, picked at construction.
    int port = 0;
    /// How long to wait for the server to answer PING.
    std::chrono::milliseconds start_timeout = std::chrono::seconds(20);
  };

  LocalServer() : LocalServer(Options{}) {}

  explicit LocalServer(Options options) : options_(std::move(options)) {
    char path[] = "/tmp/rtcache-redis-log-XXXXXX";
    const int fd = ::mkstemp(path);
    if (fd < 0) throw std::runtime_error("rtcache::redis::LocalServer: cannot create a log file");
    ::close(fd);
    log_path_ = path;
    port_ = options_.port;
    // A free port may be taken between our probe and the server's bind: try a few.
    for (int attempt = 0;; ++attempt) {
      if (options_.port == 0) port_ = free_port();
      try {
        start();
        return;
      } catch (const std::exception&) {
        if (options_.port != 0 || attempt == 4) {
          ::unlink(log_path_.c_str());
          throw;
        }
      }
    }
  }

  LocalServer(const LocalServer&) = delete;
  LocalServer& operator=(const LocalServer&) = delete;

  ~LocalServer() {
    stop();
    ::unlink(log_path_.c_str());
  }

  [[nodiscard]] int port() const noexcept { return port_; }
  [[nodiscard]] bool running() const noexcept { return pid_ > 0; }

  /// Starts the server on `port()` and waits until it answers PING. Throws
  /// `std::runtime_error` (with the server's log) if it does not come up.
  void start() {
    if (running()) return;
    const std::string port = std::to_string(port_);
    std::vector<std::string> args = {
        options_.executable, "--port", port,          "--bind", "127.0.0.1", "--save", "",
        "--appendonly",      "no",     "--daemonize", "no",     "--logfile", ""};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, log_path_.c_str(), O_WRONLY | O_APPEND, 0);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);  // keep our sockets and pipes out
#endif
    pid_t pid = -1;
    const int rc =
        ::posix_spawnp(&pid, options_.executable.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      throw std::runtime_error("rtcache::redis::LocalServer: cannot run " + options_.executable +
                               ": " + std::string(std::strerror(rc)));
    }
    pid_ = pid;
    wait_until_ready();
  }

  /// Kills the server at once (SIGKILL) and reaps it. No-op when stopped.
  void stop() noexcept {
    if (!running()) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

  /// What the server wrote to its log so far.
  [[nodiscard]] std::string log() const {
    std::ifstream in(log_path_);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
  }

 private:
  static int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("rtcache::redis::LocalServer: socket() failed");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t length = sizeof address;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ::close(fd);
      throw std::runtime_error("rtcache::redis::LocalServer: cannot find a free port");
    }
    ::close(fd);
    return ntohs(address.sin_port);
  }

  void wait_until_ready() {
    const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
    for (;;) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("rtcache::redis::LocalServer: redis-server exited at start:\n" +
                                 log());
      }
      try {
        Connection c("127.0.0.1", port_, std::chrono::milliseconds(100),
                     std::chrono::milliseconds(1000));
        if (c.command({"PING"}).text() == "PONG") return;
      } catch (const ConnectionError&) {
        // Not listening yet.
      }
      if (std::chrono::steady_clock::now() > deadline) {
        stop();
        throw std::runtime_error("rtcache::redis::LocalServer: redis-server did not answer:\n" +
                                 log());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  Options options_;
  std::string log_path_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace rtcache::redis
