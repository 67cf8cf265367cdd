// SPDX-License-Identifier: Apache-2.0
#include "container_sockets.h"

#include <errno.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/openat2.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "containers.h"

namespace shaudit::daemon {

namespace {

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int release() {
    int f = fd;
    fd = -1;
    return f;
  }
};

int openat2_in_root(int root, const char* path, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, root, path, &how, sizeof how));
}

// Field 22 of /proc/PID/stat: the start time in clock ticks since boot (0 when gone).
uint64_t start_time(pid_t pid) {
  std::string s = read_file_head("/proc/" + std::to_string(pid) + "/stat");
  size_t p = s.rfind(')');
  if (p == std::string::npos) return 0;
  std::istringstream rest(s.substr(p + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i)
    if (i == 22) return std::strtoull(field.c_str(), nullptr, 10);
  return 0;
}

std::string err(std::string_view what, int e) {
  return fmt::format("{}: {}", what, std::strerror(e));
}

}  // namespace

ContainerSockets::~ContainerSockets() {
  for (auto& [fd, _] : by_fd_) ::close(fd);
}

Result<int> ContainerSockets::bind_inside(pid_t pid, uint64_t start, const std::string& name) {
  Fd root(
      ::open(("/proc/" + std::to_string(pid) + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (root.fd < 0) return make_error(err("cannot open its root", errno));
  // The pid must still be the container's process (not a reused pid), and its root must not
  // be ours (a host process).
  if (start != 0 && start_time(pid) != start)
    return make_error("its init process is gone (pid reused)");
  struct stat mine, theirs;
  if (::stat("/", &mine) != 0 || ::fstat(root.fd, &theirs) != 0)
    return make_error(err("stat", errno));
  if (mine.st_dev == theirs.st_dev && mine.st_ino == theirs.st_ino)
    return make_error("it shares shauditd's root");
  Fd run(openat2_in_root(root.fd, "run", O_PATH | O_DIRECTORY));
  if (run.fd < 0) return make_error(err("no /run", errno));
  if (::mkdirat(run.fd, "shaudit", 0755) != 0 && errno != EEXIST)
    return make_error(err("cannot create /run/shaudit", errno));
  Fd dir(openat2_in_root(root.fd, "run/shaudit", O_PATH | O_DIRECTORY));
  if (dir.fd < 0) return make_error(err("cannot open /run/shaudit", errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = fmt::format("/proc/self/fd/{}/{}", dir.fd, name);
  if (path.size() >= sizeof addr.sun_path) return make_error("socket path too long");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  // A live socket there is served already (the host's directory bound in, shauditd's own
  // container, another daemon): nothing to do. A stale one goes; anything else stays.
  struct stat st;
  if (::fstatat(dir.fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return make_error(fmt::format("/run/shaudit/{} exists and is not a socket", name));
    Fd probe(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (probe.fd >= 0 && ::connect(probe.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
      return -1;
    ::unlinkat(dir.fd, name.c_str(), 0);
  }
  Fd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (s.fd < 0) return make_error(err("socket", errno));
  if (::bind(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return make_error(err("cannot bind /run/shaudit/" + name, errno));
  // Every user in the container may report about itself (identity comes from the kernel):
  // mode 0666, set on the node itself (opened without following a link put there since).
  Fd node(::openat(dir.fd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  struct stat ns;
  if (node.fd < 0 || ::fstat(node.fd, &ns) != 0 || !S_ISSOCK(ns.st_mode) ||
      ::chmod(fmt::format("/proc/self/fd/{}", node.fd).c_str(), 0666) != 0)
    return make_error("its socket was replaced while being set up");
  if (::listen(s.fd, 128) != 0) return make_error(err("listen", errno));
  return s.release();
}

std::optional<std::pair<uint64_t, uint64_t>> ContainerSockets::interposer_copy(
    pid_t pid, const std::string& genuine) {
  if (genuine.empty()) return std::nullopt;
  Fd root(
      ::open(("/proc/" + std::to_string(pid) + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (root.fd < 0) return std::nullopt;
  Fd f(openat2_in_root(root.fd, "usr/lib/shaudit/libshaudit_preload.so", O_RDONLY | O_NOFOLLOW));
  struct stat st;
  if (f.fd < 0 || ::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<size_t>(st.st_size) != genuine.size())
    return std::nullopt;
  std::string bytes(genuine.size(), '\0');
  size_t got = 0;
  while (got < bytes.size()) {
    ssize_t n = ::pread(f.fd, bytes.data() + got, bytes.size() - got, static_cast<off_t>(got));
    if (n <= 0) return std::nullopt;
    got += static_cast<size_t>(n);
  }
  if (bytes != genuine) return std::nullopt;
  return std::pair<uint64_t, uint64_t>{st.st_dev, st.st_ino};
}

void ContainerSockets::scan(
    const std::function<void(int, const RunningContainer&)>& on_listen,
    const std::function<void(const json::Object&, const std::string&)>& on_unreachable,
    const std::function<void(int)>& on_closed,
    const std::function<void(const RunningContainer&)>& on_new) {
  std::set<std::string> live;
  std::vector<const RunningContainer*> fresh;
  const std::vector<RunningContainer> running = running_containers(state_roots_);
  for (const RunningContainer& f : running) {
    if (f.start != 0 && start_time(f.pid) != f.start) continue;  // stopped (state not yet gone)
    live.insert(f.id);
    if (seen_.insert(f.id).second) fresh.push_back(&f);
    if (by_id_.count(f.id) || f.prepared) continue;
    auto fd = bind_inside(f.pid, f.start, socket_name_);
    if (fd && *fd < 0) {
      by_id_[f.id] = -1;  // served already
    } else if (fd) {
      by_id_[f.id] = *fd;
      by_fd_[*fd] = f.id;
      on_listen(*fd, f);
    } else {
      by_id_[f.id] = -1;
      on_unreachable(f.container, fd.message());
    }
  }
  for (auto it = by_id_.begin(); it != by_id_.end();) {
    if (live.count(it->first)) {
      ++it;
      continue;
    }
    if (it->second >= 0) {
      on_closed(it->second);
      ::close(it->second);
      by_fd_.erase(it->second);
    }
    it = by_id_.erase(it);
  }
  for (auto it = seen_.begin(); it != seen_.end();)
    it = live.count(*it) ? std::next(it) : seen_.erase(it);
  // After the socket is in place: what it reaches is settled.
  if (on_new)
    for (const RunningContainer* f : fresh) on_new(*f);
}

}  // namespace shaudit::daemon
