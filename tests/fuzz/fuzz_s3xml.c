/*
 * fuzz_s3xml.c -- libFuzzer target for the reader of an object store's
 * XML replies (s3_xml.c: error documents and ListObjectsV2 pages, read
 * from the network): whatever it accepts holds only bounded, NUL-free
 * keys and printable error text, and a truncated listing always comes
 * with a continuation token.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "supervisord/store_int.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s3_error_doc	 e;
	struct s3_list		 l;
	char			 err[256];

	if (s3_xml_error((const char *)data, size, &e) == 0) {
		if (e.code[0] == '\0')
			abort();
		for (const char *p = e.message; *p != '\0'; p++)
			if (*p < 0x20 || *p > 0x7e)
				abort();
	}
	if (s3_xml_list((const char *)data, size, &l, err, sizeof(err)) == 0) {
		if (l.n > S3_XML_MAX_KEYS || (l.truncated && l.next == NULL))
			abort();
		for (size_t i = 0; i < l.n; i++)
			if (l.keys[i][0] == '\0' ||
			    strlen(l.keys[i]) > S3_XML_MAX_TEXT)
				abort();
		s3_list_free(&l);
	} else if (l.keys != NULL || l.n != 0 || l.next != NULL)
		abort();
	return (0);
}
