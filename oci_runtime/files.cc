// SPDX-License-Identifier: Apache-2.0
#include "files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "internal/fd.h"

namespace shaudit::oci {

using internal::UniqueFd;

namespace {

Error errno_error(std::string_view what, std::string_view path, int e) {
  return make_error(fmt::format("cannot {} {}: {}", what, path, std::strerror(e)));
}

Result<void> write_all(int fd, std::string_view data, std::string_view path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("write", path, errno);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

// A temporary file that is removed unless it was renamed into place.
class TempFile {
 public:
  ~TempFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  Result<int> create(const std::string& target) {
    std::string tmpl = dir_name(target) + "/." + base_name(target) + ".shaudit-XXXXXX";
    int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
    if (fd < 0) return errno_error("create a temporary file beside", target, errno);
    path_ = tmpl;
    fd_.reset(fd);
    return fd;
  }
  Result<void> commit(const std::string& target) {
    if (::close(fd_.release()) != 0) return errno_error("write", path_, errno);
    if (::rename(path_.c_str(), target.c_str()) != 0) return errno_error("replace", target, errno);
    path_.clear();
    return {};
  }

 private:
  std::string path_;
  UniqueFd fd_;
};

}  // namespace

Result<std::string> read_small_file(const std::string& path, size_t max) {
  int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (raw < 0) return errno_error("open", path, errno);
  UniqueFd fd(raw);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return errno_error("stat", path, errno);
  if (!S_ISREG(st.st_mode)) return make_error(fmt::format("{} is not a regular file", path));
  std::string out;
  char buf[16384];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("read", path, errno);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max) return make_error(fmt::format("{} is larger than {} bytes", path, max));
  }
  return out;
}

Result<void> write_file_atomic(const std::string& path, std::string_view data, mode_t mode,
                               std::optional<Owner> owner) {
  TempFile tmp;
  auto fd = tmp.create(path);
  if (!fd) return fd.error();
  if (auto r = write_all(*fd, data, path); !r) return r;
  if (owner && ::fchown(*fd, owner->uid, owner->gid) != 0)
    return errno_error("set the owner of a temporary file beside", path, errno);
  if (::fchmod(*fd, mode) != 0)
    return errno_error("set the mode of a temporary file beside", path, errno);
  if (::fsync(*fd) != 0) return errno_error("sync", path, errno);
  return tmp.commit(path);
}

Result<void> make_dirs(const std::string& path, mode_t mode) {
  const std::string p = clean_path(path);
  for (size_t j = p.find('/', 1);; j = p.find('/', j + 1)) {
    std::string cur = p.substr(0, j);  // the whole path once j is npos
    if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST)
      return errno_error("create", cur, errno);
    if (j == std::string::npos) break;
  }
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) return errno_error("create", p, errno);
  if (!S_ISDIR(st.st_mode)) return make_error(fmt::format("{} is not a directory", p));
  return {};
}

std::string dir_name(std::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

std::string base_name(std::string_view path) {
  size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

std::string clean_path(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view c = path.substr(i, j - i);
    i = j + 1;
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(c);
  }
  std::string out;
  for (auto c : parts) {
    out += '/';
    out += c;
  }
  return out.empty() ? "/" : out;
}

bool is_proper_ancestor(std::string_view ancestor, std::string_view path) {
  if (ancestor == path) return false;
  if (ancestor == "/") return true;
  return path.size() > ancestor.size() && path.substr(0, ancestor.size()) == ancestor &&
         path[ancestor.size()] == '/';
}

}  // namespace shaudit::oci
