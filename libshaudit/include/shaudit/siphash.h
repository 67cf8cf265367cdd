// SPDX-License-Identifier: Apache-2.0
/* SipHash-2-4 (Aumasson & Bernstein), 64-bit output: the keyed hash the interposer sends for
 * input it does not record (passwords, read -e, vared) and the daemon recomputes over what the
 * kernel-side probe saw. C, header-only, no allocation. */
#ifndef SHAUDIT_SIPHASH_H
#define SHAUDIT_SIPHASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SHAUDIT_SIP_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SHAUDIT_SIP_ROUND                                                       \
  do {                                                                          \
    v0 += v1; v1 = SHAUDIT_SIP_ROTL(v1, 13); v1 ^= v0; v0 = SHAUDIT_SIP_ROTL(v0, 32); \
    v2 += v3; v3 = SHAUDIT_SIP_ROTL(v3, 16); v3 ^= v2;                          \
    v0 += v3; v3 = SHAUDIT_SIP_ROTL(v3, 21); v3 ^= v0;                          \
    v2 += v1; v1 = SHAUDIT_SIP_ROTL(v1, 17); v1 ^= v2; v2 = SHAUDIT_SIP_ROTL(v2, 32); \
  } while (0)

static inline uint64_t shaudit_siphash(const uint8_t key[16], const void* data, size_t len) {
  uint64_t k0, k1;
  memcpy(&k0, key, 8);
  memcpy(&k1, key + 8, 8);
  uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
  uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
  const uint8_t* p = (const uint8_t*)data;
  size_t blocks = len / 8;
  for (size_t i = 0; i < blocks; ++i) {
    uint64_t mi;
    memcpy(&mi, p + i * 8, 8);
    v3 ^= mi;
    SHAUDIT_SIP_ROUND;
    SHAUDIT_SIP_ROUND;
    v0 ^= mi;
  }
  uint64_t b = ((uint64_t)len) << 56;
  const uint8_t* t = p + blocks * 8;
  for (size_t i = 0; i < (len & 7); ++i) b |= ((uint64_t)t[i]) << (8 * i);
  v3 ^= b;
  SHAUDIT_SIP_ROUND;
  SHAUDIT_SIP_ROUND;
  v0 ^= b;
  v2 ^= 0xff;
  SHAUDIT_SIP_ROUND;
  SHAUDIT_SIP_ROUND;
  SHAUDIT_SIP_ROUND;
  SHAUDIT_SIP_ROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}

#endif /* SHAUDIT_SIPHASH_H */
