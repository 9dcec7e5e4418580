/*
 * persist.h -- supervisord/persist/, the map of what the supervisor keeps
 * on disk: the journal's format (journal.c), keeping it current from the
 * loop with a writer thread (persist.c), and re-adopting the model
 * processes it records after a restart (adopt.c).
 */
#ifndef LLMUX_PERSIST_H
#define LLMUX_PERSIST_H

#include "supervisord/core.h"

/* ---- journal.c: what the supervisor owns, on disk ---------------------- */

#define JOURNAL_MAX_BYTES	(1u << 20)
#define JOURNAL_MAX_LINE	8192
#define JOURNAL_VERSION		1

struct journal_entry {
	char		*name;
	pid_t		 pid;		/* 0: no process */
	uint64_t	 start_time;
	enum model_pstate pstate;
	bool		 has_sleeping;
	struct eviction	 sleeping;
	bool		 has_override;
	struct eviction	 override;
	uint64_t	 generation;
	uint16_t	 port;
	unsigned	 tp;
	char		*busy;		/* an operation was running: its kind */
	char		*cgroup;
	char		*images;
	char		*reason;
	char		*store_url;	/* last checkpoint in the object store */
	char		*store_error;	/* its last failed transfer */
};

struct journal {
	bool			 manual;
	char			*pinned;
	char			*active;
	struct journal_entry	*v;
	size_t			 n;
};

int	journal_encode(const struct journal *, char **, size_t *);
int	journal_decode(const char *, size_t, struct journal *, char *err,
	    size_t errlen);
void	journal_free(struct journal *);
/*
 * Write atomically: a temp file, then rename. durable: fsync the file
 * before and the directory after, so the write survives a crash of the
 * machine, not only of the supervisor.
 */
int	journal_write_file(const char *dir, const struct journal *,
	    bool durable, char *err, size_t errlen);
int	journal_write_buf(const char *dir, const char *, size_t, bool durable,
	    char *err, size_t errlen);
/* 1: read; 0: no journal; -1: unreadable (err says why). */
int	journal_read_file(const char *dir, struct journal *, char *err,
	    size_t errlen);
char	*journal_path(const char *dir);

/* ---- persist.c: keeping the journal current ---------------------------- */

/* The journal of the live models. */
void	persist_snapshot(struct supervisor *, struct journal *);
/* Write soon (coalesced within one loop pass, by the writer thread). */
void	persist_schedule(struct supervisor *);
/* Write now, from the loop, durably (fsync); the writer thread ends. */
void	persist_flush(struct supervisor *);
/*
 * Run fn(arg) once the journal on disk says what the supervisor knows
 * now: at once when it does, else after the writer's next write (a
 * failed one too: nothing waits for ever). At exit, pending ones run
 * when the writer stops.
 */
void	persist_after(struct supervisor *, void (*)(void *), void *);
void	persist_free(struct supervisor *);

/* ---- adopt.c: re-adoption after a restart ------------------------------ */

/*
 * The journal's models, then, for each model still without a process, one
 * of llmux's found listening on its port (its cgroup, or its command).
 */
void	adopt_from_journal(struct supervisor *);
/* Is this /proc/PID/cmdline text the model's command (spawn_argv)? */
bool	adopt_is_model_command(const struct config *,
	    const struct model_config *, const char *, size_t);

#endif
