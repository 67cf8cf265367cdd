/* libshaudit C API: report typed lines and execs to shauditd from a custom shell.
 *
 * Reports travel over the same socket and wire format (shaudit/wire.h) the interposer uses.
 * Identity (pid, uid) is taken by the daemon from the kernel for every message, so a forked
 * child that shares its parent's client is recorded as itself.
 *
 * All functions return 0 on success or a negative errno value; none prints anything or
 * raises SIGPIPE. No C++ exception crosses this interface. */
#ifndef SHAUDIT_SHAUDIT_H
#define SHAUDIT_SHAUDIT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shaudit_client shaudit_client;

/* Connects to socket_path; NULL means $SHAUDIT_SOCKET, else /run/shaudit/shaudit.sock.
 * Returns NULL with errno set on failure. */
shaudit_client* shaudit_client_open(const char* socket_path);

/* How long a report may wait when the daemon's socket is full: 0 (the default) never
 * waits and returns -EAGAIN; a negative value waits without limit. */
void shaudit_client_set_timeout_ms(shaudit_client* c, int timeout_ms);

/* A line the user typed, without its trailing newline; len bytes, any bytes allowed. */
int shaudit_client_report_line(shaudit_client* c, const char* shell, const char* text, size_t len);

/* An exec about to happen: the path and the NULL-terminated argv exactly as passed. */
int shaudit_client_report_exec(shaudit_client* c, const char* path, const char* const argv[]);

/* Announces this process (its executable) to the daemon. */
int shaudit_client_hello(shaudit_client* c);

void shaudit_client_close(shaudit_client* c);

const char* shaudit_version(void);

#ifdef __cplusplus
}
#endif

#endif /* SHAUDIT_SHAUDIT_H */
