/*
 * fuzz_config.c -- libFuzzer target for the config loader: any bytes go
 * through config_load_buffer (both syntaxes, the binder, the checks), the
 * diagnostics are printed, and a loaded config is looked up and freed.
 */
#include <stdint.h>
#include <stdio.h>

#include "config.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE		*devnull;
	struct config_diags	 d;
	struct config		*cfg;

	if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL)
		return (0);
	cfg = config_load_buffer("fuzz", (const char *)data, size,
	    CONFIG_CHECK, &d);
	config_diags_print(&d, "fuzz", devnull);
	if (cfg != NULL) {
		for (size_t i = 0; i < cfg->n_models; i++) {
			config_resolve_model(cfg, cfg->models[i].name);
			config_model_eviction(cfg, &cfg->models[i]);
			config_model_startup_timeout(cfg, &cfg->models[i]);
		}
	}
	config_free(cfg);
	config_diags_free(&d);
	return (0);
}
