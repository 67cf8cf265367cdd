// SPDX-License-Identifier: Apache-2.0
/* Session load for tests/bench/run_scale_bench.sh and run_memory_bench.sh (not a test; nothing
 * runs it from ctest). Needs root: every session process opens an audited session with
 * SHAUDIT_MSG_SESSION_OPEN (USER "root", UID 0, SERVICE "bench", TTY ""), as session_run.c
 * does, and so is that session's entry, which shauditd's kernel side follows with every
 * descendant. Built on the fly:  cc -O2 -I<repo>/libshaudit/include session_load.c
 *
 *   session_load hold -s SOCKET -n SESSIONS [-d SECONDS] [-i MIN_MS:MAX_MS] [-c CHILDREN]
 *                     [-t TAG] [-p PIDFILE]
 *     SESSIONS processes (each one a real process of its own, a distinct pid), each:
 *       connects to SOCKET and opens a session (keeps the connection, like a shell's
 *       interposer); forks CHILDREN children that sleep (blocked in read()) until the end;
 *       then, once released, sends LINE reports (SHELL "bash", TEXT, CMD_NO k, LINE_INDEX 0,
 *       LINE_FLAGS 0) at a typist's pace: one every MIN_MS..MAX_MS (uniform, default
 *       1000:2000; the first after a random part of one interval, so the sessions do not type
 *       in step) for SECONDS (default 0: none). Each line's text is
 *         scale TAG s=SESSION n=K t=SENT_NS
 *       SENT_NS being CLOCK_REALTIME just before send(): unique, and carries its send time.
 *     On standard output / input (the driver's handshake):
 *       "ready OK FAILED"   every session is open (OK) or failed (FAILED), the children forked;
 *       <a line on stdin>   releases the typing;
 *       "done SENT ERRORS"  every session finished typing: lines sent, send errors;
 *       <a line on stdin>   ends everything: children and sessions exit (their sessions end
 *                           as their entries exit), reaped; then "exited" and exit 0.
 *     -p PIDFILE: the session processes' pids, one a line (written before "ready").
 *
 *   session_load churn -s SOCKET -C CONCURRENT -T SECONDS [-L LINES] [-E EXECS]
 *                      [-i MIN_MS:MAX_MS] [-P PRELOAD] [-t TAG]
 *     For SECONDS, keeps CONCURRENT short sessions going, each a new process that opens a
 *     session, types LINES lines (default 3) one every MIN_MS..MAX_MS (default 300:800), runs
 *     `sh -c '/bin/true; ...'` (EXECS times /bin/true, default 3) with LD_PRELOAD=PRELOAD and
 *     SHAUDIT_SOCKET=SOCKET (the interposer reports the execs; the kernel sees them), and ends:
 *     every other session with SESSION_CLOSE (as pam_close_session), the rest by exiting (the
 *     entry's exit ends it). Prints one JSON object at the end: sessions started / ok / failed,
 *     lines, execs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "session_wire.h"

static const char* g_sock;
static const char* g_tag = "x";
static int g_min_ms = -1, g_max_ms = -1;

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s) {
  if (s <= 0) return;
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static double jitter_s(void) {
  return (g_min_ms + (double)random() / RAND_MAX * (g_max_ms - g_min_ms)) / 1000.0;
}

static int connect_sock(void) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", g_sock);
  for (int attempt = 0; attempt < 50; attempt++) {
    if (connect(fd, (struct sockaddr*)&sa, sizeof sa) == 0) return fd;
    if (errno != EAGAIN && errno != ECONNREFUSED) break;
    sleep_s(0.02 + attempt * 0.01);  /* a full backlog under a burst of connections */
  }
  close(fd);
  return -1;
}

static int session_call(int fd, int type, char* sid, size_t cap) {
  const char* why = "";
  return session_request(fd, type, sid, cap, 10000, &why);
}

