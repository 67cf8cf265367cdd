// SPDX-License-Identifier: Apache-2.0
/* Interposer core. See core.h for the rules every function here follows. */
#define _GNU_SOURCE
#include "core.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "core_internal.h"
#include "lineedit.h"
#include "shaudit/siphash.h"
#include "shaudit/wire.h"
#include "shaudit/wire_connect.h"
#include "shaudit/wire_encode.h"

#define SA_HIGH_FD 987    /* the socket lives on a high fd, away from the shell's own */
#define SA_STACK_MSG 8192 /* messages up to this size are built on the stack */
#define SA_BACKLOG 65536  /* bytes of reports held while the daemon is unreachable */
#define SA_RETRY_NS 1000000000LL
#define SA_CHILD_SLOTS 8
#define SA_TTY_MAX 4096
#define SA_TURN_MAX_NS 50000000LL /* a sender waits for another thread's send 50 ms at most */

struct sa_child_slot {
  pid_t pid;
  uint64_t seq;
};

static struct {
  int enabled;
  int shell;
  int repl; /* reads lines through readline/libedit (repl.c): named repl_name */
  int interactive;
  int host_wide;
  int secure;
  int kernel_execs; /* 0: not known yet; 1: shauditd records execs from the kernel; -1: not */
  pid_t owner;      /* the process this state belongs to */
  int fd;           /* connected socket or -1 */
  dev_t sock_dev;   /* identity of our socket: a dup2 over it is detected */
  ino_t sock_ino;
  uint64_t seq;            /* last report number (owner only) */
  int64_t next_connect_ns; /* no reconnect attempts before this ... */
  ino_t failed_ino;        /* ... unless the socket file is no longer this one (0: none) */
  char socket_path[sizeof(((struct sockaddr_un*)0)->sun_path)];
  char session[128];
  /* typed commands */
  uint64_t cmd_no;     /* number of the current typed command */
  pid_t cmd_pid;       /* the shell that read it (inherited by children) */
  uint32_t line_index; /* continuation lines seen for the current command */
  int64_t cmd_start_ns;
  int status_pending;
  uint8_t hash_key[16];
  int hash_key_sent;
  /* tty line assembly (dash path) */
  char tty_buf[SA_TTY_MAX];
  size_t tty_len;
  /* backlog of whole messages while the daemon is away */
  char backlog[SA_BACKLOG];
  size_t backlog_len;
  int backlog_busy;
  int backlog_full;          /* a report did not fit: hold no later one until it drains */
  int bash_cloexec;          /* bash: the socket was made close-on-exec for an exec attempt */
  int turn;                  /* a thread is numbering and sending (send_turn_take) */
  unsigned long turn_holder; /* its thread (pthread_self) */
  struct sa_child_slot children[SA_CHILD_SLOTS];
} S; /* zero-initialised, so in .bss: the 64 KiB backlog costs no file-backed pages at
      * load; sa_init sets fd to -1 before anything can use it (no hook acts before S.enabled) */

/* ------------------------------------------------------------------ helpers */

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t real_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static size_t sa_strlen(const char* s) {
  return s ? strlen(s) : 0;
}

static const char* env_get(char** envp, const char* name) {
  size_t n = strlen(name);
  for (char** e = envp; e && *e; ++e)
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
  return NULL;
}

static const char* base_name(const char* p) {
  const char* b = strrchr(p, '/');
  return b ? b + 1 : p;
}

/* ------------------------------------------------------------------ messages */

/* A message under construction: on the caller's stack, or mmap'ed when it is big. */
struct sa_msg {
  struct shaudit_enc e;
  char* mapped;
  size_t mapped_len;
};

static void msg_begin(struct sa_msg* m, char* stack, size_t stack_cap, size_t need, uint16_t type) {
  m->mapped = NULL;
  if (need > stack_cap) {
    size_t cap = need > SHAUDIT_WIRE_MAX_MESSAGE ? SHAUDIT_WIRE_MAX_MESSAGE : need;
    void* p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
      m->mapped = p;
      m->mapped_len = cap;
      stack = p;
      stack_cap = cap;
    }
  }
  shaudit_enc_begin(&m->e, stack, stack_cap, type);
  /* Short-lived processes are often gone before the daemon reads /proc: say who the parent
   * is, for the daemon to use (as a claim) only then. */
  shaudit_enc_u64(&m->e, SHAUDIT_F_PPID, (uint64_t)getppid());
}

static void msg_end(struct sa_msg* m) {
  if (m->mapped) munmap(m->mapped, m->mapped_len);
  m->mapped = NULL;
}

static int msg_add(struct sa_msg* m, uint16_t tag, const void* data, size_t len) {
  return shaudit_enc_add(&m->e, tag, data, len);
}
static void msg_add_str(struct sa_msg* m, uint16_t tag, const char* s) {
  shaudit_enc_str(&m->e, tag, s);
}
static void msg_add_u64(struct sa_msg* m, uint16_t tag, uint64_t v) {
  shaudit_enc_u64(&m->e, tag, v);
}

/* ------------------------------------------------------------------ socket */

static int socket_ok(int fd) {
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return 0;
  return S_ISSOCK(st.st_mode) && st.st_dev == S.sock_dev && st.st_ino == S.sock_ino;
}

