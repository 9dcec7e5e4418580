/*
 * test_store.c -- the pure parts of the object-store module: the layout
 * of a bucket (model segments, checkpoint IDs, the latest pointer, keys
 * found by a listing), SigV4's URI encoding, the strict reader of the
 * store's XML (error replies, ListObjectsV2 pages, and what it refuses),
 * and the retry policy.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisord/store/store_int.h"
#include "xmalloc.h"
#include "unit.h"

#define HASH	"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define ID	"20260101T000000Z-" HASH

static void
model_is(const char *name, const char *want)
{
	char	*got = store_key_model(name);

	ck_assert_str_eq(got, want);
	free(got);
}

static void
escape_is(const char *s, bool keep_slash, const char *want)
{
	char	*got = store_key_escape(s, keep_slash);

	ck_assert_str_eq(got, want);
	free(got);
}

START_TEST(test_model_segment)
{
	model_is("a", "a");
	model_is("Qwen2.5-7B_chat", "Qwen2.5-7B_chat");
	/* One segment of unreserved characters, whatever the name. */
	model_is("org/m:1@x", "org~2Fm~3A1~40x");
	model_is(".hidden", "~2Ehidden");
	model_is("..", "~2E.");
	model_is("a~b", "a~7Eb");
	/* No two names share a segment. */
	model_is("org~2Fm", "org~7E2Fm");
}
END_TEST

START_TEST(test_ids)
{
	char	id[STORE_ID_LEN + 1], got[STORE_ID_LEN + 1];

	store_key_id(1767225600, HASH, id);
	ck_assert_str_eq(id, ID);
	ck_assert(store_key_id_valid(id, strlen(id)));
	store_key_id(0, HASH, id);
	ck_assert_str_eq(id, "19700101T000000Z-" HASH);
	store_key_id(1767225600 + 3661, HASH, id);
	ck_assert_str_eq(id, "20260101T010101Z-" HASH);
	/* IDs sort by age. */
	store_key_id(1767225600 + 86400, HASH, got);
	ck_assert_int_lt(strcmp(id, got), 0);

	ck_assert(!store_key_id_valid(ID, strlen(ID) - 1));
	ck_assert(!store_key_id_valid("20260101X000000Z-" HASH, STORE_ID_LEN));
	ck_assert(!store_key_id_valid("20260101T000000Y-" HASH, STORE_ID_LEN));
	ck_assert(!store_key_id_valid("20260101T000000Z_" HASH, STORE_ID_LEN));
	ck_assert(!store_key_id_valid("2026a101T000000Z-" HASH, STORE_ID_LEN));
	ck_assert(!store_key_id_valid("20260101T000000Z-9F86d081884c7d659a2f"
	    "eaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", STORE_ID_LEN));
	ck_assert(!store_key_id_valid("20260101T000000Z-9g86d081884c7d659a2f"
	    "eaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", STORE_ID_LEN));

	ck_assert_int_eq(store_key_parse_latest(ID "\n", strlen(ID) + 1, got),
	    0);
	ck_assert_str_eq(got, ID);
	ck_assert_int_eq(store_key_parse_latest(ID, strlen(ID), got), 0);
	ck_assert_str_eq(got, ID);
	ck_assert_int_eq(store_key_parse_latest(ID "\r\n", strlen(ID) + 2,
	    got), -1);
	ck_assert_int_eq(store_key_parse_latest(ID "\n\n", strlen(ID) + 2,
	    got), -1);
	ck_assert_int_eq(store_key_parse_latest("", 0, got), -1);
	ck_assert_int_eq(store_key_parse_latest("../../etc\n", 10, got), -1);
}
END_TEST

/* A checkpoint replaces the older ones, those of its own second included
 * whatever their hashes, and never a newer one. */
START_TEST(test_superseded)
{
	const char *id = "20261127T040500Z-" HASH;

	ck_assert(store_key_superseded("20261127T040459Z-" HASH, id));
	ck_assert(store_key_superseded("20261127T040500Z-"
	    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	    id));
	ck_assert(store_key_superseded("20261127T040500Z-"
	    "0000000000000000000000000000000000000000000000000000000000000000",
	    id));
	ck_assert(!store_key_superseded(id, id));
	ck_assert(!store_key_superseded("20261127T040501Z-" HASH, id));
	ck_assert(!store_key_superseded("20271127T040500Z-" HASH, id));
}
END_TEST

