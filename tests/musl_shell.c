// SPDX-License-Identifier: Apache-2.0
/* Integration-test helper for tests/integration/test_musl_interposer.py: a minimal shell,
 * compiled by the test with musl-gcc (dynamically linked against musl), that stands in for a
 * musl-linked dash in an Alpine-style root. Like dash, it reads each line from its terminal
 * with read(2) on fd 0 in canonical mode (so the interposer's terminal-line path sees it);
 * unlike dash it has no quoting, variables or pipes: a line is words split at blanks.
 *
 * usage: musl_shell            interactive: prompt ($PS1) on stderr, one line per read()
 *        musl_shell -c LINE    runs one line and exits with its status
 *
 * A line: `exit [N]`; `cd DIR`; `system CMD...` (system(3)); `popen CMD...` (popen(3), its
 * output copied to stdout); `spawn PROG ARGS...` (posix_spawnp(3)); `exec PROG ARGS...`
 * (execvp(3) in this process); else PROG ARGS... in a fork()ed child through execvp(3). */
#define _GNU_SOURCE
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

static int status_of(int ws) {
  return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

/* Runs one line (modified in place); returns its status, or -1 - N for `exit N`. */
static int run_line(char* line, int last) {
  char* argv[64];
  int argc = 0;
  for (char* tok = strtok(line, " \t\n"); tok && argc < 63; tok = strtok(NULL, " \t\n"))
    argv[argc++] = tok;
  argv[argc] = NULL;
  if (argc == 0) return last;
  if (strcmp(argv[0], "exit") == 0) return -1 - (argc > 1 ? atoi(argv[1]) : last);
  if (strcmp(argv[0], "cd") == 0) return argc > 1 && chdir(argv[1]) == 0 ? 0 : 1;
  if ((strcmp(argv[0], "system") == 0 || strcmp(argv[0], "popen") == 0) && argc > 1) {
    char cmd[4096] = "";
    for (int i = 1; i < argc; ++i) {
      if (i > 1) strncat(cmd, " ", sizeof cmd - strlen(cmd) - 1);
      strncat(cmd, argv[i], sizeof cmd - strlen(cmd) - 1);
    }
    fflush(stdout);
    if (argv[0][0] == 's') return status_of(system(cmd));
    FILE* f = popen(cmd, "r");
    if (!f) return 127;
    char buf[512];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout);
    fflush(stdout);
    return status_of(pclose(f));
  }
  if (strcmp(argv[0], "spawn") == 0 && argc > 1) {
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[1], NULL, NULL, argv + 1, environ);
    if (rc != 0) return 127;
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    return status_of(ws);
  }
  if (strcmp(argv[0], "exec") == 0 && argc > 1) {
    execvp(argv[1], argv + 1);
    return 127;
  }
  pid_t pid = fork();
  if (pid < 0) return 127;
  if (pid == 0) {
    execvp(argv[0], argv);
    _exit(127);
  }
  int ws;
  while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  return status_of(ws);
}

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "-c") == 0) {
    int rc = run_line(argv[2], 0);
    return rc < 0 ? -1 - rc : rc;
  }
  const char* ps1 = getenv("PS1");
  if (!ps1) ps1 = "$ ";
  int last = 0;
  for (;;) {
    if (write(2, ps1, strlen(ps1)) < 0) return 1;
    char line[4096];
    ssize_t n = read(0, line, sizeof line - 1); /* canonical mode: one line */
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return last;
    line[n] = 0;
    int rc = run_line(line, last);
    if (rc < 0) return -1 - rc;
    last = rc;
  }
}
