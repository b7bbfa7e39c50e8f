/*
 * The payload pattern the C examples (and the tests that drive them) agree on:
 * event `seq` is 8 + (seq * 37) % 200 bytes long, starts with `seq` (8 bytes,
 * little-endian) and continues with bytes (seq * 31 + k * 7) mod 256. A FNV-1a 64
 * checksum over every payload byte, in order, summarises a run.
 */
#ifndef SHMBUS_EXAMPLE_PAYLOAD_H
#define SHMBUS_EXAMPLE_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#define FNV_OFFSET 0xcbf29ce484222325ULL

static inline size_t payload_len(uint64_t seq) { return 8 + (size_t)((seq * 37) % 200); }

static inline void payload_fill(uint64_t seq, uint8_t *buf, size_t len) {
    for (size_t k = 0; k < 8; k++) buf[k] = (uint8_t)(seq >> (8 * k));
    for (size_t k = 8; k < len; k++) buf[k] = (uint8_t)(seq * 31 + k * 7);
}

/* 1 if `buf` is exactly event `seq`'s payload. */
static inline int payload_check(uint64_t seq, const uint8_t *buf, size_t len) {
    if (len != payload_len(seq)) return 0;
    for (size_t k = 0; k < 8; k++)
        if (buf[k] != (uint8_t)(seq >> (8 * k))) return 0;
    for (size_t k = 8; k < len; k++)
        if (buf[k] != (uint8_t)(seq * 31 + k * 7)) return 0;
    return 1;
}

static inline uint64_t fnv1a(uint64_t h, const uint8_t *buf, size_t len) {
    for (size_t k = 0; k < len; k++) {
        h ^= buf[k];
        h *= 0x100000001b3ULL;
    }
    return h;
}

#endif