START_TEST(test_listed_keys)
{
	char	id[STORE_ID_LEN + 1];

	ck_assert_int_eq(store_key_listed_id("a/" ID "/pages-1.img", "a", id),
	    0);
	ck_assert_str_eq(id, ID);
	ck_assert_int_eq(store_key_listed_id("org~2Fm/" ID "/llmux-manifest",
	    "org~2Fm", id), 0);
	ck_assert_int_eq(store_key_listed_id("a/latest", "a", id), -1);
	ck_assert_int_eq(store_key_listed_id("a/" ID "/", "a", id), -1);
	ck_assert_int_eq(store_key_listed_id("a/" ID, "a", id), -1);
	ck_assert_int_eq(store_key_listed_id("ab/" ID "/x", "a", id), -1);
	ck_assert_int_eq(store_key_listed_id("a/notes/x", "a", id), -1);
	ck_assert_int_eq(store_key_listed_id("b/" ID "/x", "a", id), -1);
}
END_TEST

START_TEST(test_escape)
{
	escape_is("", true, "");
	escape_is("a/" ID "/pages-1.img", true, "a/" ID "/pages-1.img");
	escape_is("a b/c:d~e", true, "a%20b/c%3Ad~e");
	escape_is("a b/c:d~e", false, "a%20b%2Fc%3Ad~e");
	escape_is("x+y=z&w%", false, "x%2By%3Dz%26w%25");
	escape_is("\xc3\xa9", false, "%C3%A9");
}
END_TEST

START_TEST(test_xml_error)
{
	struct s3_error_doc	e;
	const char		*doc =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<Error><Code>SignatureDoesNotMatch</Code>"
	    "<Message>The request signature we calculated does not match "
	    "the signature you provided. Check your key &amp; signing "
	    "method.</Message><RequestId>4442587FB7D0A2F9</RequestId>"
	    "</Error>\n";

	ck_assert_int_eq(s3_xml_error(doc, strlen(doc), &e), 0);
	ck_assert_str_eq(e.code, "SignatureDoesNotMatch");
	ck_assert_str_eq(e.message, "The request signature we calculated "
	    "does not match the signature you provided. Check your key & "
	    "signing method.");

	/* Text made printable: no line breaks or escapes in a log line. */
	doc = "<Error><Code>X</Code><Message>a\nb\x1b[31m&#233;</Message>"
	    "</Error>";
	ck_assert_int_eq(s3_xml_error(doc, strlen(doc), &e), 0);
	ck_assert_str_eq(e.message, "a b?[31m??");

	doc = "<Error><Message>no code</Message></Error>";
	ck_assert_int_eq(s3_xml_error(doc, strlen(doc), &e), -1);
	doc = "<html><body>502 Bad Gateway</body></html>";
	ck_assert_int_eq(s3_xml_error(doc, strlen(doc), &e), -1);
	doc = "<Other><Code>X</Code></Other>";
	ck_assert_int_eq(s3_xml_error(doc, strlen(doc), &e), -1);
	ck_assert_int_eq(s3_xml_error("", 0, &e), -1);
	doc = "<Error><Code>X</Code>";
	ck_assert_int_eq(s3_xml_error(doc, strlen(doc), &e), -1);
	ck_assert_str_eq(e.code, "");
}
END_TEST

