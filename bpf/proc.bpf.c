// SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0
/* Process lifecycle of tracked (audited-session) processes: exec, exec attempts, fork, exit.
 * A process is tracked when the daemon put it in `tracked` (a session's entry) or its parent
 * was tracked when it forked: membership follows the fork tree in the kernel, whatever the
 * process does to its environment, name, loginuid or audit session id. */
/* vmlinux.h first: the other headers use its types. */
/* clang-format off */
#include "vmlinux.h"
/* clang-format on */

#include "proc.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 8 << 20);
} events SEC(".maps");

/* tgid -> session key (non-zero). */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, __u64);
} tracked SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, SA_STAT_MAX);
  __type(key, __u32);
  __type(value, __u64);
} stats SEC(".maps");

/* Exec attempts in flight: tid -> user pointer to the filename (see attempt_exit). */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, __u32);   /* tid */
  __type(value, __u64); /* user pointer to the filename */
} pending_exec SEC(".maps");

/* Scratch space for the big exec event (too large for the 512-byte stack, and above the
 * 32 KiB per-CPU value limit): one slot per CPU, sized by the loader. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct sa_exec_event);
} exec_scratch SEC(".maps");

/* Wake-ups of the reader. Waking shauditd for every event puts it on the CPU of the audited
 * program at every fork, exec and exit; instead no event wakes it unless the ring is more than
 * 1/8 full: shauditd consumes at each of its own wake-ups (every report from a reporter) and
 * at least every 20 ms (its timer), which bounds the delay of a kernel event. */
static __always_inline __u64 wake_flags(void) {
  if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >=
      bpf_ringbuf_query(&events, BPF_RB_RING_SIZE) / 8)
    return BPF_RB_FORCE_WAKEUP;
  return BPF_RB_NO_WAKEUP;
}

/* tgid -> 1 while the process's current image has initialised the genuine interposer (set by
 * handle_prctl, inherited at fork, cleared at exec and exit), tracked or not: when shauditd
 * starts following a process that is already running (a session's entry) it asks here whether
 * that image carries the interposer. Mapping the library is not enough (host-wide mode maps it
 * into every process, and it stays inactive outside audited sessions). */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, __u8);
} hooked_pids SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct sa_file_key);
  __type(value, __u8);
} known_files SEC(".maps");

/* Enforcing mode: tgid -> 1 when its current image was exec'd while the process was tracked (a
 * program started inside the session, not its entry process: sshd's or login's session child
 * runs without the interposer and execs the shell). Inherited at fork, cleared at exit. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, __u8);
} session_images SEC(".maps");

/* Where the exec's argv and envp arrays lie in the caller's memory (the enforcing mode reads
 * them at bprm_check_security, when the kernel has just copied them: their pages are present). */
struct exec_args {
  __u64 argv;
  __u64 envp;
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, __u32); /* tid */
  __type(value, struct exec_args);
} pending_args SEC(".maps");

/* Set by shauditd before load: the enforcing mode is on (the LSM program is loaded only then). */
const volatile __u32 enforce = 0;
/* The configured interposer's path, as LD_PRELOAD must name it (NUL-terminated). */
const volatile char interposer_path[SA_PATH_MAX] = {};
/* shauditd's mount namespace: LD_PRELOAD is required only there (a container's own
 * /etc/ld.so.preload may carry the interposer instead); 0: everywhere. */
const volatile __u32 enforce_mntns = 0;
/* 0 when the host's /etc/ld.so.preload lists the interposer (host-wide mode): every dynamic
 * program loads it whatever its environment says, so LD_PRELOAD is not required. */
const volatile __u32 enforce_preload_env = 1;

static __always_inline void count(__u32 which) {
  __u64* v = bpf_map_lookup_elem(&stats, &which);
  if (v) __sync_fetch_and_add(v, 1);
}

static __always_inline __u64* tracked_key(__u32 tgid) {
  return bpf_map_lookup_elem(&tracked, &tgid);
}

/* Set by shauditd before load: follow the processes container runtimes start (below). */
const volatile __u32 follow_runtime_execs = 0;

/* A process a container runtime started inside a pid namespace from outside it: `runc exec`
 * (kubectl exec, docker exec, ctr task exec) joins the container's namespaces and execs the
 * command, whose parent (runc) stays in an outer namespace. Not the container's first process
 * (pid 1 of its namespace). Kernel facts only. */
static __always_inline int runtime_exec(struct task_struct* p) {
  struct pid* tp = BPF_CORE_READ(p, group_leader, thread_pid);
  if (!tp) return 0;
  __u32 level = BPF_CORE_READ(tp, level);
  if (level == 0 || level >= 32) return 0;
  struct upid up = {};
  if (bpf_core_read(&up, sizeof up, &tp->numbers[level]) != 0 || up.nr == 1) return 0;
  struct pid* pp = BPF_CORE_READ(p, real_parent, group_leader, thread_pid);
  if (!pp) return 0;
  return BPF_CORE_READ(pp, level) < level;
}

static __always_inline void fill_hdr(struct sa_event_hdr* h, __u32 type, struct task_struct* t,
                                     __u64 key) {
  h->type = type;
  h->pid = BPF_CORE_READ(t, tgid);
  h->tid = BPF_CORE_READ(t, pid);
  h->ppid = BPF_CORE_READ(t, real_parent, tgid);
  h->uid = BPF_CORE_READ(t, cred, uid.val);
  h->loginuid = BPF_CORE_READ(t, loginuid.val);
  h->sessionid = BPF_CORE_READ(t, sessionid);
  h->flags = 0;
  h->ts_ns = bpf_ktime_get_boot_ns();
  h->key = key;
  BPF_CORE_READ_STR_INTO(&h->comm, t, comm);
}

