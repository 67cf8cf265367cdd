// SPDX-License-Identifier: Apache-2.0
/* ksh93 and mksh command lines (see lineedit.h). */
#define _GNU_SOURCE
#include "lineedit.h"

#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "core.h"
#include "core_internal.h"
#include "shaudit/wire.h"

/* ------------------------------------------------------------------ the emulated editor */

static int is_cont(unsigned char c) {
  return (c & 0xc0) == 0x80; /* a UTF-8 continuation byte */
}
static size_t prev_char(const struct sa_le* e, size_t p) {
  if (p == 0) return 0;
  do --p;
  while (p > 0 && is_cont(e->buf[p]));
  return p;
}
static size_t next_char(const struct sa_le* e, size_t p) {
  if (p >= e->len) return e->len;
  do ++p;
  while (p < e->len && is_cont(e->buf[p]));
  return p;
}
static void del_range(struct sa_le* e, size_t a, size_t b) {
  if (b > e->len) b = e->len;
  if (a >= b) return;
  memmove(e->buf + a, e->buf + b, e->len - b);
  e->len -= b - a;
  if (e->cur > b)
    e->cur -= b - a;
  else if (e->cur > a)
    e->cur = a;
}
static void insert(struct sa_le* e, const unsigned char* s, size_t n) {
  if (e->len + n > SA_LE_MAX) {
    e->unsure = 1; /* longer than we keep: the report is cut */
    n = SA_LE_MAX - e->len;
  }
  memmove(e->buf + e->cur + n, e->buf + e->cur, e->len - e->cur);
  memcpy(e->buf + e->cur, s, n);
  e->len += n;
  e->cur += n;
}
/* vi command mode: the cursor sits on a character, never after the last one. */
static void vi_clamp(struct sa_le* e) {
  if (e->len && e->cur >= e->len) e->cur = prev_char(e, e->len);
}

void sa_le_reset(struct sa_le* e) {
  int vi = e->vi, cols = e->cols;
  e->len = e->cur = 0;
  e->vi_cmd = e->vi_op = e->esc = e->esc_num = 0;
  e->unsure = e->started = e->sync = 0;
  e->echo_len = 0;
  e->echo_over = 0;
  e->prompt_len = 0;
  e->recall = 0;
  e->vi = vi;
  e->cols = cols;
}

static int printable(unsigned char c) {
  return c >= 0x20 && c != 0x7f;
}

void sa_le_remember(struct sa_le* e, const unsigned char* line, size_t len) {
  if (len == 0 || len > 4096) return;
  while (e->hist_len + len + 2 > SA_LE_HIST) { /* drop the oldest */
    size_t first = 2 + (e->hist[0] | (size_t)e->hist[1] << 8);
    memmove(e->hist, e->hist + first, e->hist_len - first);
    e->hist_len -= first;
  }
  e->hist[e->hist_len] = (unsigned char)len;
  e->hist[e->hist_len + 1] = (unsigned char)(len >> 8);
  memcpy(e->hist + e->hist_len + 2, line, len);
  e->hist_len += len + 2;
}

/* Whether line, as the editor shows it, is shown. vi mode shows a control byte or one of
 * 0x80-0x9f as ^ and the byte XOR 0x40; emacs shows bytes as they are. */
static int shows_as(const struct sa_le* e, const unsigned char* line, size_t len,
                    const unsigned char* shown, size_t n) {
  size_t j = 0;
  for (size_t i = 0; i < len; ++i) {
    unsigned char b = line[i];
    if (e->vi && ((b & 0x7f) < 0x20 || b == 0x7f)) {
      if (j + 2 > n || shown[j] != '^' || shown[j + 1] != (unsigned char)(b ^ 0x40)) return 0;
      j += 2;
    } else {
      if (j >= n || shown[j] != b) return 0;
      ++j;
    }
  }
  return j == n;
}

/* After a recall: the remembered line (newest first) shown as the echo shows the line. */
static void recall_match(struct sa_le* e) {
  size_t found = 0, found_len = 0, at = 0;
  int any = 0;
  while (at + 2 <= e->hist_len) {
    size_t l = e->hist[at] | (size_t)e->hist[at + 1] << 8;
    if (shows_as(e, e->hist + at + 2, l, e->buf, e->len)) {
      found = at + 2;
      found_len = l;
      any = 1;
    }
    at += 2 + l;
  }
  if (any) {
    int at_start = e->cur == 0;
    memmove(e->buf, e->hist + found, found_len);
    e->len = found_len;
    e->cur = at_start ? 0 : found_len;
    return;
  }
  /* Not a line we reported (an older one, a multi-line command): a ^ may stand for a byte. */
  if (memchr(e->buf, '^', e->len)) e->unsure = 1;
}

