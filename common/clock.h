/*
 * clock.h -- the one notion of time in llmux: monotonic milliseconds.
 * Policy and switcher code never read a clock; callers pass these values.
 */
#ifndef LLMUX_CLOCK_H
#define LLMUX_CLOCK_H

#include <stdint.h>

/* Milliseconds since an arbitrary point, never going back. */
int64_t	clock_ms(void);
/* Microseconds, for measuring short phases. */
int64_t	clock_us(void);
/* Wall clock, seconds since the epoch, with milliseconds. */
double	clock_wall(void);

#endif
