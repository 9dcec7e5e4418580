/*
 * ctl.h -- llmuxctl's shared types: the reply value tree (value.c), the
 * connection to the supervisor (client.c), output (output.c) and the verb
 * table (verbs.c).
 */
#ifndef LLMUX_CTL_H
#define LLMUX_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto.h"

struct strbuf;

/* Exit codes scripts can rely on (llmuxctl(1), EXIT STATUS). */
#define CTL_EXIT_OK		0	/* it happened, or was so already */
#define CTL_EXIT_FAILED		1	/* the supervisor said no, or it failed */
#define CTL_EXIT_USAGE		2	/* the command line is wrong */
#define CTL_EXIT_UNREACHABLE	3	/* no supervisor to talk to */

#define CTL_DEFAULT_SOCKET	"/run/llmux/supervisor.sock"

/* ---- value.c: a reply body as a tree ------------------------------------ */

enum value_kind {
	VALUE_NIL, VALUE_BOOL, VALUE_INT, VALUE_UINT, VALUE_FLOAT, VALUE_STR,
	VALUE_ARRAY, VALUE_MAP
};

struct value {
	enum value_kind	 kind;
	bool		 b;
	int64_t		 i;
	uint64_t	 u;
	double		 f;
	char		*s;		/* STR: NUL-terminated */
	struct value	*v;		/* ARRAY: n items; MAP: n pairs, k,v */
	size_t		 n;
};

struct value		*value_parse(const uint8_t *, size_t);
void			 value_free(struct value *);
const struct value	*value_get(const struct value *, const char *);
const char		*value_str(const struct value *, const char *);
uint64_t		 value_uint(const struct value *, uint64_t);
bool			 value_bool(const struct value *);
/* A map's i-th key and value. */
const char		*value_key(const struct value *, size_t);
const struct value	*value_at(const struct value *, size_t);

/* ---- client.c: one connection ------------------------------------------ */

struct client {
	int		 fd;
	const char	*path;
	uint32_t	 next_id;
	uint8_t		*in;
	size_t		 inlen;
	size_t		 incap;
};

/* Connect and say hello; returns a CTL_EXIT_* code, err says why. */
int	client_open(struct client *, const char *, char *, size_t);
void	client_close(struct client *);
int	client_send(struct client *, const struct proto_msg *);
/* 1: a message; 0: timed out; -1: lost or bad (err says which). */
int	client_recv(struct client *, struct proto_msg *, int, char *, size_t);

/* ---- output.c -------------------------------------------------------------- */

struct table;
struct table	*table_new(int cols, ...);
void		 table_add(struct table *, ...);
void		 table_print(struct table *);
void		 table_free(struct table *);

void	output_progress(const char *verb, const struct proto_progress *);
void	output_progress_tick(void);
void	output_progress_end(void);
void	output_json(const uint8_t *, size_t);
/*
 * With --json (output_set_json), errors are one {"error": "..."} document
 * on stdout (the first only) and messages {"message": "..."}; otherwise
 * "llmuxctl: ..." (output_error) or the line as is (output_usage) on
 * stderr, and messages on stdout.
 */
void	output_set_json(bool);
void	output_error(const char *, ...) __attribute__((format(printf, 1, 2)));
void	output_usage(const char *, ...) __attribute__((format(printf, 1, 2)));
void	output_message(const char *, ...) __attribute__((format(printf, 1, 2)));
/* "1m 02s", "340 ms" */
const char *output_duration(uint64_t ms, char *, size_t);
/* How long ago, coarse: "45s", "12m", "3h", "2d"; "-" when ms < 0. */
const char *output_ago(int64_t ms, char *, size_t);
/* A countdown: "58s", "4m58s", "2h04m"; "-" when ms < 0. */
const char *output_left(int64_t ms, char *, size_t);

/* ---- gpuout.c: GPUs in status, phases in validate -------------------------- */

void	gpuout_status(const struct value *gpus);
void	gpuout_validate_phases(const struct value *results);

/* ---- call.c: making a call ---------------------------------------------------- */

struct ctl;
struct ctl_verb;

struct ctl_reply {
	int		 status;
	uint8_t		*body;
	size_t		 len;
	struct value	*v;
};

/*
 * Make a call and wait for its reply, showing progress (for verb) and
 * writing log data to stdout. Returns a CTL_EXIT_* code for failures to
 * talk; the reply's own status is in the reply.
 */
int	 call_run(struct ctl *, const char *verb, enum proto_type,
	    const struct proto_call *, struct ctl_reply *);
void	 call_reply_free(struct ctl_reply *);
/* Print a reply's message or error (and phases); exit code from status. */
int	 call_result(struct ctl *, struct ctl_reply *);
void	 call_phases(const struct value *);
int	 call_simple(struct ctl *, const char *, enum proto_type,
	    const struct proto_call *);
/* "--opt VALUE" or "--opt=VALUE" at argv[*i]; NULL if not this option. */
const char *call_option(const char *, int, char **, int *);
int	 call_eviction(const struct ctl_verb *, const char *,
	    struct eviction *);

/* ---- events.c: llmuxctl events, and the stream top reads ------------------- */

/* Subscribe (since NULL: from now on); r is the reply (call_reply_free). */
int	 events_subscribe(struct ctl *, const struct proto_event_id *since,
	    struct ctl_reply *r);
/* "HH:MM:SS.mmm KIND MODEL key=value ..." appended to out. */
void	 events_line(const struct proto_event *, struct strbuf *out);
int	 events_verb(struct ctl *, int, char **);

/* ---- top.c: llmuxctl top ----------------------------------------------------- */

int	 top_verb(struct ctl *, int, char **);

/* ---- verbs.c ---------------------------------------------------------------- */

struct ctl {
	const char	*socket;
	bool		 json;
	struct client	 cl;
	bool		 connected;
};

struct ctl_verb {
	const char	*name;
	const char	*args;		/* usage after the name */
	const char	*help;
	int		 min_args;
	int		 max_args;	/* -1: any */
	int		 (*exec)(struct ctl *, int, char **);
};

extern const struct ctl_verb ctl_verbs[];

const struct ctl_verb	*verbs_find(const char *);
void			 verbs_usage(FILE *);
/* "usage: llmuxctl VERB ARGS" and what VERB does, on stdout. */
void			 verbs_help(const struct ctl_verb *);
/* "usage: llmuxctl VERB ARGS" on stderr; returns CTL_EXIT_USAGE. */
int			 verbs_usage_line(const struct ctl_verb *);
int			 verbs_run(struct ctl *, const struct ctl_verb *, int,
			    char **);

#endif
