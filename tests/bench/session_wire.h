// SPDX-License-Identifier: Apache-2.0
/* Session requests as the PAM module makes them, for the benchmark helpers (session_run.c,
 * session_load.c): a SESSION_OPEN as root (service "bench"), or a SESSION_CLOSE, and the
 * daemon's SESSION_REPLY. Header-only C; not a test. */
#ifndef SHAUDIT_BENCH_SESSION_WIRE_H
#define SHAUDIT_BENCH_SESSION_WIRE_H

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "shaudit/wire.h"
#include "shaudit/wire_encode.h"

static uint64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sends a session request on fd (SHAUDIT_MSG_SESSION_OPEN, or SHAUDIT_MSG_SESSION_CLOSE of sid)
 * and waits up to timeout_ms for the reply; with OPEN the session id goes into sid (cap bytes).
 * 0, or -1 with *why saying what went wrong. */
static int session_request(int fd, int type, char* sid, size_t cap, int timeout_ms,
                           const char** why) {
  static char reason[300];
  char buf[1024];
  struct shaudit_enc e;
  shaudit_enc_begin(&e, buf, sizeof buf, (uint16_t)type);
  if (type == SHAUDIT_MSG_SESSION_OPEN) {
    shaudit_enc_str(&e, SHAUDIT_F_USER, "root");
    shaudit_enc_u64(&e, SHAUDIT_F_UID, 0);
    shaudit_enc_str(&e, SHAUDIT_F_SERVICE, "bench");
    shaudit_enc_add(&e, SHAUDIT_F_TTY, "", 0);
  } else {
    shaudit_enc_str(&e, SHAUDIT_F_SESSION, sid);
  }
  size_t n = shaudit_enc_finish(&e, 1, realtime_ns());
  if (send(fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n) return *why = "send failed", -1;
  struct pollfd p = {fd, POLLIN, 0};
  int r;
  while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {}
  if (r <= 0) return *why = "no SESSION_REPLY in time", -1;
  ssize_t got = recv(fd, buf, sizeof buf, 0);
  struct shaudit_wire_header h;
  if (got < (ssize_t)sizeof h) return *why = "short reply", -1;
  memcpy(&h, buf, sizeof h);
  if (h.magic != SHAUDIT_WIRE_MAGIC || h.type != SHAUDIT_MSG_SESSION_REPLY)
    return *why = "unexpected reply type", -1;
  size_t off = sizeof h, end = h.length < (size_t)got ? h.length : (size_t)got;
  while (off + sizeof(struct shaudit_wire_field) <= end) {
    struct shaudit_wire_field f;
    memcpy(&f, buf + off, sizeof f);
    off += sizeof f;
    if (f.length > end - off) break;
    if (f.tag == SHAUDIT_F_ERROR) {
      snprintf(reason, sizeof reason, "refused: %.*s", (int)f.length, buf + off);
      return *why = reason, -1;
    }
    if (f.tag == SHAUDIT_F_SESSION) {
      if (type == SHAUDIT_MSG_SESSION_OPEN) {
        size_t k = f.length < cap - 1 ? f.length : cap - 1;
        memcpy(sid, buf + off, k);
        sid[k] = 0;
      }
      return 0;
    }
    off += f.length;
  }
  return *why = "reply without a session id", -1;
}

#endif