static int send_line(int fd, long session, long k) {
  char text[256], buf[1024];
  uint64_t t = realtime_ns();
  snprintf(text, sizeof text, "scale %s s=%ld n=%ld t=%llu", g_tag, session, k,
           (unsigned long long)t);
  struct shaudit_enc e;
  shaudit_enc_begin(&e, buf, sizeof buf, SHAUDIT_MSG_LINE);
  shaudit_enc_str(&e, SHAUDIT_F_SHELL, "bash");
  shaudit_enc_str(&e, SHAUDIT_F_TEXT, text);
  shaudit_enc_u64(&e, SHAUDIT_F_CMD_NO, (uint64_t)k);
  shaudit_enc_u64(&e, SHAUDIT_F_LINE_INDEX, 0);
  shaudit_enc_u64(&e, SHAUDIT_F_LINE_FLAGS, 0);
  size_t n = shaudit_enc_finish(&e, (uint64_t)k, t);
  return send(fd, buf, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

static int read_line_stdin(void) {
  char c;
  for (;;) {
    ssize_t r = read(0, &c, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    if (c == '\n') return 0;
  }
}

static void usage(void) {
  fprintf(stderr,
          "usage: session_load hold -s SOCKET -n SESSIONS [-d SECONDS] [-i MIN_MS:MAX_MS] "
          "[-c CHILDREN] [-t TAG] [-p PIDFILE]\n"
          "       session_load churn -s SOCKET -C CONCURRENT -T SECONDS [-L LINES] [-E EXECS] "
          "[-i MIN_MS:MAX_MS] [-P PRELOAD] [-t TAG]\n");
  exit(2);
}

static void parse_interval(const char* s) {
  if (sscanf(s, "%d:%d", &g_min_ms, &g_max_ms) != 2 || g_min_ms < 0 || g_max_ms < g_min_ms) usage();
}

/* ------------------------------------------------------------------ hold */

struct counters {
  long sent, errors;
};

static int hold(int argc, char** argv) {
  long n = 0, children = 0;
  double seconds = 0;
  const char* pidfile = NULL;
  int opt;
  while ((opt = getopt(argc, argv, "s:n:d:i:c:t:p:")) != -1) {
    switch (opt) {
      case 's': g_sock = optarg; break;
      case 'n': n = atol(optarg); break;
      case 'd': seconds = atof(optarg); break;
      case 'i': parse_interval(optarg); break;
      case 'c': children = atol(optarg); break;
      case 't': g_tag = optarg; break;
      case 'p': pidfile = optarg; break;
      default: usage();
    }
  }
  if (!g_sock || n < 1 || children < 0) usage();
  if (g_min_ms < 0) g_min_ms = 1000, g_max_ms = 2000;
  struct counters* cnt = mmap(NULL, sizeof *cnt * (size_t)n, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (cnt == MAP_FAILED) return perror("mmap"), 1;
  int ready[2], go[2], done[2], end[2];
  if (pipe2(ready, O_CLOEXEC) || pipe2(go, O_CLOEXEC) || pipe2(done, O_CLOEXEC) || pipe2(end, O_CLOEXEC))
    return perror("pipe"), 1;
  pid_t* pids = calloc((size_t)n, sizeof *pids);
  for (long i = 0; i < n; i++) {
    pid_t p = fork();
    if (p < 0) {
      perror("fork");
      n = i;
      break;
    }
    if (p == 0) {
      close(ready[0]), close(go[1]), close(done[0]), close(end[1]);
      srandom((unsigned)(getpid() ^ realtime_ns()));
      char sid[128];
      int fd = connect_sock();
      int ok = fd >= 0 && session_call(fd, SHAUDIT_MSG_SESSION_OPEN, sid, sizeof sid) == 0;
      for (long c = 0; ok && c < children; c++) {
        pid_t k = fork();
        if (k == 0) {  /* sleeps until the end pipe closes */
          if (fd >= 0) close(fd);
          close(ready[1]), close(go[0]), close(done[1]);
          char b;
          while (read(end[0], &b, 1) < 0 && errno == EINTR) {}
          _exit(0);
        }
        if (k < 0) ok = 0;
      }
      char r = ok ? 'r' : 'f';
      if (write(ready[1], &r, 1) != 1) _exit(3);
      char b;
      while (read(go[0], &b, 1) < 0 && errno == EINTR) {}
      if (ok && seconds > 0) {
        double t_end = mono_s() + seconds;
        double next = mono_s() + jitter_s() * ((double)random() / RAND_MAX);
        for (long k = 1;; k++) {
          sleep_s(next - mono_s());
          if (mono_s() >= t_end) break;
          if (send_line(fd, i, k) == 0)
            cnt[i].sent++;
          else
            cnt[i].errors++;
          next += jitter_s();
        }
      }
      r = 'd';
      if (write(done[1], &r, 1) != 1) _exit(3);
      while (read(end[0], &b, 1) < 0 && errno == EINTR) {}
      while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {}
      if (fd >= 0) close(fd);
      _exit(ok ? 0 : 1);
    }
    pids[i] = p;
  }
  close(ready[1]), close(go[0]), close(done[1]), close(end[0]);
  if (pidfile) {
    FILE* f = fopen(pidfile, "w");
    if (!f) return perror(pidfile), 1;
    for (long i = 0; i < n; i++) fprintf(f, "%d\n", (int)pids[i]);
    fclose(f);
  }
  long ok = 0, failed = 0;
  for (long i = 0; i < n; i++) {
    char r;
    ssize_t k;
    while ((k = read(ready[0], &r, 1)) < 0 && errno == EINTR) {}
    if (k != 1) break;
    if (r == 'r') ok++; else failed++;
  }
  printf("ready %ld %ld\n", ok, failed);
  fflush(stdout);
  read_line_stdin();
  close(go[1]);
  for (long i = 0; i < n; i++) {
    char r;
    ssize_t k;
    while ((k = read(done[0], &r, 1)) < 0 && errno == EINTR) {}
    if (k != 1) break;
  }
  long sent = 0, errors = 0;
  for (long i = 0; i < n; i++) sent += cnt[i].sent, errors += cnt[i].errors;
  printf("done %ld %ld\n", sent, errors);
  fflush(stdout);
  read_line_stdin();
  close(end[1]);
  while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {}
  printf("exited\n");
  fflush(stdout);
  return 0;
}

/* ------------------------------------------------------------------ churn */

static int churn_session(long idx, long lines, long execs, const char* preload) {
  srandom((unsigned)(getpid() ^ realtime_ns()));
  char sid[128];
  int fd = connect_sock();
  if (fd < 0 || session_call(fd, SHAUDIT_MSG_SESSION_OPEN, sid, sizeof sid) != 0) return 1;
  for (long k = 1; k <= lines; k++) {
    sleep_s(jitter_s());
    if (send_line(fd, idx, k) != 0) return 2;
  }
  if (execs > 0) {
    char script[4096] = "";
    for (long k = 0; k < execs && strlen(script) + 16 < sizeof script; k++)
      strcat(script, k ? "; /bin/true" : "/bin/true");
    pid_t c = fork();
    if (c == 0) {
      char e1[4200], e2[4200];
      snprintf(e1, sizeof e1, "LD_PRELOAD=%s", preload ? preload : "");
      snprintf(e2, sizeof e2, "SHAUDIT_SOCKET=%s", g_sock);
      char* env[] = {preload ? e1 : "SHAUDIT_BENCH=1", e2, "PATH=/usr/bin:/bin", NULL};
      char* av[] = {"sh", "-c", script, NULL};
      execve("/bin/sh", av, env);
      _exit(127);
    }
    int st = 0;
    if (c < 0 || waitpid(c, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 3;
  }
  if (idx % 2 == 0 && session_call(fd, SHAUDIT_MSG_SESSION_CLOSE, sid, sizeof sid) != 0) return 4;
  close(fd);
  return 0;
}

static int churn(int argc, char** argv) {
  long conc = 0, lines = 3, execs = 3;
  double seconds = 0;
  const char* preload = NULL;
  int opt;
  while ((opt = getopt(argc, argv, "s:C:T:L:E:i:P:t:")) != -1) {
    switch (opt) {
      case 's': g_sock = optarg; break;
      case 'C': conc = atol(optarg); break;
      case 'T': seconds = atof(optarg); break;
      case 'L': lines = atol(optarg); break;
      case 'E': execs = atol(optarg); break;
      case 'i': parse_interval(optarg); break;
      case 'P': preload = optarg; break;
      case 't': g_tag = optarg; break;
      default: usage();
    }
  }
  if (!g_sock || conc < 1 || seconds <= 0 || lines < 0 || execs < 0) usage();
  if (g_min_ms < 0) g_min_ms = 300, g_max_ms = 800;
  signal(SIGPIPE, SIG_IGN);
  double t_end = mono_s() + seconds;
  long started = 0, ok = 0, failed = 0, live = 0;
  long fail_kind[8] = {0};
  while (mono_s() < t_end || live > 0) {
    while (live < conc && mono_s() < t_end) {
      long idx = started;
      pid_t p = fork();
      if (p == 0) _exit(churn_session(idx, lines, execs, preload));
      if (p < 0) {
        sleep_s(0.1);
        break;
      }
      started++;
      live++;
    }
    int st;
    pid_t p = waitpid(-1, &st, 0);
    if (p < 0) {
      if (errno == EINTR) continue;
      break;
    }
    live--;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
      ok++;
    } else {
      failed++;
      fail_kind[WIFEXITED(st) ? (WEXITSTATUS(st) & 7) : 7]++;
    }
  }
  printf("{\"sessions_started\":%ld,\"sessions_ok\":%ld,\"sessions_failed\":%ld,"
         "\"failed_open\":%ld,\"failed_send\":%ld,\"failed_exec\":%ld,\"failed_close\":%ld,"
         "\"lines\":%ld,\"execs_true\":%ld,\"execs_sh\":%ld}\n",
         started, ok, failed, fail_kind[1], fail_kind[2], fail_kind[3], fail_kind[4], ok * lines,
         ok * execs, execs > 0 ? ok : 0);
  return failed ? 1 : 0;
}

int main(int argc, char** argv) {
  if (argc < 2) usage();
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (strcmp(argv[1], "hold") == 0) return hold(argc - 1, argv + 1);
  if (strcmp(argv[1], "churn") == 0) return churn(argc - 1, argv + 1);
  usage();
  return 2;
}
