/*
 * fv_evhtp.h -- include libevhtp's header, whose evhtp_hook typedef has
 * no prototype, without tripping -Wstrict-prototypes.
 */
#ifndef LLMUX_FV_EVHTP_H
#define LLMUX_FV_EVHTP_H

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <evhtp.h>
#pragma GCC diagnostic pop

#endif