/* Connects a new socket on a high fd; returns it or -1. Does not touch S. */
static int connect_new(dev_t* dev, ino_t* ino) {
  int fd = shaudit_wire_connect(S.socket_path, SHAUDIT_CONNECT_NONBLOCK, 0);
  if (fd < 0) return -1;
  /* Move it out of the way of the program's own descriptors. */
  int high = fcntl(fd, F_DUPFD_CLOEXEC, SA_HIGH_FD);
  if (high >= 0) {
    close(fd);
    fd = high;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return -1;
  }
  *dev = st.st_dev;
  *ino = st.st_ino;
  return fd;
}

/* The owner's socket, connecting lazily (at most once per second after a failure). */
static int owner_fd(void) {
  int fd = __atomic_load_n(&S.fd, __ATOMIC_ACQUIRE);
  if (fd >= 0 && socket_ok(fd)) {
    if (S.bash_cloexec) { /* an exec attempt returned (failed): inheritable again */
      fcntl(fd, F_SETFD, 0);
      S.bash_cloexec = 0;
    }
    return fd;
  }
  /* Closed by the program (closefrom) or replaced (dup2 over it): forget it, never close
   * what is now the program's descriptor. */
  if (fd >= 0) __atomic_compare_exchange_n(&S.fd, &fd, -1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
  int64_t now = mono_ns();
  if (now < __atomic_load_n(&S.next_connect_ns, __ATOMIC_RELAXED)) {
    /* Within the pause after a failed connect, retry at once only when a daemon (re)started
     * meanwhile: the socket file is back, as a new file. One stat(2). */
    struct stat st;
    if (stat(S.socket_path, &st) != 0 || !S_ISSOCK(st.st_mode) ||
        st.st_ino == __atomic_load_n(&S.failed_ino, __ATOMIC_RELAXED))
      return -1;
  }
  dev_t dev;
  ino_t ino;
  int nfd = connect_new(&dev, &ino);
  if (nfd < 0) {
    struct stat st;
    __atomic_store_n(&S.failed_ino, stat(S.socket_path, &st) == 0 ? st.st_ino : 0,
                     __ATOMIC_RELAXED);
    __atomic_store_n(&S.next_connect_ns, now + SA_RETRY_NS, __ATOMIC_RELAXED);
    return -1;
  }
  /* bash takes any close-on-exec descriptor at or above 10 for one of its own saved ones:
   * `exec 987>file` would be undone (fd 987 restored to our socket, so the user's later
   * `>&987` writes went to the daemon). In bash the socket is inheritable instead: fork
   * children close it (after_fork_child) and an exec marks it close-on-exec first. */
  if (S.shell == SA_SHELL_BASH) {
    fcntl(nfd, F_SETFD, 0);
    S.bash_cloexec = 0;
  }
  int expected = -1;
  if (!__atomic_compare_exchange_n(&S.fd, &expected, nfd, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    close(nfd); /* another thread connected first: keep its socket and its identity */
    return expected;
  }
  S.sock_dev = dev;
  S.sock_ino = ino;
  return nfd;
}

/* 0 when sent; else the errno (EAGAIN: the daemon is busy; EPIPE and friends: it is gone). */
static int send_raw(int fd, const void* buf, size_t len) {
  ssize_t n;
  do {
    n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n == (ssize_t)len) return 0;
  return n < 0 ? errno : EMSGSIZE;
}

/* The daemon went away (restart): drop our end so the next report reconnects at once. */
static void drop_owner_fd(int fd) {
  if (__atomic_compare_exchange_n(&S.fd, &fd, -1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) close(fd);
  __atomic_store_n(&S.next_connect_ns, 0, __ATOMIC_RELAXED);
}

static int peer_gone(int err) {
  return err == EPIPE || err == ECONNRESET || err == ENOTCONN || err == ECONNREFUSED;
}

static int is_owner(void) {
  return getpid() == S.owner;
}

/* Report number for this process. A vfork child shares the parent's memory: it numbers its
 * reports in a side table so the parent's counter is untouched. */
static uint64_t next_seq(int owner) {
  if (owner) return __atomic_add_fetch(&S.seq, 1, __ATOMIC_RELAXED);
  pid_t me = getpid();
  struct sa_child_slot* slot = &S.children[(unsigned)me % SA_CHILD_SLOTS];
  if (slot->pid != me) {
    slot->pid = me;
    slot->seq = 0;
  }
  return ++slot->seq;
}

/* Sends what the backlog holds, oldest first; 0 when it is empty afterwards. */
static int backlog_flush(int fd) {
  if (S.backlog_len == 0) return 0;
  if (__atomic_exchange_n(&S.backlog_busy, 1, __ATOMIC_ACQUIRE)) return EAGAIN;
  size_t off = 0;
  int err = 0;
  while (off < S.backlog_len) {
    struct shaudit_wire_header h;
    memcpy(&h, S.backlog + off, sizeof h);
    if ((err = send_raw(fd, S.backlog + off, h.length)) != 0) break;
    off += h.length;
  }
  memmove(S.backlog, S.backlog + off, S.backlog_len - off);
  S.backlog_len -= off;
  if (S.backlog_len == 0) S.backlog_full = 0;
  __atomic_store_n(&S.backlog_busy, 0, __ATOMIC_RELEASE);
  return err;
}

static void send_hello_into_backlog(uint64_t seq);

/* The daemon reads a gap in report numbers as loss, so the owner's threads number and send
 * in one turn: a thread that finds the turn taken yields, a bounded number of times. Not a
 * lock that can hang the program: a thread that already holds the turn (a signal handler
 * interrupting a send) or waited too long goes ahead unordered (the daemon may then note a
 * gap), and a fork child starts with the turn free. Returns whether the turn was taken. */
static int send_turn_take(void) {
  unsigned long tid = (unsigned long)pthread_self(); /* the thread pointer: no syscall */
  if (__atomic_load_n(&S.turn_holder, __ATOMIC_RELAXED) == tid) return 0;
  int64_t give_up = 0;
  for (int i = 0;; ++i) {
    if (!__atomic_exchange_n(&S.turn, 1, __ATOMIC_ACQUIRE)) {
      __atomic_store_n(&S.turn_holder, tid, __ATOMIC_RELAXED);
      return 1;
    }
    /* Bounded by time, not by tries: on a loaded machine the holder may be preempted for a
     * whole time slice while others yield quickly. */
    if ((i & 63) == 0) {
      int64_t now = mono_ns();
      if (give_up == 0)
        give_up = now + SA_TURN_MAX_NS;
      else if (now > give_up)
        return 0;
    }
    sched_yield();
  }
}

static void send_turn_give(int held) {
  if (!held) return;
  __atomic_store_n(&S.turn_holder, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&S.turn, 0, __ATOMIC_RELEASE);
}

static void backlog_add(char* buf, size_t len, int is_hello) {
  /* A backlog begins with a fresh hello, so a daemon that restarted meanwhile learns who
   * this process is (and opens its implicit session) before its held reports. The hello
   * takes this message's report number and the message the next one: numbers stay in the
   * order the daemon reads them (no false gap, no report out of order). */
  if (S.backlog_len == 0 && !is_hello) {
    struct shaudit_wire_header h;
    memcpy(&h, buf, sizeof h);
    send_hello_into_backlog(h.report_seq);
    h.report_seq = next_seq(1);
    memcpy(buf, &h, sizeof h);
  }
  if (__atomic_exchange_n(&S.backlog_busy, 1, __ATOMIC_ACQUIRE)) return; /* lost: seq gap */
  if (!S.backlog_full && S.backlog_len + len <= SA_BACKLOG) {
    memcpy(S.backlog + S.backlog_len, buf, len);
    S.backlog_len += len;
  } else {
    /* Lost: the daemon sees the gap in report numbers and writes a loss record. Later,
     * smaller reports are lost too, so the held reports stay a prefix and the loss one
     * range (not a status whose command line was lost, between several gaps). */
    S.backlog_full = 1;
  }
  __atomic_store_n(&S.backlog_busy, 0, __ATOMIC_RELEASE);
}

/* Owner: sends what the backlog holds, then buf (when given), on the owner's socket; a daemon
 * that went away (restart) is reconnected once, at once. 1 when everything went out. */
static int flush_and_send(const char* buf, size_t len) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = owner_fd();
    if (fd < 0) return 0;
    int err = backlog_flush(fd);
    if (err == 0 && buf) err = send_raw(fd, buf, len);
    if (err == 0) return 1;
    if (!peer_gone(err)) return 0; /* busy: keep order through the backlog */
    drop_owner_fd(fd);
  }
  return 0;
}

/* Numbers, finishes and sends a message; never blocks. */
static void msg_send(struct sa_msg* m) {
  int owner = is_owner();
  struct shaudit_wire_header h0;
  memcpy(&h0, m->e.buf, sizeof h0);
  int is_hello = h0.type == SHAUDIT_MSG_HELLO;
  char* buf = m->e.buf;
  if (owner) {
    int held = send_turn_take();
    size_t len = shaudit_enc_finish(&m->e, next_seq(1), real_ns());
    if (!flush_and_send(buf, len)) backlog_add(buf, len, is_hello);
    send_turn_give(held);
    return;
  }
  size_t len = shaudit_enc_finish(&m->e, next_seq(0), real_ns());
  /* vfork child: the inherited socket if it is still ours, else a temporary one. */
  int fd = S.fd;
  if (fd >= 0 && socket_ok(fd)) {
    send_raw(fd, buf, len);
    return;
  }
  dev_t dev;
  ino_t ino;
  fd = connect_new(&dev, &ino);
  if (fd >= 0) {
    send_raw(fd, buf, len);
    close(fd);
  }
}

/* ------------------------------------------------------------------ init */

static char S_exe[PATH_MAX]; /* /proc/self/exe, read in sa_init for shells (else empty) */

/* A non-interactive shell (sh -c CMD, a script; ssh host CMD) names its own argv in its
 * hello: its parent (sshd, cron, a program without the interposer) may not have reported it. */
static char** S_self_argv;

static size_t hello_size(void) {
  size_t need = 1024 + PATH_MAX;
  for (char** a = S_self_argv; a && *a; ++a) need += sizeof(struct shaudit_wire_field) + strlen(*a);
  return need;
}

/* HELLO: who this process is (its executable, claimed session, shell and terminal). */
static void build_hello(struct sa_msg* m, char* stack, size_t cap) {
  msg_begin(m, stack, cap, hello_size(), SHAUDIT_MSG_HELLO);
  if (S_exe[0]) msg_add(m, SHAUDIT_F_EXE, S_exe, strlen(S_exe));
  if (S.session[0]) msg_add_str(m, SHAUDIT_F_SESSION, S.session);
  uint64_t hf = (S.shell ? SHAUDIT_HELLO_SHELL : 0) | (S.repl ? SHAUDIT_HELLO_REPL : 0) |
                (S.interactive ? SHAUDIT_HELLO_INTERACTIVE : 0) |
                (S.host_wide ? SHAUDIT_HELLO_HOST_WIDE : 0) | (S.secure ? SHAUDIT_HELLO_SECURE : 0);
  msg_add_u64(m, SHAUDIT_F_HELLO_FLAGS, hf);
  if (S.interactive) {
    char tty[128];
    ssize_t t = readlink("/proc/self/fd/0", tty, sizeof tty);
    if (t > 0) msg_add(m, SHAUDIT_F_TTY, tty, (size_t)t);
  }
  for (char** a = S_self_argv; a && *a; ++a)
    if (msg_add(m, SHAUDIT_F_ARGV, *a, strlen(*a)) != 0) break;
}

static void send_hello(void) {
  char stack[1024 + PATH_MAX];
  struct sa_msg m;
  build_hello(&m, stack, sizeof stack);
  msg_send(&m);
  msg_end(&m);
}

static void send_hello_into_backlog(uint64_t seq) {
  char stack[1024 + PATH_MAX];
  struct sa_msg m;
  build_hello(&m, stack, sizeof stack);
  size_t len = shaudit_enc_finish(&m.e, seq, real_ns());
  backlog_add(m.e.buf, len, 1);
  msg_end(&m);
}

static void after_fork_child(void) {
  /* A forked child has its own copy of the state: it numbers its own reports from 1 and
   * connects its own socket at its first report. */
  S.owner = getpid();
  S.seq = 0;
  if (S.fd >= 0 && socket_ok(S.fd)) close(S.fd);
  S.fd = -1;
  S.next_connect_ns = 0;
  S.backlog_len = 0;
  S.backlog_busy = 0;
  S.backlog_full = 0;
  S.bash_cloexec = 0;
  S.turn = 0;
  S.turn_holder = 0;
  S.tty_len = 0;
  S.status_pending = 0;
}

/* Writes "<socket dir>/<a><b>" into out (sizeof S.socket_path + 40 bytes; a and b short): the
 * files shauditd publishes beside its socket. */
static void beside_socket(char* out, const char* a, const char* b) {
  const char* slash = strrchr(S.socket_path, '/');
  size_t n = slash ? (size_t)(slash - S.socket_path) : 0;
  memcpy(out, S.socket_path, n);
  out[n++] = '/';
  size_t la = strlen(a), lb = strlen(b);
  memcpy(out + n, a, la);
  memcpy(out + n + la, b, lb + 1);
}

static int is_audited_host_wide(void) {
  /* Host-wide mode: audited only when this process's kernel audit session id is listed in
   * the table the daemon publishes: <socket dir>/sessions/<id>. Cost: 4 syscalls. */
  char sid[24];
  int fd = open("/proc/self/sessionid", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  /* pread, not read: read() here would be this library's own hook, which takes fd 0 (when the
   * program started with it closed, open() returns 0) for terminal input. */
  ssize_t n = pread(fd, sid, sizeof sid - 1, 0);
  close(fd);
  if (n <= 0) return 0;
  sid[n] = 0;
  if (strcmp(sid, "4294967295") == 0) return 0; /* no login session */
  char path[sizeof S.socket_path + 40];
  beside_socket(path, "sessions/", sid);
  return access(path, F_OK) == 0;
}

/* Container mode: the interposer at SHAUDIT_CONTAINER_DIR (where the base layer and
 * shaudit-oci-runtime put it inside containers) audits every process of the container, as if
 * preloaded through the environment: the container is the session boundary, and a shell
 * started there with a terminal (`runc exec -t`, `kubectl exec -it`) opens a session. No
 * syscall: dladdr reads the loader's own list. */
#define SHAUDIT_CONTAINER_DIR "/usr/lib/shaudit/"
static int loaded_in_container_mode(void) {
  Dl_info info;
  if (!dladdr((void*)&loaded_in_container_mode, &info) || !info.dli_fname) return 0;
  return strncmp(info.dli_fname, SHAUDIT_CONTAINER_DIR, sizeof SHAUDIT_CONTAINER_DIR - 1) == 0;
}

static int loaded_by_env(char** envp) {
  const char* pre = env_get(envp, "LD_PRELOAD");
  return pre && strstr(pre, "libshaudit_preload") != NULL;
}

/* Whether some loaded object may define name: its GNU hash Bloom filter can only say "no" for
 * sure. A failed dlsym costs a malloc'ed error (in a /bin/true, the first malloc: heap set-up,
 * getrandom, brk and page faults, about 7 µs here); this check costs no syscall and no
 * allocation, so only a likely shell pays for dlsym. */
struct sa_sym_probe {
  uint32_t hash;
  int maybe;
};

static int sym_probe_object(struct dl_phdr_info* info, size_t size, void* data) {
  (void)size;
  struct sa_sym_probe* p = data;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    if (info->dlpi_phdr[i].p_type != PT_DYNAMIC) continue;
    const ElfW(Dyn)* d = (const ElfW(Dyn)*)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    for (; d->d_tag != DT_NULL; ++d) {
      if (d->d_tag != DT_GNU_HASH) continue;
      ElfW(Addr) at = d->d_un.d_ptr;
      if (at < info->dlpi_addr) at += info->dlpi_addr; /* not relocated in place (vdso) */
      const uint32_t* h = (const uint32_t*)at;
      uint32_t words = h[2], shift = h[3];
      const ElfW(Addr)* bloom = (const ElfW(Addr)*)(h + 4);
      const unsigned bits = sizeof(ElfW(Addr)) * 8;
      ElfW(Addr) w = bloom[(p->hash / bits) & (words - 1)];
      if (!((w >> (p->hash % bits)) & (w >> ((p->hash >> shift) % bits)) & 1)) return 0;
      break;
    }
    p->maybe = 1; /* in its filter, or an object without one: ask dlsym */
    return 1;
  }
  return 0;
}

static int may_define(const char* name) {
  struct sa_sym_probe p = {5381, 0};
  for (const unsigned char* c = (const unsigned char*)name; *c; ++c) p.hash = p.hash * 33 + *c;
  dl_iterate_phdr(sym_probe_object, &p);
  return p.maybe;
}

/* bash and zsh are known by their symbols, whatever the executable is called. */
static int linked_shell(void) {
  if (may_define("rl_deprep_term_function") && dlsym(RTLD_DEFAULT, "rl_deprep_term_function") &&
      dlsym(RTLD_DEFAULT, "current_command_line_count"))
    return SA_SHELL_BASH;
  if (may_define("zle_entry_ptr") && dlsym(RTLD_DEFAULT, "zle_entry_ptr") &&
      dlsym(RTLD_DEFAULT, "lastval"))
    return SA_SHELL_ZSH;
  return SA_SHELL_NONE;
}

/* The shells whose lines are read from the terminal are known by name. */
static int tty_shell_named(const char* exe) {
  const char* b = base_name(exe);
  static const char* const tty_shells[] = {"dash", "sh",   "ash",  "ksh",  "ksh93",
                                           "mksh", "posh", "yash", "lksh", NULL};
  for (int i = 0; tty_shells[i]; ++i)
    if (strcmp(b, tty_shells[i]) == 0) return SA_SHELL_TTY;
  return SA_SHELL_NONE;
}

/* Long options that take the next argument as their value (bash). */
static int long_takes_value(const char* name, const char* opt) {
  if (strcmp(name, "bash") == 0)
    return strcmp(opt, "--rcfile") == 0 || strcmp(opt, "--init-file") == 0;
  return 0;
}

SA_HIDDEN int sa_shell_args(const char* name, int argc, char* const argv[]) {
  /* Option letters that take the next argument as their value, per shell. */
  const char* takes = "o";
  if (strcmp(name, "bash") == 0)
    takes = "oO";
  else if (strcmp(name, "mksh") == 0 || strcmp(name, "lksh") == 0)
    takes = "oT";
  else if (strcmp(name, "ksh") == 0 || strcmp(name, "ksh93") == 0)
    takes = "oR";
  int runs = 0, i = 1;
  while (i < argc && argv[i]) {
    const char* a = argv[i];
    if (strcmp(a, "--") == 0 || strcmp(a, "-") == 0) {
      ++i;
      break;
    }
    if (a[0] == '-' && a[1] == '-') { /* a long option; some take the next argument */
      i += 1 + (long_takes_value(name, a) && i + 1 < argc);
      continue;
    }
    if ((a[0] != '-' && a[0] != '+') || a[1] == 0) break; /* the first operand */
    int values = 0;
    for (const char* c = a + 1; *c; ++c) {
      if (a[0] == '-' && *c == 'c') runs |= SA_ARGS_COMMAND;
      if (a[0] == '-' && *c == 's') runs |= SA_ARGS_STDIN;
      if (strchr(takes, *c)) ++values;
    }
    i += 1 + values;
  }
  /* An operand: the command string's name with -c, a positional parameter with -s, else the
   * script to run. */
  if (i < argc && argv[i] && !(runs & (SA_ARGS_COMMAND | SA_ARGS_STDIN))) runs |= SA_ARGS_FILE;
  return runs;
}

static void read_self_exe(void) {
  ssize_t n = readlink("/proc/self/exe", S_exe, sizeof S_exe - 1);
  S_exe[n > 0 ? n : 0] = 0;
}

/* Tells the kernel side, without any message, that this image carries the genuine interposer:
 * a prctl() with an option the kernel does not know (it fails with EINVAL, errno kept), which
 * shauditd's eBPF program accepts only from code in the configured library file
 * (bpf/proc.bpf.c, handle_prctl). So only processes with something to report (shells) connect. */
static void announce_to_kernel(void) {
  /* The system call instruction itself must be in this library (libc's syscall() would put it
   * in libc), so it is made here; no errno to keep. */
#if defined(__x86_64__)
  long ret;
  register long r10 __asm__("r10") = 0;
  register long r8 __asm__("r8") = 0;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "0"((long)SYS_prctl), "D"((long)SHAUDIT_PRCTL_MARK), "S"(0L), "d"(0L),
                     "r"(r10), "r"(r8)
                   : "rcx", "r11", "memory");
  (void)ret;
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = SYS_prctl;
  register long x0 __asm__("x0") = (long)SHAUDIT_PRCTL_MARK;
  register long x1 __asm__("x1") = 0, x2 __asm__("x2") = 0, x3 __asm__("x3") = 0,
                   x4 __asm__("x4") = 0;
  __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4) : "memory");