/* A fixed-size event in the ring buffer with its header filled, or NULL (counted as lost). */
static __always_inline void* reserve_event(__u64 size, __u32 type, struct task_struct* t,
                                           __u64 key) {
  struct sa_event_hdr* h = bpf_ringbuf_reserve(&events, size, 0);
  if (!h) {
    count(SA_STAT_DROPPED);
    return NULL;
  }
  fill_hdr(h, type, t, key);
  return h;
}

static __always_inline void submit_event(void* e) {
  bpf_ringbuf_submit(e, wake_flags());
  count(SA_STAT_EVENTS);
}

/* Set by shauditd before load: the enforcing mode's kill mode (`enforce: {mode: kill}`): the
 * enforce_kill program (below, loaded only then) handles sched_process_exec instead of
 * handle_exec, deciding before anything of the exec is recorded or forgotten. */
const volatile __u32 enforce_kill = 0;

/* A tracked process runs a new image: its exec event (and the state that follows the image). */
static __always_inline int on_exec(struct task_struct* p, struct linux_binprm* bprm) {
  __u32 tgid = BPF_CORE_READ(p, tgid);
  bpf_map_delete_elem(&hooked_pids, &tgid); /* a new image: it has not initialised anything */
  __u64* key = tracked_key(tgid);
  __u32 runtime = 0;
  if (!key) {
    if (!follow_runtime_execs || !runtime_exec(p)) return 0;
    /* A new session's key (shauditd names the session after it). */
    __u64 k = ((__u64)bpf_get_prandom_u32() << 32) | bpf_get_prandom_u32();
    if (bpf_map_update_elem(&tracked, &tgid, &k, BPF_NOEXIST) != 0) return 0;
    key = tracked_key(tgid);
    if (!key) return 0;
    runtime = 1;
  }
  __u32 cpu = bpf_get_smp_processor_id();
  struct sa_exec_event* e = bpf_map_lookup_elem(&exec_scratch, &cpu);
  if (!e) return 0;
  fill_hdr(&e->h, SA_EV_EXEC, p, *key);
  if (runtime) e->h.flags |= SA_FLAG_RUNTIME_EXEC;
  __u32 tid = BPF_CORE_READ(p, pid);
  bpf_map_delete_elem(&pending_exec, &tid); /* the attempt succeeded: this event is it */
  if (enforce) {                            /* this image was started inside the session */
    bpf_map_delete_elem(&pending_args, &tid);
    __u8 one = 1;
    bpf_map_update_elem(&session_images, &tgid, &one, BPF_ANY);
  }
  if (BPF_CORE_READ_BITFIELD(bprm, secureexec)) e->h.flags |= SA_FLAG_SECUREEXEC;
  long n =
      bpf_probe_read_kernel_str(e->filename, sizeof e->filename, BPF_CORE_READ(bprm, filename));
  e->filename_len = n > 0 ? (__u32)n - 1 : 0;
  e->argc = BPF_CORE_READ(bprm, argc);
  /* Its pid in its own pid namespace (a container's view): the last of the pid's numbers. */
  struct pid* tp = BPF_CORE_READ(p, group_leader, thread_pid);
  __u32 level = tp ? BPF_CORE_READ(tp, level) : 0;
  e->ns_level = level;
  e->ns_pid = e->h.pid;
  e->pidns_ino = 0;
  e->pad = 0;
  struct upid up = {};
  if (tp && level < 32 && bpf_core_read(&up, sizeof up, &tp->numbers[level]) == 0) {
    e->ns_pid = (__u32)up.nr;
    if (up.ns) e->pidns_ino = BPF_CORE_READ(up.ns, ns.inum);
  }
  /* The new image's argument strings, as the kernel laid them out. */
  unsigned long start = BPF_CORE_READ(p, mm, arg_start);
  unsigned long end = BPF_CORE_READ(p, mm, arg_end);
  unsigned long len = end > start ? end - start : 0;
  if (len > SA_ARGV_MAX) {
    len = SA_ARGV_MAX;
    e->h.flags |= SA_FLAG_ARGV_CUT;
  }
  e->argv_len = 0;
  if (len > 0 &&
      bpf_probe_read_user(e->argv, len & (SA_ARGV_MAX - 1) ? len & (SA_ARGV_MAX - 1) : SA_ARGV_MAX,
                          (void*)start) == 0)
    e->argv_len = (__u32)len;
  e->tty_len = 0;
  struct tty_struct* tty = BPF_CORE_READ(p, signal, tty);
  if (tty) {
    n = bpf_probe_read_kernel_str(e->tty, sizeof e->tty, &tty->name);
    e->tty_len = n > 0 ? (__u32)n - 1 : 0;
  }
  __u64 size = offsetof(struct sa_exec_event, argv) + e->argv_len;
  if (size > sizeof(*e)) size = sizeof(*e);
  /* A file shauditd has not examined yet (a new bash copy to probe) is worth a wake-up. */
  struct sa_file_key fk = {};
  fk.dev = BPF_CORE_READ(bprm, file, f_inode, i_sb, s_dev);
  fk.ino = BPF_CORE_READ(bprm, file, f_inode, i_ino);
  __u64 wake = BPF_RB_FORCE_WAKEUP;
  if (bpf_map_lookup_elem(&known_files, &fk)) {
    e->h.flags |= SA_FLAG_KNOWN_FILE; /* shauditd need not look at it again */
    wake = wake_flags();
  }
  if (bpf_ringbuf_output(&events, e, size, wake) != 0)
    count(SA_STAT_DROPPED);
  else
    count(SA_STAT_EVENTS);
  return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct* p, pid_t old_pid, struct linux_binprm* bprm) {
  if (enforce_kill) return 0; /* enforce_kill handles every exec (see there) */
  return on_exec(p, bprm);
}

/* Exec attempts. At syscall entry the filename may sit in a page not yet faulted in (a
 * fresh fork child), so entry only remembers the pointer; a failed attempt is reported at
 * syscall exit, when the kernel has read the name (the page is present) and the result is
 * known. A successful attempt is the exec event itself. */

