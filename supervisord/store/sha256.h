/*
 * sha256.h -- SHA-256 for the checksums of checkpoint images.
 */
#ifndef LLMUX_SHA256_H
#define LLMUX_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN	32
#define SHA256_HEX_LEN	65	/* 64 hex digits and a NUL */

struct sha256 {
	uint32_t	h[8];
	uint64_t	len;
	uint8_t		buf[64];
	size_t		nbuf;
};

void	sha256_init(struct sha256 *);
void	sha256_update(struct sha256 *, const void *, size_t);
void	sha256_final(struct sha256 *, uint8_t out[SHA256_LEN]);
void	sha256_hex(const uint8_t d[SHA256_LEN], char out[SHA256_HEX_LEN]);

#endif
