"""s3stub.py -- a small S3-compatible object store for the scenarios,
in the Python standard library: path-style PUT, GET, HEAD, DELETE,
ListObjectsV2 and multipart uploads (CreateMultipartUpload, UploadPart,
CompleteMultipartUpload, AbortMultipartUpload, ListMultipartUploads) on
one bucket kept in memory, every request authenticated
as S3 does it with AWS Signature Version 4 (the Authorization header
recomputed from the request and the configured keys; x-amz-date within
15 minutes; x-amz-content-sha256 required, signed, and checked against
the body), answering S3's XML errors. A wrong signature is refused with
403 SignatureDoesNotMatch, an unknown key with 403 InvalidAccessKeyId.

It runs on a thread of the test. Faults a test can arm:
    fail(status, code, message, count, method, key, query)  answer an
                                error (query: a part of the query string)
    deny()                                           403 AccessDenied
    stall(method, key, count)   hold requests until release() (slow)
    corrupt(key)                serve that object with a byte flipped
    complete_error(code, message, count)  CompleteMultipartUpload answers
                                200 with an Error document
    max_put = N                 a single PUT over N bytes is refused with
                                400 EntityTooLarge (S3's is 5 GiB)
    initiate_reply, complete_reply = bytes   the 200 body of every
                                CreateMultipartUpload (which then opens
                                nothing) or CompleteMultipartUpload (which
                                then completes nothing)
    part_etag = False           UploadPart answers without an ETag
unfinished() lists the multipart uploads neither completed nor aborted.
A stub registered with an Env (env.procs) is stopped with the test and
its request log shown when the test fails.
"""
import base64
import datetime
import hashlib
import hmac
import http.server
import itertools
import socketserver
import threading
import urllib.parse
import xml.etree.ElementTree as ElementTree
from xml.sax.saxutils import escape

UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                       b"0123456789-_.~")
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_SKEW = datetime.timedelta(minutes=15)
MIN_PART = 5 << 20          # S3's smallest part but the last
MAX_PARTS = 10000


def uri_encode(data, keep_slash):
    """SigV4's UriEncode of bytes: all but unreserved as %XX."""
    return "".join(chr(c) if c in UNRESERVED or (keep_slash and c == 0x2f)
                   else "%%%02X" % c for c in data)


def canonical_uri(raw_path):
    """S3: the path decoded once and encoded again, never normalised."""
    return uri_encode(urllib.parse.unquote_to_bytes(raw_path), True) or "/"


def canonical_query(raw_query):
    pairs = []
    for part in raw_query.split("&") if raw_query else []:
        name, _, value = part.partition("=")
        pairs.append((uri_encode(urllib.parse.unquote_to_bytes(name), False),
                      uri_encode(urllib.parse.unquote_to_bytes(value), False)))
    return "&".join("%s=%s" % p for p in sorted(pairs))


def signing_key(secret, date, region, service="s3"):
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def signature(secret, region, method, raw_path, raw_query, headers, signed,
              amz_date, payload_hash):
    """The signature of a request (headers: lowercase name -> value)."""
    canon_headers = "".join("%s:%s\n" % (n, " ".join(headers[n].split()))
                            for n in signed)
    creq = "\n".join([method, canonical_uri(raw_path), canonical_query(raw_query),
                      canon_headers, ";".join(signed), payload_hash])
    scope = "%s/%s/s3/aws4_request" % (amz_date[:8], region)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    return hmac.new(signing_key(secret, amz_date[:8], region), sts.encode(),
                    hashlib.sha256).hexdigest()