static __always_inline int attempt_enter(const char* filename, __u64 argv, __u64 envp) {
  struct task_struct* t = (struct task_struct*)bpf_get_current_task_btf();
  if (!tracked_key(BPF_CORE_READ(t, tgid))) return 0;
  __u32 tid = BPF_CORE_READ(t, pid);
  __u64 ptr = (__u64)filename;
  bpf_map_update_elem(&pending_exec, &tid, &ptr, BPF_ANY);
  if (enforce) {
    struct exec_args a = {argv, envp};
    bpf_map_update_elem(&pending_args, &tid, &a, BPF_ANY);
  }
  return 0;
}

static __always_inline int attempt_exit(long ret) {
  struct task_struct* t = (struct task_struct*)bpf_get_current_task_btf();
  __u32 tid = BPF_CORE_READ(t, pid);
  __u64* ptr = bpf_map_lookup_elem(&pending_exec, &tid);
  if (!ptr) return 0;
  __u64 filename = *ptr;
  bpf_map_delete_elem(&pending_exec, &tid);
  if (enforce) bpf_map_delete_elem(&pending_args, &tid);
  __u64* key = tracked_key(BPF_CORE_READ(t, tgid));
  if (!key) return 0;
  struct sa_attempt_event* e = reserve_event(sizeof(*e), SA_EV_ATTEMPT, t, *key);
  if (!e) return 0;
  long n = bpf_probe_read_user_str(e->filename, sizeof e->filename, (const char*)filename);
  e->filename_len = n > 0 ? (__u32)n - 1 : 0;
  e->result = (__s32)ret;
  submit_event(e);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int handle_execve(struct trace_event_raw_sys_enter* ctx) {
  return attempt_enter((const char*)ctx->args[0], ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int handle_execveat(struct trace_event_raw_sys_enter* ctx) {
  return attempt_enter((const char*)ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_exit_execve")
int handle_execve_exit(struct trace_event_raw_sys_exit* ctx) {
  return attempt_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int handle_execveat_exit(struct trace_event_raw_sys_exit* ctx) {
  return attempt_exit(ctx->ret);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct* parent, struct task_struct* child) {
  __u32 ptgid = BPF_CORE_READ(parent, tgid);
  __u32 ctgid = BPF_CORE_READ(child, tgid);
  if (ptgid == ctgid) return 0;                    /* a new thread, not a new process */
  if (bpf_map_lookup_elem(&hooked_pids, &ptgid)) { /* the child runs the parent's image */
    __u8 one = 1;
    bpf_map_update_elem(&hooked_pids, &ctgid, &one, BPF_ANY);
  }
  if (enforce && bpf_map_lookup_elem(&session_images, &ptgid)) {
    __u8 one = 1;
    bpf_map_update_elem(&session_images, &ctgid, &one, BPF_ANY);
  }
  __u64* key = tracked_key(ptgid);
  if (!key) return 0;
  __u64 k = *key;
  bpf_map_update_elem(&tracked, &ctgid, &k, BPF_ANY);
  struct sa_fork_event* e = reserve_event(sizeof(*e), SA_EV_FORK, parent, k);
  if (!e) return 0;
  e->child_pid = ctgid;
  e->pad = 0;
  e->child_ino = 0;
  if (bpf_core_field_exists(((struct pid*)0)->ino))
    e->child_ino = BPF_CORE_READ(child, group_leader, thread_pid, ino);
  submit_event(e);
  return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct* p, bool group_dead) {
  __u32 tgid = BPF_CORE_READ(p, tgid);
  if (BPF_CORE_READ(p, pid) != tgid) return 0; /* only the thread-group leader */
  bpf_map_delete_elem(&hooked_pids, &tgid);
  if (enforce) bpf_map_delete_elem(&session_images, &tgid);
  __u64* key = tracked_key(tgid);
  if (!key) return 0;
  __u64 k = *key;
  bpf_map_delete_elem(&tracked, &tgid);
  struct sa_exit_event* e = reserve_event(sizeof(*e), SA_EV_EXIT, p, k);
  if (!e) return 0;
  e->exit_code = BPF_CORE_READ(p, exit_code);
  e->pad = 0;
  submit_event(e);
  return 0;
}

/* Lines a shell read, independent of any interposer: zleread() in zsh's zle module (a return
 * probe), and in bash (and copies of it) readline's rl_deprep_terminal(), which readline()
 * calls once a line was accepted, before returning it (rl_line_buffer holds it then). An entry
 * probe, unlike a return probe on readline(), also sees the line of a readline() call that was
 * already running when the probe was attached: a bash copy is probed only once a session runs
 * it, by then it may be waiting at its first prompt. Attached by the loader to each binary. */
static __always_inline int line_returned(const char* ret, __u32 flags) {
  if (!ret) return 0;
  struct task_struct* t = (struct task_struct*)bpf_get_current_task_btf();
  __u64* key = tracked_key(BPF_CORE_READ(t, tgid));
  if (!key) return 0;
  struct sa_line_event* e = reserve_event(sizeof(*e), SA_EV_LINE, t, *key);
  if (!e) return 0;
  e->h.flags |= flags;
  long n = bpf_probe_read_user_str(e->line, sizeof e->line, ret);
  e->len = n > 0 ? (__u32)n - 1 : 0;
  if (e->len == SA_LINE_MAX - 1) e->h.flags |= SA_FLAG_LINE_CUT;
  e->pad = 0;
  submit_event(e);
  return 0;
}

/* Per probed bash binary (the attach cookie): where readline's variables are, as distances
 * from rl_deprep_terminal (the probed address) in that binary. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, __u64);
  __type(value, struct sa_rl_vars);
} rl_vars SEC(".maps");

SEC("uprobe")
int BPF_KPROBE(rl_deprep_entry) {
  if (!tracked_key((__u32)(bpf_get_current_pid_tgid() >> 32))) return 0;
  __u64 cookie = bpf_get_attach_cookie(ctx);
  struct sa_rl_vars* v = bpf_map_lookup_elem(&rl_vars, &cookie);
  if (!v) return 0;
  __u64 at = PT_REGS_IP(ctx); /* the function's address: uprobes report the probed address */
  int done = 0, eof = 0;
  __u64 line = 0;
  /* Also called on a signal (rl_done unset) and at end of input (rl_eof_found): no line. */
  if (bpf_probe_read_user(&done, sizeof done, (const void*)(at + v->done)) != 0 || !done) return 0;
  if (v->eof && bpf_probe_read_user(&eof, sizeof eof, (const void*)(at + v->eof)) == 0 && eof)
    return 0;
  if (bpf_probe_read_user(&line, sizeof line, (const void*)(at + v->line)) != 0) return 0;
  return line_returned((const char*)line, 0);
}

SEC("uretprobe")
int BPF_KRETPROBE(zleread_ret, const char* ret) {
  return line_returned(ret, SA_FLAG_ZLE);
}

/* What a tracked process reads from a terminal, as the kernel delivered it: a read() of a
 * terminal device (a pseudo-terminal's slave side, a virtual console or serial line, /dev/tty,
 * /dev/console), its bytes copied at the system call's exit. In canonical mode a read returns
 * the edited line, in raw mode (line editors) the keys. shauditd keeps them for the programs
 * whose lines no interposer captures exactly (a static shell, fish, a shell in a terminal mode
 * its hook does not see). The master side of a pseudo-terminal (tmux, a terminal emulator,
 * sshd) reads what programs write: not input, not taken. Entry only remembers the buffer. */
struct pending_read {
  __u64 buf; /* user pointer */
  __u32 fd;
  __u32 pad;
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, __u32); /* tid */
  __type(value, struct pending_read);
} pending_reads SEC(".maps");

/* The terminal behind fd of the current task, or NULL when fd is no terminal's input side. */
static __always_inline struct tty_struct* input_tty(struct task_struct* t, __u32 fd) {
  struct fdtable* fdt = BPF_CORE_READ(t, files, fdt);
  if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds)) return NULL;
  struct file** fds = BPF_CORE_READ(fdt, fd);
  struct file* f = NULL;
  if (bpf_probe_read_kernel(&f, sizeof f, &fds[fd]) != 0 || !f) return NULL;
  struct inode* ino = BPF_CORE_READ(f, f_inode);
  if (!ino || (BPF_CORE_READ(ino, i_mode) & 0170000) != 0020000) return NULL; /* S_IFCHR */
  __u32 rdev = BPF_CORE_READ(ino, i_rdev);
  __u32 major = rdev >> 20, minor = rdev & 0xfffff;
  /* 136-143: pseudo-terminal slaves; 4: consoles and serial lines; 5: /dev/tty (0) and
   * /dev/console (1), not /dev/ptmx (2, a master). */
  if (!((major >= 136 && major <= 143) || major == 4 || (major == 5 && minor <= 1))) return NULL;
  struct tty_file_private* priv = BPF_CORE_READ(f, private_data);
  if (!priv) return NULL;
  return BPF_CORE_READ(priv, tty);
}

SEC("tracepoint/syscalls/sys_enter_read")
int handle_read_enter(struct trace_event_raw_sys_enter* ctx) {
  __u64 id = bpf_get_current_pid_tgid();
  if (!tracked_key((__u32)(id >> 32))) return 0;
  struct pending_read r = {};
  r.fd = (__u32)ctx->args[0];
  r.buf = (__u64)ctx->args[1];
  struct task_struct* t = (struct task_struct*)bpf_get_current_task_btf();
  if (!input_tty(t, r.fd)) return 0;
  __u32 tid = (__u32)id;
  bpf_map_update_elem(&pending_reads, &tid, &r, BPF_ANY);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_read")
int handle_read_exit(struct trace_event_raw_sys_exit* ctx) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tid = (__u32)id;
  struct pending_read* pr = bpf_map_lookup_elem(&pending_reads, &tid);
  if (!pr) return 0;
  struct pending_read r = *pr;
  bpf_map_delete_elem(&pending_reads, &tid);
  long ret = ctx->ret;
  if (ret <= 0) return 0;
  __u64* key = tracked_key((__u32)(id >> 32));
  if (!key) return 0;
  __u64 k = *key;
  struct task_struct* t = (struct task_struct*)bpf_get_current_task_btf();
  struct tty_struct* tty = input_tty(t, r.fd);
  if (!tty) return 0;
  __u32 lflag = BPF_CORE_READ(tty, termios.c_lflag);
  /* A read of a terminal returns at most 4 KiB (the line discipline's buffer): up to four
   * events. */
  for (int i = 0; i < 4; ++i) {
    __u64 off = (__u64)i * SA_INPUT_MAX;
    if (off >= (__u64)ret) break;
    __u64 n = (__u64)ret - off;
    if (n > SA_INPUT_MAX) n = SA_INPUT_MAX;
    struct sa_input_event* e = reserve_event(sizeof(*e), SA_EV_INPUT, t, k);
    if (!e) return 0;
    e->lflag = lflag;
    e->pad = 0;
    long m = bpf_probe_read_kernel_str(e->tty, sizeof e->tty, &tty->name);
    e->tty_len = m > 0 ? (__u32)m - 1 : 0;
    e->len = 0;
    if (bpf_probe_read_user(e->data, (__u32)n, (const char*)r.buf + off) == 0) e->len = (__u32)n;
    submit_event(e);
  }
  return 0;
}

/* The genuine interposer initialised in this process: it makes a prctl() system call with an
 * option no kernel knows (SA_PRCTL_MARK; the call fails with EINVAL), and the instruction that
 * made it must lie in an executable mapping of a file in genuine_interposers: the library file
 * shauditd was configured with (device and inode), and copies of it whose bytes shauditd found
 * equal to it (the interposer inside a container image). Any other copy, or a program that
 * makes the same call from its own code, does not count. Cheaper than a uprobe: no trap, and
 * the program runs only for prctl() calls. This, not a message on the socket, tells the
 * cross-check that an image carries the interposer. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, struct sa_file_key);
  __type(value, __u8);
} genuine_interposers SEC(".maps");

struct vma_match {
  int found;
};

static long in_interposer(struct task_struct* t, struct vm_area_struct* vma, void* data) {
  struct vma_match* m = data;
  struct file* f = BPF_CORE_READ(vma, vm_file);
  if (!f) return 0;
  struct sa_file_key k = {};
  k.dev = BPF_CORE_READ(f, f_inode, i_sb, s_dev);
  k.ino = BPF_CORE_READ(f, f_inode, i_ino);
  if ((BPF_CORE_READ(vma, vm_flags) & 0x4 /* VM_EXEC */) &&
      bpf_map_lookup_elem(&genuine_interposers, &k))
    m->found = 1;
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_prctl")
int handle_prctl(struct trace_event_raw_sys_enter* ctx) {
  if (ctx->args[0] != SA_PRCTL_MARK) return 0;
  struct task_struct* t = (struct task_struct*)bpf_get_current_task_btf();
  struct pt_regs* regs = (struct pt_regs*)bpf_task_pt_regs(t);
  __u64 ip = BPF_CORE_READ(regs, ip);
  struct vma_match m = {0};
  if (bpf_find_vma(t, ip, in_interposer, &m, 0) != 0 || !m.found) return 0;
  __u32 tgid = BPF_CORE_READ(t, tgid);
  __u8 one = 1;
  bpf_map_update_elem(&hooked_pids, &tgid, &one, BPF_ANY);
  __u64* key = tracked_key(tgid);
  if (!key) return 0;
  struct sa_hooked_event* e = reserve_event(sizeof(*e), SA_EV_HOOKED, t, *key);
  if (!e) return 0;
  submit_event(e);
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The enforcing mode (BPF LSM, loaded only with `enforce:` on). At bprm_check_security, called
 * for the file an exec runs and again for a script's interpreter, before the point of no return
 * (the caller's memory is still its own), an exec by a tracked process whose new image would run
 * without the interposer is refused with EPERM and reported (SA_EV_DENIED). Kernel facts only:
 * the file's link count, the first bytes of the image (bprm->buf), the caller's own state
 * (hooked_pids, session_images), and the environment the caller passed (just copied by the
 * kernel, so its pages are present). */

#define SA_BINPRM_BUF 256 /* BINPRM_BUF_SIZE: the bytes of the image the kernel read first */

struct deny_scratch {
  struct sa_denied_event ev; /* built here, then copied into the ring buffer */
  char env[2 * SA_PATH_MAX]; /* LD_PRELOAD's value, tokens NUL-separated */
  char img[SA_BINPRM_BUF];   /* enforce_selftest: an image's first bytes */
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct deny_scratch);
} deny_scratch SEC(".maps");

#define SA_PT_INTERP 3
#define SA_ENV_MAX 1024 /* environment entries looked at */

/* v & mask, done where the verifier sees it (the compiler drops a mask it can prove redundant). */
static __always_inline __u64 bounded(__u64 v, const __u64 mask) {
  asm volatile("%0 &= %1" : "+r"(v) : "i"(mask));
  return v;
}

static __always_inline struct deny_scratch* scratch(void) {
  __u32 zero = 0;
  return bpf_map_lookup_elem(&deny_scratch, &zero);
}

/* 1 when the image in buf (its first BINPRM_BUF_SIZE bytes) is an ELF file whose program
 * headers, as far as they lie in buf, have no PT_INTERP. Anything else (a script, another
 * format, headers beyond buf) is 0: not decided here. */
static __always_inline int elf_without_interp(const char* buf) {
  unsigned char h[64];
  if (bpf_probe_read_kernel(h, sizeof h, buf) != 0) return 0;
  if (h[0] != 0x7f || h[1] != 'E' || h[2] != 'L' || h[3] != 'F' || h[4] != 2 /* ELFCLASS64 */)
    return 0;
  __u64 phoff = 0;
  __u16 phentsize = 0, phnum = 0;
  __builtin_memcpy(&phoff, &h[32], 8);
  __builtin_memcpy(&phentsize, &h[54], 2);
  __builtin_memcpy(&phnum, &h[56], 2);
  if (phentsize != 56 || phnum == 0) return 0;
  int seen = 0;
  for (int i = 0; i < 4; i++) {
    if (i >= phnum) break;
    __u64 off = phoff + (__u64)i * 56;
    if (off + 4 > SA_BINPRM_BUF) break;
    __u32 type = 0;
    if (bpf_probe_read_kernel(&type, sizeof type, buf + (off & 0xff)) != 0) return 0;
    if (type == SA_PT_INTERP) return 0;
    seen++;
  }
  /* Every program header was seen (a static binary has few before its first PT_LOAD; a
   * dynamic one has PT_INTERP among its first) or enough of them to rule a PT_INTERP out. */
  return seen == phnum || seen >= 3;
}

struct env_scan {
  __u64 envp;
  __u64 last; /* where the last LD_PRELOAD value starts (0: none) */
};

static long env_entry(__u32 i, void* data) {
  struct env_scan* sc = data;
  __u64 p = 0;
  if (bpf_probe_read_user(&p, sizeof p, (const void*)(sc->envp + (__u64)i * 8)) != 0 || !p)
    return 1;
  char k[11];
  if (bpf_probe_read_user(k, sizeof k, (const void*)p) != 0) return 0;
  if (k[0] == 'L' && k[1] == 'D' && k[2] == '_' && k[3] == 'P' && k[4] == 'R' && k[5] == 'E' &&
      k[6] == 'L' && k[7] == 'O' && k[8] == 'A' && k[9] == 'D' && k[10] == '=')
    sc->last = p + 11;
  return 0;
}

static long split_env(__u32 i, void* data) {
  struct deny_scratch* s = scratch();
  if (!s || i >= SA_PATH_MAX) return 1;
  __u64 at = bounded(i, SA_PATH_MAX - 1);
  char c = s->env[at];
  if (c == ':' || c == ' ') s->env[at] = 0;
  return 0;
}

struct token_scan {
  __u32 len;
  __u32 found;
};

static long match_token(__u32 i, void* data) {
  struct token_scan* ts = data;
  struct deny_scratch* s = scratch();
  if (!s || i >= ts->len || i >= SA_PATH_MAX) return 1;
  __u64 at = bounded(i, SA_PATH_MAX - 1);
  if (s->env[at] == 0) return 0;
  if (i > 0 && s->env[bounded(i - 1, SA_PATH_MAX - 1)] != 0) return 0;
  if (bpf_strncmp(&s->env[at], SA_PATH_MAX, (const char*)interposer_path) == 0) {
    ts->found = 1;
    return 1;
  }
  return 0;
}

/* 1 when the environment at envp (the caller's memory) has LD_PRELOAD naming the interposer:
 * the last LD_PRELOAD entry (the one ld.so uses), split at ':' and ' ' as ld.so does. */
static __always_inline int env_has_interposer(__u64 envp) {
  if (!envp) return 0;
  struct env_scan sc = {envp, 0};
  bpf_loop(SA_ENV_MAX, env_entry, &sc, 0);
  if (!sc.last) return 0;
  struct deny_scratch* s = scratch();
  if (!s) return 0;
  long n = bpf_probe_read_user_str(s->env, SA_PATH_MAX, (const void*)sc.last);
  if (n <= 1) return 0;
  bpf_loop(SA_PATH_MAX, split_env, NULL, 0);
  struct token_scan ts = {(__u32)n, 0};
  bpf_loop(SA_PATH_MAX, match_token, &ts, 0);
  return ts.found;
}

struct argv_copy {
  __u64 argv;
  __u32 off;
  __u32 cut;
};

static long copy_arg(__u32 i, void* data) {
  struct argv_copy* ac = data;
  struct deny_scratch* s = scratch();
  if (!s) return 1;
  __u64 p = 0;
  if (bpf_probe_read_user(&p, sizeof p, (const void*)(ac->argv + (__u64)i * 8)) != 0 || !p)
    return 1;
  if (ac->off >= SA_DENY_ARGV_MAX) {
    ac->cut = 1;
    return 1;
  }
  long m = bpf_probe_read_user_str(&s->ev.argv[ac->off & (SA_DENY_ARGV_MAX - 1)], SA_DENY_ARGV_MAX,
                                   (const void*)p);
  if (m <= 0) return 1;
  ac->off += (__u32)m;
  return 0;
}

/* fail: closed. shauditd writes its CLOCK_MONOTONIC time (bpf_ktime_get_ns's clock) into
 * heartbeat from the thread that consumes kernel events and hands records to the writer; older
 * than heartbeat_max_ns, shauditd is stopped, hung or not keeping up, and every exec in an
 * audited session is refused (or killed) except files on the break-glass list (device, inode),
 * each of which is reported (SA_EV_BREAK_GLASS) for shauditd to record when it reads again. */
const volatile __u32 fail_closed = 0;
const volatile __u64 heartbeat_max_ns = 0;

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} heartbeat SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 256);
  __type(key, struct sa_file_key);
  __type(value, __u8);
} break_glass SEC(".maps");

