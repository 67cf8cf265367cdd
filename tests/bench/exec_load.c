// SPDX-License-Identifier: Apache-2.0
/* Exec load for tests/bench/run_bpf_bench.sh (not a test; nothing runs it from ctest).
 *
 *   exec_load [-w WORKERS] [-n EXECS_PER_WORKER | -t SECONDS] [-o OUT.json] [-p PID,PID...]
 *             [-- PROGRAM ARG...]
 *
 * WORKERS processes (default 4) each run PROGRAM (default /bin/true) as fast as they can:
 * fork(), execve() in the child, waitpid() in the worker, one at a time. The workers start
 * together (a pipe is closed to release them). With -n every worker runs exactly that many;
 * with -t they stop at the deadline. The environment is passed on unchanged, so an
 * LD_PRELOAD interposer in it is in every process.
 *
 * Prints (and writes to OUT.json with -o) one JSON object:
 *   execs, failed     children that exited 0 / anything else (or could not be forked)
 *   wall_s            first release -> last worker reaped (CLOCK_MONOTONIC)
 *   load_user_s, load_sys_s   CPU of this process and all its descendants (getrusage of self
 *                     and of the waited-for children, which include the grandchildren); eBPF
 *                     programs attached to exec/fork/exit run in these processes' system time
 *   sys_busy_s, sys_total_s, sys_steal_s   /proc/stat over the same interval, all CPUs: busy
 *                     (user+nice+system+irq+softirq), everything, and steal
 *   pids              for each -p PID: CPU (utime+stime, all threads) over the interval
 *   worker_pids       the workers' pids (the parent of every PROGRAM process)
 *   irq               interrupts on all CPUs over the interval, from /proc/interrupts: IWI (irq
 *                     work: a BPF ring/perf buffer waking its reader), RES (rescheduling IPIs),
 *                     CAL (function-call IPIs), TLB (shootdowns), LOC (timer)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

struct shared {
  long execs[64];
  long failed[64];
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* /proc/stat "cpu" line: busy (user nice system irq softirq), total, steal; seconds. */
static void sys_times(double* busy, double* total, double* steal) {
  unsigned long long v[10] = {0};
  FILE* f = fopen("/proc/stat", "r");
  *busy = *total = *steal = 0;
  if (!f) return;
  if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
             &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) >= 8) {
    double t = (double)sysconf(_SC_CLK_TCK);
    *busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / t;
    *total = (double)(v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7]) / t;
    *steal = (double)v[7] / t;
  }
  fclose(f);
}