#else
  int saved = errno; /* (the kernel side will not accept it from libc: not audited here) */
  syscall(SYS_prctl, (long)SHAUDIT_PRCTL_MARK, 0L, 0L, 0L, 0L);
  errno = saved;
#endif
}

SA_HIDDEN void sa_init(int argc, char** argv, char** envp) {
  S.fd = -1;
  S.owner = getpid();
  S.secure = getauxval(AT_SECURE) != 0;
  /* In secure-execution mode SHAUDIT_* variables are ignored. */
  const char* sock = S.secure ? NULL : env_get(envp, "SHAUDIT_SOCKET");
  if (!sock || !*sock) sock = SHAUDIT_DEFAULT_SOCKET;
  if (strlen(sock) >= sizeof S.socket_path) return;
  memcpy(S.socket_path, sock, strlen(sock) + 1);
  const char* sess = S.secure ? NULL : env_get(envp, "SHAUDIT_SESSION");
  if (sess && strlen(sess) < sizeof S.session) memcpy(S.session, sess, strlen(sess) + 1);

  S.host_wide = !loaded_by_env(envp) && !loaded_in_container_mode();
  if (S.host_wide && !is_audited_host_wide()) return; /* stay a no-op */
  S.enabled = 1;
  announce_to_kernel();
  pthread_atfork(NULL, NULL, after_fork_child);

  /* The shell check goes by the name the program was started under; /proc/self/exe (the
   * process's first /proc lookup, ~9 µs) is read only for a shell, or for a program started
   * through a symlink (/bin/sh -> dash), to name it. Other programs' hellos carry no exe:
   * nothing records it for them, and the kernel side knows the file anyway. */
  const char* execfn = (const char*)getauxval(AT_EXECFN);
  if (!execfn) execfn = "";
  S.shell = linked_shell();
  if (S.shell == SA_SHELL_NONE) S.shell = tty_shell_named(execfn);
  struct stat lst;
  if (S.shell == SA_SHELL_NONE && lstat(execfn, &lst) == 0 && S_ISLNK(lst.st_mode)) {
    read_self_exe();
    S.shell = tty_shell_named(S_exe);
  }
  if (S.shell != SA_SHELL_NONE && !S_exe[0]) read_self_exe();
  if (S.shell != SA_SHELL_NONE) {
    const char* name = S.shell == SA_SHELL_BASH  ? "bash"
                       : S.shell == SA_SHELL_ZSH ? "zsh"
                                                 : base_name(S_exe[0] ? S_exe : execfn);
    int runs = argv ? sa_shell_args(name, argc, argv) : 0;
    struct termios t;
    S.interactive = !(runs & (SA_ARGS_COMMAND | SA_ARGS_FILE)) && ioctl(0, TCGETS, &t) == 0;
    if (!S.interactive) S_self_argv = argv;
    if (S.shell == SA_SHELL_BASH) sa_bash_install();
    if (S.shell == SA_SHELL_TTY && S.interactive) sa_le_init(name, argc, argv, envp);
    /* A shell says hello: who it is, its terminal, its argv when not interactive. Other
     * programs say nothing until they have something to report (the kernel knows they carry
     * the interposer, see announce_to_kernel). */
    send_hello();
  }
}

