// SPDX-License-Identifier: Apache-2.0
/* Integration-test helper for tests/integration/test_interposer_faults.py: a program that
 * does awkward things to the interposer (libshaudit_preload.so) preloaded into it.
 *
 * usage: interposer_probe MODE [ARGS...]
 *
 *   fds                    posix_spawns /bin/true with a marker argv after each of: nothing,
 *                          closefrom(3), a close() loop over 3..1023, a dup2 of its own
 *                          socketpair end over fd 987; then writes to its fd 987 and reads
 *                          the bytes back from the other end. Prints what it saw.
 *   threads-fork T N       T threads, each fork()+execve("/bin/true") N times.
 *   threads-spawn T N      T threads, each posix_spawn("/bin/true") N times.
 *   vfork N                vfork()+execve("/bin/true", "vfork-I") N times, then one
 *                          posix_spawn("/bin/true", "parent-after-vfork"). Prints child pids.
 *   execfamily             one exec through each member of the exec family (in fork
 *                          children unless the call reports from the caller), then failing
 *                          calls whose errno it prints as NAME=ERRNO.
 *   whoami                 prints uid, euid, whether the interposer is mapped and whether
 *                          LD_PRELOAD / SHAUDIT_SOCKET are in its environment; then
 *                          posix_spawns /bin/true "setuid-probe-marker".
 *
 * Exits 0 when everything it did behaved as a program without the interposer expects.
 *
 * It builds against glibc (CMake) and musl (tests/integration/test_musl_interposer.py compiles it
 * with musl-gcc): musl has neither closefrom() nor execveat(). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

static int failures;

#if !defined(__GLIBC__)
/* What glibc's closefrom() does. */
static void closefrom(int lowfd) {
  syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0U);
}

/* musl declares no execveat(): call the interposer's (its hook) when it is loaded, the
 * system call otherwise. */
typedef int (*execveat_fn)(int, const char*, char* const[], char* const[], int);
static int execveat(int dirfd, const char* path, char* const argv[], char* const envp[],
                    int flags) {
  execveat_fn fn = (execveat_fn)dlsym(RTLD_DEFAULT, "execveat");
  if (fn) return fn(dirfd, path, argv, envp, flags);
  return (int)syscall(SYS_execveat, dirfd, path, argv, envp, flags);
}
#endif

static void check(int ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "interposer_probe: %s failed (errno %d)\n", what, errno);
    ++failures;
  }
}

static int wait_ok(pid_t pid) {
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return 0;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void spawn_true(const char* marker) {
  char* argv[] = {(char*)"/bin/true", (char*)marker, NULL};
  pid_t pid;
  int rc = posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ);
  check(rc == 0 && wait_ok(pid), marker);
}

/* What fd refers to: "socket", "pipe", "file", "closed". */
static const char* fd_kind(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return "closed";
  if (S_ISSOCK(st.st_mode)) return "socket";
  if (S_ISFIFO(st.st_mode)) return "pipe";
  return "file";
}

static int mode_fds(void) {
  printf("start fd987=%s\n", fd_kind(987));
  spawn_true("fds-1-start");
  closefrom(3);
  printf("after-closefrom fd987=%s\n", fd_kind(987));
  spawn_true("fds-2-after-closefrom");
  printf("reconnected fd987=%s\n", fd_kind(987));
  for (int fd = 3; fd < 1024; ++fd) close(fd);
  printf("after-close-loop fd987=%s\n", fd_kind(987));
  spawn_true("fds-3-after-close-loop");
  printf("reconnected fd987=%s\n", fd_kind(987));

  /* Our own socket over the interposer's: same type of file, another socket. */
  int sv[2];
  check(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
  check(dup2(sv[0], 987) == 987, "dup2");
  close(sv[0]);
  spawn_true("fds-4-after-dup2");
  printf("after-dup2 fd987=%s fd988=%s\n", fd_kind(987), fd_kind(988));
  const char data[] = "program-data";
  check(write(987, data, sizeof data - 1) == (ssize_t)(sizeof data - 1), "write 987");
  check(shutdown(987, SHUT_WR) == 0, "shutdown 987");
  char got[65536];
  size_t n = 0;
  for (;;) {
    ssize_t r = read(sv[1], got + n, sizeof got - 1 - n);
    if (r <= 0) break;
    n += (size_t)r;
  }
  got[n] = 0;
  printf("fd987-read-back=%zu:%s\n", n, got);
  spawn_true("fds-5-end");
  return failures != 0;
}

struct thread_arg {
  int iterations;
  int use_spawn;
  int ok;
};

static void* thread_main(void* p) {
  struct thread_arg* a = p;
  for (int i = 0; i < a->iterations; ++i) {
    char* argv[] = {(char*)"/bin/true", NULL};
    pid_t pid;
    if (a->use_spawn) {
      if (posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ) != 0) continue;
    } else {
      pid = fork();
      if (pid < 0) continue;
      if (pid == 0) {
        execve("/bin/true", argv, environ);
        _exit(127);
      }
    }
    if (wait_ok(pid)) ++a->ok;
  }
  return NULL;
}

