/*
 * main.c -- llmux-proxyd: the unprivileged OpenAI-compatible front door.
 *
 *     llmux-proxyd [-v] [--socket PATH] [--listen ADDR:PORT]
 *                  [--admin-listen ADDR:PORT]
 *
 * It reads no file: models, limits and keys come from the supervisor over
 * its socket. Listening sockets come from systemd when LISTEN_FDS is set
 * (named "proxy" and "admin", else the first and the second), so that a
 * restart of the proxy refuses no connection. SIGTERM or SIGINT: stop
 * accepting, answer waiting requests 503, let forwarded ones finish for up
 * to PROXY_GRACE_SECS, then exit.
 */
#include <sys/resource.h>

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "proxy.h"
#include "version.h"
#include "xmalloc.h"

#define PROXY_GRACE_SECS	30
#define PROXY_DEFAULT_SOCKET	"/run/llmux/supervisor.sock"
#define PROXY_EXIT_CONFIG	78	/* EX_CONFIG: the unit does not restart */

static struct event	*proxy_grace_ev;

static void
usage(FILE *f)
{
	fprintf(f, "usage: llmux-proxyd [-v] [--socket PATH] "
	    "[--listen ADDR:PORT] [--admin-listen ADDR:PORT]\n"
	    "  --socket PATH           supervisor socket (LLMUX_SOCKET, "
	    "default %s)\n"
	    "  --listen ADDR:PORT      the OpenAI port (default: from the "
	    "config)\n"
	    "  --admin-listen ADDR:PORT  control API and /metrics (default: "
	    "from the config)\n"
	    "  -v                      more logging (twice: debug)\n",
	    PROXY_DEFAULT_SOCKET);
}

/* A config the proxy must not serve: say why, exit, and stay down. */
static void __attribute__((format(printf, 1, 2), noreturn))
proxy_refuse(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, fmt, ap);
	va_end(ap);
	exit(PROXY_EXIT_CONFIG);
}

static void
proxy_grace_cb(evutil_socket_t fd, short ev, void *arg)
{
	log_warnx("grace period over, exiting active=%u",
	    front_active_requests());
	event_base_loopexit(proxy_base, NULL);
}

static void
proxy_signal_cb(evutil_socket_t sig, short ev, void *arg)
{
	struct timeval	tv = { PROXY_GRACE_SECS, 0 };

	if (proxy_exiting) {
		log_warnx("second signal, exiting now");
		event_base_loopexit(proxy_base, NULL);
		return;
	}
	log_info("shutting down signal=%d active=%u", (int)sig,
	    front_active_requests());
	proxy_exiting = true;
	front_stop_accepting();
	if (client_settled()) {
		event_base_loopexit(proxy_base, NULL);
		return;
	}
	proxy_grace_ev = evtimer_new(proxy_base, proxy_grace_cb, NULL);
	evtimer_add(proxy_grace_ev, &tv);
}

/*
 * What the supervisor pushes, applied to each module in turn: the one place
 * where news from the link fans out (the link itself sits below them all).
 */
static void
proxy_link_config(const struct proto_config *c)
{
	bool	first = !proxy_conf.have;
	char	why[512];

	registry_apply_config(c);
	if (front_apply_config(why, sizeof(why)) != 0)
		proxy_refuse("%s", why);
	route_apply_config(first);
	control_apply_config();
}

static void
proxy_link_state(const struct proto_state *st)
{
	registry_apply_state(st);
	route_apply_state();
}

static void
proxy_link_ready(const struct proto_ready *r)
{
	struct pmodel	*pm;

	if ((pm = registry_ready(r->model, r->port, r->generation)) != NULL)
		route_model_ready(pm);
}

static void
proxy_link_failed(const struct proto_failed *f)
{
	struct pmodel	*pm;

	if ((pm = registry_failed(f->model, f->reason)) != NULL)
		route_model_failed(pm);
}

static void
proxy_link_drain(const struct proto_drain *d)
{
	registry_drain(d->model, d->drain_id);
}

/* The supervisor is gone: serve what is ready, with no drain pending. */
static void
proxy_link_lost(void)
{
	mirror_link_down();
	registry_supervisor_lost();
	route_apply_state();
}

/* A new hello: subscribe to the supervisor's events again. */
static void
proxy_link_up(void)
{
	mirror_link_up();
}

/* An event: into the mirror (for /control/events) and the history. */
static void
proxy_link_event(const struct proto_event *e)
{
	mirror_event(e);
	history_event(e);
}

