/*
 * sha256.c -- SHA-256 (FIPS 180-4), for the checksums of checkpoint
 * images in their manifest and the bodies sent to the object store,
 * through OpenSSL's libcrypto (EVP): it uses the CPU's SHA instructions
 * (SHA-NI, ARMv8 SHA2) where there are some, 5 to 8 times the speed of
 * portable C (docs/benchmarks.md). It runs on worker threads over files of
 * any size, a buffer at a time; each hash has a context of its own.
 */
#include <openssl/evp.h>

#include "log.h"
#include "supervisord/store/store.h"

void
sha256_init(struct sha256 *c)
{
	if ((c->ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(c->ctx, EVP_sha256(), NULL) != 1)
		fatalx("SHA-256: libcrypto cannot start a digest");
}

void
sha256_update(struct sha256 *c, const void *data, size_t n)
{
	if (n > 0 && EVP_DigestUpdate(c->ctx, data, n) != 1)
		fatalx("SHA-256: libcrypto failed to hash");
}

void
sha256_final(struct sha256 *c, uint8_t out[SHA256_LEN])
{
	unsigned int	len = 0;

	if (EVP_DigestFinal_ex(c->ctx, out, &len) != 1 || len != SHA256_LEN)
		fatalx("SHA-256: libcrypto failed to finish a digest");
	sha256_free(c);
}

void
sha256_free(struct sha256 *c)
{
	EVP_MD_CTX_free(c->ctx);
	c->ctx = NULL;
}

void
sha256_hex(const uint8_t d[SHA256_LEN], char out[SHA256_HEX_LEN])
{
	static const char	hex[] = "0123456789abcdef";

	for (int i = 0; i < SHA256_LEN; i++) {
		out[i * 2] = hex[d[i] >> 4];
		out[i * 2 + 1] = hex[d[i] & 15];
	}
	out[SHA256_LEN * 2] = '\0';
}