static int mode_threads(int nthreads, int iterations, int use_spawn) {
  pthread_t t[64];
  struct thread_arg a[64];
  if (nthreads > 64) nthreads = 64;
  for (int i = 0; i < nthreads; ++i) {
    a[i] = (struct thread_arg){iterations, use_spawn, 0};
    check(pthread_create(&t[i], NULL, thread_main, &a[i]) == 0, "pthread_create");
  }
  int ok = 0;
  for (int i = 0; i < nthreads; ++i) {
    pthread_join(t[i], NULL);
    ok += a[i].ok;
  }
  printf("ok %d\n", ok);
  return ok != nthreads * iterations;
}

/* One vfork child that execs /bin/true MARKER; the child touches nothing of ours. */
static __attribute__((noinline)) pid_t vfork_one(const char* marker) {
  char* argv[] = {(char*)"/bin/true", (char*)marker, NULL};
  pid_t pid = vfork();
  if (pid == 0) {
    execve("/bin/true", argv, environ);
    _exit(127);
  }
  return pid;
}

static int mode_vfork(int n) {
  for (int i = 0; i < n; ++i) {
    char marker[32];
    snprintf(marker, sizeof marker, "vfork-%d", i);
    pid_t pid = vfork_one(marker);
    check(pid > 0 && wait_ok(pid), "vfork child");
    printf("child %d %s\n", (int)pid, marker);
  }
  spawn_true("parent-after-vfork");
  printf("parent %d\n", (int)getpid());
  return failures != 0;
}

/* Runs fn in a fork child; the child's exec replaces it. */
#define IN_CHILD(name, stmt)                \
  do {                                      \
    fflush(stdout);                         \
    pid_t pid_ = fork();                    \
    if (pid_ == 0) {                        \
      stmt;                                 \
      _exit(127);                           \
    }                                       \
    check(pid_ > 0 && wait_ok(pid_), name); \
  } while (0)

