// SPDX-License-Identifier: Apache-2.0
/* Bash (readline) adapter: hooks readline's terminal prep/deprep functions and reports each
 * accepted line and, at the next primary prompt, the previous command's exit status. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <string.h>

#include "core.h"
#include "core_internal.h"
#include "shaudit/wire.h"

/* ------------------------------------------------------------------ bash (readline) */

typedef void (*deprep_fn)(void);
typedef void (*prep_fn)(int);
static struct {
  deprep_fn* deprep_var;
  prep_fn* prep_var;
  deprep_fn old_deprep;
  prep_fn old_prep;
  char** line;
  int* done;
  int* eof;
  int* cont;
  int* last_status;
  void** completion;
  int* executing_builtin;
} B;

/* Readline calls this after a line was accepted (or at EOF). */
static void bash_deprep(void) {
  int saved = errno;
  if (*B.done && !*B.eof && *B.line) {
    const char* l = *B.line;
    if (*B.completion == NULL)
      sa_report_noncmd(l, strlen(l), SHAUDIT_INPUT_READ_E); /* read -e, not a command */
    else
      sa_report_line(l, strlen(l), *B.cont > 0 ? SHAUDIT_LINE_CONTINUATION : 0);
  }
  errno = saved;
  if (B.old_deprep) B.old_deprep();
}

/* Readline calls this when it starts reading; at a new primary prompt the previous
 * command has finished. */
static void bash_prep(int meta) {
  int saved = errno;
  if (*B.cont == 0 && *B.completion != NULL && B.last_status) sa_report_status(*B.last_status);
  errno = saved;
  if (B.old_prep) B.old_prep(meta);
}

SA_HIDDEN void sa_bash_install(void) {
  B.deprep_var = (deprep_fn*)dlsym(RTLD_DEFAULT, "rl_deprep_term_function");
  B.prep_var = (prep_fn*)dlsym(RTLD_DEFAULT, "rl_prep_term_function");
  B.line = (char**)dlsym(RTLD_DEFAULT, "rl_line_buffer");
  B.done = (int*)dlsym(RTLD_DEFAULT, "rl_done");
  B.eof = (int*)dlsym(RTLD_DEFAULT, "rl_eof_found");
  B.cont = (int*)dlsym(RTLD_DEFAULT, "current_command_line_count");
  B.completion = (void**)dlsym(RTLD_DEFAULT, "rl_attempted_completion_function");
  B.last_status = (int*)dlsym(RTLD_DEFAULT, "last_command_exit_value");
  B.executing_builtin = (int*)dlsym(RTLD_DEFAULT, "executing_builtin");
  if (!B.deprep_var || !B.line || !B.done || !B.eof || !B.cont || !B.completion) return;
  B.old_deprep = *B.deprep_var;
  *B.deprep_var = bash_deprep;
  if (B.prep_var) {
    B.old_prep = *B.prep_var;
    *B.prep_var = bash_prep;
  }
}

SA_HIDDEN int sa_bash_in_builtin(void) {
  return B.executing_builtin ? *B.executing_builtin != 0 : 1;
}
