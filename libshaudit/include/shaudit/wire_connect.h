// SPDX-License-Identifier: Apache-2.0
/* The one routine that connects a reporter (the client library, the interposer, the PAM
 * module) to shauditd's socket: a close-on-exec SOCK_SEQPACKET Unix socket. libc only, no
 * allocation; returns the descriptor or a negative errno value and leaves errno as it was. */
#ifndef SHAUDIT_WIRE_CONNECT_H
#define SHAUDIT_WIRE_CONNECT_H

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define SHAUDIT_CONNECT_NONBLOCK 0x1 /* the socket is non-blocking (the interposer) */

/* timeout_ms > 0 bounds each send and receive on the socket (SO_SNDTIMEO, SO_RCVTIMEO). */
static inline int shaudit_wire_connect(const char* path, int flags, int timeout_ms) {
  int saved = errno;
  struct sockaddr_un a;
  size_t n = strlen(path);
  if (n >= sizeof a.sun_path) return -ENAMETOOLONG;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  memcpy(a.sun_path, path, n + 1);
  int type =
      SOCK_SEQPACKET | SOCK_CLOEXEC | ((flags & SHAUDIT_CONNECT_NONBLOCK) ? SOCK_NONBLOCK : 0);
  int fd = socket(AF_UNIX, type, 0);
  if (fd < 0) {
    int e = errno;
    errno = saved;
    return -e;
  }
  if (timeout_ms > 0) {
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  if (connect(fd, (struct sockaddr*)&a, sizeof a) != 0) {
    int e = errno;
    close(fd);
    errno = saved;
    return -e;
  }
  errno = saved;
  return fd;
}

#endif /* SHAUDIT_WIRE_CONNECT_H */
