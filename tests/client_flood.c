// SPDX-License-Identifier: Apache-2.0
/* Integration-test helper: one session flooding shauditd through the C API.
 *
 * usage: client_flood SOCKET COUNT
 *
 * Sends COUNT typed lines ("flood NNNNNN yyy...") as fast as the daemon takes them (the client
 * blocks on backpressure), printing "sent N" on stdout after every 10,000 and "done" at the
 * end. Exits 0 only when every line was sent. */
#define _POSIX_C_SOURCE 200809L
#include <shaudit/shaudit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: client_flood SOCKET COUNT\n");
    return 2;
  }
  long count = strtol(argv[2], NULL, 10);
  shaudit_client* c = shaudit_client_open(argv[1]);
  if (!c) {
    fprintf(stderr, "client_flood: cannot open a client on %s\n", argv[1]);
    return 1;
  }
  shaudit_client_set_timeout_ms(c, 60000);
  char text[128];
  for (long i = 0; i < count; ++i) {
    int n = snprintf(text, sizeof text, "flood %06ld %s", i,
                     "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy");
    int rc = shaudit_client_report_line(c, "flood", text, (size_t)n);
    if (rc != 0) {
      fprintf(stderr, "client_flood: line %ld: %s\n", i, strerror(-rc));
      return 1;
    }
    if ((i + 1) % 10000 == 0) {
      printf("sent %ld\n", i + 1);
      fflush(stdout);
    }
  }
  shaudit_client_close(c);
  printf("done\n");
  return 0;
}
