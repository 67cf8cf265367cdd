// SPDX-License-Identifier: Apache-2.0
/* shaudit wire format between reporters (interposer, PAM module, client API) and shauditd.
 *
 * One SOCK_SEQPACKET message per report: a fixed header followed by fields (TLV). All
 * integers are in host byte order (both ends are on one host). The daemon never trusts a
 * pid or uid in a message: it takes them from the kernel (SCM_CREDENTIALS) per message.
 *
 * Versioning: SHAUDIT_WIRE_VERSION changes whenever a change would be misread by an older
 * peer. The daemon rejects (and counts) messages of any other version, so mixed versions
 * fail clearly instead of being misparsed. Unknown field tags are skipped, so a field may be
 * added within a version.
 *
 * C only (included by the interposer, the PAM module, the daemon and libshaudit). */
#ifndef SHAUDIT_WIRE_H
#define SHAUDIT_WIRE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHAUDIT_WIRE_MAGIC 0x5341u /* "AS" little-endian: 'S','A' */
#define SHAUDIT_WIRE_VERSION 1u
/* Largest message a reporter sends and the daemon accepts, header included. Fields that
 * would not fit are cut by the sender and flagged SHAUDIT_FIELD_TRUNCATED. */
#define SHAUDIT_WIRE_MAX_MESSAGE (128u * 1024u)
#define SHAUDIT_DEFAULT_SOCKET "/run/shaudit/shaudit.sock"
/* The interposer announces itself to the kernel side with prctl(SHAUDIT_PRCTL_MARK) from its
 * own code (an option the kernel does not know: EINVAL); bpf/proc.h SA_PRCTL_MARK. */
#define SHAUDIT_PRCTL_MARK 0x53484144u

enum shaudit_msg_type {
  SHAUDIT_MSG_HELLO = 1,        /* a process carrying a reporter started: EXE, SESSION, ... */
  SHAUDIT_MSG_LINE = 2,         /* a typed line: SHELL, TEXT, CMD_NO, LINE_FLAGS, TTY, CWD */
  SHAUDIT_MSG_EXEC = 3,         /* an exec attempt: PATH, ARGV (one per element), CWD, CMD_* */
  SHAUDIT_MSG_STATUS = 4,       /* a typed command finished: CMD_NO, STATUS, DURATION_NS */
  SHAUDIT_MSG_NONCMD = 5,       /* non-command input: INPUT_KIND, INPUT_LEN, INPUT_HASH, HASH_KEY */
  SHAUDIT_MSG_SESSION_OPEN = 6, /* PAM (root only): USER, UID, SERVICE, TTY, RHOST */
  SHAUDIT_MSG_SESSION_CLOSE = 7, /* PAM (root only): SESSION */
  SHAUDIT_MSG_SESSION_REPLY = 8, /* daemon -> PAM: SESSION, or ERROR */
  SHAUDIT_MSG_MAX = 8
};

enum shaudit_field_tag {
  SHAUDIT_F_TEXT = 1,    /* bytes of a typed line, without the trailing newline */
  SHAUDIT_F_SHELL = 2,   /* shell name, e.g. "bash" */
  SHAUDIT_F_ARGV = 3,    /* one argv element; repeated in order */
  SHAUDIT_F_PATH = 4,    /* the path passed to (or resolved for) exec */
  SHAUDIT_F_CWD = 5,     /* working directory */
  SHAUDIT_F_SESSION = 6, /* SHAUDIT_SESSION token from the environment (a claim only) */
  SHAUDIT_F_TTY = 7,     /* terminal name */
  SHAUDIT_F_EXE = 8,     /* the reporter's own executable */
  /* numbers are 8-byte unsigned integers (host order) unless noted */
  SHAUDIT_F_CMD_NO = 9,       /* number of the typed command in its shell (1, 2, ...) */
  SHAUDIT_F_CMD_PID = 10,     /* pid of the shell that read that command (from inherited memory) */
  SHAUDIT_F_LINE_FLAGS = 11,  /* SHAUDIT_LINE_* */
  SHAUDIT_F_STATUS = 12,      /* exit status (signed, as int64) */
  SHAUDIT_F_DURATION_NS = 13, /* Enter to next prompt */
  SHAUDIT_F_INPUT_KIND = 14,  /* SHAUDIT_INPUT_* */
  SHAUDIT_F_INPUT_LEN = 15,
  SHAUDIT_F_INPUT_HASH = 16, /* SipHash-2-4 of the input under HASH_KEY */
  SHAUDIT_F_HASH_KEY = 17, /* 16 random bytes chosen by the process; kept in memory, never logged */
  SHAUDIT_F_HELLO_FLAGS = 18, /* SHAUDIT_HELLO_* */
  SHAUDIT_F_USER = 19,        /* PAM: user name */
  SHAUDIT_F_UID = 20,         /* PAM: the user's uid */
  SHAUDIT_F_SERVICE = 21,     /* PAM: service name */
  SHAUDIT_F_RHOST = 22,       /* PAM: remote host */
  SHAUDIT_F_ERROR = 23,       /* daemon -> PAM: why a session was refused */
  SHAUDIT_F_LINE_INDEX = 24,  /* 0 for the first line of a command, 1.. for continuation lines */
  SHAUDIT_F_PPID = 25         /* the sender's parent pid as it saw it (used only when /proc
                               * no longer has the sender: a claim, marked as such) */
};

