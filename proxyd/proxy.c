/*
 * proxy.c -- the state every file of llmux-proxyd shares, declared in
 * proxy.h: the event loop and whether the proxy is exiting (set by
 * main.c), the config the supervisor pushed and the models it names
 * (kept by registry.c). It is defined here, below every file that reads
 * it, so that reading it ties no file to main.c.
 */
#include "proxy.h"

struct event_base	*proxy_base;
struct pconf		 proxy_conf;
struct pmodels		 proxy_models = TAILQ_HEAD_INITIALIZER(proxy_models);
bool			 proxy_exiting;
