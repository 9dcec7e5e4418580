/*
 * listen.c -- listening sockets: "ADDR:PORT" arguments, binding, telling
 * a loopback address from a public one, and naming the address of one.
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "proxy.h"
#include "xmalloc.h"

/* "ADDR:PORT", "[V6]:PORT" or ":PORT" (all addresses). */
int
listen_parse(const char *s, char **addr, uint16_t *port)
{
	const char	*colon, *a = s, *end;
	char		*ep;
	unsigned long	 p;
	size_t		 alen;

	if ((colon = strrchr(s, ':')) == NULL)
		return (-1);
	end = colon;
	if (*s == '[') {
		if (colon == s || colon[-1] != ']')
			return (-1);
		a = s + 1;
		end = colon - 1;
	}
	errno = 0;
	p = strtoul(colon + 1, &ep, 10);
	if (colon[1] == '\0' || *ep != '\0' || errno != 0 || p == 0 ||
	    p > 65535)
		return (-1);
	alen = (size_t)(end - a);
	*addr = alen == 0 ? xstrdup("0.0.0.0") : xstrndup(a, alen);
	*port = (uint16_t)p;
	return (0);
}

int
listen_tcp(const char *addr, uint16_t port)
{
	struct addrinfo	 hints, *res;
	char		 serv[8];
	int		 fd, one = 1, e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(serv, sizeof(serv), "%u", port);
	if ((e = getaddrinfo(addr, serv, &hints, &res)) != 0) {
		log_warnx("bad listen address addr=%s error=\"%s\"", addr,
		    gai_strerror(e));
		return (-1);
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);
	if (fd == -1) {
		log_warn("socket");
		freeaddrinfo(res);
		return (-1);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, 1024) == -1) {
		log_warn("cannot listen addr=%s port=%u", addr, port);
		close(fd);
		freeaddrinfo(res);
		return (-1);
	}
	freeaddrinfo(res);
	return (fd);
}

static bool
listen_sa_is_loopback(const struct sockaddr *sa)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;

	if (sa->sa_family == AF_INET) {
		sin = (const struct sockaddr_in *)sa;
		return ((ntohl(sin->sin_addr.s_addr) >> 24) == 127);
	}
	if (sa->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)sa;
		return (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
	}
	return (sa->sa_family == AF_UNIX);
}

bool
listen_fd_is_loopback(int fd)
{
	struct sockaddr_storage	ss;
	socklen_t		len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return (false);
	return (listen_sa_is_loopback((struct sockaddr *)&ss));
}

/* The address a socket listens on, "ADDR:PORT" or "[V6]:PORT", for logs. */
const char *
listen_fd_name(int fd, char *buf, size_t len)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 sl = sizeof(ss);
	char			 a[INET6_ADDRSTRLEN];

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == -1)
		snprintf(buf, len, "fd %d", fd);
	else if (ss.ss_family == AF_INET &&
	    inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a)) != NULL)
		snprintf(buf, len, "%s:%u", a, ntohs(sin->sin_port));
	else if (ss.ss_family == AF_INET6 &&
	    inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a)) != NULL)
		snprintf(buf, len, "[%s]:%u", a, ntohs(sin6->sin6_port));
	else
		snprintf(buf, len, "fd %d", fd);
	return (buf);
}

bool
listen_addr_is_loopback(const char *addr)
{
	struct addrinfo	 hints, *res;
	bool		 loop;

	if (addr == NULL)
		return (true);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(addr, "1", &hints, &res) != 0)
		return (strcmp(addr, "localhost") == 0);
	loop = listen_sa_is_loopback(res->ai_addr);
	freeaddrinfo(res);
	return (loop);
}