SA_HIDDEN void sa_fini(void) {
  if (!S.enabled || !is_owner() || S.backlog_len == 0) return;
  int held = send_turn_take();
  __atomic_store_n(&S.next_connect_ns, 0, __ATOMIC_RELAXED);
  flush_and_send(NULL, 0);
  send_turn_give(held);
}

SA_HIDDEN int sa_enabled(void) {
  return S.enabled;
}
SA_HIDDEN int sa_shell_kind(void) {
  return S.enabled ? S.shell : SA_SHELL_NONE;
}
SA_HIDDEN int sa_socket_fd(void) {
  return S.enabled ? S.fd : -1;
}

/* ------------------------------------------------------------------ reports */

static void add_cwd(struct sa_msg* m) {
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof cwd)) msg_add(m, SHAUDIT_F_CWD, cwd, strlen(cwd));
}

static void add_cmd_ref(struct sa_msg* m) {
  if (S.cmd_no) {
    msg_add_u64(m, SHAUDIT_F_CMD_PID, (uint64_t)S.cmd_pid);
    msg_add_u64(m, SHAUDIT_F_CMD_NO, S.cmd_no);
  }
}

/* Resolves a bare command name through PATH like execvp does (first executable match). */
static int resolve_path(const char* name, char* out, size_t cap) {
  const char* path = getenv("PATH");
  if (!path) path = "/bin:/usr/bin";
  size_t nl = strlen(name);
  while (*path) {
    const char* end = strchr(path, ':');
    size_t dl = end ? (size_t)(end - path) : strlen(path);
    if (dl + 1 + nl + 1 <= cap) {
      if (dl == 0) {
        memcpy(out, name, nl + 1);
      } else {
        memcpy(out, path, dl);
        out[dl] = '/';
        memcpy(out + dl + 1, name, nl + 1);
      }
      if (access(out, X_OK) == 0) return 1;
    }
    if (!end) break;
    path = end + 1;
  }
  return 0;
}