/* The shell's echo after a key whose effect we do not compute (completion, recall), played on
 * a model of the terminal line: the prompt and the line as we know them, then the echo's
 * printable characters (one column each), backspaces and carriage returns. mksh either writes
 * the inserted text, or redraws (CR, prompt, whole line, padding spaces, backspaces back to the
 * cursor). The line is then what follows the prompt, up to the cursor or the last non-space.
 * Anything else (escape sequences, a line as wide as the terminal: scrolled) is unsure. */
#define SA_LE_COLS 512
static void resync_echo(struct sa_le* e);
static void resync(struct sa_le* e) {
  int unsure = e->unsure;
  e->unsure = 0;
  resync_echo(e);
  if (e->recall && !e->unsure) recall_match(e);
  e->recall = 0;
  e->unsure |= unsure;
}

static void resync_echo(struct sa_le* e) {
  e->sync = 0;
  size_t n = e->echo_len;
  e->echo_len = 0;
  if (e->echo_over) {
    e->echo_over = 0;
    e->unsure = 1;
    return;
  }
  size_t width = e->cols > 0 ? (size_t)e->cols : 80;
  if (width > SA_LE_COLS) width = SA_LE_COLS;
  uint32_t cell[SA_LE_COLS];       /* up to 4 UTF-8 bytes per column, packed */
  unsigned char wrote[SA_LE_COLS]; /* the echo wrote this column */
  size_t ncell = 0, col = 0;
  int echoing = 0;
#define PUT_BYTES(src, len)                               \
  do {                                                    \
    for (size_t i_ = 0; i_ < (len);) {                    \
      uint32_t v_ = 0;                                    \
      size_t k_ = 0;                                      \
      do v_ |= (uint32_t)(src)[i_++] << (8 * k_++);       \
      while (i_ < (len) && k_ < 4 && is_cont((src)[i_])); \
      if (col + 1 >= width) {                             \
        e->unsure = 1;                                    \
        return;                                           \
      }                                                   \
      wrote[col] = (unsigned char)echoing;                \
      cell[col++] = v_;                                   \
      if (col > ncell) ncell = col;                       \
    }                                                     \
  } while (0)
  PUT_BYTES(e->prompt, e->prompt_len);
  size_t pcols = col;
  PUT_BYTES(e->buf, e->len);
  col = pcols;
  for (size_t i = 0; i < e->cur; ++i) col += !is_cont(e->buf[i]);
  const unsigned char* p = e->echo;
  echoing = 1;
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    if (c == '\r') {
      col = 0;
      ++i;
    } else if (c == '\b') {
      if (col) --col;
      ++i;
    } else if (c == '\a') {
      ++i;
    } else if (printable(c)) {
      size_t j = i + 1;
      while (j < n && is_cont(p[j])) ++j;
      PUT_BYTES(p + i, j - i);
      i = j;
    } else {
      e->unsure = 1;
      return;
    }
  }
#undef PUT_BYTES
  /* The prompt must still be there, as it was. */
  size_t pc = 0;
  for (size_t i = 0; i < e->prompt_len; ++pc) {
    uint32_t v = 0;
    size_t k = 0;
    do v |= (uint32_t)e->prompt[i++] << (8 * k++);
    while (i < e->prompt_len && k < 4 && is_cont(e->prompt[i]));
    if (pc >= ncell || cell[pc] != v) {
      e->unsure = 1;
      return;
    }
  }
  if (col < pcols) {
    e->unsure = 1;
    return;
  }
  /* The line ends at the cursor or at its last non-space. Spaces after that the echo wrote are
   * padding when the cursor is at the end (a redraw clears the old text, then backspaces back);
   * with the cursor inside (vi's recall puts it first) they may be the line's own. */
  size_t end = ncell;
  while (end > pcols && cell[end - 1] == ' ') --end;
  if (end < col) end = col;
  if (end + 2 >= width) e->unsure = 1; /* mksh scrolls a line wider than cols - 2: a window */
  for (size_t c = end; c < ncell && end > col; ++c)
    if (wrote[c]) e->unsure = 1;
  size_t len = 0, cur = 0;
  for (size_t c = pcols; c < end; ++c) {
    if (c == col) cur = len;
    for (uint32_t v = cell[c]; v && len < SA_LE_MAX; v >>= 8) e->buf[len++] = (unsigned char)v;
  }
  if (col >= end) cur = len;
  e->len = len;
  e->cur = cur;
}

