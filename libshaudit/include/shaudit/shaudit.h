/* SPDX-License-Identifier: Apache-2.0 */
/* libshaudit: the client library a custom shell links to report what its user types to
 * shauditd (restricted shells, jump-host shells, REPL-style admin consoles).
 *
 *   cc myshell.c $(pkg-config --cflags --libs shaudit)
 *   find_package(shaudit) ... target_link_libraries(myshell PRIVATE shaudit::shaudit)
 *
 * C, needs only libc; thread-safe for reports from several threads of one process; a client
 * shared across fork() is fine (each process numbers its own reports, and shauditd takes
 * every sender's identity — pid, uid, session — from the kernel, never from the library).
 *
 * Nothing here blocks the shell by default: a report that cannot be delivered at once
 * (shauditd busy, stopped, restarting) is held in the client (up to 64 KiB) and sent before
 * the next report, or at shaudit_client_close(); beyond that it is dropped (-ENOBUFS) and
 * shauditd, seeing the gap in the process's report numbers, writes a signed `loss` record.
 * Every function returns 0 (or a positive number where said) on success — delivered or held —
 * or a negative errno value; none prints anything, raises SIGPIPE, or changes errno.
 *
 * See libshaudit(3). */
#ifndef SHAUDIT_SHAUDIT_H
#define SHAUDIT_SHAUDIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The API this header describes; shaudit_api_version() says what the library provides. */
#define SHAUDIT_API_VERSION 1

typedef struct shaudit_client shaudit_client;

/* Flags for shaudit_client_create(). */
#define SHAUDIT_CLIENT_LAZY                                        \
  0x1u /* do not connect now: at the first report (and again after \
          shauditd restarts); creating never fails for lack of a   \
          daemon */

/* Connects to socket_path; NULL means $SHAUDIT_SOCKET (ignored in setuid programs), else
 * /run/shaudit/shaudit.sock. Returns NULL with errno set on failure (ENOENT, ECONNREFUSED:
 * no shauditd; ENAMETOOLONG; ENOMEM). Same as shaudit_client_create(socket_path, 0). */
shaudit_client* shaudit_client_open(const char* socket_path);

/* As shaudit_client_open(), with SHAUDIT_CLIENT_* flags. With SHAUDIT_CLIENT_LAZY it fails
 * only for ENAMETOOLONG or ENOMEM. */
shaudit_client* shaudit_client_create(const char* socket_path, unsigned flags);

/* How long a report may wait when shauditd's socket is full: 0 (the default) never waits (the
 * report is held, see above); a positive value waits up to that many milliseconds; a negative
 * value waits without limit (not for an interactive shell). */
void shaudit_client_set_timeout_ms(shaudit_client* c, int timeout_ms);

/* This process is an interactive shell and the entry of its user's session (a jump-host or
 * restricted login shell): shauditd opens a session for it when none is open for this
 * process yet (a PAM login that ran pam_shaudit has opened one already) and every line it
 * reports belongs there. shell names it in the records ("jumpsh"). Call once, at start,
 * before the first line; its terminal is fd 0's. */
int shaudit_client_session_entry(shaudit_client* c, const char* shell);

/* A command line the user typed, reported before it runs (so what it starts is linked to it
 * in the log). text is len bytes without the trailing newline; any bytes are allowed and
 * secrets in it are redacted by shauditd. Returns the command's number (>= 1) for
 * shaudit_client_command_end(), or a negative errno value; the number is valid even when the
 * report could not be delivered. */
int64_t shaudit_client_command_begin(shaudit_client* c, const char* shell, const char* text,
                                     size_t len);

/* The command numbered `command` ended with `status` (the shell's $? convention: the exit
 * code, 128 + n for a signal). The duration from shaudit_client_command_begin() to now is
 * measured by the library (CLOCK_MONOTONIC) and recorded with it. */
int shaudit_client_command_end(shaudit_client* c, int64_t command, int status);

/* A line typed at the prompt that is not numbered as a command (older API, kept): the same
 * as shaudit_client_command_begin() without the number. */
int shaudit_client_report_line(shaudit_client* c, const char* shell, const char* text, size_t len);

/* An exec this process is about to make: the path and the NULL-terminated argv exactly as
 * passed. Optional: where shauditd follows the session in the kernel, the exec record comes
 * from the kernel and a report that contradicts it is recorded as forged. */
int shaudit_client_report_exec(shaudit_client* c, const char* path, const char* const argv[]);

/* Announces this process (its executable) to shauditd without opening a session. */
int shaudit_client_hello(shaudit_client* c);

/* Closes the connection and frees the client. NULL is allowed. */
void shaudit_client_close(shaudit_client* c);

/* The library's version ("0.1.0") and API level (SHAUDIT_API_VERSION it implements). */
const char* shaudit_version(void);
int shaudit_api_version(void);

#ifdef __cplusplus
}
#endif

#endif /* SHAUDIT_SHAUDIT_H */
