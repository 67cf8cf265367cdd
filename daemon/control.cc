// SPDX-License-Identifier: Apache-2.0
#include "control.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sockets.h"

namespace shaudit::daemon {

ControlServer::ControlServer(std::string path, std::function<std::string()> stats_json)
    : path_(std::move(path)), stats_json_(std::move(stats_json)) {}

ControlServer::~ControlServer() {
  for (int fd : {fd_, wake_fd_, reserve_fd_})
    if (fd >= 0) ::close(fd);
}

Result<void> ControlServer::listen() {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return make_error(fmt::format("eventfd: {}", std::strerror(errno)));
  reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  auto c = make_socket(path_, SOCK_STREAM, 0600, "");
  if (!c) return c.error();
  fd_ = *c;
  bound_ = true;
  return {};
}

void ControlServer::remove_socket() {
  if (bound_) ::unlink(path_.c_str());
  bound_ = false;
}

void ControlServer::stop() {
  uint64_t one = 1;
  ssize_t n = ::write(wake_fd_, &one, sizeof one);
  (void)n;
}

void ControlServer::run() {
  while (true) {
    pollfd p[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = ::poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (p[1].revents & POLLIN)) return;
    if (p[0].revents & POLLIN) serve_one();
  }
}

void ControlServer::serve_one() {
  int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0 && (errno == EMFILE || errno == ENFILE) && reserve_fd_ >= 0) {
    // Out of descriptors (many reporters): answer the operator with the reserve one.
    ::close(reserve_fd_);
    reserve_fd_ = -1;
    fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  }
  if (fd < 0) {
    if (reserve_fd_ < 0) reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    return;
  }
  ucred peer{};
  socklen_t len = sizeof peer;
  std::string reply;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0 || peer.uid != 0) {
    reply = "{\"error\":\"the control socket answers root only\"}\n";
  } else {
    timeval tv{0, 200000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[64];
    ssize_t n = ::recv(fd, req, sizeof req - 1, 0);
    if (n > 0 && std::string_view(req, static_cast<size_t>(n)).substr(0, 5) == "stats")
      reply = stats_json_() + "\n";
    else
      reply = "{\"error\":\"unknown request (known: stats)\"}\n";
  }
  timeval tv{0, 200000};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  size_t off = 0;
  while (off < reply.size()) {
    ssize_t w = ::send(fd, reply.data() + off, reply.size() - off, MSG_NOSIGNAL);
    if (w <= 0) break;
    off += static_cast<size_t>(w);
  }
  if (reserve_fd_ < 0 && ::dup3(wake_fd_, fd, O_CLOEXEC) == fd) {
    // The reserve was used: keep this descriptor number as the new one, swapped in place (the
    // connection is closed by the same call), so no other thread can take the free slot
    // between a close and an open and leave the next operator unanswered.
    reserve_fd_ = fd;
    return;
  }
  ::close(fd);
  if (reserve_fd_ < 0) reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

}  // namespace shaudit::daemon