static int vi_command(struct sa_le* e, unsigned char c) {
  if (e->vi_op == 'r') {
    e->vi_op = 0;
    if (e->cur < e->len && c < 0x80 && printable(c) && !is_cont(e->buf[e->cur]) &&
        next_char(e, e->cur) == e->cur + 1)
      e->buf[e->cur] = c;
    else
      e->unsure = 1;
    return SA_LE_MORE;
  }
  if (e->vi_op == 'c' || e->vi_op == 'd') {
    int op = e->vi_op;
    e->vi_op = 0;
    if (c == op) {
      e->len = e->cur = 0;
    } else if (c == '$') {
      del_range(e, e->cur, e->len);
    } else if (c == '0') {
      del_range(e, 0, e->cur);
    } else {
      e->unsure = 1;
      return SA_LE_MORE;
    }
    if (op == 'c')
      e->vi_cmd = 0;
    else
      vi_clamp(e);
    return SA_LE_MORE;
  }
  switch (c) {
    case '\r':
    case '\n':
      return SA_LE_ACCEPT;
    case 3:
      return SA_LE_ABORT;
    case 'h':
    case '\b':
    case 0x7f:
      e->cur = prev_char(e, e->cur);
      break;
    case 'l':
    case ' ':
      if (next_char(e, e->cur) < e->len) e->cur = next_char(e, e->cur);
      break;
    case '0':
      e->cur = 0;
      break;
    case '^':
      e->cur = 0;
      while (e->cur < e->len && (e->buf[e->cur] == ' ' || e->buf[e->cur] == '\t')) ++e->cur;
      vi_clamp(e);
      break;
    case '$':
      e->cur = e->len;
      vi_clamp(e);
      break;
    case 'x':
      del_range(e, e->cur, next_char(e, e->cur));
      vi_clamp(e);
      break;
    case 'X':
      del_range(e, prev_char(e, e->cur), e->cur);
      break;
    case 'i':
      e->vi_cmd = 0;
      break;
    case 'a':
      e->cur = next_char(e, e->cur);
      e->vi_cmd = 0;
      break;
    case 'A':
      e->cur = e->len;
      e->vi_cmd = 0;
      break;
    case 'I':
      e->cur = 0;
      e->vi_cmd = 0;
      break;
    case 'D':
      del_range(e, e->cur, e->len);
      vi_clamp(e);
      break;
    case 'C':
      del_range(e, e->cur, e->len);
      e->vi_cmd = 0;
      break;
    case 'S':
      e->len = e->cur = 0;
      e->vi_cmd = 0;
      break;
    case 's':
      del_range(e, e->cur, next_char(e, e->cur));
      e->vi_cmd = 0;
      break;
    case 'c':
    case 'd':
    case 'r':
      e->vi_op = c;
      break;
    case 'k':
    case 'j':
    case '-':
    case '+':
      e->sync = 1; /* history: the shell redraws the recalled line */
      e->recall = 1;
      break;
    case 0x1b:
      break; /* a bell */
    default:
      e->unsure = 1; /* counts, words, undo, put, search, ...: not followed */
  }
  return SA_LE_MORE;
}

static int vi_insert(struct sa_le* e, unsigned char c) {
  switch (c) {
    case '\r':
    case '\n':
      return SA_LE_ACCEPT;
    case 3:
      return SA_LE_ABORT;
    case 4:
      if (e->len == 0) return SA_LE_ABORT;
      e->unsure = 1;
      return SA_LE_MORE;
    case 0x1b:
      e->vi_cmd = 1;
      e->cur = prev_char(e, e->cur);
      return SA_LE_MORE;
    case '\b':
    case 0x7f:
      del_range(e, prev_char(e, e->cur), e->cur);
      return SA_LE_MORE;
    case 0x15: /* ^U: erase to the start */
      del_range(e, 0, e->cur);
      return SA_LE_MORE;
    case '\t':
      e->sync = 1; /* completion: the shell echoes what it inserted */
      return SA_LE_MORE;
  }
  if (!printable(c)) {
    e->unsure = 1;
    return SA_LE_MORE;
  }
  insert(e, &c, 1);
  return SA_LE_MORE;
}