/* How long shauditd's heartbeat has been stale (ns; at least 1), or 0 while it keeps up (or
 * without fail: closed). */
static __always_inline __u64 heartbeat_stale(void) {
  if (!fail_closed) return 0;
  __u32 zero = 0;
  __u64* hb = bpf_map_lookup_elem(&heartbeat, &zero);
  if (!hb) return 0;
  __u64 now = bpf_ktime_get_ns();
  __u64 age = now > *hb ? now - *hb : 0;
  return age > heartbeat_max_ns ? age : 0;
}

#define SA_BREAK_GLASS 0x100 /* enforce_reason: allowed, but reported as a break-glass exec */

static __always_inline void report_denied(struct task_struct* t, __u64 key,
                                          struct linux_binprm* bprm, __u32 reason,
                                          struct exec_args* a, __u32 flags) {
  struct deny_scratch* s = scratch();
  if (!s) return;
  struct sa_denied_event* e = &s->ev;
  __u64 stale = reason == SA_DENY_FAIL_CLOSED || reason == SA_BREAK_GLASS ? heartbeat_stale() : 0;
  fill_hdr(&e->h, reason == SA_BREAK_GLASS ? SA_EV_BREAK_GLASS : SA_EV_DENIED, t, key);
  e->h.flags |= flags;
  e->reason = reason == SA_BREAK_GLASS ? 0 : reason;
  e->heartbeat_age_ms = stale / 1000000 > 0xffffffff ? 0xffffffff : (__u32)(stale / 1000000);
  long n = bpf_probe_read_kernel_str(e->filename, sizeof e->filename, BPF_CORE_READ(bprm, interp));
  e->filename_len = n > 0 ? (__u32)n - 1 : 0;
  struct argv_copy ac = {a ? a->argv : 0, 0, 0};
  if (ac.argv) bpf_loop(256, copy_arg, &ac, 0);
  __u32 off = ac.off;
  if (off > SA_DENY_ARGV_MAX) {
    off = SA_DENY_ARGV_MAX;
    ac.cut = 1;
  }
  if (ac.cut) e->h.flags |= SA_FLAG_ARGV_CUT;
  e->argv_len = off;
  __u64 size = offsetof(struct sa_denied_event, argv) + off;
  if (size > sizeof(*e)) size = sizeof(*e);
  if (bpf_ringbuf_output(&events, e, size, BPF_RB_FORCE_WAKEUP) != 0)
    count(SA_STAT_DROPPED);
  else
    count(SA_STAT_EVENTS);
}

