// SPDX-License-Identifier: Apache-2.0
/* Interposer core: everything the exported hooks call. C only, no libstdc++.
 * Rules (run inside every audited process, including vfork children):
 *  - no malloc, stdio, locks or NSS in hooks: raw syscalls, stack buffers, mmap for big ones;
 *  - never block (non-blocking socket, MSG_DONTWAIT), never raise SIGPIPE (MSG_NOSIGNAL);
 *  - never print; errno is preserved by the callers in entry.c, bash.c and zsh.c;
 *  - in a vfork child (shared memory with the parent) never change the parent's state. */
#ifndef SHAUDIT_PRELOAD_CORE_H
#define SHAUDIT_PRELOAD_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

enum sa_shell { SA_SHELL_NONE = 0, SA_SHELL_BASH = 1, SA_SHELL_ZSH = 2, SA_SHELL_TTY = 3 };

/* Initialises the core (constructor). argv/envp as given to ELF constructors. */
void sa_init(int argc, char** argv, char** envp);
/* At exit: one more non-blocking attempt to deliver the backlog, whatever the retry pause. */
void sa_fini(void);
int sa_enabled(void);
int sa_shell_kind(void);

/* What a shell's own arguments say it runs: SA_ARGS_COMMAND (-c: a command string),
 * SA_ARGS_FILE (a script file), SA_ARGS_STDIN (-s: commands from standard input, the other
 * arguments are positional parameters), or 0 (its input: interactive on a terminal). Options
 * that take a value (-o vi, +o emacs, bash's -O extglob, --rcfile F, --init-file F, mksh's
 * -T TTY, ksh93's -R FILE) are skipped with their value; `--` or `-` ends the options. name:
 * the shell's base name (bash, zsh, dash, ksh, mksh, ...). */
#define SA_ARGS_COMMAND 1
#define SA_ARGS_FILE 2
#define SA_ARGS_STDIN 4
int sa_shell_args(const char* name, int argc, char* const argv[]);

/* Exec family: report an attempt before the real call. flags: SA_EXEC_SEARCH resolves a
 * bare name through PATH (the p variants); SA_EXEC_SPAWN says a new child runs it
 * (posix_spawn, system, popen), not this process. */
#define SA_EXEC_SEARCH 1
#define SA_EXEC_SPAWN 2
void sa_report_exec(const char* path, char* const argv[], int flags);
/* system()/popen(): reported as /bin/sh -c CMD. */
void sa_report_shell_command(const char* cmd);

/* A typed line (without trailing newline). flags: SHAUDIT_LINE_* from wire.h. */
void sa_report_line(const char* text, size_t len, uint32_t flags);
/* A program that reads lines through readline or libedit (repl.c) accepted its first line:
 * from now on its lines are reported as that program's (SHELL name, SHAUDIT_LINE_REPL), after
 * a hello that says so. 1 when this process reports them: not a shell the interposer captures
 * otherwise, not a vfork child. name: the program's name (copied; cut to 63 bytes). */
int sa_repl_begin(const char* name);
/* Input that is not a command (read -e, vared, echo off): only length and keyed hash. */
void sa_report_noncmd(const char* text, size_t len, uint32_t kind);
/* Exit status of the previous typed command (at the next prompt). */
void sa_report_status(int status);

/* read() on fd returned n bytes into buf: tty line capture for dash/sh/ksh/bash --noediting. */
void sa_after_read(int fd, const void* buf, ssize_t n);

/* Test seams. */
int sa_socket_fd(void);

#ifdef __cplusplus
}
#endif
#endif
