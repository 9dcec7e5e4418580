/*
 * usage.h -- the token counts of a model's answer, read from the `usage`
 * object an OpenAI answer ends with (see usage.c).
 */
#ifndef LLMUX_PROXY_USAGE_H
#define LLMUX_PROXY_USAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The last bytes of an answer kept: usage and what follows it fit. */
#define USAGE_WINDOW	2048

/* The tail of one answer's body, as it is relayed. */
struct usage_scan {
	uint8_t		 tail[USAGE_WINDOW];	/* a ring */
	uint64_t	 fed;			/* bytes seen in all */
};

struct usage_counts {
	uint64_t	 prompt_tokens;
	uint64_t	 completion_tokens;
};

/* More of the body: only its last USAGE_WINDOW bytes are kept. */
void	usage_feed(struct usage_scan *, const void *, size_t);
/* The body is over: the counts of the last usage object in its tail. */
bool	usage_result(const struct usage_scan *, struct usage_counts *);
/*
 * The counts of the last `"usage": {...}` in buf (JSON or an SSE stream of
 * JSON events): true when one is found whole with either count.
 */
bool	usage_parse(const uint8_t *buf, size_t len, struct usage_counts *);

#endif
