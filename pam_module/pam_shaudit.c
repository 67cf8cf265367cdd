// SPDX-License-Identifier: Apache-2.0
/* pam_shaudit.so: registers each PAM session with shauditd and puts the interposer into the
 * session's environment.
 *
 *   session required pam_shaudit.so [socket=PATH] [preload=PATH] [fail=open|closed]
 *                                   [timeout_ms=N] [noninteractive=audit|skip] [debug]
 *
 * open_session sends SESSION_OPEN (user, uid, service, tty, remote host) and receives the
 * session id; the daemon itself reads the opening process's loginuid and audit session id
 * from /proc and accepts the request only from a root peer. The module then sets
 * SHAUDIT_SESSION, SHAUDIT_SOCKET (with socket=) and LD_PRELOAD (with preload=) in the PAM
 * environment. close_session sends SESSION_CLOSE.
 *
 * noninteractive=skip (the pam-auth-update profile's setting, since common-session and
 * common-session-noninteractive serve cron, at and systemd --user too) leaves a session
 * alone, without contacting shauditd, when it has neither a terminal (PAM_TTY naming a
 * device or a display) nor a remote host: cron jobs and services are not audited sessions
 * and cost two pam_get_item calls. `ssh host cmd` (no pty, but a remote host) and
 * `sudo -i` on a terminal are still audited. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "shaudit/wire.h"
#include "shaudit/wire_connect.h"
#include "shaudit/wire_encode.h"

#define DATA_KEY "pam_shaudit_session"
#define MSG_BUF 8192

struct options {
  const char* socket;
  const char* preload;
  int fail_closed;
  int timeout_ms;
  int debug;
  int socket_given;
  int skip_noninteractive;
};

static int parse_options(pam_handle_t* pamh, int argc, const char** argv, struct options* o) {
  o->socket = SHAUDIT_DEFAULT_SOCKET;
  o->preload = NULL;
  o->fail_closed = 0;
  o->timeout_ms = 2000;
  o->debug = 0;
  o->socket_given = 0;
  o->skip_noninteractive = 0;
  for (int i = 0; i < argc; ++i) {
    const char* a = argv[i];
    if (strncmp(a, "socket=", 7) == 0 && a[7] == '/') {
      o->socket = a + 7;
      o->socket_given = 1;
    } else if (strncmp(a, "preload=", 8) == 0 && a[8] == '/') {
      o->preload = a + 8;
    } else if (strcmp(a, "fail=open") == 0) {
      o->fail_closed = 0;
    } else if (strcmp(a, "fail=closed") == 0) {
      o->fail_closed = 1;
    } else if (strncmp(a, "timeout_ms=", 11) == 0 && atoi(a + 11) > 0) {
      o->timeout_ms = atoi(a + 11);
    } else if (strcmp(a, "noninteractive=skip") == 0) {
      o->skip_noninteractive = 1;
    } else if (strcmp(a, "noninteractive=audit") == 0) {
      o->skip_noninteractive = 0;
    } else if (strcmp(a, "debug") == 0) {
      o->debug = 1;
    } else {
      pam_syslog(pamh, LOG_ERR, "unknown option: %s", a);
      return -1;
    }
  }
  return 0;
}

/* A session someone can type into: a terminal device ("/dev/pts/3", "pts/3", "tty1"), an X
 * display (":0"), or a login from another host. cron sets PAM_TTY to "cron"; systemd --user,
 * at and scripted sudo set none. */
static int is_interactive(const char* tty, const char* rhost) {
  if (rhost && *rhost) return 1;
  if (!tty || !*tty) return 0;
  return strncmp(tty, "/dev/", 5) == 0 || strncmp(tty, "tty", 3) == 0 ||
         strncmp(tty, "pts/", 4) == 0 || tty[0] == ':';
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Sends one request and, when want_reply, reads the daemon's reply into reply (NUL-ended
 * session id or error text). Returns 0 on success, -1 with *err set. */