/* Whether shauditd records execs from the kernel (its eBPF collector runs): it then publishes
 * <socket dir>/kernel, and exec reports would only repeat what the kernel says. Checked once per
 * process image (one stat); a vfork child's answer is its parent's. */
static int kernel_records_execs(void) {
  int k = __atomic_load_n(&S.kernel_execs, __ATOMIC_RELAXED);
  if (k) return k > 0;
  char path[sizeof S.socket_path + 40];
  beside_socket(path, "kernel", "");
  struct stat st;
  k = stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == 0 ? 1 : -1;
  __atomic_store_n(&S.kernel_execs, k, __ATOMIC_RELAXED);
  return k > 0;
}

static void mark_bash_socket_cloexec(void);

SA_HIDDEN void sa_report_exec(const char* path, char* const argv[], int flags) {
  if (!S.enabled) return;
  if (kernel_records_execs()) {
    mark_bash_socket_cloexec();
    return;
  }
  size_t need = 512 + PATH_MAX;
  for (size_t i = 0; argv && argv[i]; ++i)
    need += sizeof(struct shaudit_wire_field) + strlen(argv[i]);
  need += sa_strlen(path);
  char stack[SA_STACK_MSG];
  struct sa_msg m;
  msg_begin(&m, stack, sizeof stack, need, SHAUDIT_MSG_EXEC);
  char resolved[PATH_MAX];
  if (flags & SA_EXEC_SPAWN) m.e.flags |= SHAUDIT_MSG_SPAWN;
  if (path && (flags & SA_EXEC_SEARCH) && !strchr(path, '/') &&
      resolve_path(path, resolved, sizeof resolved))
    path = resolved;
  if (path) msg_add_str(&m, SHAUDIT_F_PATH, path);
  add_cwd(&m);
  add_cmd_ref(&m);
  for (size_t i = 0; argv && argv[i]; ++i)
    if (msg_add(&m, SHAUDIT_F_ARGV, argv[i], strlen(argv[i])) != 0) break;
  msg_send(&m);
  msg_end(&m);
  mark_bash_socket_cloexec();
}

