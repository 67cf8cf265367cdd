// SPDX-License-Identifier: Apache-2.0
#include "rootfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>

namespace shaudit::oci {

using internal::UniqueFd;

namespace {

constexpr int kMaxSymlinks = 40;  // as the kernel's path walk

Error errno_error(std::string_view what, std::string_view path, int e) {
  return make_error(fmt::format("{} {}: {}", what, path, std::strerror(e)));
}

bool is_missing(int e) {
  return e == ENOENT || e == ENOTDIR;
}

std::deque<std::string> components(std::string_view path) {
  std::deque<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.emplace_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

}  // namespace

Result<UniqueFd> reopen(int path_fd, int flags) {
  std::string proc = fmt::format("/proc/self/fd/{}", path_fd);
  int fd = ::open(proc.c_str(), flags | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return errno_error("cannot open", proc, errno);
  return UniqueFd(fd);
}

Result<RootFs> RootFs::open(const std::string& path, Resolver how) {
  int fd = ::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_error("cannot open the root filesystem", path, errno);
  return RootFs(path, UniqueFd(fd), how);
}

// An O_PATH descriptor of path resolved in the root; an empty one when the path does not
// exist.
Result<UniqueFd> RootFs::resolve(std::string_view path) const {
  if (how_ == Resolver::kAuto) {
    open_how h{};
    h.flags = O_PATH | O_CLOEXEC;
    h.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    std::string p(path);
    for (int attempt = 0; attempt < 16; ++attempt) {
      long fd = ::syscall(SYS_openat2, fd_.get(), p.c_str(), &h, sizeof h);
      if (fd >= 0) return UniqueFd(static_cast<int>(fd));
      int e = errno;
      if (e == EAGAIN || e == EINTR) continue;  // a rename raced the walk: try again
      if (e == ENOSYS) break;                   // kernel before 5.6: walk here
      if (is_missing(e)) return UniqueFd();
      return errno_error("cannot resolve", path, e);
    }
  }
  return walk(path);
}

// RESOLVE_IN_ROOT done by hand: one component at a time, never following a symlink in the
// kernel; a symlink's target is spliced into the remaining components (an absolute one
// restarts at the root), ".." never goes above the root.
Result<UniqueFd> RootFs::walk(std::string_view path) const {
  std::vector<UniqueFd> stack;  // the directories from the root to the current one
  int root = ::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0);
  if (root < 0) return errno_error("cannot resolve", path, errno);
  stack.emplace_back(root);
  std::deque<std::string> todo = components(path);
  int links = 0;
  while (!todo.empty()) {
    std::string c = std::move(todo.front());
    todo.pop_front();
    if (c == ".") continue;
    if (c == "..") {
      if (stack.size() > 1) stack.pop_back();
      continue;
    }
    // Below a file that is not a directory this fails with ENOTDIR: missing.
    int fd = ::openat(stack.back().get(), c.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      if (is_missing(errno)) return UniqueFd();
      return errno_error("cannot resolve", path, errno);
    }
    UniqueFd next(fd);
    struct stat st;
    if (::fstat(next.get(), &st) != 0) return errno_error("cannot stat", path, errno);
    if (S_ISLNK(st.st_mode)) {
      if (++links > kMaxSymlinks) return errno_error("cannot resolve", path, ELOOP);
      char target[4096];
      ssize_t n = ::readlinkat(next.get(), "", target, sizeof target);
      if (n < 0 || static_cast<size_t>(n) >= sizeof target)
        return errno_error("cannot read the symlink in", path, n < 0 ? errno : ENAMETOOLONG);
      std::string_view t(target, static_cast<size_t>(n));
      if (!t.empty() && t[0] == '/') stack.resize(1);
      auto more = components(t);
      todo.insert(todo.begin(), more.begin(), more.end());
      continue;
    }
    stack.push_back(std::move(next));
  }
  return std::move(stack.back());
}

Result<std::optional<RootFs::Entry>> RootFs::lookup(std::string_view path) const {
  auto fd = resolve(path);
  if (!fd) return fd.error();
  if (!*fd) return std::optional<Entry>();
  Entry e{std::move(*fd), {}};
  if (::fstat(e.fd.get(), &e.st) != 0) return errno_error("cannot stat", path, errno);
  return std::optional<Entry>(std::move(e));
}

Result<std::optional<UniqueFd>> RootFs::open_file(std::string_view path) const {
  auto e = lookup(path);
  if (!e) return e.error();
  if (!*e) return std::optional<UniqueFd>();
  if (!S_ISREG((*e)->st.st_mode))
    return make_error(fmt::format("{} in the image is not a regular file", path));
  auto fd = reopen((*e)->fd.get(), O_RDONLY | O_NONBLOCK);
  if (!fd) return fd.error();
  return std::optional<UniqueFd>(std::move(*fd));
}

Result<std::optional<std::string>> RootFs::read_file(std::string_view path, size_t max) const {
  auto fd = open_file(path);
  if (!fd) return fd.error();
  if (!*fd) return std::optional<std::string>();
  std::string out;
  char buf[8192];
  while (true) {
    ssize_t n = ::read((*fd)->get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("cannot read", path, errno);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max)
      return make_error(fmt::format("{} in the image is larger than {} bytes", path, max));
  }
  return std::optional<std::string>(std::move(out));
}

Result<std::vector<std::string>> RootFs::list_dir(std::string_view path) const {
  std::vector<std::string> names;
  auto e = lookup(path);
  if (!e) return e.error();
  if (!*e || !S_ISDIR((*e)->st.st_mode)) return names;
  auto fd = reopen((*e)->fd.get(), O_RDONLY | O_DIRECTORY);
  if (!fd) return fd.error();
  DIR* d = ::fdopendir(fd->get());
  if (!d) return errno_error("cannot list", path, errno);
  fd->release();  // the DIR owns it now
  errno = 0;
  while (dirent* de = ::readdir(d)) {
    std::string_view n = de->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  int e2 = errno;
  ::closedir(d);
  if (e2 != 0) return errno_error("cannot list", path, e2);
  return names;
}

}  // namespace shaudit::oci