static int mode_execfamily(void) {
  char* v_execv[] = {(char*)"echo", (char*)"via-execv", NULL};
  char* v_execvp[] = {(char*)"echo", (char*)"via-execvp", NULL};
  char* v_execvpe[] = {(char*)"echo", (char*)"via-execvpe", NULL};
  char* v_execve[] = {(char*)"echo", (char*)"via-execve", NULL};
  char* v_fexecve[] = {(char*)"echo", (char*)"via-fexecve", NULL};
  char* v_execveat[] = {(char*)"echo", (char*)"via-execveat", NULL};
  char* v_spawn[] = {(char*)"echo", (char*)"via-posix_spawn", NULL};
  char* v_spawnp[] = {(char*)"echo", (char*)"via-posix_spawnp", NULL};

  IN_CHILD("execl", execl("/bin/echo", "echo", "via-execl", (char*)NULL));
  IN_CHILD("execlp", execlp("echo", "echo", "via-execlp", (char*)NULL));
  IN_CHILD("execle", execle("/bin/echo", "echo", "via-execle", (char*)NULL, environ));
  IN_CHILD("execv", execv("/bin/echo", v_execv));
  IN_CHILD("execvp", execvp("echo", v_execvp));
  IN_CHILD("execvpe", execvpe("echo", v_execvpe, environ));
  IN_CHILD("execve", execve("/bin/echo", v_execve, environ));
  IN_CHILD("fexecve", {
    int fd = open("/bin/echo", O_RDONLY); /* not O_CLOEXEC: fexecve of a script needs it */
    fexecve(fd, v_fexecve, environ);
  });
  IN_CHILD("execveat", execveat(AT_FDCWD, "/bin/echo", v_execveat, environ, 0));
  fflush(stdout);
  int st = system("echo via-system");
  check(st == 0, "system");
  FILE* p = popen("echo via-popen", "r");
  check(p != NULL, "popen");
  if (p) {
    char line[128];
    if (fgets(line, sizeof line, p)) printf("popen-read %s", line);
    check(pclose(p) == 0, "pclose");
  }
  pid_t pid;
  fflush(stdout);
  check(posix_spawn(&pid, "/bin/echo", NULL, NULL, v_spawn, environ) == 0 && wait_ok(pid),
        "posix_spawn");
  check(posix_spawnp(&pid, "echo", NULL, NULL, v_spawnp, environ) == 0 && wait_ok(pid),
        "posix_spawnp");

  /* Failing calls return with the errno of the real call, whatever the hook did. */
  char* v_fail[] = {(char*)"shaudit-fail", NULL};
  errno = 0;
  execve("/nonexistent/shaudit-no-such-file", v_fail, environ);
  printf("execve=%d\n", errno);
  errno = 0;
  execvp("shaudit-no-such-command", v_fail);
  printf("execvp=%d\n", errno);
  errno = 0;
  execv("/etc/passwd", v_fail);
  printf("execv-noexec=%d\n", errno);
  errno = 0;
  fexecve(-1, v_fail, environ);
  printf("fexecve-badfd=%d\n", errno);
  /* More arguments than the hook keeps on its stack: the argv is mmap'ed and unmapped
   * after the failed call, errno intact. */
  errno = 0;
  execl("/nonexistent/shaudit-many-args", "many", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8",
        "a9", "a10", "a11", "a12", "a13", "a14", "a15", "a16", "a17", "a18", "a19", "a20", "a21",
        "a22", "a23", "a24", "a25", "a26", "a27", "a28", "a29", "a30", "a31", "a32", "a33", "a34",
        "a35", "a36", "a37", "a38", "a39", "a40", "a41", "a42", "a43", "a44", "a45", "a46", "a47",
        "a48", "a49", "a50", "a51", "a52", "a53", "a54", "a55", "a56", "a57", "a58", "a59", "a60",
        "a61", "a62", "a63", "a64", "a65", "a66", "a67", "a68", "a69", "a70", "a71", "a72", "a73",
        "a74", "a75", "a76", "a77", "a78", "a79", "a80", "a81", "a82", "a83", "a84", "a85", "a86",
        "a87", "a88", "a89", "a90", "a91", "a92", "a93", "a94", "a95", "a96", "a97", "a98", "a99",
        "a100", "a101", "a102", "a103", "a104", "a105", "a106", "a107", "a108", "a109", "a110",
        "a111", "a112", "a113", "a114", "a115", "a116", "a117", "a118", "a119", "a120", "a121",
        "a122", "a123", "a124", "a125", "a126", "a127", "a128", "a129", "a130", "a131", "a132",
        "a133", "a134", "a135", "a136", "a137", "a138", "a139", "a140", "a141", "a142", "a143",
        "a144", "a145", "a146", "a147", "a148", "a149", "a150", "a151", "a152", "a153", "a154",
        "a155", "a156", "a157", "a158", "a159", "a160", "a161", "a162", "a163", "a164", "a165",
        "a166", "a167", "a168", "a169", "a170", "a171", "a172", "a173", "a174", "a175", "a176",
        "a177", "a178", "a179", "a180", "a181", "a182", "a183", "a184", "a185", "a186", "a187",
        "a188", "a189", "a190", "a191", "a192", "a193", "a194", "a195", "a196", "a197", "a198",
        "a199", "a200", "a201", "a202", "a203", "a204", "a205", "a206", "a207", "a208", "a209",
        "a210", "a211", "a212", "a213", "a214", "a215", "a216", "a217", "a218", "a219", "a220",
        "a221", "a222", "a223", "a224", "a225", "a226", "a227", "a228", "a229", "a230", "a231",
        "a232", "a233", "a234", "a235", "a236", "a237", "a238", "a239", "a240", "a241", "a242",
        "a243", "a244", "a245", "a246", "a247", "a248", "a249", "a250", "a251", "a252", "a253",
        "a254", "a255", "a256", "a257", "a258", "a259", "a260", "a261", "a262", "a263", "a264",
        "a265", "a266", "a267", "a268", "a269", "a270", "a271", "a272", "a273", "a274", "a275",
        "a276", "a277", "a278", "a279", "a280", "a281", "a282", "a283", "a284", "a285", "a286",
        "a287", "a288", "a289", "a290", "a291", "a292", "a293", "a294", "a295", "a296", "a297",
        "a298", "a299", (char*)NULL);
  printf("execl-300=%d\n", errno);
  return failures != 0;
}

static int mode_whoami(void) {
  int mapped = 0;
  FILE* f = fopen("/proc/self/maps", "r");
  if (f) {
    char line[4096];
    while (fgets(line, sizeof line, f))
      if (strstr(line, "libshaudit_preload")) mapped = 1;
    fclose(f);
  }
  printf("uid=%d euid=%d preload=%s ld_preload_env=%s shaudit_socket_env=%s\n", (int)getuid(),
         (int)geteuid(), mapped ? "mapped" : "absent", getenv("LD_PRELOAD") ? "set" : "unset",
         getenv("SHAUDIT_SOCKET") ? "set" : "unset");
  fflush(stdout);
  spawn_true("setuid-probe-marker");
  return failures != 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 2 && strcmp(argv[1], "fds") == 0) return mode_fds();
  if (argc == 4 && strcmp(argv[1], "threads-fork") == 0)
    return mode_threads(atoi(argv[2]), atoi(argv[3]), 0);
  if (argc == 4 && strcmp(argv[1], "threads-spawn") == 0)
    return mode_threads(atoi(argv[2]), atoi(argv[3]), 1);
  if (argc == 3 && strcmp(argv[1], "vfork") == 0) return mode_vfork(atoi(argv[2]));
  if (argc == 2 && strcmp(argv[1], "execfamily") == 0) return mode_execfamily();
  if (argc == 2 && strcmp(argv[1], "whoami") == 0) return mode_whoami();
  fprintf(
      stderr,
      "usage: interposer_probe fds|threads-fork T N|threads-spawn T N|vfork N|execfamily|whoami\n");
  return 2;
}
