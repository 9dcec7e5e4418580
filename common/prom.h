/*
 * prom.h -- what the supervisor's and the proxy's Prometheus text share.
 */
#ifndef LLMUX_PROM_H
#define LLMUX_PROM_H

#include <stddef.h>

/* A label value with \, " and newline escaped, into buf (truncated). */
const char	*prom_label(const char *, char *buf, size_t len);

#endif