/* SHAUDIT_F_LINE_FLAGS */
#define SHAUDIT_LINE_CONTINUATION 0x1u /* PS2 / here-document line of the current command */
#define SHAUDIT_LINE_CUT 0x2u          /* the terminal delivered only part (canonical limit) */
#define SHAUDIT_LINE_TTY_READ 0x4u     /* captured from read() on the terminal */
/* a line a readline/libedit program (python3, psql, gdb, ...) accepted: SHELL names it */
#define SHAUDIT_LINE_REPL 0x8u
/* Assembled by the interposer's emulation of the shell's line editor from the keys it read
 * (mksh; ksh93 without a history file), not taken from the shell. */
#define SHAUDIT_LINE_EDITOR 0x10u
#define SHAUDIT_LINE_ECHO_OFF 0x20u /* the shell read its command line with terminal echo off */
/* ... and the emulation met a key it cannot follow (or ksh93's): the text may differ from what
 * the shell ran. Records: `emulated: true`, `unknown_keys: true`. */
#define SHAUDIT_LINE_EDITOR_UNSURE 0x40u

/* SHAUDIT_F_INPUT_KIND */
#define SHAUDIT_INPUT_READ_E 1u   /* bash read -e */
#define SHAUDIT_INPUT_VARED 2u    /* zsh vared */
#define SHAUDIT_INPUT_ECHO_OFF 3u /* read while terminal echo was off (passwords) */
/* a line ksh93's editor read that no history record held when it read on: its read builtin's
 * input, or a line of a command still being typed (whose command records follow): kind
 * `editor_line` */
#define SHAUDIT_INPUT_EDITOR_LINE 4u

/* SHAUDIT_F_HELLO_FLAGS */
#define SHAUDIT_HELLO_SHELL 0x1u       /* a shell the interposer captures lines from */
#define SHAUDIT_HELLO_INTERACTIVE 0x2u /* ... running interactively on a terminal */
#define SHAUDIT_HELLO_HOST_WIDE 0x4u   /* loaded through /etc/ld.so.preload */
#define SHAUDIT_HELLO_SECURE 0x8u      /* secure-execution mode (setuid etc.) */
/* a program that reads lines through readline or libedit (said at its first line) */
#define SHAUDIT_HELLO_REPL 0x10u

/* Field flags. */
#define SHAUDIT_FIELD_TRUNCATED 0x1u /* the sender cut this field to fit */

/* Message flags. */
#define SHAUDIT_MSG_ARGV_TRUNCATED 0x1u /* argv elements were left out to fit */
#define SHAUDIT_MSG_SPAWN 0x2u          /* EXEC: a new child runs it (posix_spawn, system, popen) */

struct shaudit_wire_header {
  uint16_t magic;      /* SHAUDIT_WIRE_MAGIC */
  uint16_t version;    /* SHAUDIT_WIRE_VERSION */
  uint16_t type;       /* enum shaudit_msg_type */
  uint16_t flags;      /* SHAUDIT_MSG_* */
  uint32_t length;     /* whole message in bytes, header included */
  uint32_t reserved;   /* zero */
  uint64_t report_seq; /* per-process report number, 1, 2, 3, ...; a gap means loss */
  uint64_t sent_ns;    /* sender's CLOCK_REALTIME at send (informational, untrusted) */
};

struct shaudit_wire_field {
  uint16_t tag;    /* enum shaudit_field_tag */
  uint16_t flags;  /* SHAUDIT_FIELD_* */
  uint32_t length; /* bytes of data following this field header */
};

#ifdef __cplusplus
}
static_assert(sizeof(shaudit_wire_header) == 32, "wire header layout");
static_assert(sizeof(shaudit_wire_field) == 8, "wire field layout");
#else
_Static_assert(sizeof(struct shaudit_wire_header) == 32, "wire header layout");
_Static_assert(sizeof(struct shaudit_wire_field) == 8, "wire field layout");
#endif

#endif /* SHAUDIT_WIRE_H */
