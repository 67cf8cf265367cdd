/* SPDX-License-Identifier: Apache-2.0 */
/* minishell: the smallest custom shell that reports to shauditd through libshaudit.
 *
 * It reads a line, reports it (shaudit_client_command_begin), runs it with /bin/sh -c, and
 * reports its exit status (shaudit_client_command_end). It is its session's entry when it is
 * a login shell (argv[0] starting with '-') or given -l. `exit` ends it.
 *
 *   cc -o minishell minishell.c $(pkg-config --cflags --libs shaudit)
 *   cmake -S . -B build && cmake --build build        (find_package(shaudit))
 */
#include <shaudit/shaudit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
  int login = argv[0][0] == '-' || (argc > 1 && strcmp(argv[1], "-l") == 0);
  /* Lazy: the shell starts whether shauditd runs or not, and reports when it is back. */
  shaudit_client* audit = shaudit_client_create(NULL, SHAUDIT_CLIENT_LAZY);
  if (audit && login) shaudit_client_session_entry(audit, "minishell");

  char* line = NULL;
  size_t cap = 0;
  int status = 0;
  for (;;) {
    fputs("minishell$ ", stdout);
    fflush(stdout);
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) break;
    if (n > 0 && line[n - 1] == '\n') line[--n] = '\0';
    if (n == 0) continue;
    int64_t cmd = audit ? shaudit_client_command_begin(audit, "minishell", line, (size_t)n) : 0;
    if (strcmp(line, "exit") == 0) {
      if (cmd > 0) shaudit_client_command_end(audit, cmd, status);
      break;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      execl("/bin/sh", "sh", "-c", line, (char*)NULL);
      _exit(127);
    }
    int ws = 0;
    if (pid < 0 || waitpid(pid, &ws, 0) < 0)
      status = 126;
    else
      status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    if (cmd > 0) shaudit_client_command_end(audit, cmd, status);
  }
  free(line);
  shaudit_client_close(audit);
  return status;
}
