/*
 * bench_sha256.c -- the SHA-256 of the supervisor (supervisord/store/
 * sha256.c, libcrypto's EVP) against the portable C it replaced, kept
 * here and only here for the comparison: both hash the same buffer of
 * SIZE MiB in 1 MiB pieces (as the manifest check reads a file), in
 * turns, ROUNDS times; the best round of each is printed in MiB/s, with
 * both digests, which must be equal (else the exit status is 1).
 *
 *     bench_sha256 [SIZE_MIB [ROUNDS]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "xmalloc.h"
#include "supervisord/store/store.h"

#define BENCH_PIECE	(1u << 20)

/* ---- the portable C of before (FIPS 180-4) ----------------------------- */

struct old_sha256 {
	uint32_t	h[8];
	uint64_t	len;
	uint8_t		buf[64];
	size_t		nbuf;
};

static const uint32_t old_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b,
	0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
	0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7,
	0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
	0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152,
	0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
	0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
	0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
	0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
	0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

#define ROR(x, n)	(((x) >> (n)) | ((x) << (32 - (n))))

static void
old_block(struct old_sha256 *c, const uint8_t *p)
{
	uint32_t	w[64], a, b, d, e, f, g, h, cc, t1, t2;
	int		i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[i * 4] << 24 | (uint32_t)p[i * 4 + 1] << 16 |
		    (uint32_t)p[i * 4 + 2] << 8 | p[i * 4 + 3];
	for (; i < 64; i++)
		w[i] = (ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10)) +
		    w[i - 7] + (ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^
		    (w[i - 15] >> 3)) + w[i - 16];
	a = c->h[0]; b = c->h[1]; cc = c->h[2]; d = c->h[3];
	e = c->h[4]; f = c->h[5]; g = c->h[6]; h = c->h[7];
	for (i = 0; i < 64; i++) {
		t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) +
		    ((e & f) ^ (~e & g)) + old_k[i] + w[i];
		t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) +
		    ((a & b) ^ (a & cc) ^ (b & cc));
		h = g; g = f; f = e; e = d + t1;
		d = cc; cc = b; b = a; a = t1 + t2;
	}
	c->h[0] += a; c->h[1] += b; c->h[2] += cc; c->h[3] += d;
	c->h[4] += e; c->h[5] += f; c->h[6] += g; c->h[7] += h;
}

static void
old_init(struct old_sha256 *c)
{
	static const uint32_t	iv[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
	};

	memcpy(c->h, iv, sizeof(iv));
	c->len = 0;
	c->nbuf = 0;
}

static void
old_update(struct old_sha256 *c, const void *data, size_t n)
{
	const uint8_t	*p = data;
	size_t		 take;

	c->len += n;
	if (c->nbuf > 0) {
		take = 64 - c->nbuf < n ? 64 - c->nbuf : n;
		memcpy(c->buf + c->nbuf, p, take);
		c->nbuf += take;
		p += take;
		n -= take;
		if (c->nbuf < 64)
			return;
		old_block(c, c->buf);
		c->nbuf = 0;
	}
	for (; n >= 64; p += 64, n -= 64)
		old_block(c, p);
	memcpy(c->buf, p, n);
	c->nbuf = n;
}

static void
old_final(struct old_sha256 *c, uint8_t out[SHA256_LEN])
{
	uint64_t	bits = c->len * 8;
	uint8_t		pad = 0x80, zero = 0, len[8];

	old_update(c, &pad, 1);
	while (c->nbuf != 56)
		old_update(c, &zero, 1);
	for (int i = 0; i < 8; i++)
		len[i] = (uint8_t)(bits >> (56 - 8 * i));
	old_update(c, len, 8);
	for (int i = 0; i < 8; i++) {
		out[i * 4] = (uint8_t)(c->h[i] >> 24);
		out[i * 4 + 1] = (uint8_t)(c->h[i] >> 16);
		out[i * 4 + 2] = (uint8_t)(c->h[i] >> 8);
		out[i * 4 + 3] = (uint8_t)c->h[i];
	}
}

/* ---- the run ----------------------------------------------------------- */

/* Microseconds to hash buf, and its digest in hex. */
static int64_t
bench_old(const uint8_t *buf, size_t len, char hex[SHA256_HEX_LEN])
{
	struct old_sha256	c;
	uint8_t			d[SHA256_LEN];
	int64_t			t0 = clock_us();

	old_init(&c);
	for (size_t o = 0; o < len; o += BENCH_PIECE)
		old_update(&c, buf + o, len - o < BENCH_PIECE ? len - o :
		    BENCH_PIECE);
	old_final(&c, d);
	t0 = clock_us() - t0;
	sha256_hex(d, hex);
	return (t0);
}

static int64_t
bench_new(const uint8_t *buf, size_t len, char hex[SHA256_HEX_LEN])
{
	struct sha256	c;
	uint8_t		d[SHA256_LEN];
	int64_t		t0 = clock_us();

	sha256_init(&c);
	for (size_t o = 0; o < len; o += BENCH_PIECE)
		sha256_update(&c, buf + o, len - o < BENCH_PIECE ? len - o :
		    BENCH_PIECE);
	sha256_final(&c, d);
	t0 = clock_us() - t0;
	sha256_hex(d, hex);
	return (t0);
}

static double
bench_rate(size_t len, int64_t us)
{
	return ((double)len / (1 << 20) / ((double)(us > 0 ? us : 1) / 1e6));
}

int
main(int argc, char **argv)
{
	char		 old_hex[SHA256_HEX_LEN], new_hex[SHA256_HEX_LEN];
	long		 mib = argc > 1 ? strtol(argv[1], NULL, 10) : 256;
	long		 rounds = argc > 2 ? strtol(argv[2], NULL, 10) : 3;
	int64_t		 old_us = 0, new_us = 0, us;
	uint64_t	 x = 0x9e3779b97f4a7c15ULL;
	uint8_t		*buf;
	size_t		 len;

	if (mib < 1 || mib > 4096 || rounds < 1 || rounds > 100) {
		fprintf(stderr, "usage: bench_sha256 [SIZE_MIB (1-4096) "
		    "[ROUNDS (1-100)]]\n");
		return (2);
	}
	len = (size_t)mib << 20;
	buf = xmalloc(len);
	/* Bytes that are not all alike (xorshift64). */
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
	for (long r = 0; r < rounds; r++) {
		us = bench_old(buf, len, old_hex);
		if (old_us == 0 || us < old_us)
			old_us = us;
		us = bench_new(buf, len, new_hex);
		if (new_us == 0 || us < new_us)
			new_us = us;
	}
	free(buf);
	printf("size_mib %ld\nrounds %ld\n", mib, rounds);
	printf("old_mib_s %.0f\nnew_mib_s %.0f\nspeedup %.1f\n",
	    bench_rate(len, old_us), bench_rate(len, new_us),
	    (double)old_us / (double)(new_us > 0 ? new_us : 1));
	printf("old_sha256 %s\nnew_sha256 %s\n", old_hex, new_hex);
	if (strcmp(old_hex, new_hex) != 0) {
		fprintf(stderr, "bench_sha256: the two digests differ\n");
		return (1);
	}
	return (0);
}
