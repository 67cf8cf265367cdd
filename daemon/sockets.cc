// SPDX-License-Identifier: Apache-2.0
#include "sockets.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace shaudit::daemon {

std::string socket_dir(const std::string& socket) {
  auto slash = socket.rfind('/');
  return slash == std::string::npos ? std::string(".") : socket.substr(0, slash);
}

Result<void> make_parent_dirs(const std::string& path, unsigned mode) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return {};
  std::string dir = path.substr(0, slash);
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      std::string part = dir.substr(0, i);
      if (::mkdir(part.c_str(), mode) != 0 && errno != EEXIST)
        return make_error(
            fmt::format("cannot create directory {}: {}", part, std::strerror(errno)));
    }
  }
  return {};
}

// True when a process accepts connections on the socket at path (a live daemon).
bool socket_is_live(const std::string& path, int type) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  int probe = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (probe < 0) return false;
  int rc = ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::close(probe);
  return rc == 0;
}

Result<int> make_socket(const std::string& path, int type, unsigned mode,
                        const std::string& group) {
  // Parent directory (0755), then replace a stale socket, refuse a live one.
  if (auto r = make_parent_dirs(path, 0755); !r) return r.error();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return make_error(fmt::format("socket path {} is too long", path));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return make_error(
          fmt::format("{} exists and is not a socket; remove it or choose another path", path));
    int probe = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (probe >= 0) {
      int rc = ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      ::close(probe);
      if (rc == 0) return make_error(fmt::format("another shauditd is listening on {}", path));
    }
    ::unlink(path.c_str());  // stale socket from an earlier run
  }
  int fd = ::socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return make_error(fmt::format("socket: {}", std::strerror(errno)));
  // Bind with a private umask-like mode first, then set the configured one.
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    ::close(fd);
    return make_error(fmt::format("cannot bind {}: {}", path, std::strerror(e)));
  }
  if (!group.empty()) {
    struct group gr, *res = nullptr;
    char gbuf[4096];
    if (getgrnam_r(group.c_str(), &gr, gbuf, sizeof gbuf, &res) != 0 || !res) {
      ::close(fd);
      ::unlink(path.c_str());
      return make_error(fmt::format("socket_group '{}' does not exist", group));
    }
    if (::chown(path.c_str(), static_cast<uid_t>(-1), res->gr_gid) != 0) {
      int e = errno;
      ::close(fd);
      ::unlink(path.c_str());
      return make_error(fmt::format("cannot chown {}: {}", path, std::strerror(e)));
    }
  }
  if (::chmod(path.c_str(), mode) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return make_error(fmt::format("cannot chmod {}: {}", path, std::strerror(e)));
  }
  // Accepted connections inherit SO_PASSCRED, so the kernel attaches the sender's
  // credentials to every message, even one sent before accept().
  int on = 1;
  if (type == SOCK_SEQPACKET) {
    ::setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
    // ... and a pidfd of the sender (Linux 6.5+): its inode names the process for good, so a
    // reused pid is never taken for the process that had it before. Older kernels: ignored,
    // and the process's start time is read from /proc for every message instead.
    ::setsockopt(fd, SOL_SOCKET, kSoPassPidfd, &on, sizeof on);
    // ... and the kernel's time of sending (where the kernel passes it on to connections not
    // accepted yet; the receiver sets it on each accepted one too).
    ::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
  }
  if (::listen(fd, SOMAXCONN) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return make_error(fmt::format("cannot listen on {}: {}", path, std::strerror(e)));
  }
  return fd;
}

}  // namespace shaudit::daemon