/* Why the exec of bprm by t (tracked, thread group tgid) must not run (enum sa_deny_reason), or 0.
 * envp: the environment's pointer array in user memory (0: not known, not checked). */
static __always_inline __u32 enforce_reason(struct task_struct* t, __u32 tgid,
                                            struct linux_binprm* bprm, __u64 envp) {
  if (BPF_CORE_READ(bprm, file, f_inode, __i_nlink) == 0) return SA_DENY_UNLINKED;
  if (elf_without_interp(bprm->buf)) return SA_DENY_NO_INTERP;
  if (bpf_map_lookup_elem(&session_images, &tgid) && !bpf_map_lookup_elem(&hooked_pids, &tgid))
    return SA_DENY_UNHOOKED;
  if (envp && enforce_preload_env &&
      (!enforce_mntns || BPF_CORE_READ(t, nsproxy, mnt_ns, ns.inum) == enforce_mntns) &&
      !env_has_interposer(envp))
    return SA_DENY_NO_PRELOAD;
  if (heartbeat_stale()) {
    struct sa_file_key fk = {};
    fk.dev = BPF_CORE_READ(bprm, file, f_inode, i_sb, s_dev);
    fk.ino = BPF_CORE_READ(bprm, file, f_inode, i_ino);
    return bpf_map_lookup_elem(&break_glass, &fk) ? SA_BREAK_GLASS : SA_DENY_FAIL_CLOSED;
  }
  return 0;
}

