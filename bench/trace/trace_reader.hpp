#pragma once

// Reads a key-access trace: text, one decimal key per line, blank lines and
// lines holding only `*` skipped, gzip-compressed or not (zlib's gzread reads
// both). Errors name the file and, for bad content, the line.

#include <zlib.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace rtcache::bench {

/// A trace file that cannot be read or holds something other than keys.
class TraceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The trace's name: the file name without its directories and without a
/// `.trace.gz`, `.gz` or `.trace` suffix (`traces/gli.trace.gz` is `gli`).
inline std::string trace_name(std::string_view path) {
  if (const auto slash = path.find_last_of('/'); slash != std::string_view::npos) {
    path.remove_prefix(slash + 1);
  }
  for (std::string_view suffix : {".trace.gz", ".gz", ".trace"}) {
    if (path.size() > suffix.size() && path.substr(path.size() - suffix.size()) == suffix) {
      path.remove_suffix(suffix.size());
      break;
    }
  }
  return std::string(path);
}

namespace detail {

inline std::string_view trim(std::string_view s) {
  const auto is_space = [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
  };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

/// Parses one line's key; throws with the file and line on anything else.
inline std::uint64_t parse_key(std::string_view text, const std::string& path, std::uint64_t line) {
  const auto fail = [&](const std::string& why) -> std::uint64_t {
    std::string shown(text.substr(0, 40));
    if (text.size() > 40) shown += "...";
    throw TraceError(path + ":" + std::to_string(line) + ": " + why + " (got '" + shown + "')");
  };
  if (text.empty()) return fail("expected a decimal key");
  std::uint64_t key = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return fail("expected a decimal key");
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (key > (UINT64_MAX - digit) / 10) return fail("key does not fit in 64 bits");
    key = key * 10 + digit;
  }
  return key;
}

}  // namespace detail

/// Reads every key of the trace at `path`, in order.
inline std::vector<std::uint64_t> read_trace(const std::string& path) {
  errno = 0;
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) {
    const int error = errno;
    throw TraceError("cannot open " + path + ": " +
                     (error != 0 ? std::strerror(error) : "out of memory"));
  }
  struct Closer {
    gzFile f;
    ~Closer() { gzclose(f); }
  } closer{file};
  gzbuffer(file, 1 << 17);

  std::vector<std::uint64_t> keys;
  std::string line;
  std::uint64_t line_number = 0;
  char chunk[4096];
  const auto finish_line = [&] {
    ++line_number;
    const std::string_view text = detail::trim(line);
    if (!text.empty() && text != "*") keys.push_back(detail::parse_key(text, path, line_number));
    line.clear();
  };
  for (;;) {
    const int n = gzread(file, chunk, sizeof chunk);
    if (n < 0) {
      int code = 0;
      const char* message = gzerror(file, &code);
      throw TraceError(path + ":" + std::to_string(line_number + 1) +
                       ": read error: " + (code == Z_ERRNO ? std::strerror(errno) : message));
    }
    if (n == 0) break;
    for (int i = 0; i < n; ++i) {
      if (chunk[i] == '\n') {
        finish_line();
      } else {
        line.push_back(chunk[i]);
      }
    }
  }
  if (!line.empty()) finish_line();
  // gzread stops at a truncated gzip stream without an error: check for it.
  int code = 0;
  const char* message = gzerror(file, &code);
  if (code != Z_OK && code != Z_BUF_ERROR) {
    throw TraceError(path + ": " + message);
  }
  return keys;
}

}  // namespace rtcache::bench
