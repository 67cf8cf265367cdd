// SPDX-License-Identifier: Apache-2.0
#include "sd_notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace shaudit::daemon {

int sd_notify_state(std::string_view state) {
  const char* path = ::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return 0;
  size_t len = ::strlen(path);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // '@' names a socket in the abstract namespace (a leading NUL byte); otherwise a path.
  if ((path[0] != '/' && path[0] != '@') || len >= sizeof(addr.sun_path)) return -EINVAL;
  ::memcpy(addr.sun_path, path, len);
  if (path[0] == '@') addr.sun_path[0] = '\0';
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  socklen_t alen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  ssize_t n = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                       reinterpret_cast<const sockaddr*>(&addr), alen);
  int err = n < 0 ? errno : 0;
  ::close(fd);
  return -err;
}

}  // namespace shaudit::daemon
