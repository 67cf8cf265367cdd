/* SPDX-License-Identifier: Apache-2.0 */
/* libshaudit, the client library (shaudit.h): C and libc only, on the one C wire encoder
 * (shaudit/wire_encode.h) the interposer and the PAM module use. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "shaudit/shaudit.h"
#include "shaudit/wire.h"
#include "shaudit/wire_connect.h"
#include "shaudit/wire_encode.h"

#define SHAUDIT_EXPORT __attribute__((visibility("default")))
#define OPEN_COMMANDS 16    /* begun and not ended yet, per client (nested or piped commands) */
#define BACKLOG (64 * 1024) /* reports held while shauditd cannot take them */

struct shaudit_client {
  pthread_mutex_t mu; /* the socket, the counters and the open commands */
  char path[sizeof(((struct sockaddr_un*)0)->sun_path)];
  int fd;
  int timeout_ms;
  pid_t owner;  /* the process the counters belong to (a forked child starts its own) */
  uint64_t seq; /* reports sent by this process */
  int64_t commands;
  struct {
    int64_t no;
    int64_t begin_ns; /* CLOCK_MONOTONIC */
  } open[OPEN_COMMANDS];
  size_t backlog_len;
  char backlog[BACKLOG]; /* messages, each after its size_t length, oldest first */
};

static int64_t clock_of(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Called with mu held: a forked child numbers its reports and commands from 1. */
static void adopt(shaudit_client* c) {
  pid_t me = getpid();
  if (me == c->owner) return;
  c->owner = me;
  c->seq = 0;
  c->commands = 0;
  memset(c->open, 0, sizeof c->open);
  c->backlog_len = 0; /* the parent's reports: its to send, not this process's */
}

/* Called with mu held. Sends one message, connecting (once more after a broken connection:
 * shauditd restarted) as needed. 0: sent; else a negative errno value, nothing sent. */
static int send_one(shaudit_client* c, const char* buf, size_t len) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (c->fd < 0) {
      int fd = shaudit_wire_connect(c->path, 0, 0);
      if (fd < 0) return fd;
      c->fd = fd;
    }
    for (;;) {
      ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n == (ssize_t)len) return 0;
      if (n >= 0) return -EMSGSIZE;
      if (errno == EINTR) continue;
      if (errno == EAGAIN && c->timeout_ms != 0) {
        struct pollfd p = {c->fd, POLLOUT, 0};
        int r = poll(&p, 1, c->timeout_ms < 0 ? -1 : c->timeout_ms);
        if (r > 0 || (r < 0 && errno == EINTR)) continue;
        return -EAGAIN;
      }
      break;
    }
    int err = errno;
    if (err != EPIPE && err != ECONNRESET && err != ENOTCONN && err != ECONNREFUSED) return -err;
    close(c->fd); /* shauditd went away: connect again, once */
    c->fd = -1;
  }
  return -ECONNRESET;
}

/* Called with mu held. Sends what waits in the backlog, oldest first; 0 when it is empty. */
static int flush_backlog(shaudit_client* c) {
  size_t at = 0;
  int rc = 0;
  while (at < c->backlog_len) {
    size_t len;
    memcpy(&len, c->backlog + at, sizeof len);
    rc = send_one(c, c->backlog + at + sizeof len, len);
    if (rc != 0 && rc != -EMSGSIZE) break; /* (one too big for the socket: skipped, a gap) */
    at += sizeof len + len;
    rc = 0;
  }
  memmove(c->backlog, c->backlog + at, c->backlog_len - at);
  c->backlog_len -= at;
  return rc;
}

/* Called with mu held, after adopt(). Numbers and sends one message after what waits; one that
 * cannot go now waits in the backlog (BACKLOG bytes) for the next report, or for close. */
static int send_locked(shaudit_client* c, struct shaudit_enc* e) {
  size_t len = shaudit_enc_finish(e, ++c->seq, (uint64_t)clock_of(CLOCK_REALTIME));
  int rc = flush_backlog(c);
  if (rc == 0) rc = send_one(c, e->buf, len);
  if (rc == 0 || rc == -EMSGSIZE || rc == -ENAMETOOLONG) return rc;
  if (c->backlog_len + sizeof len + len > BACKLOG) return -ENOBUFS; /* shauditd sees the gap */
  memcpy(c->backlog + c->backlog_len, &len, sizeof len);
  memcpy(c->backlog + c->backlog_len + sizeof len, e->buf, len);
  c->backlog_len += sizeof len + len;
  return 0;
}