/* An emacs escape sequence's final byte (ESC [ ... or ESC O ...). */
static void emacs_csi(struct sa_le* e, unsigned char c) {
  int num = e->esc_num;
  e->esc = 0;
  e->esc_num = 0;
  if (c == '~') c = num == 1 || num == 7 ? 'H' : num == 4 || num == 8 ? 'F' : num == 3 ? 'd' : 0;
  switch (c) {
    case 'A':
    case 'B':
      e->sync = 1;
      e->recall = 1;
      break;
    case 'C':
      e->cur = next_char(e, e->cur);
      break;
    case 'D':
      e->cur = prev_char(e, e->cur);
      break;
    case 'H':
      e->cur = 0;
      break;
    case 'F':
      e->cur = e->len;
      break;
    case 'd':
      del_range(e, e->cur, next_char(e, e->cur));
      break;
    default:
      e->unsure = 1;
  }
}

static int emacs_key(struct sa_le* e, unsigned char c) {
  if (e->esc == 1) {
    e->esc = c == '[' ? 2 : c == 'O' ? 3 : 0;
    if (!e->esc) e->unsure = 1; /* a meta key (word motions, ...): not followed */
    return SA_LE_MORE;
  }
  if (e->esc == 2 || e->esc == 3) {
    if (c >= '0' && c <= '9') {
      e->esc_num = e->esc_num * 10 + (c - '0');
      if (e->esc_num > 1000) e->esc_num = 1000;
      return SA_LE_MORE;
    }
    if (c == ';') {
      e->unsure = 1; /* modifiers (ctrl-arrow) */
      return SA_LE_MORE;
    }
    emacs_csi(e, c);
    return SA_LE_MORE;
  }
  switch (c) {
    case '\r':
    case '\n':
      return SA_LE_ACCEPT;
    case 3:
    case 7:
      return SA_LE_ABORT;
    case 0x1b:
      e->esc = 1;
      return SA_LE_MORE;
    case 1:
      e->cur = 0;
      return SA_LE_MORE;
    case 5:
      e->cur = e->len;
      return SA_LE_MORE;
    case 2:
      e->cur = prev_char(e, e->cur);
      return SA_LE_MORE;
    case 6:
      e->cur = next_char(e, e->cur);
      return SA_LE_MORE;
    case 4:
      if (e->len == 0) return SA_LE_ABORT; /* end of input */
      del_range(e, e->cur, next_char(e, e->cur));
      return SA_LE_MORE;
    case '\b':
    case 0x7f:
      del_range(e, prev_char(e, e->cur), e->cur);
      return SA_LE_MORE;
    case 0x0b: /* ^K */
      del_range(e, e->cur, e->len);
      return SA_LE_MORE;
    case 0x15: /* ^U: the whole line (mksh's kill-line) */
      e->len = e->cur = 0;
      return SA_LE_MORE;
    case 0x0c: /* ^L: redraw */
      return SA_LE_MORE;
    case 0x0e: /* ^N */
    case 0x10: /* ^P */
      e->recall = 1;
      /* fall through */
    case '\t':
      e->sync = 1;
      return SA_LE_MORE;
  }
  if (!printable(c)) {
    e->unsure = 1; /* ^W (kill-region), ^R, ^T, ^Y, ^V, ...: not followed */
    return SA_LE_MORE;
  }
  insert(e, &c, 1);
  return SA_LE_MORE;
}

int sa_le_key(struct sa_le* e, unsigned char c) {
  if (e->sync) resync(e);
  e->started = 1;
  if (!e->vi) return emacs_key(e, c);
  return e->vi_cmd ? vi_command(e, c) : vi_insert(e, c);
}

