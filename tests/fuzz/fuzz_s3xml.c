/*
 * fuzz_s3xml.c -- libFuzzer target for the reader of an object store's
 * XML replies (s3_xml.c: error documents, ListObjectsV2 pages and the
 * replies of a multipart upload, read from the network): whatever it
 * accepts holds only bounded, NUL-free keys and printable error text, a
 * truncated listing always comes with a continuation token, an UploadId
 * is non-empty printable ASCII within its bound, and a Complete reply is
 * a result or an error with a code, never both.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "supervisord/store/store_int.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_printable(const char *p)
{
	for (; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s3_error_doc	 e;
	struct s3_list		 l;
	char			 err[256], id[S3_UPLOAD_ID_MAX + 1];
	size_t			 len;
	int			 rc;

	if (s3_xml_error((const char *)data, size, &e) == 0) {
		if (e.code[0] == '\0')
			abort();
		fuzz_printable(e.message);
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

	if (s3_xml_initiate((const char *)data, size, id, sizeof(id), err,
	    sizeof(err)) == 0) {
		len = strlen(id);
		if (len == 0 || len > S3_UPLOAD_ID_MAX || strchr(id, ' '))
			abort();
		fuzz_printable(id);
	} else if (id[0] != '\0')
		abort();

	rc = s3_xml_complete((const char *)data, size, &e, err, sizeof(err));
	if (rc == 1) {
		if (e.code[0] == '\0')
			abort();
		fuzz_printable(e.code);
		fuzz_printable(e.message);
	} else if (rc == 0 && e.code[0] != '\0')
		abort();
	else if (rc != 0 && rc != 1 && rc != -1)
		abort();
	return (0);
}
