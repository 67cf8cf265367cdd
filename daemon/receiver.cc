#include "receiver.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "shaudit/record.h"

namespace shaudit::daemon {
namespace {

constexpr size_t kNoCredentials = 8;
constexpr size_t kFdPassed = 9;
constexpr int kMessagesPerTurn = 64;  // fairness: one busy client cannot starve others
constexpr size_t kMaxTrackedProcs = 65536;

std::string read_proc_value(pid_t pid, const char* name) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/%s", static_cast<int>(pid), name);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buf[32];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return {};
  return std::string(buf, static_cast<size_t>(n));
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

Result<int> make_socket(const std::string& path, int type, unsigned mode, const std::string& group) {
  // Parent directory (0755), then replace a stale socket, refuse a live one.
  auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    std::string dir = path.substr(0, slash);
    for (size_t i = 1; i <= dir.size(); ++i) {
      if (i == dir.size() || dir[i] == '/') {
        std::string part = dir.substr(0, i);
        if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST)
          return make_error(fmt::format("cannot create directory {}: {}", part, std::strerror(errno)));
      }
    }
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return make_error(fmt::format("socket path {} is too long", path));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return make_error(fmt::format("{} exists and is not a socket; remove it or choose another path", path));
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
  if (type == SOCK_SEQPACKET) ::setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
  if (::listen(fd, SOMAXCONN) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return make_error(fmt::format("cannot listen on {}: {}", path, std::strerror(e)));
  }
  return fd;
}

}  // namespace

const std::string& ReportHandler::user_name(uid_t uid) {
  auto it = users_.find(uid);
  if (it != users_.end()) return it->second;
  struct passwd pw, *res = nullptr;
  char buf[4096];
  std::string name;
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res) name = res->pw_name;
  if (users_.size() > 4096) users_.clear();
  return users_.emplace(uid, std::move(name)).first->second;
}

ProcInfo& ReportHandler::proc(pid_t pid, uint64_t seq) {
  auto it = procs_.find(pid);
  if (it == procs_.end() || seq == 1) {
    // First report from this pid in this run (or a new process reusing the pid):
    // it sets the baseline for gap detection.
    if (procs_.size() >= kMaxTrackedProcs) procs_.clear();
    ProcInfo p;
    p.last_seq = seq - 1;
    auto trim = [](std::string s) {
      while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
      return s;
    };
    p.loginuid = trim(read_proc_value(pid, "loginuid"));
    p.sessionid = trim(read_proc_value(pid, "sessionid"));
    it = procs_.insert_or_assign(pid, std::move(p)).first;
  }
  return it->second;
}