static int transact(const struct options* o, const char* msg, size_t len, int want_reply,
                    char* reply, size_t reply_cap, int* is_error, const char** err) {
  int fd = shaudit_wire_connect(o->socket, 0, o->timeout_ms);
  if (fd < 0) {
    *err = fd == -ENAMETOOLONG ? "socket path too long" : strerror(-fd);
    return -1;
  }
  /* The daemon accepts session requests only from uid 0 and takes the uid from the
   * credentials that come with the message. Left to the kernel, they carry the real uid; a
   * setuid-root program (su run by a user) has a real uid of that user and an effective uid
   * of 0, so send the effective ids explicitly (the kernel checks that they are ours). */
  struct iovec iov = {(void*)msg, len};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(struct ucred))];
  } cbuf;
  memset(&cbuf, 0, sizeof cbuf);
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cbuf.buf;
  mh.msg_controllen = sizeof cbuf.buf;
  struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_CREDENTIALS;
  c->cmsg_len = CMSG_LEN(sizeof(struct ucred));
  struct ucred cred = {getpid(), geteuid(), getegid()};
  memcpy(CMSG_DATA(c), &cred, sizeof cred);
  if (sendmsg(fd, &mh, MSG_NOSIGNAL) != (ssize_t)len) {
    *err = strerror(errno);
    close(fd);
    return -1;
  }
  if (!want_reply) {
    close(fd);
    return 0;
  }
  char buf[MSG_BUF];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  int e = errno;
  close(fd);
  if (n < (ssize_t)sizeof(struct shaudit_wire_header)) {
    *err = n < 0 ? (e == EAGAIN ? "no reply from shauditd (timeout)" : strerror(e)) : "short reply";
    return -1;
  }
  struct shaudit_wire_header h;
  memcpy(&h, buf, sizeof h);
  if (h.magic != SHAUDIT_WIRE_MAGIC || h.version != SHAUDIT_WIRE_VERSION ||
      h.type != SHAUDIT_MSG_SESSION_REPLY || h.length != (uint32_t)n) {
    *err = "malformed reply from shauditd (wire version mismatch?)";
    return -1;
  }
  size_t pos = sizeof h;
  while (pos + sizeof(struct shaudit_wire_field) <= (size_t)n) {
    struct shaudit_wire_field f;
    memcpy(&f, buf + pos, sizeof f);
    pos += sizeof f;
    if (f.length > (size_t)n - pos) break;
    if ((f.tag == SHAUDIT_F_SESSION || f.tag == SHAUDIT_F_ERROR) && f.length < reply_cap) {
      memcpy(reply, buf + pos, f.length);
      reply[f.length] = 0;
      *is_error = f.tag == SHAUDIT_F_ERROR;
      return 0;
    }
    pos += f.length;
  }
  *err = "reply without a session id";
  return -1;
}

static void free_data(pam_handle_t* pamh, void* data, int status) {
  (void)pamh;
  (void)status;
  free(data);
}

static int put_env(pam_handle_t* pamh, const char* name, const char* value) {
  char buf[4096];
  int n = snprintf(buf, sizeof buf, "%s=%s", name, value);
  if (n < 0 || (size_t)n >= sizeof buf) return PAM_BUF_ERR;
  return pam_putenv(pamh, buf);
}

/* Environment for the session's processes: even when shauditd is unreachable (fail=open)
 * the interposer is preloaded, so the shell opens an implicit session once it returns. */
static int export_env(pam_handle_t* pamh, const struct options* o, const char* session) {
  int rc = PAM_SUCCESS;
  if (session && (rc = put_env(pamh, "SHAUDIT_SESSION", session)) != PAM_SUCCESS) return rc;
  if (o->socket_given && (rc = put_env(pamh, "SHAUDIT_SOCKET", o->socket)) != PAM_SUCCESS)
    return rc;
  if (o->preload && (rc = put_env(pamh, "LD_PRELOAD", o->preload)) != PAM_SUCCESS) return rc;
  return rc;
}

