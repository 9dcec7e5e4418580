/*
 * fuzz_manifest.c -- libFuzzer target for the checkpoint manifest's
 * decoder (read back from an images directory before a restore, so input
 * like any file): whatever decodes must encode, and decode again to the
 * same encoding.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "supervisord/store/store.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest	 m, k;
	char		 err[256], *b1, *b2;
	size_t		 l1, l2;

	if (manifest_decode((const char *)data, size, &m, err,
	    sizeof(err)) != 0)
		return (0);
	if (manifest_encode(&m, &b1, &l1) == 0) {
		if (manifest_decode(b1, l1, &k, err, sizeof(err)) != 0)
			abort();	/* we wrote something we refuse */
		if (manifest_encode(&k, &b2, &l2) != 0 || l1 != l2 ||
		    memcmp(b1, b2, l1) != 0)
			abort();	/* not a fixed point */
		free(b2);
		manifest_free(&k);
		free(b1);
	}
	manifest_free(&m);
	return (0);
}