/* bash keeps the socket inheritable (owner_fd): never let it into the new image. */
static void mark_bash_socket_cloexec(void) {
  if (S.shell == SA_SHELL_BASH && is_owner()) {
    int fd = S.fd;
    if (fd >= 0 && socket_ok(fd) && fcntl(fd, F_SETFD, FD_CLOEXEC) == 0) S.bash_cloexec = 1;
  }
}

SA_HIDDEN void sa_report_shell_command(const char* cmd) {
  char* argv[] = {(char*)"sh", (char*)"-c", (char*)cmd, NULL};
  sa_report_exec("/bin/sh", argv, SA_EXEC_SPAWN);
}

static char S_repl_name[64]; /* sa_repl_begin */

static const char* shell_name(void) {
  if (S.repl) return S_repl_name;
  switch (S.shell) {
    case SA_SHELL_BASH:
      return "bash";
    case SA_SHELL_ZSH:
      return "zsh";
    default:
      return base_name(S_exe); /* read once, in sa_init */
  }
}

SA_HIDDEN void sa_report_line(const char* text, size_t len, uint32_t flags) {
  if (!S.enabled || !is_owner()) return;
  if (flags & SHAUDIT_LINE_CONTINUATION) {
    ++S.line_index;
  } else {
    ++S.cmd_no;
    S.cmd_pid = S.owner;
    S.line_index = 0;
    S.cmd_start_ns = mono_ns();
    S.status_pending = 1;
  }
  char stack[SA_STACK_MSG];
  struct sa_msg m;
  msg_begin(&m, stack, sizeof stack, len + 512 + PATH_MAX, SHAUDIT_MSG_LINE);
  msg_add_str(&m, SHAUDIT_F_SHELL, shell_name());
  msg_add_u64(&m, SHAUDIT_F_CMD_NO, S.cmd_no);
  msg_add_u64(&m, SHAUDIT_F_LINE_INDEX, S.line_index);
  msg_add_u64(&m, SHAUDIT_F_LINE_FLAGS, flags);
  add_cwd(&m);
  char tty[128];
  ssize_t t = readlink("/proc/self/fd/0", tty, sizeof tty);
  if (t > 0) msg_add(&m, SHAUDIT_F_TTY, tty, (size_t)t);
  msg_add(&m, SHAUDIT_F_TEXT, text, len); /* last: a cut only ever shortens the text */
  msg_send(&m);
  msg_end(&m);
}

