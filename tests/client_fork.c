// SPDX-License-Identifier: Apache-2.0
/* Integration-test helper: one shaudit_client shared across fork().
 *
 * usage: client_fork SOCKET
 *
 * Opens one client, reports "parent-before-fork", forks; the child reports
 * "child-after-fork" through the SAME connection and exits; the parent waits for it and
 * reports "parent-after-wait". Prints "parent PID" and "child PID" on stdout, so a test
 * can check that the daemon recorded each line under the pid of the process that sent it
 * (identity from the kernel per message, never from the client's state). Exits 0 only
 * when every report was sent. */
#define _POSIX_C_SOURCE 200809L
#include <shaudit/shaudit.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int report(shaudit_client* c, const char* who, const char* text) {
  int rc = shaudit_client_report_line(c, "client_fork", text, strlen(text));
  if (rc != 0) fprintf(stderr, "client_fork: %s: report '%s' failed: %s\n", who, text, strerror(-rc));
  return rc;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: client_fork SOCKET\n");
    return 2;
  }
  shaudit_client* c = shaudit_client_open(argv[1]);
  if (!c) {
    perror("client_fork: shaudit_client_open");
    return 1;
  }
  shaudit_client_set_timeout_ms(c, 5000);
  if (report(c, "parent", "parent-before-fork") != 0) return 1;

  fflush(stdout);
  pid_t child = fork();
  if (child < 0) {
    perror("client_fork: fork");
    return 1;
  }
  if (child == 0) {
    int rc = report(c, "child", "child-after-fork");
    /* _exit: the parent still owns the connection; no stdio flush of inherited buffers. */
    _exit(rc == 0 ? 0 : 1);
  }
  int status = 0;
  if (waitpid(child, &status, 0) != child) {
    perror("client_fork: waitpid");
    return 1;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "client_fork: child failed (status %d)\n", status);
    return 1;
  }
  if (report(c, "parent", "parent-after-wait") != 0) return 1;
  shaudit_client_close(c);
  printf("parent %ld\nchild %ld\n", (long)getpid(), (long)child);
  return 0;
}
