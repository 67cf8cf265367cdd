// SPDX-License-Identifier: Apache-2.0
/* libshaudit_preload.so: the exported, interposed entry points (zsh's zleread is in zsh.c).
 * Thin: resolve the real functions in the constructor, report through core.c, call the real
 * function with errno as the caller left it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core.h"
#include "core_internal.h"
#include "lineedit.h"

extern char** environ;

typedef int (*execve_fn)(const char*, char* const[], char* const[]);
typedef int (*execveat_fn)(int, const char*, char* const[], char* const[], int);
typedef int (*fexecve_fn)(int, char* const[], char* const[]);
typedef int (*execv_fn)(const char*, char* const[]);
typedef int (*execvpe_fn)(const char*, char* const[], char* const[]);
typedef int (*spawn_fn)(pid_t*, const char*, const posix_spawn_file_actions_t*,
                        const posix_spawnattr_t*, char* const[], char* const[]);
typedef int (*system_fn)(const char*);
typedef FILE* (*popen_fn)(const char*, const char*);
typedef ssize_t (*read_fn)(int, void*, size_t);
typedef ssize_t (*write_fn)(int, const void*, size_t);
#ifdef __GLIBC__
typedef unsigned long ioctl_req; /* glibc: int ioctl(int, unsigned long, ...) */
#else
typedef int ioctl_req; /* musl: int ioctl(int, int, ...) */
#endif
typedef int (*ioctl_fn)(int, ioctl_req, ...);

static struct {
  execve_fn execve;
  execveat_fn execveat;
  fexecve_fn fexecve;
  execv_fn execv, execvp;
  execvpe_fn execvpe;
  spawn_fn posix_spawn, posix_spawnp;
  system_fn system;
  popen_fn popen;
  read_fn read;
  write_fn write;
  ioctl_fn ioctl;
} real;

#if !defined(__GLIBC__)
/* musl (the build for Alpine-style images) calls ELF constructors with no arguments: the
 * registers that would hold argc, argv and envp hold whatever was there. The environment is
 * `environ` (musl sets it before any constructor runs). argv is found where the kernel put it,
 * on the initial stack just below the environment: [argc][argv...][NULL][envp...][NULL][auxv],
 * with the strings above, up to the executable's name (AT_EXECFN) at the top. Every step is
 * checked; when something else moved environ (an earlier constructor's setenv), no argv:
 * sa_init then takes a shell on a terminal for interactive, and a non-interactive shell's
 * hello names no argv. */
static char** initial_argv(int* argc) {
  char** env = environ;
  const char* top = (const char*)getauxval(AT_EXECFN);
  *argc = 0;
  if (!env || !top || (const char*)env >= top || top - (const char*)env > (64L << 20) ||
      env[-1] != NULL)
    return NULL;
  uintptr_t lo = (uintptr_t)env, hi = (uintptr_t)top;
  char** end = env - 1; /* argv's terminating NULL */
  for (uintptr_t n = 0; n < (hi - lo) / sizeof(char*); ++n) {
    uintptr_t v = (uintptr_t)end[-1 - (ptrdiff_t)n];
    if (v == n) { /* argc */
      *argc = (int)n;
      return end - n;
    }
    if (v <= lo || v > hi) return NULL; /* not a string on the initial stack */
  }
  return NULL;
}
#endif

/* glibc passes argc, argv and envp to constructors (an extension); musl does not. */
__attribute__((constructor)) static void shaudit_preload_init(int argc, char** argv, char** envp) {
  int saved = errno;
#if !defined(__GLIBC__)
  argv = initial_argv(&argc);
  envp = environ;
#endif
  real.execve = (execve_fn)dlsym(RTLD_NEXT, "execve");
  real.execveat = (execveat_fn)dlsym(RTLD_NEXT, "execveat");
  real.fexecve = (fexecve_fn)dlsym(RTLD_NEXT, "fexecve");
  real.execv = (execv_fn)dlsym(RTLD_NEXT, "execv");
  real.execvp = (execv_fn)dlsym(RTLD_NEXT, "execvp");
  real.execvpe = (execvpe_fn)dlsym(RTLD_NEXT, "execvpe");
  real.posix_spawn = (spawn_fn)dlsym(RTLD_NEXT, "posix_spawn");
  real.posix_spawnp = (spawn_fn)dlsym(RTLD_NEXT, "posix_spawnp");
  real.system = (system_fn)dlsym(RTLD_NEXT, "system");
  real.popen = (popen_fn)dlsym(RTLD_NEXT, "popen");
  real.read = (read_fn)dlsym(RTLD_NEXT, "read");
  real.write = (write_fn)dlsym(RTLD_NEXT, "write");
  real.ioctl = (ioctl_fn)dlsym(RTLD_NEXT, "ioctl");
  sa_init(argc, argv, envp);
  errno = saved;
}

