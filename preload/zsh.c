// SPDX-License-Identifier: Apache-2.0
/* zsh (ZLE) adapter: the exported zleread hook, which reports each line zsh's line editor
 * returns (after unmetafying it) and, at a new primary prompt, the previous exit status. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "core.h"
#include "core_internal.h"
#include "shaudit/wire.h"
#include "shaudit/zsh_meta.h"

/* ------------------------------------------------------------------ zsh (ZLE) */

typedef char* (*zleread_fn)(char**, char**, int, int, char*, char*);
static zleread_fn real_zleread;

enum { ZLCON_LINE_START = 0, ZLCON_LINE_CONT = 1, ZLCON_SELECT = 2, ZLCON_VARED = 3 };

/* zsh's line editor module calls zleread through its PLT, so this definition wins. The real
 * one lives in zsh/zle.so, loaded after the constructor: resolve it at the first call. */
EXPORT char* zleread(char** lp, char** rp, int flags, int context, char* init, char* finish) {
  int saved = errno;
  if (!real_zleread) real_zleread = (zleread_fn)dlsym(RTLD_NEXT, "zleread");
  if (!real_zleread) return errno = saved, NULL;
  static int* lastval;
  if (!lastval) lastval = (int*)dlsym(RTLD_DEFAULT, "lastval");
  if (context == ZLCON_LINE_START && lastval) sa_report_status(*lastval);
  errno = saved;
  char* r = real_zleread(lp, rp, flags, context, init, finish);
  if (!r || sa_shell_kind() != SA_SHELL_ZSH) return r;
  saved = errno;
  size_t len = strlen(r);
  char stack[8192];
  char* copy = stack;
  void* mapped = NULL;
  size_t mapped_len = len + 1;
  if (len + 1 > sizeof stack) {
    mapped = mmap(NULL, mapped_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED) {
      mapped = NULL;
      len = sizeof stack - 1;
    } else {
      copy = mapped;
    }
  }
  memcpy(copy, r, len);
  len = shaudit_unmetafy(copy, len);
  if (len > 0 && copy[len - 1] == '\n') --len;
  if (context == ZLCON_LINE_START)
    sa_report_line(copy, len, 0);
  else if (context == ZLCON_LINE_CONT)
    sa_report_line(copy, len, SHAUDIT_LINE_CONTINUATION);
  else
    sa_report_noncmd(copy, len,
                     context == ZLCON_VARED ? SHAUDIT_INPUT_VARED : SHAUDIT_INPUT_READ_E);
  if (mapped) munmap(mapped, mapped_len); /* len changed: unmap what was mapped */
  errno = saved;
  return r;
}
