/* HMAC-SHA256 (RFC 2104 over FIPS 180-4), small and dependency-free, for the C example
 * filter. Not a general crypto library: one-shot over a few buffers, no streaming API. */
#ifndef HMAC_SHA256_H
#define HMAC_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_BLOCK 64
#define SHA256_DIGEST 32

typedef struct {
    uint32_t state[8];
    uint64_t length; /* bytes hashed so far */
    uint8_t block[SHA256_BLOCK];
    size_t used; /* bytes waiting in block */
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const uint8_t *data, size_t len);
void sha256_final(sha256_ctx *c, uint8_t out[SHA256_DIGEST]);

/* HMAC-SHA256 of the concatenation of `parts` (count of them) under `key`. */
void hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *const *parts,
                 const size_t *part_lens, size_t count, uint8_t out[SHA256_DIGEST]);

#endif
