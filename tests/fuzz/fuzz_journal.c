/*
 * fuzz_journal.c -- libFuzzer target for the state journal's decoder (the
 * supervisor reads it back from disk at start): whatever decodes must
 * encode, and decode again to the same encoding.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "supervisord/persist/persist.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct journal	 j, k;
	char		 err[256], *b1, *b2;
	size_t		 l1, l2;

	if (journal_decode((const char *)data, size, &j, err, sizeof(err)) != 0)
		return (0);
	if (journal_encode(&j, &b1, &l1) == 0) {
		if (journal_decode(b1, l1, &k, err, sizeof(err)) != 0)
			abort();	/* we wrote something we refuse */
		if (journal_encode(&k, &b2, &l2) != 0 || l1 != l2 ||
		    memcmp(b1, b2, l1) != 0)
			abort();	/* not a fixed point */
		free(b2);
		journal_free(&k);
		free(b1);
	}
	journal_free(&j);
	return (0);
}