void sa_le_output(struct sa_le* e, const void* buf, size_t n) {
  const unsigned char* p = buf;
  if (!e->started) { /* the prompt: keep its last line (scanned from the end) */
    size_t from = n;
    while (from > 0 && p[from - 1] != '\n' && p[from - 1] != '\r') --from;
    if (from > 0) e->prompt_len = 0;
    for (size_t i = from; i < n && e->prompt_len < SA_LE_PROMPT; ++i)
      e->prompt[e->prompt_len++] = p[i];
    return;
  }
  if (!e->sync) return;
  if (e->echo_len + n > SA_LE_ECHO) {
    e->echo_over = 1;
    return;
  }
  memcpy(e->echo + e->echo_len, p, n);
  e->echo_len += n;
}

/* ------------------------------------------------------------------ the shells */

enum { LE_NONE, LE_KSH93, LE_MKSH };

int sa_le_active;

static struct {
  int kind;
  pid_t owner;
  /* ksh93's history file: -1 not looked for yet, -2 none */
  int hist_fd;
  int hist_regular;
  dev_t hist_dev;
  ino_t hist_ino;
  int input_seen; /* the terminal was read since the last history record */
  char hbuf[SA_LE_MAX];
  size_t hlen;
  int hcut;
  /* Lines ksh93's editor read (Enter) that no history record held yet, and the last one's
   * text as the emulation saw it: see sa_le_before_read. */
  size_t pend;
  int pend_nl; /* the editor echoed the newline that ends the pending line */
  char ptext[1024];
  size_t plen;
  /* mksh without an editor: canonical lines, one byte a read */
  int winsz;    /* the shell asked the terminal's size: it is about to prompt */
  int cstarted; /* a canonical line is under way ... */
  int ccmd;     /* ... and is a command line (a prompt came before it) */
  char cbuf[4096];
  size_t clen;
  struct sa_le ed;
} K;

static int ends_with(const char* s, const char* suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* mksh picks its mode from VISUAL, else EDITOR (a last component containing vi). */
static int editor_says_vi(char** envp) {
  const char* v = NULL;
  for (char** p = envp; p && *p; ++p)
    if (strncmp(*p, "VISUAL=", 7) == 0) v = *p + 7;
  for (char** p = envp; !v && p && *p; ++p)
    if (strncmp(*p, "EDITOR=", 7) == 0) v = *p + 7;
  if (!v) return 0;
  const char* b = strrchr(v, '/');
  return strstr(b ? b + 1 : v, "vi") != NULL;
}

void sa_le_init(const char* name, int argc, char* const argv[], char** envp) {
  if (strstr(name, "mksh") || strstr(name, "lksh"))
    K.kind = LE_MKSH;
  else if (ends_with(name, "ksh") || ends_with(name, "ksh93"))
    K.kind = LE_KSH93;
  else
    return;
  K.owner = getpid();
  K.hist_fd = -1;
  int vi = editor_says_vi(envp);
  for (int i = 1; i + 1 < argc && argv && argv[i]; ++i) { /* -o vi, +o emacs, ... */
    if (strcmp(argv[i], "-o") != 0 && strcmp(argv[i], "+o") != 0) continue;
    if (strcmp(argv[i + 1], "vi") == 0) vi = argv[i][0] == '-';
    if ((strcmp(argv[i + 1], "emacs") == 0 || strcmp(argv[i + 1], "gmacs") == 0) &&
        argv[i][0] == '-')
      vi = 0;
  }
  K.ed.vi = vi;
  sa_le_active = 1;
}

/* A typed `set -o vi` / `set -o emacs` switches the emulated mode. */
static void follow_mode(const unsigned char* s, size_t n) {
  static const char* const keys[] = {"set -o vi", "set -o emacs", "set -o gmacs", "set +o vi"};
  for (int k = 0; k < 4; ++k) {
    size_t kl = strlen(keys[k]);
    for (size_t i = 0; i + kl <= n; ++i)
      if (memcmp(s + i, keys[k], kl) == 0) K.ed.vi = k == 0;
  }
}

/* ksh93 keeps its history file open on a descriptor of 10 or more, read-write, append-only,
 * close-on-exec; a regular file starting with its magic bytes (or /dev/null). Looked for
 * before the first command runs, so no command of the user's can pose as it. */
static void find_history(void) {
  K.hist_fd = -2;
  for (int fd = 10; fd < 64; ++fd) {
    int fdf = fcntl(fd, F_GETFD), fl = fcntl(fd, F_GETFL);
    if (fdf < 0 || !(fdf & FD_CLOEXEC) || fl < 0 || (fl & O_ACCMODE) != O_RDWR || !(fl & O_APPEND))
      continue;
    struct stat st;
    if (fstat(fd, &st) != 0) continue;
    unsigned char magic[2];
    if (S_ISREG(st.st_mode)) {
      if (pread(fd, magic, 2, 0) != 2 || magic[0] != 0201 || magic[1] != 1) continue;
    } else if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) {
      continue;
    }
    K.hist_fd = fd;
    K.hist_regular = S_ISREG(st.st_mode);
    K.hist_dev = st.st_dev;
    K.hist_ino = st.st_ino;
    return;
  }
}

