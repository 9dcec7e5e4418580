/*
 * control.h -- supervisord/control/, the map of the control calls: their
 * dispatch and the simple ones (control.c), checkpoint (checkpoint.c),
 * validate (validate.c), logs (logfollow.c), metrics (metrics.c) and
 * reload (reload.c). The orders that go through the switcher are
 * switching/'s (order.c).
 */
#ifndef LLMUX_CONTROL_H
#define LLMUX_CONTROL_H

#include "supervisord/core.h"

struct body;
struct evict_report;
struct switch_record;

/* ---- metrics.c ----------------------------------------------------------- */

char	*metrics_text(struct supervisor *);
/* A finished switch, for the llmux_switch_* metrics. */
void	 metrics_switch_record(struct supervisor *, const char *from,
	    const char *to, const struct switch_record *);
void	 metrics_free(struct supervisor *);

/* ---- reload.c ------------------------------------------------------------ */

struct reload_result {
	bool	  ok;
	char	**errors;		/* "FILE:LINE:COL: message" */
	size_t	  n_errors;
	char	**added, **removed, **changed;
	size_t	  n_added, n_removed, n_changed;
};

void	reload_run(struct supervisor *, struct reload_result *);
void	reload_result_free(struct reload_result *);
/* Does a change of this model's config need a new process? */
bool	reload_model_changed(const struct config *, const struct model_config *,
	    const struct config *, const struct model_config *);

/* ---- logfollow.c: the logs call ----------------------------------------- */

struct logfollow;
void	 logfollow_call(struct client *, uint32_t id, struct model *,
	    uint32_t lines, bool follow);
void	 logfollow_free(struct logfollow *);
void	 logfollow_model_gone(struct supervisor *, struct model *);

/* ---- validate.c: the validate call -------------------------------------- */

#define VALIDATE_REQUEST_TIMEOUT_MS	60000
#define VALIDATE_MAX_POLICIES		16

void	 validate_call(struct ctl_call *, struct model *,
	    const struct proto_strlist *);
/* The "text" of the first choice of a completion, or NULL. */
char	*validate_text(const char *, size_t);
/* A deterministic completion request for the model (temperature 0). */
char	*validate_request_body(const struct model *, int max_tokens);

/* ---- checkpoint.c: the checkpoint call --------------------------------- */

/* Start M if need be, warm it up, then sleep it with W+checkpoint. */
void	 checkpoint_call(struct ctl_call *, struct model *,
	    const struct proto_msg *);

/* ---- control.c: the control calls --------------------------------------- */

/* A call waiting for an operation; it outlives its peer. */
struct ctl_call {
	struct supervisor	*sup;
	struct client		*client;	/* NULL once the peer left */
	uint32_t		 id;
	enum proto_type		 type;
	char			*name;
	struct eviction		 eviction;
	int64_t			 start_ms;
	bool			 ordered;	/* waits for the switcher */
	int			 phase;		/* last switch phase told, -1 */
	char			**policies;	/* VALIDATE: its evictions */
	size_t			 n_policies;
	/* What the call's handler holds, freed at exit if still unreplied. */
	void			*state;
	void			(*state_free)(void *);
	TAILQ_ENTRY(ctl_call)	 entry;
};

/* A reply that waits for the journal (control_reply). */
struct ctl_reply {
	struct supervisor	*sup;
	struct client		*client;	/* NULL once the peer left */
	uint32_t		 id;
	int			 status;
	struct body		*body;
	TAILQ_ENTRY(ctl_reply)	 entry;
};

void	 control_call(struct client *, struct proto_msg *);
struct ctl_call *control_call_new(struct client *, struct proto_msg *,
	    const char *);
/* Send the final reply (if the peer is still there), free the call. */
void	 control_call_done(struct ctl_call *, int, struct body *);
/*
 * The reply to a call that may have changed what the journal records:
 * sent once the journal on disk says so, so that what an operator was
 * told survives a supervisor killed right after (persist_after).
 */
void	 control_reply(struct client *, uint32_t, int, struct body *);
/* An evict_progress_cb that sends progress on the call's id. */
void	 control_progress_cb(struct model *, const char *, int64_t,
	    const char *, void *);
void	 control_client_gone(struct client *);
/* The reply body of sleep, wake, checkpoint and restore: {key: text,
 * model, process_state, elapsed_ms, escalated, reason, log, phases} from
 * an operation's report. */
struct body *control_op_body(struct model *, const char *key,
	    const char *text, const struct evict_report *);
void	 control_call_free(struct ctl_call *);

#endif
