// SPDX-License-Identifier: Apache-2.0
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

#include "session_wire.h"

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
  const char* why = "";
  int r = session_request(fd, SHAUDIT_MSG_SESSION_OPEN, sid, sid_cap, 2000, &why);
  close(fd);
  if (r != 0) fprintf(stderr, "session_run: %s\n", why);
  return r;
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
