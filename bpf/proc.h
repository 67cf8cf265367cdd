// SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0
/* Events from the shaudit eBPF programs (proc.bpf.c) to shauditd, through one ring buffer.
 * C only; included by the BPF programs and by the daemon's loader (proc.cc, proc_collector.h)
 * and cross-check. Explicit padding, no packed structs; the C++ side checks sizes and offsets
 * with static_assert. */
#ifndef SHAUDIT_BPF_PROC_H
#define SHAUDIT_BPF_PROC_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define SA_ARGV_MAX (32u * 1024u) /* argv bytes kept per exec; cut beyond, and flagged */
#define SA_LINE_MAX 4096u         /* bytes of a readline/zleread line; cut beyond, flagged */
#define SA_PATH_MAX 256u          /* exec filename bytes */
#define SA_TTY_MAX 32u
#define SA_INPUT_MAX 1024u /* terminal input bytes per event (a longer read comes as several) */
#define SA_COMM_MAX 16u

enum sa_event_type {
  SA_EV_EXEC = 1,        /* sched_process_exec: a tracked process runs a new image */
  SA_EV_ATTEMPT = 2,     /* execve(at) by a tracked process failed (result < 0) */
  SA_EV_FORK = 3,        /* sched_process_fork: a tracked process got a child (now tracked) */
  SA_EV_EXIT = 4,        /* sched_process_exit of a tracked thread-group leader */
  SA_EV_LINE = 5,        /* readline()/zleread() returned a line in a tracked process */
  SA_EV_HOOKED = 6,      /* the genuine interposer (the configured library file) initialised in a
                          * tracked process: this image carries it. No socket involved. */
  SA_EV_INPUT = 7,       /* a tracked process read these bytes from a terminal (read() of a
                          * terminal device's input side, at the system call's exit) */
  SA_EV_DENIED = 8,      /* enforcing mode: the BPF LSM refused an exec of a tracked process (EPERM)
                          * because the new image would run without the interposer; with
                          * SA_FLAG_KILLED, the kill mode killed it at sched_process_exec instead */
  SA_EV_TAMPER = 9,      /* enforcing mode with protect: the BPF LSM refused (EPERM) another
                          * process's access to shauditd's own files or process */
  SA_EV_BREAK_GLASS = 10 /* enforcing mode, fail: closed: while shauditd's heartbeat was stale,
                          * a tracked process exec'd a file on the break-glass list (allowed).
                          * Laid out as struct sa_denied_event (reason 0) */
};

/* What a tamper event is about (sa_tamper_event.what). */
enum sa_tamper_what {
  SA_TAMPER_WRITE = 1,  /* open for writing of a write-protected file (the log) */
  SA_TAMPER_READ = 2,   /* any open of a read-protected file (the signing key, the key state) */
  SA_TAMPER_REMOVE = 3, /* unlink or rename of a protected file */
  SA_TAMPER_PTRACE = 4  /* ptrace access to shauditd (attach, /proc/PID/mem, ...) */
};

/* Values of the protected_files map (bits). */
#define SA_PROTECT_WRITE 0x1u /* no open for writing, unlink or rename but by shauditd */
#define SA_PROTECT_READ 0x2u  /* no open at all, unlink or rename but by shauditd */

/* Why an exec was denied (sa_denied_event.reason), in the order the kernel side checks. */
enum sa_deny_reason {
  SA_DENY_UNLINKED = 1,   /* the file has no name on any file system: a memfd (fexecve), an
                           * O_TMPFILE or deleted file */
  SA_DENY_NO_INTERP = 2,  /* an ELF image without a program interpreter (no PT_INTERP): a static
                           * binary, or the dynamic loader run as a program */
  SA_DENY_UNHOOKED = 3,   /* the calling process ran an image in the session that never
                           * initialised the genuine interposer */
  SA_DENY_NO_PRELOAD = 4, /* the new environment's LD_PRELOAD (the last one, as ld.so reads it)
                           * does not name the configured interposer */
  SA_DENY_FAIL_CLOSED = 5 /* fail: closed: shauditd's heartbeat is stale (stopped, hung, not
                           * keeping up) and the file is not on the break-glass list */
};

#define SA_FLAG_ARGV_CUT 0x1u
#define SA_FLAG_SECUREEXEC 0x2u /* setuid/setgid/file capabilities: ignores LD_PRELOAD */
#define SA_FLAG_LINE_CUT 0x4u
#define SA_FLAG_ZLE 0x8u         /* the line came from zsh's zleread (metafied) */
#define SA_FLAG_KNOWN_FILE 0x10u /* exec: a file shauditd has examined (in known_files) */
/* exec: a container runtime started this process inside a pid namespace from outside it
 * (`runc exec`): the kernel began following it under a new key, a session for shauditd to open */