/* The decision for one bprm_check_security call: 0, or -EPERM after reporting it. */
static __always_inline int enforce_decide(struct linux_binprm* bprm) {
  struct task_struct* t = (struct task_struct*)bpf_get_current_task_btf();
  __u32 tgid = BPF_CORE_READ(t, tgid);
  __u64* keyp = tracked_key(tgid);
  if (!keyp) return 0; /* outside audited sessions: never affected */
  __u64 key = *keyp;
  __u32 tid = BPF_CORE_READ(t, pid);
  struct exec_args* a = bpf_map_lookup_elem(&pending_args, &tid);
  __u32 reason = enforce_reason(t, tgid, bprm, a ? a->envp : 0);
  if (!reason) return 0;
  report_denied(t, key, bprm, reason, a, 0);
  return reason == SA_BREAK_GLASS ? 0 : -1; /* -EPERM */
}

SEC("lsm/bprm_check_security")
int BPF_PROG(enforce_exec, struct linux_binprm* bprm, int ret) {
  if (ret != 0 || !enforce) return ret;
  return enforce_decide(bprm);
}

/* The decision's two parsers run on given inputs, for tests (BPF_PROG_TEST_RUN in the calling
 * process; never attached, not loaded by shauditd): args[0] is an envp array, args[1] the first
 * SA_BINPRM_BUF bytes of an image, both in the caller's memory. Returns bit 0 when the image has
 * no program interpreter, bit 1 when the environment's LD_PRELOAD names the interposer. */
