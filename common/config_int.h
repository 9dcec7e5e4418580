/*
 * config_int.h -- the inside of the config loader, shared by its files:
 *
 *   config_keys.c   the one table of keys (type, bounds, default, field)
 *   config_bind.c   the binder: document tree -> structs, by the table
 *   config_value.c  the value types: one parser per type of the table
 *   config_access.c the admin token file; the API port without api_keys
 *   config_check.c  rules across keys, and facts about this machine
 *   config.c        the public API: load, free, diagnostics, lookups
 */
#ifndef LLMUX_CONFIG_INT_H
#define LLMUX_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfgtree.h"
#include "config.h"

/* Where a key lives; each section is one C struct. */
enum config_section {
	CS_TOP,			/* struct config */
	CS_MODEL,		/* struct model_config */
	CS_POLICY,		/* struct policy_config */
	CS_CHECKPOINT,		/* struct checkpoint_config */
	CS_OBJECT_STORE,	/* struct object_store_config */
	CS_PROXY,		/* struct proxy_config */
	CS_GPU,			/* struct gpu_config */
	CS__COUNT
};

enum config_type {
	CT_STRING,	/* char * */
	CT_PORT,	/* uint16_t, within min..max */
	CT_U32,		/* uint32_t, within min..max */
	CT_BYTES,	/* uint64_t: an integer or "64MiB", within min..max */
	CT_BYTES32,	/* the same in a uint32_t */
	CT_DOUBLE,	/* double, within dmin..dmax */
	CT_BOOL,	/* bool */
	CT_EVICTION,	/* struct eviction: {weights, process}, 1..5, "w+p" */
	CT_LEVEL,	/* struct eviction from a sleep level 1..5 */
	CT_POLICY,	/* enum policy_type */
	CT_STRLIST,	/* char **, NULL-terminated; count at aux_off */
	CT_ENV,		/* map of strings -> char ** "K=V"; count at aux_off */
	CT_GPUS,	/* int *; count at aux_off */
	CT_SECTION,	/* a nested struct, section sub */
	CT_MODELS,	/* the models map */
};

#define CK_REQUIRED	0x01	/* error when missing */
#define CK_NULLABLE	0x02	/* null means unset (NULL, 0, section off) */
#define CK_EMPTY_OK	0x04	/* strings (or list items) may be empty */
#define CK_MIN_EXCL	0x08	/* doubles: the minimum is excluded */
#define CK_SECRET	0x10	/* strings: never repeated in a message */


struct config_key {
	const char		*name;
	enum config_section	 section;
	enum config_type	 type;
	unsigned		 flags;
	/* Integers: bounds. Strings: max bytes. Lists: max entries. */
	uint64_t		 min, max;
	double			 dmin, dmax;
	const char		*def;	/* the default, as written in a file */
	size_t			 off;	/* the field in its section's struct */
	size_t			 aux_off; /* lists: the size_t count */
	size_t			 set_off; /* 1 + offset of a bool made true
					     when the key is given; 0: none */
	enum config_section	 sub;	/* CT_SECTION: the nested section */
	/* Strings and list items: an error message, or NULL when valid. */
	const char		*(*check)(const char *);
	const char		*doc;	/* its meaning, one line */
};

extern const struct config_key	config_keys[];
extern const size_t		config_nkeys;

const struct config_key *config_keys_find(enum config_section, const char *);
/* "policy", "checkpoint.object_store", "a model", "the top level". */
const char	*config_keys_section_name(enum config_section);
/* The key closest to name in its section by edit distance, or NULL. */
const char	*config_keys_suggest(enum config_section, const char *);
size_t		 config_keys_distance(const char *, const char *);
/* Check a model name or alias: NULL when valid, else why not. */
const char	*config_keys_check_name(const char *);

/* Where a field's value was written, found by the field's address. */
struct config_mark {
	const void	*field;
	unsigned	 line, col;
};

struct config_loader {
	const char		*name;
	enum config_mode	 mode;
	struct config		*cfg;
	struct config_diags	*diags;
	struct config_mark	*marks;
	size_t			 nmarks;
	size_t			 capmarks;
	bool			 sorted;
	const struct cfgnode	*root;
	struct config_pos	 models_pos;
	bool			 defaults;	/* binding the defaults */
};

/* Record a diagnostic; machine: it depends on this host, not the file. */
void		 config_diag(struct config_loader *, bool error, bool machine,
		    unsigned, unsigned, const char *, ...)
		    __attribute__((format(printf, 6, 7)));
void		 config_mark(struct config_loader *, const void *,
		    const struct cfgnode *);
/* Where a field was written; fallback when it was not. */
struct config_pos config_marked(struct config_loader *, const void *,
		     struct config_pos);
/* A printable, quoted, bounded copy of untrusted text, into buf. */
const char	*config_printable(const char *, size_t, char *, size_t);

/* config_value.c */
#define CONFIG_PATH_MAX	1024	/* a key path: "models.NAME.extra_args[3]" */
#define CONFIG_TEXT_MAX	320	/* config_printable's output */
void		 config_value_path(char *, size_t, const char *,
		    const struct cfgnode *);
void		 config_value_expected(struct config_loader *,
		    const struct cfgnode *, const char *, const char *);
int		 config_value_uint(struct config_loader *,
		    const struct config_key *, const struct cfgnode *,
		    const char *, uint64_t *);
int		 config_value_bytes(struct config_loader *,
		    const struct config_key *, const struct cfgnode *,
		    const char *, uint64_t *);
int		 config_value_double(struct config_loader *,
		    const struct config_key *, const struct cfgnode *,
		    const char *, double *);
int		 config_value_text(struct config_loader *,
		    const struct config_key *, const struct cfgnode *,
		    const char *, char **);
int		 config_value_bool(struct config_loader *,
		    const struct cfgnode *, const char *, bool *);
int		 config_value_policy(struct config_loader *,
		    const struct cfgnode *, const char *, enum policy_type *);
int		 config_value_level(struct config_loader *,
		    const struct cfgnode *, const char *, struct eviction *);
int		 config_value_eviction(struct config_loader *,
		    const struct cfgnode *, const char *, struct eviction *);

/* config_bind.c */
void		 config_bind_defaults(struct config_loader *,
		    enum config_section, void *);
void		 config_bind_root(struct config_loader *,
		    const struct cfgnode *);
void		 config_bind_free(enum config_section, void *);

/* config_access.c: the admin token file, the API port without keys. */
void		 config_access(struct config_loader *);
bool		 config_access_loopback(const char *);

/* config_check.c */
void		 config_check(struct config_loader *);
/* tensor_parallel_size and gpu_memory_utilization from extra_args. */
int		 config_check_args(struct config_loader *,
		    struct model_config *);
/* Is cmd an executable path, or found on PATH? */
bool		 config_check_command(const char *);

#endif
