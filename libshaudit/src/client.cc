#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "shaudit/shaudit.h"
#include "shaudit/wire_codec.h"

struct shaudit_client {
  std::string path;
  int fd = -1;
  int timeout_ms = 0;
  pid_t owner = 0;
  std::atomic<uint64_t> seq{0};
};

namespace {

int connect_socket(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return -ENAMETOOLONG;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    ::close(fd);
    return -e;
  }
  return fd;
}

uint64_t realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t next_seq(shaudit_client* c) {
  // A forked child numbers its own reports from 1: the daemon tracks numbers per process.
  pid_t me = ::getpid();
  if (me != c->owner) {
    c->owner = me;
    c->seq.store(0);
  }
  return c->seq.fetch_add(1) + 1;
}

int send_msg(shaudit_client* c, const std::string& msg) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (c->fd < 0) {
      int fd = connect_socket(c->path);
      if (fd < 0) return fd;
      c->fd = fd;
    }
    while (true) {
      ssize_t n = ::send(c->fd, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n == static_cast<ssize_t>(msg.size())) return 0;
      if (n >= 0) return -EMSGSIZE;
      if (errno == EINTR) continue;
      if (errno == EAGAIN && c->timeout_ms != 0) {
        pollfd p{c->fd, POLLOUT, 0};
        int r = ::poll(&p, 1, c->timeout_ms < 0 ? -1 : c->timeout_ms);
        if (r > 0) continue;
        if (r < 0 && errno == EINTR) continue;
        return -EAGAIN;
      }
      break;
    }
    int e = errno;
    if (e != EPIPE && e != ECONNRESET && e != ENOTCONN && e != ECONNREFUSED) return -e;
    ::close(c->fd);  // the daemon went away: reconnect once
    c->fd = -1;
  }
  return -ECONNRESET;
}

}  // namespace

extern "C" {

shaudit_client* shaudit_client_open(const char* socket_path) {
  const char* p = socket_path;
  if (!p) p = std::getenv("SHAUDIT_SOCKET");
  if (!p || !*p) p = SHAUDIT_DEFAULT_SOCKET;
  auto* c = new (std::nothrow) shaudit_client;
  if (!c) {
    errno = ENOMEM;
    return nullptr;
  }
  try {
    c->path = p;
  } catch (...) {
    delete c;
    errno = ENOMEM;
    return nullptr;
  }
  c->owner = ::getpid();
  int fd = connect_socket(c->path);
  if (fd < 0) {
    delete c;
    errno = -fd;
    return nullptr;
  }
  c->fd = fd;
  return c;
}

void shaudit_client_set_timeout_ms(shaudit_client* c, int timeout_ms) {
  if (c) c->timeout_ms = timeout_ms;
}

int shaudit_client_report_line(shaudit_client* c, const char* shell, const char* text, size_t len) {
  if (!c || (!text && len)) return -EINVAL;
  try {
    shaudit::wire::Builder b(SHAUDIT_MSG_LINE, next_seq(c), realtime_ns());
    b.add(SHAUDIT_F_SHELL, shell ? shell : "");
    b.add(SHAUDIT_F_TEXT, std::string_view(text ? text : "", len));
    return send_msg(c, b.finish());
  } catch (...) {
    return -ENOMEM;
  }
}

int shaudit_client_report_exec(shaudit_client* c, const char* path, const char* const argv[]) {
  if (!c || (!path && !argv)) return -EINVAL;
  try {
    shaudit::wire::Builder b(SHAUDIT_MSG_EXEC, next_seq(c), realtime_ns());
    if (path) b.add(SHAUDIT_F_PATH, path);
    char cwd[PATH_MAX];
    if (::getcwd(cwd, sizeof cwd)) b.add(SHAUDIT_F_CWD, cwd);
    for (size_t i = 0; argv && argv[i]; ++i) b.add(SHAUDIT_F_ARGV, argv[i]);
    return send_msg(c, b.finish());
  } catch (...) {
    return -ENOMEM;
  }
}

int shaudit_client_hello(shaudit_client* c) {
  if (!c) return -EINVAL;
  try {
    shaudit::wire::Builder b(SHAUDIT_MSG_HELLO, next_seq(c), realtime_ns());
    char exe[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe);
    if (n > 0) b.add(SHAUDIT_F_EXE, std::string_view(exe, static_cast<size_t>(n)));
    if (const char* s = std::getenv("SHAUDIT_SESSION")) b.add(SHAUDIT_F_SESSION, s);
    return send_msg(c, b.finish());
  } catch (...) {
    return -ENOMEM;
  }
}

void shaudit_client_close(shaudit_client* c) {
  if (!c) return;
  if (c->fd >= 0) ::close(c->fd);
  delete c;
}

const char* shaudit_version(void) { return SHAUDIT_VERSION; }

}  // extern "C"