static int history_ok(void) {
  if (K.hist_fd == -1) find_history();
  if (K.hist_fd < 0) return 0;
  struct stat st;
  if (fstat(K.hist_fd, &st) != 0 || st.st_dev != K.hist_dev || st.st_ino != K.hist_ino) {
    K.hist_fd = -2; /* closed or replaced: from now on, the emulation */
    return 0;
  }
  return 1;
}

/* One history record: the command's lines, each ended by a newline, then a NUL in a regular
 * file. Reported line by line, the first as the command, the others as its continuation. */
static void report_history(void) {
  const char* p = K.hbuf;
  size_t n = K.hlen;
  while (n && (p[n - 1] == 0 || p[n - 1] == '\n')) --n;
  uint32_t flags = 0;
  size_t start = 0;
  for (size_t i = 0; i <= n; ++i) {
    if (i < n && p[i] != '\n') continue;
    sa_report_line(p + start, i - start, flags | (K.hcut && i == n ? SHAUDIT_LINE_CUT : 0));
    flags = SHAUDIT_LINE_CONTINUATION;
    start = i + 1;
  }
  follow_mode((const unsigned char*)p, n);
  K.hlen = 0;
  K.hcut = 0;
  size_t lines = 1;
  for (size_t i = 0; i < n; ++i) lines += p[i] == '\n';
  K.pend = K.pend > lines ? K.pend - lines : 0;
  if (!K.pend) K.pend_nl = 0;
}

static void history_write(const char* p, size_t n) {
  if (!K.input_seen) return; /* not a command read from the terminal (print >&N, hist) */
  size_t room = sizeof K.hbuf - K.hlen, take = n < room ? n : room;
  memcpy(K.hbuf + K.hlen, p, take);
  K.hlen += take;
  if (take < n) K.hcut = 1;
  char last = p[n - 1];
  if (K.hist_regular ? last == 0 : last == '\n') {
    K.input_seen = 0;
    report_history();
  }
}

/* mksh with no editor (set +o emacs +o vi) reads its command lines in canonical mode, one
 * byte a read, like its read builtin. Before each prompt (PS1 and PS2, even an empty one) it
 * asks the terminal's size (TIOCGWINSZ); the read builtin does not. */
static void canonical_read(const unsigned char* p, size_t n, int echo_off) {
  for (size_t i = 0; i < n; ++i) {
    if (!K.cstarted) {
      K.cstarted = 1;
      K.ccmd = K.winsz;
      K.winsz = 0;
    }
    if (p[i] != '\n') {
      if (K.clen < sizeof K.cbuf) K.cbuf[K.clen++] = (char)p[i];
      continue;
    }
    /* Typed with echo off (stty -echo to hide it) a command line is still a command. */
    if (K.ccmd)
      sa_report_line(K.cbuf, K.clen,
                     SHAUDIT_LINE_TTY_READ | (K.clen >= 4095 ? SHAUDIT_LINE_CUT : 0) |
                         (echo_off ? SHAUDIT_LINE_ECHO_OFF : 0));
    K.clen = 0;
    K.cstarted = 0;
  }
}

/* ksh93 writes a command's history record after the Enter of its last line (after echoing the
 * newline), before it prompts or runs anything. A line it read that no record held by then is
 * its read builtin's input, or a line of a command still being typed (PS2; its record comes
 * with the command's last line). Either way it is reported as non-command input (length and
 * keyed hash) at the shell's next output (a prompt, the command's output) or, with none, at its
 * next read of the terminal: the kernel-side cross-check looks for a report between a line's
 * Enter and the next line's. The command lines themselves come from the record. */
