/*
 * config_access.c -- who may reach llmux, as the configuration says: the
 * admin token, read from admin_token_file (a root-owned file that only
 * root and the admin group may read, refused when it is a symlink, has
 * other links, or is writable by anyone else) unless proxy.admin_token is
 * written inline; and the API port, which must not face the network
 * without api_keys unless proxy.allow_unauthenticated says so.
 *
 * Runs after the file is bound and before config_check, so the rules there
 * see the token whichever way it came.
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_int.h"
#include "xmalloc.h"

#define CONFIG_TOKEN_MAX	256	/* what the proxy is sent (proto) */
#define CONFIG_TOKEN_FILE_MAX	4096	/* bytes read, newline and all */

/* Is the address a loopback one (127.0.0.0/8, ::1, ::ffff:127.x)? */
bool
config_access_loopback(const char *addr)
{
	struct in_addr	v4;
	struct in6_addr	v6;

	if (inet_pton(AF_INET, addr, &v4) == 1)
		return ((ntohl(v4.s_addr) >> 24) == 127);
	if (inet_pton(AF_INET6, addr, &v6) == 1)
		return (IN6_IS_ADDR_LOOPBACK(&v6) ||
		    (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127));
	return (false);
}

/*
 * Why the token file at fd (opened without following a symlink) must not
 * be trusted, or NULL: it must be a regular file of one link, owned by
 * root (or by the user the supervisor runs as, when not root), writable by
 * its owner alone and readable by no one outside its group.
 */
static const char *
config_access_unsafe(const struct stat *st, char *why, size_t len)
{
	if (!S_ISREG(st->st_mode))
		return ("is not a regular file");
	if (st->st_nlink != 1)
		return ("has other hard links");
	if (st->st_uid != 0 && st->st_uid != geteuid()) {
		snprintf(why, len, "belongs to uid %u, not root",
		    (unsigned)st->st_uid);
		return (why);
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, len, "is writable by %s (mode %04o; want 0640)",
		    st->st_mode & S_IWOTH ? "others" : "its group",
		    (unsigned)(st->st_mode & 07777));
		return (why);
	}
	if (st->st_mode & S_IRWXO) {
		snprintf(why, len, "is readable by others (mode %04o; want "
		    "0640)", (unsigned)(st->st_mode & 07777));
		return (why);
	}
	return (NULL);
}

/*
 * The token of the file: its text without the trailing newline (or other
 * trailing white space), 1 to CONFIG_TOKEN_MAX printable ASCII characters
 * with no space. Returns it, or NULL with why.
 */
static char *
config_access_read(int fd, const struct stat *st, char *why, size_t len)
{
	char	 buf[CONFIG_TOKEN_FILE_MAX + 1];
	size_t	 got = 0, i;
	ssize_t	 n;

	if (st->st_size > (off_t)CONFIG_TOKEN_FILE_MAX) {
		snprintf(why, len, "is too large (%jd bytes; a token is at "
		    "most %u)", (intmax_t)st->st_size, CONFIG_TOKEN_MAX);
		return (NULL);
	}
	while (got < sizeof(buf) - 1) {
		n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(why, len, "cannot be read: %s",
			    strerror(errno));
			return (NULL);
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == '\r' ||
	    buf[got - 1] == ' ' || buf[got - 1] == '\t'))
		got--;
	buf[got] = '\0';
	if (got == 0) {
		snprintf(why, len, "is empty");
		return (NULL);
	}
	if (got > CONFIG_TOKEN_MAX) {
		snprintf(why, len, "holds %zu characters (a token is at most "
		    "%u)", got, CONFIG_TOKEN_MAX);
		return (NULL);
	}
	for (i = 0; i < got; i++) {
		if (buf[i] < 0x21 || buf[i] > 0x7e) {
			snprintf(why, len, "may hold only printable ASCII "
			    "without spaces, on one line");
			return (NULL);
		}
	}
	return (xstrdup(buf));
}

/*
 * proxy.admin_token from admin_token_file, when it is not written inline.
 * A missing file is no token (every state-changing call of the admin port
 * is then refused); a file that cannot be trusted or read is an error for
 * the supervisor, a warning for --check-config (as other facts about this
 * machine are).
 */
static void
config_access_token(struct config_loader *ld)
{
	struct config		*cfg = ld->cfg;
	struct config_pos	 none = { 0, 0 }, pos;
	struct stat		 st;
	const char		*bad = NULL;
	char			 why[128], path[CONFIG_TEXT_MAX];
	bool			 run = ld->mode == CONFIG_RUN;
	int			 fd;

	if (cfg->proxy.admin_token != NULL || cfg->admin_token_file == NULL ||
	    *cfg->admin_token_file == '\0')
		return;
	fd = open(cfg->admin_token_file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
	    O_NOCTTY | O_NONBLOCK);
	if (fd == -1 && errno == ENOENT)
		return;
	if (fd == -1) {
		snprintf(why, sizeof(why), "%s", errno == ELOOP ?
		    "is a symbolic link" : strerror(errno));
		bad = why;
	} else if (fstat(fd, &st) == -1) {
		snprintf(why, sizeof(why), "cannot be examined: %s",
		    strerror(errno));
		bad = why;
	} else if ((bad = config_access_unsafe(&st, why, sizeof(why))) ==
	    NULL && (cfg->proxy.admin_token = config_access_read(fd, &st, why,
	    sizeof(why))) == NULL)
		bad = why;
	if (fd != -1)
		close(fd);
	if (bad == NULL)
		return;
	pos = config_marked(ld, &cfg->admin_token_file, none);
	config_diag(ld, run, true, pos.line, pos.col, "admin_token_file: %s "
	    "%s, so it is not used%s", config_printable(cfg->admin_token_file,
	    strlen(cfg->admin_token_file), path, sizeof(path)), bad, run ? "" :
	    " (the supervisor will refuse to start)");
}

/*
 * The API port on an address that is not loopback, with no api_keys:
 * anyone who reaches it may use every model. Refused unless
 * proxy.allow_unauthenticated says that is meant.
 */
static void
config_access_listen(struct config_loader *ld)
{
	struct config		*cfg = ld->cfg;
	struct config_pos	 none = { 0, 0 }, pos;
	const char		*addr = cfg->proxy.listen_address;
	char			 a[CONFIG_TEXT_MAX];

	if (addr == NULL || config_access_loopback(addr) ||
	    cfg->proxy.n_api_keys != 0 || cfg->proxy.allow_unauthenticated)
		return;
	pos = config_marked(ld, &cfg->proxy.listen_address, none);
	config_diag(ld, true, false, pos.line, pos.col, "proxy.listen_address: "
	    "the API would listen on %s with no api_keys, open to anyone who "
	    "reaches it (set proxy.api_keys, listen on 127.0.0.1, or set "
	    "proxy.allow_unauthenticated: true)", config_printable(addr,
	    strlen(addr), a, sizeof(a)));
}

void
config_access(struct config_loader *ld)
{
	config_access_token(ld);
	config_access_listen(ld);
}