static const struct link_ops proxy_link_ops = {
	.config = proxy_link_config,
	.state = proxy_link_state,
	.ready = proxy_link_ready,
	.failed = proxy_link_failed,
	.drain = proxy_link_drain,
	.lost = proxy_link_lost,
	.up = proxy_link_up,
	.event = proxy_link_event,
};

/* Take the sockets systemd passed; returns how many were used. */
static int
proxy_systemd_sockets(void)
{
	char	**names = NULL;
	int	  n, i, fd, used = 0;
	bool	  have_proxy = false;

	if (getenv("LISTEN_FDS") == NULL)
		return (0);
	if ((n = sd_listen_fds_with_names(1, &names)) <= 0) {
		if (n < 0)
			log_warnx("LISTEN_FDS is set but unusable error=\"%s\"",
			    strerror(-n));
		return (0);
	}
	for (i = 0; i < n; i++) {
		fd = SD_LISTEN_FDS_START + i;
		if (names != NULL && names[i] != NULL &&
		    strcmp(names[i], "admin") == 0) {
			control_listen_fd(fd);
			used++;
		} else if (names != NULL && names[i] != NULL &&
		    strcmp(names[i], "proxy") == 0) {
			if (front_listen_fd(fd) != 0)
				fatalx("cannot use the proxy socket from "
				    "systemd fd=%d", fd);
			have_proxy = true;
			used++;
		} else if (i == 0 && !have_proxy) {
			if (front_listen_fd(fd) != 0)
				fatalx("cannot use the socket from systemd "
				    "fd=%d", fd);
			have_proxy = true;
			used++;
		} else if (i == 1) {
			control_listen_fd(fd);
			used++;
		}
	}
	if (names != NULL) {
		for (i = 0; i < n; i++)
			free(names[i]);
		free(names);
	}
	log_info("sockets from systemd count=%d", used);
	return (used);
}

/* Many connections need many descriptors: take what the hard limit gives. */
static void
proxy_raise_nofile(void)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "listen", required_argument, NULL, 'l' },
		{ "admin-listen", required_argument, NULL, 'a' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*sock = NULL, *listen_arg = NULL, *admin_arg = NULL;
	char		*addr;
	uint16_t	 port;
	struct event	*sigterm, *sigint;
	int		 ch, verbose = 0;

	while ((ch = getopt_long(argc, argv, "s:l:a:vh", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 's':
			sock = optarg;
			break;
		case 'l':
			listen_arg = optarg;
			break;
		case 'a':
			admin_arg = optarg;
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			usage(stdout);
			return (0);
		case 'V':
			printf("llmux-proxyd %s\n", LLMUX_VERSION);
			return (0);
		default:
			usage(stderr);
			return (1);
		}
	}
	if (optind != argc) {
		usage(stderr);
		return (1);
	}
	if (sock == NULL)
		sock = getenv("LLMUX_SOCKET");
	if (sock == NULL || *sock == '\0')
		sock = PROXY_DEFAULT_SOCKET;
	log_init("llmux-proxyd", verbose);
	signal(SIGPIPE, SIG_IGN);
	proxy_raise_nofile();

	registry_init();

	if ((proxy_base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	front_init();
	control_init();
	history_init();
	proxy_systemd_sockets();
	if (listen_arg != NULL && !front_listening()) {
		if (listen_parse(listen_arg, &addr, &port) != 0)
			fatalx("bad --listen, want ADDR:PORT: %s", listen_arg);
		if (front_listen(addr, port) != 0)
			fatalx("cannot listen on %s", listen_arg);
		free(addr);
	}
	if (admin_arg != NULL) {
		if (listen_parse(admin_arg, &addr, &port) != 0)
			fatalx("bad --admin-listen, want ADDR:PORT: %s",
			    admin_arg);
		control_set_listen(addr, port);
		free(addr);
	}
	mirror_on_change(sse_mirror_changed);
	link_init(sock, &proxy_link_ops);

	sigterm = evsignal_new(proxy_base, SIGTERM, proxy_signal_cb, NULL);
	sigint = evsignal_new(proxy_base, SIGINT, proxy_signal_cb, NULL);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	sd_notify(0, "READY=1");
	log_info("started version=%s socket=%s", LLMUX_VERSION, sock);

	event_base_dispatch(proxy_base);

	log_info("exiting");
	sd_notify(0, "STOPPING=1");
	front_shutdown();
	sse_shutdown();
	history_shutdown();
	control_shutdown();
	link_shutdown();
	mirror_shutdown();
	upstream_shutdown();
	registry_free_all();
	event_free(sigterm);
	event_free(sigint);
	if (proxy_grace_ev != NULL)
		event_free(proxy_grace_ev);
	event_base_free(proxy_base);
	return (0);
}
