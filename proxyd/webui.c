/*
 * webui.c -- the web page's files on the admin port: `/` and `/ui` are
 * ui_dir's index.html, `/ui/NAME` a file of ui_dir, `/javascript/PATH` a
 * file of javascript_dir (Debian's libjs-chart.js puts Chart.js there).
 *
 * Read-only and confined: the decoded path is split into names, each
 * opened with openat(O_NOFOLLOW) from the directory before it, starting
 * at the configured directory, so no `..`, no symbolic link and no name
 * starting with a dot is followed out of it; only regular files up to
 * WEBUI_MAX_FILE are served (a directory is 404: there is no listing),
 * with the content type of their extension, an ETag and Last-Modified
 * (If-None-Match answers 304), and a Content-Security-Policy that lets
 * the page load nothing from anywhere else.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <evhtp/evhtp.h>

#include "hex.h"
#include "log.h"
#include "proxy.h"

#define WEBUI_MAX_PATH	1024
#define WEBUI_MAX_DEPTH	16		/* names in a path */
#define WEBUI_MAX_FILE	(8u << 20)

/* Nothing from elsewhere: scripts, styles, data and images of this port. */
#define WEBUI_CSP	"default-src 'none'; script-src 'self'; " \
			"style-src 'self'; img-src 'self' data:; " \
			"connect-src 'self'; base-uri 'none'; " \
			"form-action 'none'; frame-ancestors 'none'"

static const struct {
	const char	*ext;
	const char	*type;
} webui_types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".mjs", "text/javascript; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".json", "application/json" },
	{ ".map", "application/json" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ ".ico", "image/x-icon" },
	{ ".txt", "text/plain; charset=utf-8" },
};

bool
webui_path(const char *path)
{
	return (strcmp(path, "/") == 0 || strcmp(path, "/ui") == 0 ||
	    strncmp(path, "/ui/", 4) == 0 ||
	    strncmp(path, "/javascript/", 12) == 0);
}

/* Percent-decode src into dst; -1 on a bad escape or a NUL or control. */
int
webui_decode(const char *src, char *dst, size_t dstlen)
{
	size_t	n = 0;
	int	hi, lo, c;

	for (; *src != '\0'; src++) {
		c = (unsigned char)*src;
		if (c == '%') {
			if ((hi = hex_digit(src[1])) < 0 ||
			    (lo = hex_digit(src[2])) < 0)
				return (-1);
			c = hi * 16 + lo;
			src += 2;
		}
		if (c < 0x20 || c == 0x7f || c == '\\' || n + 1 >= dstlen)
			return (-1);
		dst[n++] = (char)c;
	}
	dst[n] = '\0';
	return (0);
}

/*
 * Open the file at rel (names separated by '/') under the directory dir,
 * following no link and leaving it by no name: the fd, or -1 (errno).
 */
int
webui_open(const char *dir, char *rel)
{
	char	*name, *next;
	int	 dfd, fd, depth = 0;

	if ((dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1)
		return (-1);
	for (name = rel;; name = next) {
		if ((next = strchr(name, '/')) != NULL)
			*next++ = '\0';
		/* No empty name, no ".", "..", nor any hidden file. */
		if (*name == '\0' || *name == '.' || ++depth > WEBUI_MAX_DEPTH) {
			close(dfd);
			errno = ENOENT;
			return (-1);
		}
		if (next == NULL)
			break;
		fd = openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		close(dfd);
		if (fd == -1)
			return (-1);
		dfd = fd;
	}
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	close(dfd);
	return (fd);
}

/* The content type of a path, by the extension of its last name. */
static const char *
webui_type(const char *path)
{
	const char	*slash = strrchr(path, '/');
	const char	*dot = strrchr(slash != NULL ? slash : path, '.');
	size_t		 i;

	for (i = 0; dot != NULL && i < sizeof(webui_types) /
	    sizeof(webui_types[0]); i++)
		if (strcasecmp(dot, webui_types[i].ext) == 0)
			return (webui_types[i].type);
	return ("application/octet-stream");
}

static void
webui_header(evhtp_request_t *req, const char *k, const char *v)
{
	evhtp_headers_add_header(req->headers_out, evhtp_header_new(k, v, 0,
	    1));
}

int
webui_serve(evhtp_request_t *req, char *msg, size_t msglen)
{
	const char	*path = req->uri->path->full, *dir, *inm, *type;
	char		 rel[WEBUI_MAX_PATH], etag[64], date[64];
	htp_method	 method = evhtp_request_get_method(req);
	struct stat	 st;
	struct tm	 tm;
	int		 fd, n = 0;

	if (method != htp_method_GET && method != htp_method_HEAD) {
		snprintf(msg, msglen, "method not allowed");
		return (405);
	}
	dir = proxy_conf.ui_dir != NULL ? proxy_conf.ui_dir :
	    PROXY_DEFAULT_UI_DIR;
	if (strcmp(path, "/") == 0 || strcmp(path, "/ui") == 0 ||
	    strcmp(path, "/ui/") == 0)
		snprintf(rel, sizeof(rel), "index.html");
	else if (strncmp(path, "/ui/", 4) == 0) {
		if (webui_decode(path + 4, rel, sizeof(rel)) != 0)
			goto bad;
	} else {
		dir = proxy_conf.javascript_dir != NULL ?
		    proxy_conf.javascript_dir : PROXY_DEFAULT_JAVASCRIPT_DIR;
		if (webui_decode(path + 12, rel, sizeof(rel)) != 0)
			goto bad;
	}
	type = webui_type(rel);
	if ((fd = webui_open(dir, rel)) == -1) {
		if (errno != ENOENT && errno != ELOOP && errno != ENOTDIR)
			log_debug("cannot open a page file dir=%s path=%s "
			    "error=\"%s\"", dir, path, strerror(errno));
		goto notfound;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > (off_t)WEBUI_MAX_FILE) {
		close(fd);
		goto notfound;
	}
	snprintf(etag, sizeof(etag), "\"%llx-%llx-%lx\"",
	    (unsigned long long)st.st_ino, (unsigned long long)st.st_size,
	    (long)st.st_mtime);
	inm = evhtp_header_find(req->headers_in, "If-None-Match");
	while (method == htp_method_GET && (inm == NULL ||
	    strcmp(inm, etag) != 0) && (n = evbuffer_read(req->buffer_out, fd,
	    65536)) > 0 && evbuffer_get_length(req->buffer_out) <=
	    WEBUI_MAX_FILE)
		;
	close(fd);
	if (n < 0 || evbuffer_get_length(req->buffer_out) > WEBUI_MAX_FILE) {
		evbuffer_drain(req->buffer_out, evbuffer_get_length(
		    req->buffer_out));
		snprintf(msg, msglen, "cannot read the file");
		return (500);
	}
	gmtime_r(&st.st_mtime, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	webui_header(req, "Content-Security-Policy", WEBUI_CSP);
	webui_header(req, "X-Content-Type-Options", "nosniff");
	webui_header(req, "Referrer-Policy", "no-referrer");
	webui_header(req, "Cache-Control", "no-cache");
	webui_header(req, "ETag", etag);
	webui_header(req, "Last-Modified", date);
	webui_header(req, "Content-Type", type);
	evhtp_send_reply(req, inm != NULL && strcmp(inm, etag) == 0 ? 304 :
	    200);
	return (0);
bad:
	snprintf(msg, msglen, "bad path");
	return (400);
notfound:
	snprintf(msg, msglen, "not found");
	return (404);
}
