// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the libshaudit unit tests (not part of the library).
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "shaudit/crypto.h"
#include "shaudit/json.h"
#include "shaudit/record.h"

namespace shaudit::testing {

// A fresh directory under /tmp, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/shaudit_test.XXXXXX";
    char* p = ::mkdtemp(tmpl);
    if (!p) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Creates or replaces path with exactly data, then sets its mode.
inline void write_file(const std::string& path, std::string_view data, mode_t mode = 0600) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + path);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!out) throw std::runtime_error("cannot write " + path);
  }
  if (::chmod(path.c_str(), mode) != 0) throw std::runtime_error("cannot chmod " + path);
}

inline void append_file(const std::string& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  if (!out) throw std::runtime_error("cannot append to " + path);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

// Permission bits of path (st_mode & 07777), or -1 when it cannot be stat'ed.
inline int file_mode(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

// Splits on '\n'. A final piece without a newline is kept as the last element.
inline std::vector<std::string> split_lines(std::string_view data) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < data.size()) {
    size_t nl = data.find('\n', start);
    if (nl == std::string_view::npos) {
      out.emplace_back(data.substr(start));
      break;
    }
    out.emplace_back(data.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

inline std::vector<std::string> read_lines(const std::string& path) {
  return split_lines(read_file(path));
}

// Each line followed by '\n'.
inline std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) {
    out += l;
    out += '\n';
  }
  return out;
}

// Record helpers shared by the writer and verifier tests.
constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kT0 = 1795867200 * kSec;  // 2026-11-28T12:00:00Z

inline std::string hash_hex(std::string_view line) { return crypto::to_hex(crypto::sha256(line)); }

inline json::Object command(std::string_view text) {
  json::Object o;
  o["type"] = record::kCommand;
  o["session"] = "s1";
  o["pid"] = 42;
  o["shell"] = "bash";
  record::set_bytes(o, "text", text);
  return o;
}

inline json::Object parse_object(const std::string& line) {
  auto v = json::parse(line);
  EXPECT_TRUE(v.ok()) << line << ": " << (v.ok() ? "" : v.message());
  if (!v.ok() || !v->is_object()) return {};
  return v->as_object();
}

}  // namespace shaudit::testing
