// SPDX-License-Identifier: Apache-2.0
/* Readline and libedit programs (python3, psql, sqlite3, gdb, bc, sftp, ...): the exported
 * readline(), rl_callback_handler_install(), rl_callback_read_char() and el_gets() hooks,
 * which report each line such a program accepted as a line of input of that program
 * (SHAUDIT_LINE_REPL, named after the program), so the execs it causes (os.system, sqlite3's
 * .shell, gdb's shell) link to that line.
 *
 * Nothing happens at start: a program that never calls one of these never reaches this file,
 * and one that does resolves the real function at its first call. bash carries its own
 * readline (its executable's definitions come first), so these are never bash's (bash.c).
 *
 * Readline's two interfaces: readline() returns the line; the callback interface (python3's
 * readline module, gdb) passes it to the handler given to rl_callback_handler_install(), which
 * is wrapped here. Either way the terminal is back in the program's own mode when the line
 * arrives (readline's deprep ran), so echo off there means the program hid the input: only its
 * length and keyed hash are reported, as for the shells. libedit's readline() is the same
 * symbol; its el_gets() is the native interface (sftp), and is called by libedit's own readline
 * and callback emulation too: those lines are reported once, by the outer hook (depth). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <termios.h>

#include "core.h"
#include "core_internal.h"
#include "shaudit/wire.h"

typedef char* (*readline_fn)(const char*);
typedef void (*line_handler_fn)(char*);
typedef void (*handler_install_fn)(const char*, line_handler_fn);
typedef void (*read_char_fn)(void);
typedef const char* (*el_gets_fn)(void*, int*);

static struct {
  readline_fn readline;
  handler_install_fn handler_install;
  read_char_fn read_char;
  el_gets_fn el_gets;
  line_handler_fn handler; /* the program's callback handler */
  int depth;               /* inside a readline() or rl_callback_read_char() hook */
} R;

/* The definition this library's hook stands in front of. RTLD_NEXT finds it in the objects
 * loaded at start (sqlite3, bc, gdb link libreadline); python3 loads its readline module, and
 * through it libreadline, with RTLD_LOCAL, out of RTLD_NEXT's reach: then it is looked up in
 * what the calling object itself links (its own dependencies, which this library is not). */
static void* real_symbol(void** slot, const char* name, const void* caller, const void* self) {
  void* f = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (f) return f;
  f = dlsym(RTLD_NEXT, name);
  if (!f || f == self) {
    f = NULL;
    Dl_info info;
    if (dladdr(caller, &info) && info.dli_fname && info.dli_fname[0]) {
      void* h = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
      if (h) {
        f = dlsym(h, name);
        dlclose(h); /* (it stays loaded: the caller is in it) */
        if (f == self) f = NULL;
      }
    }
  }
  if (f) __atomic_store_n(slot, f, __ATOMIC_RELEASE);
  return f;
}
#define REAL(field, name, self)                                                          \
  ((__typeof__(R.field))real_symbol((void**)&R.field, name, __builtin_return_address(0), \
                                    (const void*)(self)))

/* The program reads lines through the library: it says so (its hello) before it reads its
 * terminal, so shauditd knows from its first key that its lines are reported. */
static int repl_begin(void) {
  int saved = errno;
  const char* execfn = (const char*)getauxval(AT_EXECFN);
  const char* name = execfn ? strrchr(execfn, '/') : NULL;
  name = name ? name + 1 : execfn ? execfn : "";
  int r = sa_repl_begin(name[0] ? name : "repl");
  errno = saved;
  return r;
}

/* One accepted line (len bytes, no newline). An empty line is not recorded. */
static void repl_line(const char* line, size_t len) {
  if (len == 0) return;
  if (!repl_begin()) return;
  struct termios t;
  if (ioctl(0, TCGETS, &t) == 0 && !(t.c_lflag & ECHO))
    sa_report_noncmd(line, len, SHAUDIT_INPUT_ECHO_OFF);
  else
    sa_report_line(line, len, SHAUDIT_LINE_REPL);
}

EXPORT char* readline(const char* prompt) {
  int saved = errno;
  readline_fn real = REAL(readline, "readline", readline);
  errno = saved;
  if (!real) return NULL; /* no readline behind this one: end of input */
  if (R.depth == 0) repl_begin();
  ++R.depth;
  char* line = real(prompt);
  --R.depth;
  if (line && R.depth == 0) {
    saved = errno;
    repl_line(line, strlen(line));
    errno = saved;
  }
  return line;
}

/* Readline calls this with the accepted line (NULL at end of input), after its deprep. */
static void repl_handler(char* line) {
  line_handler_fn h = R.handler;
  if (line) {
    int saved = errno;
    repl_line(line, strlen(line));
    errno = saved;
  }
  if (h) h(line);
}

EXPORT void rl_callback_handler_install(const char* prompt, line_handler_fn handler) {
  int saved = errno;
  handler_install_fn real =
      REAL(handler_install, "rl_callback_handler_install", rl_callback_handler_install);
  errno = saved;
  if (!real) return;
  if (handler) repl_begin();
  /* A program that saved readline's rl_linefunc (this wrapper) and installs it again keeps
   * its own handler. */
  if (handler != repl_handler) R.handler = handler;
  real(prompt, handler ? repl_handler : NULL);
}

/* libedit's callback emulation reads through el_gets(): its lines arrive at the handler. */
EXPORT void rl_callback_read_char(void) {
  int saved = errno;
  read_char_fn real = REAL(read_char, "rl_callback_read_char", rl_callback_read_char);
  errno = saved;
  if (!real) return;
  ++R.depth;
  real();
  --R.depth;
}

/* libedit: the line with its newline; *count its length (EditLine is opaque here). */
EXPORT const char* el_gets(void* el, int* count) {
  int saved = errno;
  el_gets_fn real = REAL(el_gets, "el_gets", el_gets);
  errno = saved;
  if (!real) {
    if (count) *count = 0;
    return NULL;
  }
  if (R.depth == 0) repl_begin();
  const char* line = real(el, count);
  if (line && count && *count > 0 && R.depth == 0) {
    saved = errno;
    size_t len = (size_t)*count;
    if (line[len - 1] == '\n') --len;
    repl_line(line, len);
    errno = saved;
  }
  return line;
}