/* utime+stime of a process (all its threads), seconds; -1 when it is gone. */
static double pid_cpu(long pid) {
  char path[64], buf[2048];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE* f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char* p = strrchr(buf, ')');
  if (!p) return -1;
  unsigned long long ut = 0, st = 0;
  /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static const char* const kIrqNames[] = {"IWI", "RES", "CAL", "TLB", "LOC"};
#define NIRQ (sizeof kIrqNames / sizeof kIrqNames[0])

/* Sum over CPUs of the named rows of /proc/interrupts. */
static void irq_counts(unsigned long long out[NIRQ]) {
  char line[4096];
  memset(out, 0, sizeof(unsigned long long) * NIRQ);
  FILE* f = fopen("/proc/interrupts", "r");
  if (!f) return;
  while (fgets(line, sizeof line, f)) {
    char* p = line;
    while (*p == ' ') p++;
    for (size_t i = 0; i < NIRQ; i++) {
      size_t n = strlen(kIrqNames[i]);
      if (strncmp(p, kIrqNames[i], n) != 0 || p[n] != ':') continue;
      char* q = p + n + 1;
      for (;;) {
        char* end;
        unsigned long long v = strtoull(q, &end, 10);
        if (end == q) break;
        out[i] += v;
        q = end;
      }
    }
  }
  fclose(f);
}

static double tv(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec / 1e6; }

static void usage(void) {
  fprintf(stderr,
          "usage: exec_load [-w WORKERS] [-n EXECS_PER_WORKER | -t SECONDS] [-o OUT.json] "
          "[-p PID,PID...] [-- PROGRAM ARG...]\n");
  exit(2);
}

int main(int argc, char** argv) {
  int workers = 4;
  long per_worker = 1000;
  double seconds = 0;
  const char* out = NULL;
  long pids[16];
  int npids = 0;
  int opt;
  while ((opt = getopt(argc, argv, "w:n:t:o:p:")) != -1) {
    switch (opt) {
      case 'w': workers = atoi(optarg); break;
      case 'n': per_worker = atol(optarg); break;
      case 't': seconds = atof(optarg); break;
      case 'o': out = optarg; break;
      case 'p': {
        char* s = optarg;
        while (*s && npids < 16) {
          pids[npids++] = strtol(s, &s, 10);
          if (*s == ',') s++;
        }
        break;
      }
      default: usage();
    }
  }
  if (workers < 1 || workers > 64 || per_worker < 0) usage();
  char* def_argv[] = {"/bin/true", NULL};
  char** prog = optind < argc ? argv + optind : def_argv;

  struct shared* sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) return perror("mmap"), 1;
  memset(sh, 0, sizeof *sh);
  int go[2];
  if (pipe(go) != 0) return perror("pipe"), 1;

  pid_t wp[64];
  for (int w = 0; w < workers; w++) {
    wp[w] = fork();
    if (wp[w] < 0) return perror("fork"), 1;
    if (wp[w] == 0) {
      close(go[1]);
      char c;
      while (read(go[0], &c, 1) < 0 && errno == EINTR) {}
      close(go[0]);
      double deadline = seconds > 0 ? now_s() + seconds : 0;
      long ok = 0, bad = 0;
      for (long i = 0; seconds > 0 ? now_s() < deadline : i < per_worker; i++) {
        pid_t c = fork();
        if (c == 0) {
          execve(prog[0], prog, environ);
          _exit(127);
        }
        if (c < 0) {
          bad++;
          continue;
        }
        int st;
        while (waitpid(c, &st, 0) < 0 && errno == EINTR) {}
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
          ok++;
        else
          bad++;
      }
      sh->execs[w] = ok;
      sh->failed[w] = bad;
      _exit(0);
    }
  }
  close(go[0]);

  double cpu0[16];
  double b0, t0s, s0;
  unsigned long long irq0[NIRQ], irq1[NIRQ];
  irq_counts(irq0);
  for (int i = 0; i < npids; i++) cpu0[i] = pid_cpu(pids[i]);
  sys_times(&b0, &t0s, &s0);
  double t0 = now_s();
  close(go[1]); /* release the workers */
  for (int w = 0; w < workers; w++) {
    int st;
    while (waitpid(wp[w], &st, 0) < 0 && errno == EINTR) {}
  }
  double t1 = now_s();
  double b1, t1s, s1;
  sys_times(&b1, &t1s, &s1);
  double cpu1[16];
  for (int i = 0; i < npids; i++) cpu1[i] = pid_cpu(pids[i]);
  irq_counts(irq1);

  struct rusage self, kids;
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &kids);
  long execs = 0, failed = 0;
  for (int w = 0; w < workers; w++) {
    execs += sh->execs[w];
    failed += sh->failed[w];
  }
  char json[4096];
  int n = snprintf(json, sizeof json,
                   "{\"workers\":%d,\"execs\":%ld,\"failed\":%ld,\"wall_s\":%.6f,"
                   "\"load_user_s\":%.6f,\"load_sys_s\":%.6f,\"sys_busy_s\":%.3f,"
                   "\"sys_total_s\":%.3f,\"sys_steal_s\":%.3f,\"pids\":{",
                   workers, execs, failed, t1 - t0, tv(self.ru_utime) + tv(kids.ru_utime),
                   tv(self.ru_stime) + tv(kids.ru_stime), b1 - b0, t1s - t0s, s1 - s0);
  for (int i = 0; i < npids; i++)
    n += snprintf(json + n, sizeof json - (size_t)n, "%s\"%ld\":%.3f", i ? "," : "", pids[i],
                  cpu0[i] < 0 || cpu1[i] < 0 ? -1.0 : cpu1[i] - cpu0[i]);
  n += snprintf(json + n, sizeof json - (size_t)n, "},\"worker_pids\":[");
  for (int w = 0; w < workers; w++)
    n += snprintf(json + n, sizeof json - (size_t)n, "%s%d", w ? "," : "", (int)wp[w]);
  n += snprintf(json + n, sizeof json - (size_t)n, "],\"irq\":{");
  for (size_t i = 0; i < NIRQ; i++)
    n += snprintf(json + n, sizeof json - (size_t)n, "%s\"%s\":%llu", i ? "," : "", kIrqNames[i],
                  irq1[i] - irq0[i]);
  snprintf(json + n, sizeof json - (size_t)n, "}}\n");
  fputs(json, stdout);
  if (out) {
    FILE* f = fopen(out, "w");
    if (!f) return perror(out), 1;
    fputs(json, f);
    fclose(f);
  }
  return failed ? 1 : 0;
}