class S3Error(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, and 100-continue

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.stub.handle(self, "GET")

    def do_HEAD(self):
        self.stub.handle(self, "HEAD")

    def do_PUT(self):
        self.stub.handle(self, "PUT")

    def do_DELETE(self):
        self.stub.handle(self, "DELETE")

    def do_POST(self):
        self.stub.handle(self, "POST")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class S3Stub:
    def __init__(self, bucket="llmux-images", access_key="AKIDLLMUXTEST",
                 secret_key="llmux/Test+Secret=Key", region="us-east-1"):
        self.bucket = bucket
        self.keys = {access_key: secret_key}
        self.access_key, self.secret_key = access_key, secret_key
        self.region = region
        self.objects = {}
        self.page_size = 1000
        self.lock = threading.Lock()
        self.log = []               # (method, key or query, status, code)
        self.faults = []            # [status, code, message, count, method, key, query]
        self.stalls = []            # [method, key, count]
        self.uploads = {}           # upload ID -> {"key", "parts": {n: (etag, data)}}
        self.upload_ids = itertools.count(1)
        self.complete_errors = []   # [code, message, count]
        self.max_put = None         # the largest single PUT, bytes
        self.initiate_reply = None  # bytes: Create's body instead
        self.complete_reply = None  # bytes: Complete's body instead
        self.part_etag = True
        self.corrupted = set()
        self.denied = False
        self.released = threading.Event()
        handler = type("StubHandler", (Handler,), {"stub": self})
        self.server = Server(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.name = "s3stub"
        self.argv = ["(S3 stub on %s, bucket %s)" % (self.endpoint, bucket)]

    # ---- what a test uses -------------------------------------------------

    def config(self, secret_key=None, bucket=None, extra=""):
        """The checkpoint.object_store section (indented for GpuSup's extra)."""
        return ("  object_store:\n    endpoint: %s\n    bucket: %s\n"
                "    access_key: %s\n    secret_key: %s\n%s"
                % (self.endpoint, bucket or self.bucket, self.access_key,
                   '"%s"' % (secret_key or self.secret_key), extra))

    def fail(self, status, code, message, count=1, method=None, key=None,
             query=None):
        with self.lock:
            self.faults.append([status, code, message, count, method, key, query])

    def complete_error(self, code, message, count=1):
        with self.lock:
            self.complete_errors.append([code, message, count])

    def unfinished(self):
        """[(key, upload ID)] of the multipart uploads still open."""
        with self.lock:
            return sorted((u["key"], i) for i, u in self.uploads.items())

    def deny(self, on=True):
        self.denied = on

    def stall(self, method=None, key=None, count=1):
        with self.lock:
            self.released.clear()
            self.stalls.append([method, key, count])

    def release(self):
        self.released.set()

    def corrupt(self, key_suffix):
        self.corrupted.add(key_suffix)

    def stalled(self):
        """Requests held by a stall right now."""
        with self.lock:
            return sum(1 for e in self.log if e[2] == "stalled")

    def requests(self, method=None, key_suffix=None):
        with self.lock:
            return [e for e in self.log if (method is None or e[0] == method) and
                    (key_suffix is None or e[1].endswith(key_suffix))]

    def forget(self):
        """Empty the request log (what came before does not count)."""
        with self.lock:
            self.log.clear()

    def keys_under(self, prefix):
        with self.lock:
            return sorted(k for k in self.objects if k.startswith(prefix))

    def stop(self, timeout=5.0):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
        return 0

    def output(self):
        with self.lock:
            return "\n".join("%s %s -> %s %s" % e for e in self.log)

    # ---- serving ---------------------------------------------------------

    def _take(self, table, method, key, idx_count, query=""):
        with self.lock:
            for f in table:
                m, k = (f[4], f[5]) if table is self.faults else (f[0], f[1])
                q = f[6] if table is self.faults else None
                if f[idx_count] == 0 or (m is not None and m != method) or \
                        (k is not None and not key.endswith(k)) or \
                        (q is not None and q not in query):
                    continue
                if f[idx_count] > 0:
                    f[idx_count] -= 1
                return f
        return None

    def _record(self, method, what, status, code=""):
        with self.lock:
            self.log.append((method, what, status, code))

    def _reply(self, h, method, what, status, body=b"", ctype="application/xml",
               headers=(), code=""):
        if status >= 300 and body:
            code = body.split(b"<Code>")[1].split(b"</Code>")[0].decode() \
                if b"<Code>" in body else ""
        self._record(method, what, status, code)
        try:
            h.send_response(status)
            h.send_header("Content-Length", str(len(body)))
            h.send_header("Content-Type", ctype)
            h.send_header("x-amz-request-id", "LLMUXSTUB%d" % len(self.log))
            for k, v in headers:
                h.send_header(k, v)
            h.end_headers()
            if method != "HEAD":
                h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True

    def _error(self, h, method, what, e):
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
                "<Message>%s</Message><Resource>%s</Resource>"
                "<RequestId>LLMUXSTUB</RequestId></Error>\n"
                % (escape(e.code), escape(e.message), escape(what))).encode()
        self._reply(h, method, what, e.status, body)

    def _authenticate(self, h, method, raw_path, raw_query, body):
        auth = h.headers.get("Authorization")
        if not auth:
            raise S3Error(403, "AccessDenied", "Access Denied")
        algo, _, rest = auth.partition(" ")
        if algo != "AWS4-HMAC-SHA256":
            raise S3Error(400, "InvalidArgument", "Unsupported Authorization Type")
        fields = {}
        for part in rest.split(","):
            k, _, v = part.strip().partition("=")
            fields[k] = v
        try:
            cred = fields["Credential"].split("/")
            signed = fields["SignedHeaders"].split(";")
            given = fields["Signature"]
            akid, date, region, service, term = cred
        except (KeyError, ValueError):
            raise S3Error(400, "AuthorizationHeaderMalformed",
                          "The authorization header is malformed.")
        if akid not in self.keys:
            raise S3Error(403, "InvalidAccessKeyId", "The AWS Access Key Id you "
                          "provided does not exist in our records.")
        amz_date = h.headers.get("x-amz-date", "")
        try:
            when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
        except ValueError:
            raise S3Error(403, "AccessDenied", "AWS authentication requires a "
                          "valid Date or x-amz-date header")
        if date != amz_date[:8] or service != "s3" or term != "aws4_request":
            raise S3Error(400, "AuthorizationHeaderMalformed", "The authorization "
                          "header is malformed; the Credential is mal-formed.")
        if region != self.region:
            raise S3Error(400, "AuthorizationHeaderMalformed", "The authorization "
                          "header is malformed; the region '%s' is wrong; "
                          "expecting '%s'" % (region, self.region))
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        if abs(now - when) > MAX_SKEW:
            raise S3Error(403, "RequestTimeTooSkewed", "The difference between "
                          "the request time and the current time is too large.")
        payload = h.headers.get("x-amz-content-sha256")
        if payload is None:
            raise S3Error(400, "InvalidRequest", "Missing required header for "
                          "this request: x-amz-content-sha256")
        if payload != "UNSIGNED-PAYLOAD" and (len(payload) != 64 or
                                             payload.strip("0123456789abcdef")):
            raise S3Error(400, "InvalidArgument", "x-amz-content-sha256 must be "
                          "UNSIGNED-PAYLOAD or a valid sha256 value.")
        headers = {}
        for name, value in h.headers.items():
            n = name.lower()
            headers[n] = headers[n] + "," + value if n in headers else value
        must = {"host"} | {n for n in headers if n.startswith("x-amz-")}
        if not must <= set(signed) or any(n not in headers for n in signed) or \
                signed != sorted(signed):
            raise S3Error(403, "AccessDenied", "There were headers present in "
                          "the request which were not signed")
        want = signature(self.keys[akid], region, method, raw_path, raw_query,
                         headers, signed, amz_date, payload)
        if not hmac.compare_digest(want, given):
            raise S3Error(403, "SignatureDoesNotMatch", "The request signature we "
                          "calculated does not match the signature you provided. "
                          "Check your key and signing method.")
        if payload != "UNSIGNED-PAYLOAD" and hashlib.sha256(body).hexdigest() != payload:
            raise S3Error(400, "XAmzContentSHA256Mismatch", "The provided "
                          "'x-amz-content-sha256' header does not match what was "
                          "computed.")

    def handle(self, h, method):
        raw_path, _, raw_query = h.path.partition("?")
        parts = raw_path.lstrip("/").split("/", 1)
        bucket = urllib.parse.unquote(parts[0])
        key = urllib.parse.unquote(parts[1]) if len(parts) > 1 else ""
        what = key + ("?" + raw_query if raw_query else "") if key else "?" + raw_query
        body = b""
        length = h.headers.get("Content-Length")
        if length is not None:
            body = h.rfile.read(int(length))
        elif method == "PUT":
            return self._error(h, method, what, S3Error(
                411, "MissingContentLength", "You must provide the Content-Length "
                "HTTP header."))
        stall = self._take(self.stalls, method, key, 2)
        if stall is not None:
            self._record(method, what, "stalled")
            self.released.wait()
        fault = self._take(self.faults, method, key, 3, raw_query)
        try:
            if fault is not None:
                raise S3Error(fault[0], fault[1], fault[2])
            if self.denied:
                raise S3Error(403, "AccessDenied", "Access Denied")
            self._authenticate(h, method, raw_path, raw_query, body)
            if bucket != self.bucket:
                raise S3Error(404, "NoSuchBucket", "The specified bucket does not "
                              "exist")
            query = dict(urllib.parse.parse_qsl(raw_query, keep_blank_values=True))
            if not key and method == "GET" and "uploads" in query:
                return self._reply(h, method, what, 200, self._list_uploads())
            if key and ("uploads" in query or "uploadId" in query):
                return self._multipart(h, method, what, key, query, body)
            if not key:
                if method != "GET" or "list-type=2" not in raw_query.split("&"):
                    raise S3Error(501, "NotImplemented", "A header or query you "
                                  "provided implies functionality that is not "
                                  "implemented")
                return self._reply(h, method, what, 200, self._list(raw_query))
            if method == "PUT":
                if self.max_put is not None and len(body) > self.max_put:
                    raise S3Error(400, "EntityTooLarge", "Your proposed upload "
                                  "exceeds the maximum allowed size")
                with self.lock:
                    self.objects[key] = body
                etag = '"%s"' % hashlib.md5(body).hexdigest()
                return self._reply(h, method, what, 200, headers=[("ETag", etag)])
            if method == "DELETE":
                with self.lock:
                    self.objects.pop(key, None)
                return self._reply(h, method, what, 204)
            if method in ("GET", "HEAD"):
                with self.lock:
                    data = self.objects.get(key)
                if data is None:
                    raise S3Error(404, "NoSuchKey", "The specified key does not "
                                  "exist.")
                if data and any(key.endswith(s) for s in self.corrupted):
                    data = bytes([data[0] ^ 0xff]) + data[1:]
                return self._reply(h, method, what, 200, data,
                                   "application/octet-stream")
            raise S3Error(405, "MethodNotAllowed", "The specified method is not "
                          "allowed against this resource.")
        except S3Error as e:
            return self._error(h, method, what, e)

    def _list(self, raw_query):
        q = dict(urllib.parse.parse_qsl(raw_query, keep_blank_values=True))
        prefix = q.get("prefix", "")
        size = min(int(q.get("max-keys", "1000")), self.page_size)
        with self.lock:
            keys = sorted(k for k in self.objects if k.startswith(prefix))
            sizes = {k: len(self.objects[k]) for k in keys}
        token = q.get("continuation-token")
        if token is not None:
            after = base64.urlsafe_b64decode(token.encode()).decode()
            keys = [k for k in keys if k > after]
        page, more = keys[:size], len(keys) > size
        out = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult "
               "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>%s</Name>"
               "<Prefix>%s</Prefix><KeyCount>%d</KeyCount><MaxKeys>%d</MaxKeys>"
               "<IsTruncated>%s</IsTruncated>" % (escape(self.bucket), escape(prefix),
                                                  len(page), size,
                                                  "true" if more else "false")]
        if token is not None:
            out.append("<ContinuationToken>%s</ContinuationToken>" % escape(token))
        if more:
            out.append("<NextContinuationToken>%s</NextContinuationToken>" %
                       base64.urlsafe_b64encode(page[-1].encode()).decode())
        for k in page:
            out.append("<Contents><Key>%s</Key><Size>%d</Size><StorageClass>"
                       "STANDARD</StorageClass></Contents>" % (escape(k), sizes[k]))
        out.append("</ListBucketResult>\n")
        return "".join(out).encode()

    # ---- multipart uploads -----------------------------------------------

    def _upload(self, query, key):
        upload = self.uploads.get(query["uploadId"])
        if upload is None or upload["key"] != key:
            raise S3Error(404, "NoSuchUpload", "The specified upload does not "
                          "exist. The upload ID may be invalid, or the upload "
                          "may have been aborted or completed.")
        return upload

    def _multipart(self, h, method, what, key, query, body):
        if method == "POST" and "uploads" in query and "uploadId" not in query:
            if self.initiate_reply is not None:
                return self._reply(h, method, what, 200, self.initiate_reply)
            # IDs with characters a query must encode ('+', '/', '=').
            ident = "LLMUX.%d+%s/=" % (next(self.upload_ids),
                                        hashlib.md5(key.encode()).hexdigest()[:8])
            with self.lock:
                self.uploads[ident] = {"key": key, "parts": {}}
            out = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                   "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/"
                   "doc/2006-03-01/\"><Bucket>%s</Bucket><Key>%s</Key><UploadId>%s"
                   "</UploadId></InitiateMultipartUploadResult>\n"
                   % (escape(self.bucket), escape(key), escape(ident)))
            return self._reply(h, method, what, 200, out.encode())
        if "uploadId" not in query or "uploads" in query:
            raise S3Error(400, "InvalidRequest", "uploads and uploadId together")
        with self.lock:
            upload = self._upload(query, key)
            if method == "PUT" and "partNumber" in query:
                try:
                    n = int(query["partNumber"])
                except ValueError:
                    n = 0
                if not 1 <= n <= MAX_PARTS:
                    raise S3Error(400, "InvalidArgument", "Part number must be an "
                                  "integer between 1 and 10000, inclusive")
                etag = '"%s"' % hashlib.md5(body).hexdigest()
                upload["parts"][n] = (etag, body)
            elif method == "DELETE":
                del self.uploads[query["uploadId"]]
        if method == "PUT" and "partNumber" in query:
            return self._reply(h, method, what, 200, headers=[("ETag", etag)]
                               if self.part_etag else [])
        if method == "DELETE":
            return self._reply(h, method, what, 204)
        if method != "POST":
            raise S3Error(501, "NotImplemented", "A header or query you provided "
                          "implies functionality that is not implemented")
        return self._complete(h, method, what, key, query, body)

    def _complete(self, h, method, what, key, query, body):
        fault = None
        with self.lock:
            for f in self.complete_errors:
                if f[2] != 0:
                    f[2] -= 1
                    fault = f
                    break
        if fault is not None:
            out = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\n<Error><Code>%s"
                   "</Code><Message>%s</Message><RequestId>LLMUXSTUB</RequestId>"
                   "</Error>\n" % (escape(fault[0]), escape(fault[1])))
            return self._reply(h, method, what, 200, out.encode(), code=fault[0])
        if self.complete_reply is not None:
            with self.lock:
                self._upload(query, key)
            return self._reply(h, method, what, 200, self.complete_reply)
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            raise S3Error(400, "MalformedXML", "The XML you provided was not "
                          "well-formed or did not validate against our published "
                          "schema.")
        ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
        if root.tag not in ("CompleteMultipartUpload", ns + "CompleteMultipartUpload"):
            raise S3Error(400, "MalformedXML", "not a CompleteMultipartUpload")
        wanted = []
        for part in root:
            n = part.find(ns + "PartNumber")
            if n is None:
                n = part.find("PartNumber")
            e = part.find(ns + "ETag")
            if e is None:
                e = part.find("ETag")
            if n is None or e is None:
                raise S3Error(400, "MalformedXML", "a Part without PartNumber "
                              "or ETag")
            wanted.append((int(n.text), e.text))
        with self.lock:
            upload = self._upload(query, key)
            if not wanted:
                raise S3Error(400, "MalformedXML", "no parts")
            if [n for n, _ in wanted] != sorted(set(n for n, _ in wanted)):
                raise S3Error(400, "InvalidPartOrder", "The list of parts was not "
                              "in ascending order.")
            data = []
            for i, (n, etag) in enumerate(wanted):
                have = upload["parts"].get(n)
                if have is None or have[0] != etag:
                    raise S3Error(400, "InvalidPart", "One or more of the specified "
                                  "parts could not be found.")
                if i < len(wanted) - 1 and len(have[1]) < MIN_PART:
                    raise S3Error(400, "EntityTooSmall", "Your proposed upload is "
                                  "smaller than the minimum allowed object size.")
                data.append(have[1])
            self.objects[key] = b"".join(data)
            del self.uploads[query["uploadId"]]
            etag = '"%s-%d"' % (hashlib.md5(b"".join(
                bytes.fromhex(upload["parts"][n][0].strip('"')) for n, _ in wanted))
                .hexdigest(), len(wanted))
        out = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/"
               "2006-03-01/\"><Location>%s/%s/%s</Location><Bucket>%s</Bucket>"
               "<Key>%s</Key><ETag>%s</ETag></CompleteMultipartUploadResult>\n"
               % (escape(self.endpoint), escape(self.bucket), escape(key),
                  escape(self.bucket), escape(key), escape(etag)))
        return self._reply(h, method, what, 200, out.encode())

    def _list_uploads(self):
        out = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListMultipartUploadsResult "
               "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>%s</Bucket>"
               "<IsTruncated>false</IsTruncated>" % escape(self.bucket)]
        for key, ident in self.unfinished():
            out.append("<Upload><Key>%s</Key><UploadId>%s</UploadId></Upload>"
                       % (escape(key), escape(ident)))
        out.append("</ListMultipartUploadsResult>\n")
        return "".join(out).encode()