/* send_locked() for a message that needs nothing else under the lock. */
static int send_message(shaudit_client* c, struct shaudit_enc* e) {
  pthread_mutex_lock(&c->mu);
  adopt(c);
  int rc = send_locked(c, e);
  pthread_mutex_unlock(&c->mu);
  return rc;
}

/* A message buffer sized for what is added (at most SHAUDIT_WIRE_MAX_MESSAGE). */
static char* buffer_for(size_t payload, size_t* cap) {
  size_t need = payload + 512; /* header and field headers */
  if (need > SHAUDIT_WIRE_MAX_MESSAGE || need < payload) need = SHAUDIT_WIRE_MAX_MESSAGE;
  *cap = need;
  return malloc(need);
}

SHAUDIT_EXPORT shaudit_client* shaudit_client_create(const char* socket_path, unsigned flags) {
  int saved = errno;
  const char* p = socket_path;
  if (!p) p = secure_getenv("SHAUDIT_SOCKET");
  if (!p || !*p) p = SHAUDIT_DEFAULT_SOCKET;
  shaudit_client* c = calloc(1, sizeof *c);
  if (!c) return errno = ENOMEM, NULL;
  if (strlen(p) >= sizeof c->path) {
    free(c);
    return errno = ENAMETOOLONG, NULL;
  }
  memcpy(c->path, p, strlen(p) + 1);
  pthread_mutex_init(&c->mu, NULL);
  c->fd = -1;
  c->owner = getpid();
  if (!(flags & SHAUDIT_CLIENT_LAZY)) {
    int fd = shaudit_wire_connect(c->path, 0, 0);
    if (fd < 0) {
      pthread_mutex_destroy(&c->mu);
      free(c);
      return errno = -fd, NULL;
    }
    c->fd = fd;
  }
  errno = saved;
  return c;
}

SHAUDIT_EXPORT shaudit_client* shaudit_client_open(const char* socket_path) {
  return shaudit_client_create(socket_path, 0);
}

SHAUDIT_EXPORT void shaudit_client_set_timeout_ms(shaudit_client* c, int timeout_ms) {
  if (!c) return;
  pthread_mutex_lock(&c->mu);
  c->timeout_ms = timeout_ms;
  pthread_mutex_unlock(&c->mu);
}

/* Sends a line report; *command gets the command's number when asked for. */
static int report_line(shaudit_client* c, const char* shell, const char* text, size_t len,
                       int64_t* command) {
  if (!c || (!text && len)) return -EINVAL;
  int saved = errno;
  size_t cap;
  char* buf = buffer_for(len + (shell ? strlen(shell) : 0), &cap);
  if (!buf) return errno = saved, -ENOMEM;
  struct shaudit_enc e;
  shaudit_enc_begin(&e, buf, cap, SHAUDIT_MSG_LINE);
  shaudit_enc_str(&e, SHAUDIT_F_SHELL, shell ? shell : "");
  pthread_mutex_lock(&c->mu);
  adopt(c);
  if (command) {
    *command = ++c->commands;
    shaudit_enc_u64(&e, SHAUDIT_F_CMD_NO, (uint64_t)*command);
    int slot = 0;
    for (int i = 1; i < OPEN_COMMANDS; ++i) /* a free slot, else the oldest */
      if (c->open[i].no < c->open[slot].no) slot = i;
    c->open[slot].no = *command;
    c->open[slot].begin_ns = clock_of(CLOCK_MONOTONIC);
  }
  /* The text last: a line too long for one message is cut and flagged, never dropped. */
  shaudit_enc_add(&e, SHAUDIT_F_TEXT, text ? text : "", len);
  int rc = send_locked(c, &e);
  pthread_mutex_unlock(&c->mu);
  free(buf);
  errno = saved;
  return rc;
}

SHAUDIT_EXPORT int64_t shaudit_client_command_begin(shaudit_client* c, const char* shell,
                                                    const char* text, size_t len) {
  int64_t no = 0;
  int rc = report_line(c, shell, text, len, &no);
  if (rc == -EINVAL || rc == -ENOMEM) return rc;
  return no;
}

