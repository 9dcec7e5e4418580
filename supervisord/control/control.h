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

/* ---- metrics.c --------------------------------------------------------- */

char	*metrics_text(struct supervisor *);

/* ---- reload.c ---------------------------------------------------------- */

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

/* ---- logfollow.c: the logs call ---------------------------------------- */

struct logfollow;
void	 logfollow_call(struct client *, uint32_t id, struct model *,
	    uint32_t lines, bool follow);
void	 logfollow_free(struct logfollow *);
void	 logfollow_model_gone(struct supervisor *, struct model *);

/* ---- validate.c: the validate call ------------------------------------- */

#define VALIDATE_REQUEST_TIMEOUT_MS	60000
#define VALIDATE_PROMPT	"llmux validation: name three primary colours."
#define VALIDATE_MAX_POLICIES		16

/* The call: at once if the model is awake, else after the switcher's wake. */
void	 validate_begin(struct client *, struct proto_msg *, struct model *);
#define VALIDATE_TOKENS		24
/*
 * What validate compares: the "text" of a completion's first choice, else
 * the "embedding" (base64) of an embedding reply; NULL if neither.
 */
char	*validate_text(const char *, size_t);

/* ---- checkpoint.c: the checkpoint call --------------------------------- */

/* Start M if need be, warm it up, then sleep it with W+checkpoint. */
void	 checkpoint_call(struct ctl_call *, struct model *,
	    const struct proto_msg *);

/* ---- control.c: the control calls -------------------------------------- */

void	 control_call(struct client *, struct proto_msg *);
/* A call ended (server_ops' call_done): what ran on the engine directly
 * (checkpoint, restore, a validate of an awake model) is told to the
 * switcher. */
void	 control_call_ended(struct ctl_call *);

#endif