SEC("?raw_tp")
int enforce_selftest(struct bpf_raw_tracepoint_args* ctx) {
  struct deny_scratch* s = scratch();
  if (!s) return 0;
  if (bpf_probe_read_user(s->img, sizeof s->img, (const void*)ctx->args[1]) != 0) return 0;
  int r = 0;
  if (elf_without_interp(s->img)) r |= 1;
  if (env_has_interposer(ctx->args[0])) r |= 2;
  return r;
}

/* The kill mode (`enforce: {mode: kill}`), for kernels that refuse BPF LSM programs (some refuse
 * every BPF trampoline program; many distributions leave bpf out of lsm=). At sched_process_exec
 * the exec is past its point of no return and the new image is installed, but it has not run an
 * instruction: the same decision as enforce_decide, made from the new image's own memory (its
 * argv and envp arrays lie on the new stack at bprm->p: argc, argv[argc], NULL, envp[], NULL),
 * then SIGKILL to the process, delivered before it returns to user space. Loaded (and attached)
 * only in this mode, when it replaces handle_exec: it decides before on_exec forgets the caller's
 * hooked_pids and marks the new image in session_images, and an exec it kills has no exec event
 * (the process exits, killed: an exit event). */
SEC("?tp_btf/sched_process_exec")
int BPF_PROG(enforce_kill_exec, struct task_struct* p, pid_t old_pid, struct linux_binprm* bprm) {
  if (!enforce_kill) return 0;
  __u32 tgid = BPF_CORE_READ(p, tgid);
  __u64* keyp = tracked_key(tgid);
  if (!keyp) return on_exec(p, bprm); /* outside audited sessions: never affected */
  __u64 key = *keyp;
  __u64 sp = BPF_CORE_READ(bprm, p);
  __u64 argc = (__u64)BPF_CORE_READ(bprm, argc) & 0xffffffff;
  struct exec_args a = {sp + 8, sp + 8 + (argc + 1) * 8};
  __u32 reason = enforce_reason(p, tgid, bprm, a.envp);
  if (reason == SA_BREAK_GLASS) report_denied(p, key, bprm, reason, &a, 0);
  if (!reason || reason == SA_BREAK_GLASS) return on_exec(p, bprm);
  /* The signal cannot be sent (never expected here: a user task in process context): the exec
   * is recorded as any other, and the cross-check reports the unhooked image. */
  if (bpf_send_signal(9 /* SIGKILL */) != 0) return on_exec(p, bprm);
  __u32 tid = BPF_CORE_READ(p, pid);
  bpf_map_delete_elem(&pending_exec, &tid); /* no attempt event: this event is it */
  bpf_map_delete_elem(&pending_args, &tid);
  bpf_map_delete_elem(&hooked_pids, &tgid);
  report_denied(p, key, bprm, reason, &a, SA_FLAG_KILLED);
  return 0;
}

