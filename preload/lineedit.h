// SPDX-License-Identifier: Apache-2.0
/* Command lines of shells whose line editor reads the terminal raw, one key at a time, and
 * exposes nothing to hook (ksh93, mksh; see DESIGN.md "Capture per shell"):
 *  - ksh93 appends every command to its history file before running it: that write is the
 *    exact line, taken when the file is open (sa_le_after_write);
 *  - otherwise (mksh; ksh93 without a history file) the line is rebuilt from the keys the
 *    shell read, by an emulation of its emacs or vi editor (struct sa_le), which takes what it
 *    cannot compute (tab completion, history recall) from the shell's own echo and says when
 *    it met a key it cannot follow. Such lines carry SHAUDIT_LINE_EDITOR.
 * The same rules as core.h: no allocation, bounded buffers, errno kept by the callers. */
#ifndef SHAUDIT_PRELOAD_LINEEDIT_H
#define SHAUDIT_PRELOAD_LINEEDIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SA_LE_MAX 8192  /* bytes of one edited line */
#define SA_LE_ECHO 8192 /* bytes of echo kept after a key whose effect comes from the echo */
#define SA_LE_PROMPT 256
#define SA_LE_HIST 16384 /* the lines reported lately, for recall: [len lo][len hi][bytes]... */

/* The emulated editor's state: a plain struct, zeroed by sa_le_reset. */
struct sa_le {
  unsigned char buf[SA_LE_MAX];
  size_t len, cur; /* bytes; cur is a byte offset at a character boundary */
  int vi;          /* 1: vi mode, 0: emacs */
  int vi_cmd;      /* vi: in command mode */
  int vi_op;       /* vi: pending operator ('c', 'd', 'r') */
  int esc;         /* emacs escape-sequence state */
  int esc_num;     /* ... the number of ESC [ n ~ */
  int unsure;      /* a key the emulation cannot follow was met */
  int started;     /* a key of this line was read */
  int sync;        /* the effect of the last key is to be read from the echo */
  int cols;        /* terminal width (for a redraw that may be scrolled) */
  unsigned char echo[SA_LE_ECHO];
  size_t echo_len;
  int echo_over;
  unsigned char prompt[SA_LE_PROMPT]; /* the last line of what was written before the first key */
  size_t prompt_len;
  int recall; /* the key being synced recalls history */
  unsigned char hist[SA_LE_HIST];
  size_t hist_len;
};

enum { SA_LE_MORE = 0, SA_LE_ACCEPT = 1, SA_LE_ABORT = 2 };

/* Starts an empty line (keeps vi and cols). */
void sa_le_reset(struct sa_le* e);
/* One key byte the shell read. SA_LE_ACCEPT: buf[0..len) is the line the shell accepted. */
int sa_le_key(struct sa_le* e, unsigned char c);
/* What the shell wrote to the terminal (its echo and prompt). */
void sa_le_output(struct sa_le* e, const void* buf, size_t n);
/* Remembers an accepted line: a recalled line whose echo shows it is taken byte for byte
 * (mksh's vi mode shows bytes 0x80-0x9f as ^ and another byte). */
void sa_le_remember(struct sa_le* e, const unsigned char* line, size_t len);

/* Glue (lineedit.c), called by sa_init, sa_after_read and the write() hook. */
void sa_le_init(const char* name, int argc, char* const argv[], char** envp);
/* 1 when the read was taken here (a raw-mode read of the line editor). */
int sa_le_after_read(int fd, const void* buf, ssize_t n);
/* The shell is about to read fd (0: its terminal). */
void sa_le_before_read(int fd);
void sa_le_after_write(int fd, const void* buf, ssize_t n);
/* The shell asked fd's window size (TIOCGWINSZ): mksh does so before each prompt. */
void sa_le_after_winsz(int fd);
extern int sa_le_active; /* a shell whose writes matter (ksh93, mksh) */

#ifdef __cplusplus
}
#endif
#endif