SHAUDIT_EXPORT int shaudit_client_command_end(shaudit_client* c, int64_t command, int status) {
  if (!c || command < 1) return -EINVAL;
  int saved = errno;
  char buf[256];
  struct shaudit_enc e;
  shaudit_enc_begin(&e, buf, sizeof buf, SHAUDIT_MSG_STATUS);
  pthread_mutex_lock(&c->mu);
  adopt(c);
  int64_t duration = 0;
  for (int i = 0; i < OPEN_COMMANDS; ++i)
    if (c->open[i].no == command) {
      duration = clock_of(CLOCK_MONOTONIC) - c->open[i].begin_ns;
      c->open[i].no = 0;
    }
  shaudit_enc_u64(&e, SHAUDIT_F_CMD_NO, (uint64_t)command);
  shaudit_enc_u64(&e, SHAUDIT_F_STATUS, (uint64_t)(int64_t)status);
  shaudit_enc_u64(&e, SHAUDIT_F_DURATION_NS, (uint64_t)(duration > 0 ? duration : 0));
  int rc = send_locked(c, &e);
  pthread_mutex_unlock(&c->mu);
  errno = saved;
  return rc;
}

SHAUDIT_EXPORT int shaudit_client_report_line(shaudit_client* c, const char* shell,
                                              const char* text, size_t len) {
  return report_line(c, shell, text, len, NULL);
}

SHAUDIT_EXPORT int shaudit_client_report_exec(shaudit_client* c, const char* path,
                                              const char* const argv[]) {
  if (!c || (!path && !argv)) return -EINVAL;
  int saved = errno;
  size_t payload = path ? strlen(path) : 0;
  for (size_t i = 0; argv && argv[i]; ++i) payload += strlen(argv[i]) + 16;
  size_t cap;
  char* buf = buffer_for(payload + PATH_MAX, &cap);
  if (!buf) return errno = saved, -ENOMEM;
  struct shaudit_enc e;
  shaudit_enc_begin(&e, buf, cap, SHAUDIT_MSG_EXEC);
  if (path) shaudit_enc_str(&e, SHAUDIT_F_PATH, path);
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof cwd)) shaudit_enc_str(&e, SHAUDIT_F_CWD, cwd);
  for (size_t i = 0; argv && argv[i]; ++i) shaudit_enc_str(&e, SHAUDIT_F_ARGV, argv[i]);
  int rc = send_message(c, &e);
  free(buf);
  errno = saved;
  return rc;
}

/* A hello: the executable, the session token from the environment, and for a session entry
 * the shell flags and fd 0's terminal. */
static int hello(shaudit_client* c, const char* shell) {
  if (!c) return -EINVAL;
  int saved = errno;
  char buf[2 * PATH_MAX + 512];
  struct shaudit_enc e;
  shaudit_enc_begin(&e, buf, sizeof buf, SHAUDIT_MSG_HELLO);
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe);
  if (n > 0) shaudit_enc_add(&e, SHAUDIT_F_EXE, exe, (size_t)n);
  const char* s = secure_getenv("SHAUDIT_SESSION");
  if (s && strlen(s) < 256) shaudit_enc_str(&e, SHAUDIT_F_SESSION, s);
  if (shell) {
    char tty[64];
    int interactive = isatty(0) && ttyname_r(0, tty, sizeof tty) == 0;
    shaudit_enc_str(&e, SHAUDIT_F_SHELL, shell);
    shaudit_enc_u64(&e, SHAUDIT_F_HELLO_FLAGS,
                    SHAUDIT_HELLO_SHELL | (interactive ? SHAUDIT_HELLO_INTERACTIVE : 0u));
    if (interactive) shaudit_enc_str(&e, SHAUDIT_F_TTY, tty);
  }
  int rc = send_message(c, &e);
  errno = saved;
  return rc;
}

SHAUDIT_EXPORT int shaudit_client_hello(shaudit_client* c) {
  return hello(c, NULL);
}

SHAUDIT_EXPORT int shaudit_client_session_entry(shaudit_client* c, const char* shell) {
  return hello(c, shell && *shell ? shell : "shell");
}

SHAUDIT_EXPORT void shaudit_client_close(shaudit_client* c) {
  if (!c) return;
  int saved = errno;
  pthread_mutex_lock(&c->mu);
  adopt(c);
  if (c->backlog_len) (void)flush_backlog(c); /* a last try; never waits */
  pthread_mutex_unlock(&c->mu);
  if (c->fd >= 0) close(c->fd);
  pthread_mutex_destroy(&c->mu);
  free(c);
  errno = saved;
}

SHAUDIT_EXPORT const char* shaudit_version(void) {
  return SHAUDIT_VERSION;
}

SHAUDIT_EXPORT int shaudit_api_version(void) {
  return SHAUDIT_API_VERSION;
}