/* The whole decision (enforce_decide, with its report) in a program type this kernel loads
 * wherever BPF LSM programs are refused (some kernels refuse every BPF trampoline program):
 * loaded by enforce_selftest with `enforce` set, so the verifier checks it; never attached. */
SEC("?tp_btf/sched_process_exec")
int BPF_PROG(enforce_verify, struct task_struct* p, pid_t old_pid, struct linux_binprm* bprm) {
  if (!enforce) return 0;
  return enforce_decide(bprm) ? 1 : 0;
}

/* ---------------------------------------------------------------------------------------------
 * Protection of shauditd's own files and process (enforcing mode with `protect`, loaded only
 * then): no process but shauditd (its thread group, daemon_tgid) may open the log for writing,
 * open the key files at all, unlink or rename either, or gain ptrace access to shauditd. Files
 * by device and inode (the kernel's view), never by path. Each refusal is reported
 * (SA_EV_TAMPER), except ptrace checks the kernel makes without auditing (PTRACE_MODE_NOAUDIT:
 * `ps` reading /proc/PID/stat), which are refused silently. */

const volatile __u32 protect = 0;
const volatile __u32 daemon_tgid = 0;

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, struct sa_file_key);
  __type(value, __u32); /* SA_PROTECT_* */
} protected_files SEC(".maps");

#define SA_FMODE_WRITE 0x2
#define SA_PTRACE_MODE_NOAUDIT 0x04

static __always_inline void report_tamper(__u32 what, __u32 mode, __u64 dev, __u64 ino) {
  struct task_struct* t = (struct task_struct*)bpf_get_current_task_btf();
  __u64* key = tracked_key(BPF_CORE_READ(t, tgid)); /* its audited session, if any */
  struct sa_tamper_event* e = reserve_event(sizeof(*e), SA_EV_TAMPER, t, key ? *key : 0);
  if (!e) return;
  e->what = what;
  e->mode = mode;
  e->dev = dev;
  e->ino = ino;
  bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
  count(SA_STAT_EVENTS);
}

static __always_inline int by_daemon(void) {
  return (__u32)(bpf_get_current_pid_tgid() >> 32) == daemon_tgid;
}

/* -EPERM (reported as `what`) when inode is a protected file and the caller is not shauditd. */
static __always_inline int protect_inode(struct inode* inode, __u32 what) {
  if (!inode) return 0;
  struct sa_file_key k = {};
  k.dev = BPF_CORE_READ(inode, i_sb, s_dev);
  k.ino = BPF_CORE_READ(inode, i_ino);
  if (!bpf_map_lookup_elem(&protected_files, &k) || by_daemon()) return 0;
  report_tamper(what, 0, k.dev, k.ino);
  return -1;
}

SEC("lsm/file_open")
int BPF_PROG(protect_open, struct file* file, int ret) {
  if (ret != 0 || !protect) return ret;
  struct sa_file_key k = {};
  k.dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
  k.ino = BPF_CORE_READ(file, f_inode, i_ino);
  __u32* how = bpf_map_lookup_elem(&protected_files, &k);
  if (!how || by_daemon()) return 0;
  __u32 fmode = BPF_CORE_READ(file, f_mode);
  __u32 what = 0;
  if (*how & SA_PROTECT_READ)
    what = SA_TAMPER_READ;
  else if ((*how & SA_PROTECT_WRITE) && (fmode & SA_FMODE_WRITE))
    what = SA_TAMPER_WRITE;
  if (!what) return 0;
  report_tamper(what, fmode, k.dev, k.ino);
  return -1; /* -EPERM */
}

SEC("lsm/inode_unlink")
int BPF_PROG(protect_unlink, struct inode* dir, struct dentry* dentry, int ret) {
  if (ret != 0 || !protect) return ret;
  return protect_inode(BPF_CORE_READ(dentry, d_inode), SA_TAMPER_REMOVE);
}

SEC("lsm/inode_rename")
int BPF_PROG(protect_rename, struct inode* old_dir, struct dentry* old_dentry,
             struct inode* new_dir, struct dentry* new_dentry, unsigned int flags, int ret) {
  if (ret != 0 || !protect) return ret;
  /* Moving a protected file away, or replacing one with another file. */
  int r = protect_inode(BPF_CORE_READ(old_dentry, d_inode), SA_TAMPER_REMOVE);
  if (r) return r;
  return protect_inode(BPF_CORE_READ(new_dentry, d_inode), SA_TAMPER_REMOVE);
}

SEC("lsm/ptrace_access_check")
int BPF_PROG(protect_ptrace, struct task_struct* child, unsigned int mode, int ret) {
  if (ret != 0 || !protect) return ret;
  if (BPF_CORE_READ(child, tgid) != daemon_tgid || by_daemon()) return 0;
  if (!(mode & SA_PTRACE_MODE_NOAUDIT)) report_tamper(SA_TAMPER_PTRACE, mode, 0, 0);
  return -1; /* -EPERM */
}

/* The protection's checks in a program type loaded where BPF LSM programs are refused, for the
 * verifier (enforce_selftest loads it; never attached). */
SEC("?tp_btf/sched_process_exec")
int BPF_PROG(protect_verify, struct task_struct* p, pid_t old_pid, struct linux_binprm* bprm) {
  if (!protect) return 0;
  struct file* f = BPF_CORE_READ(bprm, file);
  if (protect_inode(BPF_CORE_READ(f, f_inode), SA_TAMPER_REMOVE)) return 1;
  if (BPF_CORE_READ(p, tgid) == daemon_tgid && !by_daemon())
    report_tamper(SA_TAMPER_PTRACE, 0, 0, 0);
  return 0;
}