SA_HIDDEN void sa_report_status(int status) {
  if (!S.enabled || !is_owner() || !S.status_pending) return;
  S.status_pending = 0;
  char stack[512];
  struct sa_msg m;
  msg_begin(&m, stack, sizeof stack, 0, SHAUDIT_MSG_STATUS);
  msg_add_u64(&m, SHAUDIT_F_CMD_NO, S.cmd_no);
  msg_add_u64(&m, SHAUDIT_F_STATUS, (uint64_t)(int64_t)status);
  msg_add_u64(&m, SHAUDIT_F_DURATION_NS, (uint64_t)(mono_ns() - S.cmd_start_ns));
  msg_send(&m);
  msg_end(&m);
}

SA_HIDDEN int sa_repl_begin(const char* name) {
  if (!S.enabled || S.shell != SA_SHELL_NONE || !is_owner()) return 0;
  if (S.repl) return 1;
  size_t n = strlen(name);
  if (n >= sizeof S_repl_name) n = sizeof S_repl_name - 1;
  memcpy(S_repl_name, name, n);
  S_repl_name[n] = 0;
  S.repl = 1;
  struct termios t;
  S.interactive = ioctl(0, TCGETS, &t) == 0;
  if (!S_exe[0]) read_self_exe();
  send_hello();
  return 1;
}