#define SA_FLAG_RUNTIME_EXEC 0x20u
/* denied: the enforcing mode's kill mode (`enforce: {mode: kill}`) sent SIGKILL to the process at
 * sched_process_exec, before the new image ran an instruction (no BPF LSM needed): no EPERM */
#define SA_FLAG_KILLED 0x40u

/* Common header of every event. */
struct sa_event_hdr {
  __u32 type;
  __u32 pid; /* tgid */
  __u32 tid;
  __u32 ppid; /* real parent's tgid */
  __u32 uid;
  __u32 loginuid;
  __u32 sessionid;
  __u32 flags;
  __u64 ts_ns; /* bpf_ktime_get_boot_ns */
  __u64 key;   /* the tracked session key the daemon gave this process's ancestor */
  char comm[SA_COMM_MAX];
};

struct sa_exec_event {
  struct sa_event_hdr h;
  __u32 argv_len; /* bytes in argv[] (NUL-separated elements) */
  __u32 argc;
  __u32 filename_len;
  __u32 tty_len;
  __u32 ns_pid;    /* its pid (tgid) as seen inside its own pid namespace (a container's pid) */
  __u32 ns_level;  /* that namespace's depth: 0 is the initial namespace (ns_pid == pid) */
  __u32 pidns_ino; /* that namespace's inode (/proc/PID/ns/pid) */
  __u32 pad;
  char tty[SA_TTY_MAX];
  char filename[SA_PATH_MAX];
  char argv[SA_ARGV_MAX];
};

struct sa_attempt_event {
  struct sa_event_hdr h;
  __u32 filename_len;
  __s32 result; /* -errno */
  char filename[SA_PATH_MAX];
};

struct sa_fork_event {
  struct sa_event_hdr h;
  __u32 child_pid;
  __u32 pad;
  __u64 child_ino; /* the child's pidfs inode (never reused; 0 before Linux 6.9): the same
                    * number as the inode of a pidfd of it (SCM_PIDFD) */
};

struct sa_exit_event {
  struct sa_event_hdr h;
  __s32 exit_code;
  __u32 pad;
};

struct sa_hooked_event {
  struct sa_event_hdr h;
};

struct sa_input_event {
  struct sa_event_hdr h;
  __u32 len;     /* bytes in data[] */
  __u32 lflag;   /* the terminal's local modes at the read (termios c_lflag: ICANON, ECHO) */
  __u32 tty_len; /* bytes in tty[] */
  __u32 pad;
  char tty[SA_TTY_MAX];
  char data[SA_INPUT_MAX];
};

#define SA_DENY_ARGV_MAX 4096u /* argv bytes kept per denied exec; cut beyond, and flagged */

struct sa_denied_event {
  struct sa_event_hdr h;
  __u32 reason;           /* enum sa_deny_reason */
  __u32 argv_len;         /* bytes in argv[] (NUL-separated elements) */
  __u32 filename_len;     /* the file to run (a script's interpreter when that was refused) */
  __u32 heartbeat_age_ms; /* fail: closed: ms since shauditd's last heartbeat when stale, else 0 */
  char filename[SA_PATH_MAX];
  char argv[2 * SA_DENY_ARGV_MAX]; /* only the first SA_DENY_ARGV_MAX bytes are used */
};

struct sa_tamper_event {
  struct sa_event_hdr h; /* the process that tried (key: its session's, or 0) */
  __u32 what;            /* enum sa_tamper_what */
  __u32 mode;            /* the file's f_mode at open, or the ptrace access mode */
  __u64 dev;             /* the protected file (kernel dev_t), 0 for ptrace */
  __u64 ino;
};

struct sa_line_event {
  struct sa_event_hdr h;
  __u32 len;
  __u32 pad;
  char line[SA_LINE_MAX];
};

/* Where readline's variables lie in one bash binary, as distances (bytes) from its
 * rl_deprep_terminal function; eof is 0 when the binary has no rl_eof_found. */
struct sa_rl_vars {
  __s64 line; /* rl_line_buffer (char*) */
  __s64 done; /* rl_done (int) */
  __s64 eof;  /* rl_eof_found (int) */
};

/* The prctl() option the interposer's initialisation passes (unknown to the kernel: EINVAL);
 * preload/core.c uses the same value (SHAUDIT_PRCTL_MARK in shaudit/wire.h). */
#define SA_PRCTL_MARK 0x53484144u /* "SHAD" */

/* Key of the "known_files" map: an executable file shauditd has examined (kernel dev_t:
 * major << 20 | minor). The first exec of any other file wakes shauditd at once, so it can
 * probe a new bash copy before its first line; execs of known files wait for its next look. */
struct sa_file_key {
  __u64 dev;
  __u64 ino;
};

/* Counters in the "stats" array map. */
enum sa_stat {
  SA_STAT_DROPPED = 0, /* ring buffer reserve/output failures: lost events */
  SA_STAT_EVENTS = 1,
  SA_STAT_MAX = 2
};

#endif /* SHAUDIT_BPF_PROC_H */
