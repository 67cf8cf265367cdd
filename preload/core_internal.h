// SPDX-License-Identifier: Apache-2.0
/* Internal to the interposer: what core.c shares with the shell adapters (bash.c, zsh.c) and
 * entry.c beyond core.h. What is declared here is hidden; EXPORT marks the interposed hooks. */
#ifndef SHAUDIT_PRELOAD_CORE_INTERNAL_H
#define SHAUDIT_PRELOAD_CORE_INTERNAL_H

#define SA_HIDDEN __attribute__((visibility("hidden")))
/* The interposed entry points: the only symbols the library exports (exports.map). */
#define EXPORT __attribute__((visibility("default")))

/* bash (bash.c): hooks readline's prep/deprep functions; called by sa_init for bash. */
SA_HIDDEN void sa_bash_install(void);
/* Whether bash is running a builtin (its `read`), not reading a command line: 1 when unknown. */
SA_HIDDEN int sa_bash_in_builtin(void);

#endif