SA_HIDDEN void sa_report_noncmd(const char* text, size_t len, uint32_t kind) {
  if (!S.enabled || !is_owner()) return;
  if (!S.hash_key_sent) {
    if (getrandom(S.hash_key, sizeof S.hash_key, GRND_NONBLOCK) != (ssize_t)sizeof S.hash_key) {
      uint64_t t = real_ns() ^ ((uint64_t)S.owner << 32);
      memcpy(S.hash_key, &t, 8);
      t = mono_ns();
      memcpy(S.hash_key + 8, &t, 8);
    }
  }
  char stack[512];
  struct sa_msg m;
  msg_begin(&m, stack, sizeof stack, 0, SHAUDIT_MSG_NONCMD);
  msg_add_u64(&m, SHAUDIT_F_INPUT_KIND, kind);
  msg_add_u64(&m, SHAUDIT_F_INPUT_LEN, len);
  msg_add_u64(&m, SHAUDIT_F_INPUT_HASH, shaudit_siphash(S.hash_key, text, len));
  msg_add(&m, SHAUDIT_F_HASH_KEY, S.hash_key, sizeof S.hash_key);
  S.hash_key_sent = 1;
  msg_send(&m);
  msg_end(&m);
}

/* ------------------------------------------------------------------ tty path */

SA_HIDDEN void sa_after_read(int fd, const void* buf, ssize_t n) {
  /* Only the shell's own reads of its terminal, in canonical mode, of more than one byte
   * (the read builtin reads one byte at a time: its input is not a command). */
  if (!S.enabled || fd != 0 || n <= 0 || !is_owner()) return;
  if (S.shell != SA_SHELL_TTY && S.shell != SA_SHELL_BASH) return;
  if (sa_le_active && sa_le_after_read(fd, buf, n)) return; /* ksh93, mksh: lineedit.c */
  if (n == 1 && S.tty_len == 0) return;
  struct termios t;
  if (ioctl(fd, TCGETS, &t) != 0 || !(t.c_lflag & ICANON)) return;
  int echo_off = !(t.c_lflag & ECHO);
  const char* p = buf;
  size_t len = (size_t)n;
  while (len > 0) {
    const char* nl = memchr(p, '\n', len);
    size_t take = nl ? (size_t)(nl - p) : len;
    size_t room = SA_TTY_MAX - S.tty_len;
    size_t copy = take < room ? take : room;
    memcpy(S.tty_buf + S.tty_len, p, copy);
    S.tty_len += copy;
    if (!nl) break; /* ^D mid-line or a partial read: join up to the newline */
    /* The canonical line limit is 4095 bytes plus the newline; a line that reaches it was
     * cut by the terminal. */
    uint32_t flags = SHAUDIT_LINE_TTY_READ | (S.tty_len >= 4095 ? SHAUDIT_LINE_CUT : 0);
    /* With echo off: a password read by bash's `read -s` stays out; the shell's own command
     * line read so (`stty -echo` to hide what is typed) is still a command. dash and the other
     * tty shells read their `read` builtin's input one byte at a time (not here). */
    if (echo_off && S.shell == SA_SHELL_BASH && sa_bash_in_builtin())
      sa_report_noncmd(S.tty_buf, S.tty_len, SHAUDIT_INPUT_ECHO_OFF);
    else
      sa_report_line(S.tty_buf, S.tty_len, flags | (echo_off ? SHAUDIT_LINE_ECHO_OFF : 0));
    S.tty_len = 0;
    p = nl + 1;
    len -= take + 1;
  }
}