/* At exit (exit(3), the shell's `exit`): one last try to deliver what the daemon has not taken
 * yet, so lines typed while shauditd was away are not lost with the process. Never blocks. */
__attribute__((destructor)) static void shaudit_preload_fini(void) {
  int saved = errno;
  sa_fini();
  errno = saved;
}

/* ------------------------------------------------------------------ exec family */

EXPORT int execve(const char* path, char* const argv[], char* const envp[]) {
  int saved = errno;
  sa_report_exec(path, argv, 0);
  errno = saved;
  if (!real.execve) return errno = ENOSYS, -1;
  return real.execve(path, argv, envp);
}

EXPORT int execveat(int dirfd, const char* path, char* const argv[], char* const envp[],
                    int flags) {
  int saved = errno;
  const char* volatile p = path; /* may be "" with AT_EMPTY_PATH */
  sa_report_exec(p && p[0] ? p : NULL, argv, 0);
  errno = saved;
  /* musl (1.2.3, Debian's) has no execveat(): a program reaches this one only through
   * dlsym or its own declaration; it gets the system call, as from glibc's. */
  if (!real.execveat) {
#ifdef SYS_execveat
    return (int)syscall(SYS_execveat, dirfd, path, argv, envp, flags);
#else
    return errno = ENOSYS, -1;
#endif
  }
  return real.execveat(dirfd, path, argv, envp, flags);
}

EXPORT int fexecve(int fd, char* const argv[], char* const envp[]) {
  int saved = errno;
  char link[32] = "/proc/self/fd/", digits[12], target[4096];
  size_t d = 0, at = 14; /* strlen("/proc/self/fd/") */
  for (unsigned v = (unsigned)fd; d == 0 || v; v /= 10) digits[d++] = (char)('0' + v % 10);
  while (d) link[at++] = digits[--d]; /* no stdio in a hook */
  link[at] = 0;
  ssize_t n = fd >= 0 ? readlink(link, target, sizeof target - 1) : -1;
  target[n > 0 ? n : 0] = 0;
  sa_report_exec(n > 0 ? target : NULL, argv, 0);
  errno = saved;
  if (!real.fexecve) return errno = ENOSYS, -1;
  return real.fexecve(fd, argv, envp);
}

EXPORT int execv(const char* path, char* const argv[]) {
  int saved = errno;
  sa_report_exec(path, argv, 0);
  errno = saved;
  if (!real.execv) return errno = ENOSYS, -1;
  return real.execv(path, argv);
}

EXPORT int execvp(const char* file, char* const argv[]) {
  int saved = errno;
  sa_report_exec(file, argv, SA_EXEC_SEARCH);
  errno = saved;
  if (!real.execvp) return errno = ENOSYS, -1;
  return real.execvp(file, argv);
}

EXPORT int execvpe(const char* file, char* const argv[], char* const envp[]) {
  int saved = errno;
  sa_report_exec(file, argv, SA_EXEC_SEARCH);
  errno = saved;
  if (!real.execvpe) return errno = ENOSYS, -1;
  return real.execvpe(file, argv, envp);
}

/* execl family: the variadic arguments become an argv on the stack (or an anonymous mapping
 * for very long lists); then the execv/execvp/execve path above reports and runs it. */
#define SA_STACK_ARGS 256
enum { VIA_EXECV, VIA_EXECVP, VIA_EXECVE };