__attribute__((visibility("default"))) PAM_EXTERN int pam_sm_open_session(pam_handle_t* pamh,
                                                                          int flags, int argc,
                                                                          const char** argv) {
  (void)flags;
  struct options o;
  if (parse_options(pamh, argc, argv, &o) != 0) return PAM_SESSION_ERR;
  const char *user = NULL, *service = NULL, *tty = NULL, *rhost = NULL;
  if (pam_get_item(pamh, PAM_USER, (const void**)&user) != PAM_SUCCESS || !user) {
    pam_syslog(pamh, LOG_ERR, "no user name");
    return PAM_SESSION_ERR;
  }
  pam_get_item(pamh, PAM_SERVICE, (const void**)&service);
  pam_get_item(pamh, PAM_TTY, (const void**)&tty);
  pam_get_item(pamh, PAM_RHOST, (const void**)&rhost);
  if (o.skip_noninteractive && !is_interactive(tty, rhost)) {
    if (o.debug)
      pam_syslog(pamh, LOG_DEBUG, "not interactive (tty %s): not audited", tty ? tty : "none");
    return PAM_IGNORE;
  }
  struct passwd pw, *res = NULL;
  char pwbuf[4096];
  if (getpwnam_r(user, &pw, pwbuf, sizeof pwbuf, &res) != 0 || !res) {
    pam_syslog(pamh, LOG_ERR, "unknown user %s", user);
    return PAM_SESSION_ERR;
  }
  char msg[MSG_BUF];
  struct shaudit_enc e;
  shaudit_enc_begin(&e, msg, sizeof msg, SHAUDIT_MSG_SESSION_OPEN);
  shaudit_enc_str(&e, SHAUDIT_F_USER, user);
  shaudit_enc_u64(&e, SHAUDIT_F_UID, (uint64_t)res->pw_uid);
  shaudit_enc_str(&e, SHAUDIT_F_SERVICE, service ? service : "");
  if (tty) shaudit_enc_str(&e, SHAUDIT_F_TTY, tty);
  if (rhost) shaudit_enc_str(&e, SHAUDIT_F_RHOST, rhost);
  size_t len = shaudit_enc_finish(&e, 1, now_ns());

  char reply[256];
  int is_error = 0;
  const char* err = NULL;
  if (transact(&o, msg, len, 1, reply, sizeof reply, &is_error, &err) != 0 || is_error) {
    const char* why = is_error ? reply : err;
    if (o.fail_closed) {
      pam_syslog(pamh, LOG_ERR,
                 "cannot register the session with shauditd at %s: %s; refusing "
                 "the session (fail=closed)",
                 o.socket, why);
      return PAM_SESSION_ERR;
    }
    pam_syslog(pamh, LOG_WARNING,
               "cannot register the session with shauditd at %s: %s; "
               "continuing unregistered (fail=open)",
               o.socket, why);
    /* An empty id marks the session as opened unregistered: close_session then succeeds
     * too (PAM_IGNORE would fail a stack in which no other module decides). */
    char* none = strdup("");
    if (!none || pam_set_data(pamh, DATA_KEY, none, free_data) != PAM_SUCCESS) {
      free(none);
      return PAM_BUF_ERR;
    }
    return export_env(pamh, &o, NULL) == PAM_SUCCESS ? PAM_SUCCESS : PAM_SESSION_ERR;
  }
  char* kept = strdup(reply);
  if (!kept || pam_set_data(pamh, DATA_KEY, kept, free_data) != PAM_SUCCESS) {
    free(kept);
    return PAM_BUF_ERR;
  }
  if (o.debug) pam_syslog(pamh, LOG_DEBUG, "session %s opened for %s", reply, user);
  return export_env(pamh, &o, reply) == PAM_SUCCESS ? PAM_SUCCESS : PAM_SESSION_ERR;
}

__attribute__((visibility("default"))) PAM_EXTERN int pam_sm_close_session(pam_handle_t* pamh,
                                                                           int flags, int argc,
                                                                           const char** argv) {
  (void)flags;
  struct options o;
  if (parse_options(pamh, argc, argv, &o) != 0) return PAM_SESSION_ERR;
  const void* data = NULL;
  if (pam_get_data(pamh, DATA_KEY, &data) != PAM_SUCCESS || !data) return PAM_IGNORE;
  if (*(const char*)data == 0) return PAM_SUCCESS; /* opened unregistered (fail=open) */
  char msg[1024];
  struct shaudit_enc e;
  shaudit_enc_begin(&e, msg, sizeof msg, SHAUDIT_MSG_SESSION_CLOSE);
  shaudit_enc_str(&e, SHAUDIT_F_SESSION, (const char*)data);
  size_t len = shaudit_enc_finish(&e, 1, now_ns());
  char reply[256];
  int is_error = 0;
  const char* err = NULL;
  if (transact(&o, msg, len, 1, reply, sizeof reply, &is_error, &err) != 0 || is_error) {
    pam_syslog(pamh, LOG_WARNING, "cannot close session %s with shauditd: %s", (const char*)data,
               is_error ? reply : err);
    return o.fail_closed ? PAM_SESSION_ERR : PAM_SUCCESS;
  }
  return PAM_SUCCESS;
}