START_TEST(test_xml_list)
{
	struct s3_list	 l;
	char		 err[256];
	const char	*doc =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/"
	    "2006-03-01/\"><Name>llmux-images</Name><Prefix>a/</Prefix>"
	    "<KeyCount>3</KeyCount><MaxKeys>3</MaxKeys>"
	    "<IsTruncated>true</IsTruncated>"
	    "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vb"
	    "Ow=</NextContinuationToken>"
	    "<Contents><Key>a/" ID "/pages-1.img</Key><Size>5</Size>"
	    "<ETag>&quot;5d41402abc4b2a76b9719d911017c592&quot;</ETag>"
	    "</Contents>"
	    "<Contents><Key><![CDATA[a/<odd> & key]]></Key></Contents>"
	    "<s3:Contents xmlns:s3=\"x\"><s3:Key>a/caf&#xe9;&#233;</s3:Key>"
	    "<Owner/></s3:Contents>"
	    "<!-- a comment --></ListBucketResult>";

	ck_assert_int_eq(s3_xml_list(doc, strlen(doc), &l, err, sizeof(err)),
	    0);
	ck_assert_uint_eq(l.n, 3);
	ck_assert_str_eq(l.keys[0], "a/" ID "/pages-1.img");
	ck_assert_str_eq(l.keys[1], "a/<odd> & key");
	ck_assert_str_eq(l.keys[2], "a/caf\xc3\xa9\xc3\xa9");
	ck_assert(l.truncated);
	ck_assert_str_eq(l.next, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vb"
	    "Ow=");
	s3_list_free(&l);

	doc = "<ListBucketResult><IsTruncated>false</IsTruncated>"
	    "<KeyCount>0</KeyCount></ListBucketResult>";
	ck_assert_int_eq(s3_xml_list(doc, strlen(doc), &l, err, sizeof(err)),
	    0);
	ck_assert_uint_eq(l.n, 0);
	ck_assert(!l.truncated);
	ck_assert_ptr_null(l.next);
	s3_list_free(&l);
}
END_TEST

static void
list_refused(const char *doc, size_t len, const char *says)
{
	struct s3_list	l;
	char		err[256];

	ck_assert_msg(s3_xml_list(doc, len, &l, err, sizeof(err)) == -1,
	    "accepted: %s", doc);
	ck_assert_msg(strstr(err, says) != NULL, "%s: got '%s', want '%s'",
	    doc, err, says);
	ck_assert_ptr_null(l.keys);
	ck_assert_uint_eq(l.n, 0);
}

#define LIST(x)	"<ListBucketResult>" x "</ListBucketResult>"

START_TEST(test_xml_refusals)
{
	char	*deep, *big;
	size_t	 o = 0;

	list_refused(LIST("<IsTruncated>true</IsTruncated>"), strlen(LIST(
	    "<IsTruncated>true</IsTruncated>")), "without a continuation");
	list_refused(LIST("<IsTruncated>yes</IsTruncated>"), strlen(LIST(
	    "<IsTruncated>yes</IsTruncated>")), "IsTruncated");
	list_refused("<Error><Code>X</Code></Error>", 29,
	    "not a ListBucketResult");
	list_refused(LIST("<Contents><Key></Key></Contents>"), strlen(LIST(
	    "<Contents><Key></Key></Contents>")), "an empty Key");
	list_refused("<ListBucketResult><Contents></ListBucketResult>", 47,
	    "mismatched end tag");
	list_refused("<ListBucketResult>", 18, "truncated document");
	list_refused("<ListBucketResult></ListBucketResult><x/>", 41,
	    "a second root element");
	list_refused("junk<ListBucketResult/>", 23, "text outside the root");
	list_refused("", 0, "no root element");
	list_refused("<!DOCTYPE x [<!ENTITY a \"aaaa\">]><ListBucketResult/>",
	    51, "DOCTYPE");
	list_refused(LIST("<Name>&bogus;</Name>"), strlen(LIST(
	    "<Name>&bogus;</Name>")), "unknown entity");
	list_refused(LIST("<Name>&amp</Name>"), strlen(LIST(
	    "<Name>&amp</Name>")), "unterminated entity");
	list_refused(LIST("<Name>&#0;</Name>"), strlen(LIST(
	    "<Name>&#0;</Name>")), "bad character reference");
	list_refused(LIST("<Name>&#xD800;</Name>"), strlen(LIST(
	    "<Name>&#xD800;</Name>")), "bad character reference");
	list_refused(LIST("<Name>&#x110000;</Name>"), strlen(LIST(
	    "<Name>&#x110000;</Name>")), "bad character reference");
	list_refused(LIST("<Name>&#12a;</Name>"), strlen(LIST(
	    "<Name>&#12a;</Name>")), "bad character reference");
	list_refused(LIST("<Name a=\"x</Name>"), strlen(LIST(
	    "<Name a=\"x</Name>")), "attribute");
	list_refused(LIST("<Name/ >"), strlen(LIST("<Name/ >")), "stray '/'");
	list_refused(LIST("<></>"), strlen(LIST("<></>")), "bad element name");
	list_refused(LIST("<!-- open"), strlen(LIST("<!-- open")),
	    "unterminated comment");
	list_refused(LIST("<![CDATA[ open"), strlen(LIST("<![CDATA[ open")),
	    "unterminated CDATA");
	list_refused("<?xml version=\"1.0\"", 19, "unterminated <?");
	list_refused("<ListBucketResult>\0</ListBucketResult>", 38, "NUL");

	/* Depth, text and key count are bounded. */
	deep = xmalloc(40 * (S3_XML_MAX_DEPTH + 2));
	for (int i = 0; i <= S3_XML_MAX_DEPTH; i++)
		o += (size_t)sprintf(deep + o, "<a%d>", i);
	list_refused(deep, o, "nested too deep");
	free(deep);
	big = xmalloc(S3_XML_MAX_TEXT + 64);
	o = (size_t)sprintf(big, "<ListBucketResult><Name>");
	memset(big + o, 'x', S3_XML_MAX_TEXT + 1);
	o += S3_XML_MAX_TEXT + 1;
	list_refused(big, o, "text too long");
	free(big);
	big = xmalloc(40 * (S3_XML_MAX_KEYS + 2));
	o = (size_t)sprintf(big, "<ListBucketResult>");
	for (int i = 0; i <= S3_XML_MAX_KEYS; i++)
		o += (size_t)sprintf(big + o, "<Contents><Key>k%d</Key>"
		    "</Contents>", i);
	o += (size_t)sprintf(big + o, "</ListBucketResult>");
	list_refused(big, o, "too many keys");
	free(big);
}
END_TEST

