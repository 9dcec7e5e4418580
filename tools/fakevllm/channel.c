/*
 * channel.c -- how the API server and the engine reach each other.
 *
 * By default both halves live in one process and a message is a function
 * call. With --fake-engine-process the engine runs in a forked child named
 * "VLLM::EngineCor" (as vLLM's EngineCore process is), and messages travel
 * over a socketpair as a struct fv_msg header followed by len bytes. If
 * the child dies the API server fails its requests and exits, as vLLM's
 * does when its engine dies; if the parent dies the child gets SIGKILL
 * (PR_SET_PDEATHSIG), and it also exits when the socket closes.
 */
#include <sys/prctl.h>
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "fakevllm.h"
#include "log.h"
#include "xmalloc.h"

static struct {
	int			 inproc;
	int			 fd;
	struct bufferevent	*bev;
	pid_t			 child;
	int			 is_child;
} ch = { 1, -1, NULL, -1, 0 };

void
fv_channel_inproc(void)
{
	ch.inproc = 1;
}

pid_t
fv_channel_child(void)
{
	return (ch.child);
}

static void
channel_write(const struct fv_msg *m, const void *data)
{
	struct evbuffer	*out = bufferevent_get_output(ch.bev);

	evbuffer_add(out, m, sizeof(*m));
	if (m->len > 0)
		evbuffer_add(out, data, m->len);
}

void
fv_channel_to_engine(const struct fv_msg *m, const void *data)
{
	if (ch.inproc)
		fv_engine_dispatch(m, data);
	else if (ch.bev != NULL)
		channel_write(m, data);
}

void
fv_channel_to_api(const struct fv_msg *m, const void *data)
{
	if (ch.inproc)
		fv_server_dispatch(m, data);
	else if (ch.bev != NULL)
		channel_write(m, data);
}

/* Write what is queued now, before the process goes away. */
void
fv_channel_flush(void)
{
	struct evbuffer	*out;
	struct pollfd	 pfd;
	int		 tries = 0;

	if (ch.inproc) {
		fv_server_flush_all();
		return;
	}
	if (ch.bev == NULL)
		return;
	out = bufferevent_get_output(ch.bev);
	/* A bufferevent keeps the start of its output frozen between writes. */
	evbuffer_unfreeze(out, 1);
	while (evbuffer_get_length(out) > 0 && tries < 100) {
		if (evbuffer_write(out, ch.fd) == -1) {
			if (errno != EAGAIN && errno != EINTR)
				return;
			pfd.fd = ch.fd;
			pfd.events = POLLOUT;
			(void)poll(&pfd, 1, 10);
			tries++;
		}
	}
}

/* Die as a crashed engine would, after writing what is pending. */
void
fv_channel_crash(const char *why)
{
	log_warnx("engine crashed reason=%s", why);
	fv_channel_flush();
	_exit(1);
}

/* Read whole messages from the socket and hand them on. */
static void
channel_readcb(struct bufferevent *bev, void *arg)
{
	struct evbuffer	*in = bufferevent_get_input(bev);
	struct fv_msg	 m;
	char		*data;

	for (;;) {
		if (evbuffer_get_length(in) < sizeof(m))
			return;
		evbuffer_copyout(in, &m, sizeof(m));
		if (m.len > FV_MSG_DATA_MAX) {
			log_warnx("channel: oversized message len=%u", m.len);
			if (ch.is_child)
				exit(1);
			fv_server_engine_died("a corrupt message from the "
			    "engine");
			return;
		}
		if (evbuffer_get_length(in) < sizeof(m) + m.len)
			return;
		evbuffer_drain(in, sizeof(m));
		data = xmalloc(m.len + 1);
		evbuffer_remove(in, data, m.len);
		data[m.len] = '\0';
		if (ch.is_child)
			fv_engine_dispatch(&m, data);
		else
			fv_server_dispatch(&m, data);
		free(data);
	}
}

static void
channel_eventcb(struct bufferevent *bev, short what, void *arg)
{
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (ch.is_child) {
		log_info("the API server went away; engine exiting");
		exit(0);
	}
	fv_server_engine_died("the engine's socket closed");
}

static void
channel_start(struct event_base *base)
{
	evutil_make_socket_nonblocking(ch.fd);
	ch.bev = bufferevent_socket_new(base, ch.fd, 0);
	bufferevent_setcb(ch.bev, channel_readcb, NULL, channel_eventcb, NULL);
	bufferevent_enable(ch.bev, EV_READ | EV_WRITE);
}

void
fv_channel_parent_start(struct event_base *base)
{
	if (!ch.inproc)
		channel_start(base);
}

static void
channel_child_signal(evutil_socket_t sig, short events, void *arg)
{
	log_info("engine exiting signal=%d", (int)sig);
	exit(0);
}

static __attribute__((noreturn)) void
channel_child_main(struct fv_opts *opts, pid_t parent)
{
	struct event_base	*base;
	struct event		*ev_term, *ev_int;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1)
		log_warn("prctl PR_SET_PDEATHSIG");
	if (getppid() != parent)
		exit(0);	/* the parent died before we could watch it */
	(void)prctl(PR_SET_NAME, "VLLM::EngineCor");
	log_init("llmux-fakevllm-engine", 0);
	signal(SIGPIPE, SIG_IGN);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	ev_term = evsignal_new(base, SIGTERM, channel_child_signal, NULL);
	ev_int = evsignal_new(base, SIGINT, channel_child_signal, NULL);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	ch.is_child = 1;
	channel_start(base);
	log_info("EngineCore started pid=%ld", (long)getpid());
	fv_engine_init(base, opts);
	fv_engine_start();
	event_base_dispatch(base);
	exit(0);
}

/* Fork the engine; returns its pid in the parent (the child never returns). */
pid_t
fv_channel_fork(struct fv_opts *opts, int listen_fd)
{
	int	sv[2];
	pid_t	pid, parent = getpid();

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		fatal("socketpair");
	ch.inproc = 0;
	switch (pid = fork()) {
	case -1:
		fatal("fork");
	case 0:
		close(sv[0]);
		if (listen_fd != -1)
			close(listen_fd);
		ch.fd = sv[1];
		channel_child_main(opts, parent);
	default:
		close(sv[1]);
		ch.fd = sv[0];
		ch.child = pid;
		return (pid);
	}
}
