/*
 * bench_status.c -- the round-trip time of the `status` call over the
 * supervisor's socket: connects as llmuxctl does (hello, admin role), then
 * makes N status calls one after another and prints the distribution of
 * their times (from sending the call to having decoded the whole reply).
 *
 *     bench_status SOCKET [N]
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "proto.h"

static uint8_t	buf[PROTO_MAX_FRAME + 4];
static size_t	have;

static int
bench_send(int fd, const struct proto_msg *m)
{
	uint8_t	*frame;
	size_t	 len, off = 0;
	ssize_t	 n;

	if (proto_encode(m, &frame, &len) != 0)
		return (-1);
	while (off < len) {
		if ((n = write(fd, frame + off, len - off)) <= 0) {
			free(frame);
			return (-1);
		}
		off += (size_t)n;
	}
	free(frame);
	return (0);
}

static int
bench_recv(int fd, struct proto_msg *m)
{
	uint32_t	plen;
	char		err[256];
	ssize_t		n;
	int		r;

	for (;;) {
		if ((r = proto_frame_length(buf, have, &plen)) < 0)
			return (-1);
		if (r == 1 && have >= 4 + (size_t)plen) {
			r = proto_decode(buf + 4, plen, m, err, sizeof(err));
			memmove(buf, buf + 4 + plen, have - 4 - plen);
			have -= 4 + plen;
			return (r);
		}
		if ((n = read(fd, buf + have, sizeof(buf) - have)) <= 0)
			return (-1);
		have += (size_t)n;
	}
}

static int
bench_cmp(const void *a, const void *b)
{
	int64_t	x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x < y ? -1 : x > y);
}

int
main(int argc, char **argv)
{
	struct proto_msg	 m;
	int64_t			*us, t0, total = 0, start;
	long			 n = 10000;
	size_t			 body = 0;
	int			 fd;

	if (argc < 2 || argc > 3 || (argc == 3 && (n = atol(argv[2])) < 1)) {
		fprintf(stderr, "usage: bench_status SOCKET [N]\n");
		return (2);
	}
	if ((fd = proto_connect_unix(argv[1])) == -1) {
		fprintf(stderr, "bench_status: %s: %s\n", argv[1],
		    strerror(errno));
		return (1);
	}
	memset(&m, 0, sizeof(m));
	m.type = PROTO_HELLO;
	m.u.hello.version = PROTO_VERSION;
	m.u.hello.role = PROTO_ROLE_ADMIN;
	m.u.hello.program = "bench_status";
	if (bench_send(fd, &m) != 0 || bench_recv(fd, &m) != 0 ||
	    m.type != PROTO_HELLO) {
		fprintf(stderr, "bench_status: hello failed\n");
		return (1);
	}
	proto_msg_free(&m);
	us = calloc((size_t)n, sizeof(*us));
	start = clock_us();
	for (long i = 0; i < n; i++) {
		memset(&m, 0, sizeof(m));
		m.type = PROTO_CTL_STATUS;
		m.id = (uint32_t)(i + 1);
		t0 = clock_us();
		if (bench_send(fd, &m) != 0 || bench_recv(fd, &m) != 0 ||
		    m.type != PROTO_REPLY || m.u.reply.status != 200) {
			fprintf(stderr, "bench_status: call %ld failed\n", i);
			return (1);
		}
		us[i] = clock_us() - t0;
		total += us[i];
		body = m.u.reply.body_len;
		proto_msg_free(&m);
	}
	qsort(us, (size_t)n, sizeof(*us), bench_cmp);
	printf("status round trips: %ld calls in %.2f s, reply body %zu bytes\n",
	    n, (double)(clock_us() - start) / 1e6, body);
	printf("  p50 %.1f us  p90 %.1f us  p99 %.1f us  max %.1f us  "
	    "mean %.1f us\n", (double)us[n / 2], (double)us[n * 9 / 10],
	    (double)us[n * 99 / 100], (double)us[n - 1],
	    (double)total / (double)n);
	free(us);
	close(fd);
	return (0);
}
