// SPDX-License-Identifier: Apache-2.0
/* A tiny C encoder for the wire format (shaudit/wire.h) on a caller-supplied buffer, for the
 * interposer and the PAM module: no allocation, no libc beyond memcpy/memset. */
#ifndef SHAUDIT_WIRE_ENCODE_H
#define SHAUDIT_WIRE_ENCODE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "shaudit/wire.h"

struct shaudit_enc {
  char* buf;
  size_t cap;
  size_t len;
  uint16_t flags; /* SHAUDIT_MSG_* gathered while adding */
};

static inline void shaudit_enc_begin(struct shaudit_enc* e, char* buf, size_t cap, uint16_t type) {
  struct shaudit_wire_header h;
  memset(&h, 0, sizeof h);
  h.magic = SHAUDIT_WIRE_MAGIC;
  h.version = SHAUDIT_WIRE_VERSION;
  h.type = type;
  e->buf = buf;
  e->cap = cap < SHAUDIT_WIRE_MAX_MESSAGE ? cap : SHAUDIT_WIRE_MAX_MESSAGE;
  e->flags = 0;
  memcpy(buf, &h, sizeof h);
  e->len = sizeof h;
}

/* Adds a field, cutting it (and flagging it) to what fits. Returns 0, or -1 when cut. */
static inline int shaudit_enc_add(struct shaudit_enc* e, uint16_t tag, const void* data, size_t len) {
  struct shaudit_wire_field f;
  if (e->len + sizeof f > e->cap) {
    e->flags |= SHAUDIT_MSG_ARGV_TRUNCATED;
    return -1;
  }
  size_t room = e->cap - e->len - sizeof f;
  f.tag = tag;
  f.flags = 0;
  if (len > room) {
    len = room;
    f.flags = SHAUDIT_FIELD_TRUNCATED;
  }
  f.length = (uint32_t)len;
  memcpy(e->buf + e->len, &f, sizeof f);
  e->len += sizeof f;
  if (len) memcpy(e->buf + e->len, data, len);
  e->len += len;
  return f.flags ? -1 : 0;
}

static inline void shaudit_enc_str(struct shaudit_enc* e, uint16_t tag, const char* s) {
  if (s) shaudit_enc_add(e, tag, s, strlen(s));
}

static inline void shaudit_enc_u64(struct shaudit_enc* e, uint16_t tag, uint64_t v) {
  shaudit_enc_add(e, tag, &v, sizeof v);
}

/* Fills in length, flags, report number and time; returns the message size. */
static inline size_t shaudit_enc_finish(struct shaudit_enc* e, uint64_t report_seq, uint64_t sent_ns) {
  struct shaudit_wire_header h;
  memcpy(&h, e->buf, sizeof h);
  h.length = (uint32_t)e->len;
  h.flags |= e->flags;
  h.report_seq = report_seq;
  h.sent_ns = sent_ns;
  memcpy(e->buf, &h, sizeof h);
  return e->len;
}

#endif /* SHAUDIT_WIRE_ENCODE_H */