static int exec_list(int via, const char* path, const char* arg, va_list ap) {
  va_list cp;
  va_copy(cp, ap);
  size_t count = 1;
  while (va_arg(cp, char*)) ++count;
  va_end(cp);
  char* stack[SA_STACK_ARGS];
  char** argv = stack;
  size_t maplen = 0;
  if (count + 1 > SA_STACK_ARGS) {
    maplen = (count + 1) * sizeof(char*);
    void* p = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return errno = E2BIG, -1;
    argv = p;
  }
  argv[0] = (char*)arg;
  for (size_t i = 1; i <= count; ++i) argv[i] = va_arg(ap, char*); /* ends with the NULL */
  int rc;
  if (via == VIA_EXECVE)
    rc = execve(path, argv, va_arg(ap, char**)); /* execle: the environment follows the NULL */
  else if (via == VIA_EXECVP)
    rc = execvp(path, argv);
  else
    rc = execv(path, argv);
  int e = errno;
  if (maplen) munmap(argv, maplen);
  errno = e;
  return rc;
}

EXPORT int execl(const char* path, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  int rc = exec_list(VIA_EXECV, path, arg, ap);
  va_end(ap);
  return rc;
}

EXPORT int execlp(const char* file, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  int rc = exec_list(VIA_EXECVP, file, arg, ap);
  va_end(ap);
  return rc;
}

EXPORT int execle(const char* path, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  int rc = exec_list(VIA_EXECVE, path, arg, ap);
  va_end(ap);
  return rc;
}

EXPORT int posix_spawn(pid_t* pid, const char* path, const posix_spawn_file_actions_t* fa,
                       const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
  int saved = errno;
  sa_report_exec(path, argv, SA_EXEC_SPAWN);
  errno = saved;
  if (!real.posix_spawn) return ENOSYS;
  return real.posix_spawn(pid, path, fa, attr, argv, envp);
}

EXPORT int posix_spawnp(pid_t* pid, const char* file, const posix_spawn_file_actions_t* fa,
                        const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
  int saved = errno;
  sa_report_exec(file, argv, SA_EXEC_SEARCH | SA_EXEC_SPAWN);
  errno = saved;
  if (!real.posix_spawnp) return ENOSYS;
  return real.posix_spawnp(pid, file, fa, attr, argv, envp);
}

EXPORT int system(const char* cmd) {
  int saved = errno;
  if (cmd) sa_report_shell_command(cmd);
  errno = saved;
  if (!real.system) return errno = ENOSYS, -1;
  return real.system(cmd);
}

EXPORT FILE* popen(const char* cmd, const char* mode) {
  int saved = errno;
  if (cmd) sa_report_shell_command(cmd);
  errno = saved;
  if (!real.popen) return errno = ENOSYS, NULL;
  return real.popen(cmd, mode);
}

/* ------------------------------------------------------------------ terminal input */

EXPORT ssize_t read(int fd, void* buf, size_t count) {
  if (fd == 0 && sa_le_active) { /* ksh93: lines its history did not take (lineedit.c) */
    int saved = errno;
    sa_le_before_read(fd);
    errno = saved;
  }
  ssize_t n = real.read ? real.read(fd, buf, count) : (errno = ENOSYS, -1);
  if (fd == 0 && n > 0 && sa_shell_kind() >= SA_SHELL_BASH) {
    int saved = errno;
    sa_after_read(fd, buf, n);
    errno = saved;
  }
  return n;
}

/* ksh93's history file and mksh's echo (lineedit.c); a test of one int for other programs. */
EXPORT ssize_t write(int fd, const void* buf, size_t count) {
  if (!real.write) { /* called before the constructor (another library's): resolve now */
    int saved = errno;
    real.write = (write_fn)dlsym(RTLD_NEXT, "write");
    errno = saved;
  }
  ssize_t n = real.write ? real.write(fd, buf, count) : (errno = ENOSYS, -1);
  if (n > 0 && sa_le_active) {
    int saved = errno;
    sa_le_after_write(fd, buf, n);
    errno = saved;
  }
  return n;
}

/* mksh asks the terminal's size before each prompt: what tells its command lines from its read
 * builtin's input when it reads in canonical mode (lineedit.c). The third argument is passed on
 * as the pointer-sized value it is in the calling convention. */
EXPORT int ioctl(int fd, ioctl_req request, ...) {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (!real.ioctl) { /* called before the constructor (another library's): resolve now */
    int saved = errno;
    real.ioctl = (ioctl_fn)dlsym(RTLD_NEXT, "ioctl");
    errno = saved;
  }
  int r = real.ioctl ? real.ioctl(fd, request, arg) : (errno = ENOSYS, -1);
  if (r == 0 && request == TIOCGWINSZ && sa_le_active) {
    int saved = errno;
    sa_le_after_winsz(fd);
    errno = saved;
  }
  return r;
}