static void flush_pending(void) {
  for (; K.pend; --K.pend) sa_report_noncmd(K.ptext, K.plen, SHAUDIT_INPUT_EDITOR_LINE);
  K.pend_nl = 0;
}

void sa_le_before_read(int fd) {
  if (fd != 0 || K.kind != LE_KSH93 || !K.pend || getpid() != K.owner) return;
  flush_pending();
}

void sa_le_after_winsz(int fd) {
  (void)fd;
  if (K.kind == LE_MKSH && getpid() == K.owner) K.winsz = 1;
}

int sa_le_after_read(int fd, const void* buf, ssize_t n) {
  if (!K.kind || getpid() != K.owner) return 0;
  struct termios t;
  if (ioctl(fd, TCGETS, &t) != 0) return 0;
  if (t.c_lflag & ICANON) {
    if (K.kind != LE_MKSH) return 0;
    canonical_read(buf, (size_t)n, !(t.c_lflag & ECHO));
    return 1;
  }
  K.winsz = 0; /* the editor's line: its prompt is consumed */
  if (K.kind == LE_KSH93 && (K.input_seen || history_ok())) {
    K.input_seen = 1;
    /* The lines come from the history records; the keys are followed only to know where a
     * line ends (sa_le_before_read). */
    const unsigned char* k = buf;
    for (ssize_t i = 0; i < n; ++i) {
      int r = sa_le_key(&K.ed, k[i]);
      if (r == SA_LE_ACCEPT) {
        ++K.pend;
        K.plen = K.ed.len < sizeof K.ptext ? K.ed.len : sizeof K.ptext;
        memcpy(K.ptext, K.ed.buf, K.plen);
      }
      if (r != SA_LE_MORE) sa_le_reset(&K.ed);
    }
    return 1;
  }
  const unsigned char* p = buf;
  for (ssize_t i = 0; i < n; ++i) {
    if (!K.ed.started) {
      struct winsize ws;
      K.ed.cols = ioctl(2, TIOCGWINSZ, &ws) == 0 ? ws.ws_col : 0;
      K.winsz = 0; /* our own question (the ioctl hook saw it) */
    }
    int r = sa_le_key(&K.ed, p[i]);
    if (r == SA_LE_ACCEPT) {
      uint32_t flags = SHAUDIT_LINE_EDITOR | (K.ed.unsure ? SHAUDIT_LINE_EDITOR_UNSURE : 0);
      /* ksh93 without a history file: its editor also reads the read builtin's input, and
       * its keys differ in places from mksh's: never exact. */
      if (K.kind == LE_KSH93) flags |= SHAUDIT_LINE_EDITOR_UNSURE;
      sa_report_line((const char*)K.ed.buf, K.ed.len, flags);
      follow_mode(K.ed.buf, K.ed.len);
      sa_le_remember(&K.ed, K.ed.buf, K.ed.len);
    }
    if (r != SA_LE_MORE) sa_le_reset(&K.ed);
  }
  return 1;
}

void sa_le_after_write(int fd, const void* buf, ssize_t n) {
  if (n <= 0) return;
  if (K.kind == LE_KSH93 && fd >= 10 && fd == K.hist_fd) {
    if (getpid() == K.owner) history_write(buf, (size_t)n);
    return;
  }
  if (K.kind == LE_KSH93 && K.pend && (fd == 1 || fd == 2) && getpid() == K.owner) {
    /* The editor finishes the line on the screen (the cursor to its end, then a newline); what
     * it writes after that newline, with no record before it, is the next prompt or output. */
    const char* p = buf;
    ssize_t i = 0;
    if (!K.pend_nl) {
      i = n;
      while (i > 0 && p[i - 1] != '\n') --i;
      K.pend_nl = i > 0; /* i: just after the newline, or 0: the line's own echo, not yet */
    }
    while (i < n && (p[i] == '\r' || p[i] == '\n')) ++i;
    if (K.pend_nl && i < n) flush_pending();
  }
  /* The echo matters to the emulation only: not to ksh93 with its history file. */
  if ((fd == 1 || fd == 2) && (!K.ed.started || K.ed.sync) &&
      (K.kind == LE_MKSH || K.hist_fd < 0) && getpid() == K.owner)
    sa_le_output(&K.ed, buf, (size_t)n);
}