bool ReportHandler::handle(const wire::Message& m, pid_t pid, uid_t uid, gid_t gid) {
  ProcInfo& p = proc(pid, m.report_seq);
  if (m.report_seq > p.last_seq + 1) {
    json::Object loss;
    loss["type"] = record::kLoss;
    loss["cause"] = "report_gap";
    loss["pid"] = static_cast<int64_t>(pid);
    loss["uid"] = static_cast<int64_t>(uid);
    loss["first_missing"] = static_cast<int64_t>(p.last_seq + 1);
    loss["last_missing"] = static_cast<int64_t>(m.report_seq - 1);
    loss["missing"] = static_cast<int64_t>(m.report_seq - 1 - p.last_seq);
    stats_.loss_records.fetch_add(1, std::memory_order_relaxed);
    stats_.reports_lost.fetch_add(m.report_seq - 1 - p.last_seq, std::memory_order_relaxed);
    if (!q_.push(std::move(loss))) return false;
  }
  bool in_order = m.report_seq > p.last_seq;
  if (in_order) p.last_seq = m.report_seq;

  if (m.type == SHAUDIT_MSG_HELLO) {
    stats_.hellos.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  json::Object r;
  r["pid"] = static_cast<int64_t>(pid);
  r["uid"] = static_cast<int64_t>(uid);
  r["gid"] = static_cast<int64_t>(gid);
  const std::string& user = user_name(uid);
  if (!user.empty()) r["user"] = user;
  r["report_seq"] = static_cast<int64_t>(m.report_seq);
  if (!in_order) r["report_out_of_order"] = true;
  if (!p.loginuid.empty() && p.loginuid != "4294967295") r["loginuid"] = p.loginuid;
  if (!p.sessionid.empty() && p.sessionid != "4294967295") r["audit_session"] = p.sessionid;
  if (auto f = m.find(SHAUDIT_F_CWD)) record::set_bytes(r, "cwd", f->data);
  if (auto f = m.find(SHAUDIT_F_TTY)) record::set_bytes(r, "tty", f->data);
  if (auto f = m.find(SHAUDIT_F_SESSION)) record::set_bytes(r, "claimed_session", f->data);
  if (m.type == SHAUDIT_MSG_LINE) {
    r["type"] = record::kCommand;
    const auto* text = m.find(SHAUDIT_F_TEXT);
    record::set_bytes(r, "text", text->data);
    if (text->flags & SHAUDIT_FIELD_TRUNCATED) r["truncated"] = true;
    const auto* shell = m.find(SHAUDIT_F_SHELL);
    record::set_bytes(r, "shell", shell ? shell->data : std::string_view());
  } else {  // SHAUDIT_MSG_EXEC
    r["type"] = record::kExec;
    r["source"] = "report";
    if (auto f = m.find(SHAUDIT_F_PATH)) record::set_bytes(r, "path", f->data);
    record::set_argv(r, m.all(SHAUDIT_F_ARGV));
    bool cut = (m.flags & SHAUDIT_MSG_ARGV_TRUNCATED) != 0;
    for (const auto& f : m.fields)
      if (f.tag == SHAUDIT_F_ARGV && (f.flags & SHAUDIT_FIELD_TRUNCATED)) cut = true;
    if (cut) r["truncated"] = true;
  }
  // Counted once queued: a push refused at shutdown is not an accepted record.
  if (!q_.push(std::move(r))) return false;
  stats_.accepted.fetch_add(1, std::memory_order_relaxed);
  return true;
}

Receiver::Receiver(const Config& cfg, RecordQueue& q, Stats& stats,
                   std::function<std::string()> stats_json)
    : cfg_(cfg), q_(q), stats_(stats), stats_json_(std::move(stats_json)), handler_(q, stats) {
  buf_ = new char[SHAUDIT_WIRE_MAX_MESSAGE];
}

Receiver::~Receiver() {
  for (auto& [fd, _] : clients_) ::close(fd);
  for (int fd : {epfd_, listen_fd_, control_fd_, wake_fd_, reserve_fd_})
    if (fd >= 0) ::close(fd);
  delete[] buf_;
}

Result<void> Receiver::refuse_if_running() const {
  for (auto [path, type] : {std::pair{cfg_.socket, SOCK_SEQPACKET}, std::pair{cfg_.control_socket, SOCK_STREAM}})
    if (socket_is_live(path, type))
      return make_error(fmt::format("another shauditd is listening on {}", path));
  return {};
}

Result<void> Receiver::listen() {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epfd_ < 0 || wake_fd_ < 0) return make_error(fmt::format("epoll/eventfd: {}", std::strerror(errno)));
  reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  auto c = make_socket(cfg_.control_socket, SOCK_STREAM, 0600, "");
  if (!c) return c.error();
  control_fd_ = *c;
  bound_control_ = true;
  auto s = make_socket(cfg_.socket, SOCK_SEQPACKET, cfg_.socket_mode, cfg_.socket_group);
  if (!s) return s.error();
  listen_fd_ = *s;
  bound_socket_ = true;
  for (int fd : {listen_fd_, control_fd_, wake_fd_}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  }
  return {};
}

void Receiver::remove_sockets() {
  if (bound_socket_) ::unlink(cfg_.socket.c_str());
  if (bound_control_) ::unlink(cfg_.control_socket.c_str());
  bound_socket_ = bound_control_ = false;
}

void Receiver::stop() {
  uint64_t one = 1;
  ssize_t n = ::write(wake_fd_, &one, sizeof one);
  (void)n;
}

void Receiver::run() {
  std::vector<epoll_event> events(256);
  while (!stopping_) {
    int n = ::epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      stats_.set_error(fmt::format("epoll_wait: {}", std::strerror(errno)));
      break;
    }
    for (int i = 0; i < n && !stopping_; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_fd_) {
        stopping_ = true;
      } else if (fd == listen_fd_) {
        accept_clients();
      } else if (fd == control_fd_) {
        serve_control();
      } else {
        read_client(fd);
      }
    }
  }
}

