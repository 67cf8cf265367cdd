// SPDX-License-Identifier: Apache-2.0
/* zsh keeps text "metafied": a byte in 0x83..0x9f (and NUL) is written as Meta (0x83) followed
 * by the byte XOR 32. Decoding, shared by the interposer (zleread's result) and shauditd (what
 * the zleread probe saw). C, header-only, in place. */
#ifndef SHAUDIT_ZSH_META_H
#define SHAUDIT_ZSH_META_H

#include <stddef.h>

/* Decodes s[0..len) in place; returns the decoded length. A trailing lone Meta is kept. */
static inline size_t shaudit_unmetafy(char* s, size_t len) {
  size_t o = 0;
  for (size_t i = 0; i < len; ++i) {
    if ((unsigned char)s[i] == 0x83 && i + 1 < len)
      s[o++] = (char)(s[++i] ^ 32);
    else
      s[o++] = s[i];
  }
  return o;
}

#endif /* SHAUDIT_ZSH_META_H */
