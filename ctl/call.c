/*
 * call.c -- how an llmuxctl command makes a call: connect and say hello
 * (once per run), send the call, show progress events and log data as
 * they come, keep the reply, and turn it into output and an exit code.
 * Also the option and eviction parsing the commands share.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "xmalloc.h"

#define CALL_TICK_MS	100

void
call_reply_free(struct ctl_reply *r)
{
	free(r->body);
	value_free(r->v);
	memset(r, 0, sizeof(*r));
}

static int
call_connect(struct ctl *ctl)
{
	char	err[1024];
	int	rc;

	if (ctl->connected)
		return (CTL_EXIT_OK);
	if ((rc = client_open(&ctl->cl, ctl->socket, err, sizeof(err))) != 0) {
		output_error("%s", err);
		return (rc);
	}
	ctl->connected = true;
	return (CTL_EXIT_OK);
}

/*
 * Make a call and wait for its reply, showing progress (for verb) and
 * writing log data to stdout as they come. Returns a CTL_EXIT_* code for
 * failures to talk; the reply's own status is in r.
 */
int
call_run(struct ctl *ctl, const char *verb, enum proto_type type,
    const struct proto_call *call, struct ctl_reply *r)
{
	struct proto_msg	m;
	char			err[1024];
	uint32_t		id;
	int			rc;

	memset(r, 0, sizeof(*r));
	if ((rc = call_connect(ctl)) != 0)
		return (rc);
	memset(&m, 0, sizeof(m));
	m.type = type;
	m.id = id = ctl->cl.next_id++;
	if (call != NULL)
		m.u.call = *call;
	if (client_send(&ctl->cl, &m) != 0) {
		output_error("lost the connection to the supervisor at %s",
		    ctl->socket);
		return (CTL_EXIT_UNREACHABLE);
	}
	for (;;) {
		rc = client_recv(&ctl->cl, &m, CALL_TICK_MS, err, sizeof(err));
		if (rc == 0) {
			output_progress_tick();
			continue;
		}
		if (rc < 0) {
			output_progress_end();
			output_error("lost the connection to the supervisor: "
			    "%s", err);
			return (CTL_EXIT_UNREACHABLE);
		}
		if (m.id != id && m.type != PROTO_ERROR) {
			proto_msg_free(&m);
			continue;
		}
		switch (m.type) {
		case PROTO_PROGRESS:
			output_progress(verb, &m.u.progress);
			break;
		case PROTO_LOG_DATA:
			fwrite(m.u.log.data, 1, m.u.log.len, stdout);
			fflush(stdout);
			break;
		case PROTO_REPLY:
			output_progress_end();
			r->status = m.u.reply.status;
			r->body = m.u.reply.body;
			r->len = m.u.reply.body_len;
			m.u.reply.body = NULL;
			r->v = value_parse(r->body, r->len);
			proto_msg_free(&m);
			return (CTL_EXIT_OK);
		case PROTO_ERROR:
			output_progress_end();
			output_error("%s", m.u.error.message);
			proto_msg_free(&m);
			return (CTL_EXIT_FAILED);
		default:
			break;
		}
		proto_msg_free(&m);
	}
}

/* "  phases: sleep 12 ms, stop 30 ms" when the reply lists phases. */
void
call_phases(const struct value *v)
{
	const struct value	*phases, *p;
	char			 d[32];

	if ((phases = value_get(v, "phases")) == NULL || phases->n == 0)
		return;
	printf("  phases:");
	for (size_t i = 0; i < phases->n; i++) {
		p = value_at(phases, i);
		printf("%s %s %s%s", i == 0 ? "" : ",",
		    value_str(value_get(p, "phase"), "?"),
		    output_duration(value_uint(value_get(p, "ms"), 0), d,
		    sizeof(d)), value_bool(value_get(p, "ok")) ? "" :
		    " (failed)");
	}
	printf("\n");
}

/* Print a reply's message or error; the exit code from its status. */
int
call_result(struct ctl *ctl, struct ctl_reply *r)
{
	const char	*msg, *err;
	int		 rc;

	rc = r->status >= 200 && r->status < 300 ? CTL_EXIT_OK :
	    CTL_EXIT_FAILED;
	if (ctl->json) {
		output_json(r->body, r->len);
		return (rc);
	}
	msg = value_str(value_get(r->v, "message"), NULL);
	err = value_str(value_get(r->v, "error"), NULL);
	if (rc == CTL_EXIT_OK) {
		if (msg != NULL)
			printf("%s\n", msg);
	} else
		fprintf(stderr, "llmuxctl: %s\n", err != NULL ? err :
		    msg != NULL ? msg : "failed");
	if ((msg = value_str(value_get(r->v, "log"), NULL)) != NULL)
		fprintf(stderr, "last lines of the model's log:\n%s\n", msg);
	call_phases(r->v);
	return (rc);
}

int
call_simple(struct ctl *ctl, const char *verb, enum proto_type type,
    const struct proto_call *call)
{
	struct ctl_reply	r;
	int			rc;

	if ((rc = call_run(ctl, verb, type, call, &r)) != 0)
		return (rc);
	rc = call_result(ctl, &r);
	call_reply_free(&r);
	return (rc);
}

/* "--opt VALUE" or "--opt=VALUE" at argv[*i]; NULL if not this option. */
const char *
call_option(const char *opt, int argc, char **argv, int *i)
{
	size_t	len = strlen(opt);

	if (strcmp(argv[*i], opt) == 0) {
		if (*i + 1 >= argc)
			return (NULL);
		return (argv[++*i]);
	}
	if (strncmp(argv[*i], opt, len) == 0 && argv[*i][len] == '=')
		return (argv[*i] + len + 1);
	return (NULL);
}

int
call_eviction(const struct ctl_verb *v, const char *s,
    struct eviction *e)
{
	if (eviction_parse(s, e) != 0) {
		output_error("unknown eviction '%s': expected WEIGHTS+PROCESS "
		    "(retain|offload|discard + keep_running|cuda_suspend|"
		    "checkpoint|stop) or a level 1-5", s);
		return (verbs_usage_line(v));
	}
	return (CTL_EXIT_OK);
}