void Receiver::accept_clients() {
  while (true) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if ((errno == EMFILE || errno == ENFILE) && reserve_fd_ >= 0) {
        // Out of descriptors: the pending connection would keep the listening socket
        // readable forever (a busy loop). Take it off the backlog with the reserve
        // descriptor and close it: refused, and counted once.
        ::close(reserve_fd_);
        int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          ::close(c);
          stats_.connections_refused.fetch_add(1, std::memory_order_relaxed);
        }
        reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (c >= 0) continue;
      }
      return;
    }
    if (clients_.size() >= cfg_.max_clients) {
      ::close(fd);
      stats_.connections_refused.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ::close(fd);
      continue;
    }
    clients_[fd] = true;
    stats_.connections_total.fetch_add(1, std::memory_order_relaxed);
    stats_.connections_open.store(clients_.size(), std::memory_order_relaxed);
  }
}

void Receiver::close_client(int fd) {
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
  clients_.erase(fd);
  stats_.connections_open.store(clients_.size(), std::memory_order_relaxed);
}

void Receiver::read_client(int fd) {
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * 32)];
  for (int k = 0; k < kMessagesPerTurn; ++k) {
    iovec iov{buf_, SHAUDIT_WIRE_MAX_MESSAGE};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    ssize_t n = ::recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) close_client(fd);
      return;
    }
    // End of stream carries no control data; a zero-length message still carries the
    // sender's credentials and is rejected (as short) below instead of ending the connection.
    if (n == 0 && mh.msg_controllen == 0) {  // peer closed
      close_client(fd);
      return;
    }
    const ucred* cred = nullptr;
    bool fds = false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level != SOL_SOCKET) continue;
      if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(ucred))) {
        cred = reinterpret_cast<const ucred*>(CMSG_DATA(c));
      } else if (c->cmsg_type == SCM_RIGHTS) {
        // Never keep descriptors a reporter tries to hand us.
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
          int passed;
          std::memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
          ::close(passed);
        }
        fds = true;
      }
    }
    if (fds || (mh.msg_flags & MSG_CTRUNC)) {
      stats_.rejected[kFdPassed].fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (mh.msg_flags & MSG_TRUNC) {
      stats_.rejected[static_cast<size_t>(wire::Reject::kOversize)].fetch_add(1);
      continue;
    }
    if (!cred || cred->pid <= 0) {
      stats_.rejected[kNoCredentials].fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    wire::Message m;
    wire::DecodeError err;
    if (!wire::decode(std::string_view(buf_, static_cast<size_t>(n)), m, err)) {
      stats_.rejected[static_cast<size_t>(err.reason)].fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (!handler_.handle(m, cred->pid, cred->uid, cred->gid)) {
      stopping_ = true;
      return;
    }
  }
}

void Receiver::serve_control() {
  int fd = ::accept4(control_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  bool used_reserve = false;
  if (fd < 0 && (errno == EMFILE || errno == ENFILE) && reserve_fd_ >= 0) {
    // Out of descriptors (many reporters): answer the operator with the reserve one.
    ::close(reserve_fd_);
    reserve_fd_ = -1;
    used_reserve = true;
    fd = ::accept4(control_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  }
  struct Restore {
    Receiver* r;
    bool on;
    ~Restore() {
      if (on && r->reserve_fd_ < 0) r->reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
  };
  Restore restore{this, used_reserve};
  if (fd < 0) return;
  ucred peer{};
  socklen_t len = sizeof peer;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0 || peer.uid != 0) {
    const char msg[] = "{\"error\":\"the control socket answers root only\"}\n";
    ssize_t w = ::send(fd, msg, sizeof msg - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
    ::close(fd);
    return;
  }
  timeval tv{0, 200000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  char req[64];
  ssize_t n = ::recv(fd, req, sizeof req - 1, 0);
  std::string reply;
  if (n > 0 && std::string_view(req, static_cast<size_t>(n)).substr(0, 5) == "stats")
    reply = stats_json_() + "\n";
  else
    reply = "{\"error\":\"unknown request (known: stats)\"}\n";
  size_t off = 0;
  while (off < reply.size()) {
    ssize_t w = ::send(fd, reply.data() + off, reply.size() - off, MSG_NOSIGNAL);
    if (w <= 0) break;
    off += static_cast<size_t>(w);
  }
  ::close(fd);
}

}  // namespace shaudit::daemon
