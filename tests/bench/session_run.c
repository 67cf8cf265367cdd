/* Benchmark helper (not a test; nothing runs it from ctest): run a command as the entry of an
 * audited session, as a PAM stack would make it.
 *
 *   session_run SOCKET -- CMD [ARG...]
 *   session_run - -- CMD [ARG...]
 *
 * Connects to shauditd's reporter SOCKET (SOCK_SEQPACKET), sends SHAUDIT_MSG_SESSION_OPEN
 * (USER "root", UID 0, SERVICE "bench", TTY ""), waits at most 2 s for the SESSION_REPLY,
 * closes the socket and execvp's CMD: the same process (same pid) then is the session's entry,
 * which shauditd's kernel side follows with all its descendants; the session ends when it exits.
 * With SOCKET "-" it only execs CMD (the same wrapper cost for configurations without a
 * session). Needs root for a session (shauditd refuses SESSION_OPEN from other uids).
 *
 * Exit status: 127 when CMD cannot be exec'd; 126 when the session could not be opened (no
 * reply, an ERROR reply, no socket); otherwise CMD's. SESSION_RUN_VERBOSE=1 prints the session id
 * and the entry pid on stderr.
 *
 * Built on the fly by the benchmark scripts:  cc -O2 -I<repo>/libshaudit/include session_run.c */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "shaudit/wire.h"
#include "shaudit/wire_encode.h"

static uint64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Returns 0 with the session id in sid, or -1 with a reason on stderr. */
static int open_session(const char* path, char* sid, size_t sid_cap) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return perror("session_run: socket"), -1;
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa.sun_path) {
    fprintf(stderr, "session_run: socket path too long\n");
    close(fd);
    return -1;
  }
  strcpy(sa.sun_path, path);
  if (connect(fd, (struct sockaddr*)&sa, sizeof sa) != 0) {
    fprintf(stderr, "session_run: connect %s: %s\n", path, strerror(errno));
    close(fd);
    return -1;
  }
  char buf[1024];
  struct shaudit_enc e;
  shaudit_enc_begin(&e, buf, sizeof buf, SHAUDIT_MSG_SESSION_OPEN);
  shaudit_enc_str(&e, SHAUDIT_F_USER, "root");
  shaudit_enc_u64(&e, SHAUDIT_F_UID, 0);
  shaudit_enc_str(&e, SHAUDIT_F_SERVICE, "bench");
  shaudit_enc_add(&e, SHAUDIT_F_TTY, "", 0);
  size_t n = shaudit_enc_finish(&e, 1, realtime_ns());
  if (send(fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n) {
    fprintf(stderr, "session_run: send: %s\n", strerror(errno));
    close(fd);
    return -1;
  }
  struct pollfd p = {fd, POLLIN, 0};
  int r;
  while ((r = poll(&p, 1, 2000)) < 0 && errno == EINTR) {}
  if (r <= 0) {
    fprintf(stderr, "session_run: no SESSION_REPLY within 2 s\n");
    close(fd);
    return -1;
  }
  ssize_t got = recv(fd, buf, sizeof buf, 0);
  close(fd);
  struct shaudit_wire_header h;
  if (got < (ssize_t)sizeof h) {
    fprintf(stderr, "session_run: short reply (%zd)\n", got);
    return -1;
  }
  memcpy(&h, buf, sizeof h);
  if (h.magic != SHAUDIT_WIRE_MAGIC || h.type != SHAUDIT_MSG_SESSION_REPLY) {
    fprintf(stderr, "session_run: unexpected reply type %u\n", h.type);
    return -1;
  }
  size_t off = sizeof h, end = h.length < (size_t)got ? h.length : (size_t)got;
  while (off + sizeof(struct shaudit_wire_field) <= end) {
    struct shaudit_wire_field f;
    memcpy(&f, buf + off, sizeof f);
    off += sizeof f;
    if (f.length > end - off) break;
    if (f.tag == SHAUDIT_F_ERROR) {
      fprintf(stderr, "session_run: refused: %.*s\n", (int)f.length, buf + off);
      return -1;
    }
    if (f.tag == SHAUDIT_F_SESSION) {
      size_t k = f.length < sid_cap - 1 ? f.length : sid_cap - 1;
      memcpy(sid, buf + off, k);
      sid[k] = 0;
      return 0;
    }
    off += f.length;
  }
  fprintf(stderr, "session_run: reply without a session id\n");
  return -1;
}

int main(int argc, char** argv) {
  if (argc < 4 || strcmp(argv[2], "--") != 0) {
    fprintf(stderr, "usage: session_run SOCKET|- -- CMD [ARG...]\n");
    return 2;
  }
  if (strcmp(argv[1], "-") != 0) {
    char sid[128];
    if (open_session(argv[1], sid, sizeof sid) != 0) return 126;
    const char* v = getenv("SESSION_RUN_VERBOSE");
    if (v && *v == '1') fprintf(stderr, "session_run: session %s, entry pid %d\n", sid, (int)getpid());
  }
  execvp(argv[3], argv + 3);
  fprintf(stderr, "session_run: %s: %s\n", argv[3], strerror(errno));
  return 127;
}