START_TEST(test_xml_initiate)
{
	char		 id[S3_UPLOAD_ID_MAX + 1], small[8], err[256];
	char		*big;
	const char	*doc =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/"
	    "doc/2006-03-01/\"><Bucket>b</Bucket><Key>a/x</Key>"
	    "<UploadId>VXBsb2FkIElE.x_y-z+1/=&amp;</UploadId>"
	    "</InitiateMultipartUploadResult>\n";
	size_t		 len;

	ck_assert_int_eq(s3_xml_initiate(doc, strlen(doc), id, sizeof(id),
	    err, sizeof(err)), 0);
	ck_assert_str_eq(id, "VXBsb2FkIElE.x_y-z+1/=&");

	/* Exactly one UploadId, non-empty, printable, bounded. */
#define INIT(x)	"<InitiateMultipartUploadResult>" x \
	"</InitiateMultipartUploadResult>"
	doc = INIT("<Bucket>b</Bucket>");
	ck_assert_int_eq(s3_xml_initiate(doc, strlen(doc), id, sizeof(id),
	    err, sizeof(err)), -1);
	ck_assert_str_eq(err, "unreadable reply: no UploadId");
	ck_assert_str_eq(id, "");
	doc = INIT("<UploadId>a</UploadId><UploadId>b</UploadId>");
	ck_assert_int_eq(s3_xml_initiate(doc, strlen(doc), id, sizeof(id),
	    err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "two UploadIds"));
	ck_assert_str_eq(id, "");
	doc = INIT("<UploadId></UploadId>");
	ck_assert_int_eq(s3_xml_initiate(doc, strlen(doc), id, sizeof(id),
	    err, sizeof(err)), -1);
	doc = INIT("<UploadId>a b</UploadId>");
	ck_assert_int_eq(s3_xml_initiate(doc, strlen(doc), id, sizeof(id),
	    err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not printable ASCII"));
	doc = INIT("<UploadId>a&#233;</UploadId>");
	ck_assert_int_eq(s3_xml_initiate(doc, strlen(doc), id, sizeof(id),
	    err, sizeof(err)), -1);
	doc = INIT("<UploadId>12345678</UploadId>");
	ck_assert_int_eq(s3_xml_initiate(doc, strlen(doc), small,
	    sizeof(small), err, sizeof(err)), -1);
	doc = INIT("<UploadId>1234567</UploadId>");
	ck_assert_int_eq(s3_xml_initiate(doc, strlen(doc), small,
	    sizeof(small), err, sizeof(err)), 0);
	ck_assert_str_eq(small, "1234567");
	/* Nested deeper, or in another document, it is not the one. */
	doc = INIT("<Key><UploadId>a</UploadId></Key>");
	ck_assert_int_eq(s3_xml_initiate(doc, strlen(doc), id, sizeof(id),
	    err, sizeof(err)), -1);
	doc = "<Error><Code>AccessDenied</Code><UploadId>a</UploadId></Error>";
	ck_assert_int_eq(s3_xml_initiate(doc, strlen(doc), id, sizeof(id),
	    err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not an "
	    "InitiateMultipartUploadResult"));
	doc = "<InitiateMultipartUploadResult><UploadId>a</UploadId>";
	ck_assert_int_eq(s3_xml_initiate(doc, strlen(doc), id, sizeof(id),
	    err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "truncated document"));

	/* One over S3_UPLOAD_ID_MAX. */
	big = xmalloc(S3_UPLOAD_ID_MAX + 128);
	len = (size_t)snprintf(big, S3_UPLOAD_ID_MAX + 128,
	    "<InitiateMultipartUploadResult><UploadId>%0*d</UploadId>"
	    "</InitiateMultipartUploadResult>", S3_UPLOAD_ID_MAX + 1, 7);
	ck_assert_int_eq(s3_xml_initiate(big, len, id, sizeof(id), err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "empty or too long"));
	len = (size_t)snprintf(big, S3_UPLOAD_ID_MAX + 128,
	    "<InitiateMultipartUploadResult><UploadId>%0*d</UploadId>"
	    "</InitiateMultipartUploadResult>", S3_UPLOAD_ID_MAX, 7);
	ck_assert_int_eq(s3_xml_initiate(big, len, id, sizeof(id), err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(strlen(id), S3_UPLOAD_ID_MAX);
	free(big);
#undef INIT
}
END_TEST

START_TEST(test_xml_complete)
{
	struct s3_error_doc	 e;
	char			 err[256];
	const char		*doc =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/"
	    "doc/2006-03-01/\"><Location>http://h/b/a/x</Location>"
	    "<Bucket>b</Bucket><Key>a/x</Key><ETag>\"3858f62230ac3c915f300c66"
	    "4312c11f-9\"</ETag></CompleteMultipartUploadResult>\n";

	ck_assert_int_eq(s3_xml_complete(doc, strlen(doc), &e, err,
	    sizeof(err)), 0);
	ck_assert_str_eq(e.code, "");

	/* A 200 whose body is an error (after S3's white space). */
	doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\n   \n"
	    "<Error><Code>InternalError</Code><Message>We encountered an "
	    "internal error. Please try again.</Message></Error>";
	ck_assert_int_eq(s3_xml_complete(doc, strlen(doc), &e, err,
	    sizeof(err)), 1);
	ck_assert_str_eq(e.code, "InternalError");
	ck_assert_str_eq(e.message, "We encountered an internal error. "
	    "Please try again.");

	doc = "<Error><Message>no code</Message></Error>";
	ck_assert_int_eq(s3_xml_complete(doc, strlen(doc), &e, err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "unreadable reply: an Error document without "
	    "a Code");
	doc = "<ListBucketResult></ListBucketResult>";
	ck_assert_int_eq(s3_xml_complete(doc, strlen(doc), &e, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not a "
	    "CompleteMultipartUploadResult nor an Error document"));
	doc = "<CompleteMultipartUploadResult><Key>a";
	ck_assert_int_eq(s3_xml_complete(doc, strlen(doc), &e, err,
	    sizeof(err)), -1);
	ck_assert_int_eq(s3_xml_complete("", 0, &e, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "no root element"));
	doc = "<!DOCTYPE x><CompleteMultipartUploadResult/>";
	ck_assert_int_eq(s3_xml_complete(doc, strlen(doc), &e, err,
	    sizeof(err)), -1);
	doc = "<CompleteMultipartUploadResult/>";
	ck_assert_int_eq(s3_xml_complete(doc, strlen(doc), &e, err,
	    sizeof(err)), 0);
}
END_TEST

START_TEST(test_part_size)
{
	const uint64_t	mib = UINT64_C(1) << 20;

	/* The configured size while 10000 parts are enough. */
	ck_assert_uint_eq(s3_part_size(12 * mib, 5 * mib), 5 * mib);
	ck_assert_uint_eq(s3_part_size(50000 * mib, 5 * mib), 5 * mib);
	ck_assert_uint_eq(s3_part_size(S3_MAX_PARTS * 64 * mib, 64 * mib),
	    64 * mib);
	/* Grown, to a whole MiB, when they are not. */
	ck_assert_uint_eq(s3_part_size(50000 * mib + 1, 5 * mib), 6 * mib);
	ck_assert_uint_eq(s3_part_size(S3_MAX_PARTS * 64 * mib + 1, 64 * mib),
	    65 * mib);
	ck_assert_uint_le(s3_part_size(S3_MAX_OBJECT, 5 * mib), S3_PART_MAX);
	ck_assert_uint_le((S3_MAX_OBJECT + s3_part_size(S3_MAX_OBJECT,
	    5 * mib) - 1) / s3_part_size(S3_MAX_OBJECT, 5 * mib),
	    S3_MAX_PARTS);
	/* Larger than an object may be: refused. */
	ck_assert_uint_eq(s3_part_size(S3_MAX_OBJECT + 1, 5 * mib), 0);
	ck_assert_uint_eq(s3_part_size(UINT64_MAX, 5 * mib), 0);
}
END_TEST

START_TEST(test_retries)
{
	ck_assert_int_eq(s3_backoff_ms(1), 250);
	ck_assert_int_eq(s3_backoff_ms(2), 500);
	ck_assert_int_eq(s3_backoff_ms(3), 1000);
	ck_assert_int_eq(s3_backoff_ms(6), 8000);
	ck_assert_int_eq(s3_backoff_ms(20), 8000);
	ck_assert_int_eq(s3_backoff_ms(1000), 8000);

	ck_assert(s3_retry_status(500, "InternalError"));
	ck_assert(s3_retry_status(503, "SlowDown"));
	ck_assert(s3_retry_status(502, NULL));
	ck_assert(s3_retry_status(408, NULL));
	ck_assert(s3_retry_status(429, NULL));
	ck_assert(s3_retry_status(400, "RequestTimeout"));
	ck_assert(!s3_retry_status(400, "XAmzContentSHA256Mismatch"));
	ck_assert(!s3_retry_status(403, "AccessDenied"));
	ck_assert(!s3_retry_status(404, "NoSuchBucket"));
	ck_assert(!s3_retry_status(404, NULL));
	/* A 200 with an Error document (CompleteMultipartUpload). */
	ck_assert(s3_retry_status(0, "InternalError"));
	ck_assert(s3_retry_status(0, "ServiceUnavailable"));
	ck_assert(!s3_retry_status(0, "InvalidPart"));
	ck_assert(!s3_retry_status(0, "EntityTooSmall"));
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("store");
	TCase	*tc = tcase_create("store");

	tcase_add_test(tc, test_model_segment);
	tcase_add_test(tc, test_ids);
	tcase_add_test(tc, test_superseded);
	tcase_add_test(tc, test_listed_keys);
	tcase_add_test(tc, test_escape);
	tcase_add_test(tc, test_xml_error);
	tcase_add_test(tc, test_xml_list);
	tcase_add_test(tc, test_xml_refusals);
	tcase_add_test(tc, test_xml_initiate);
	tcase_add_test(tc, test_xml_complete);
	tcase_add_test(tc, test_part_size);
	tcase_add_test(tc, test_retries);
	suite_add_tcase(s, tc);
	return (unit_run(s));
}
