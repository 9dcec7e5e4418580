/*
 * model_path.c -- where a model's files go on disk: its name made safe as
 * one path component (for its log, its cgroup, its images) and its
 * checkpoint images directory. Pure string work on the config.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"
#include "supervisord/base/base.h"

/*
 * Model names come from the config and may hold '/', as HF names do. In a
 * file name every byte but [A-Za-z0-9_-] and a non-leading '.' becomes
 * %XX, so two names never map to one file and none escapes the directory.
 */
char *
model_path_name(const char *name)
{
	static const char	 hex[] = "0123456789ABCDEF";
	size_t			 len = strlen(name), o = 0;
	char			*out;

	out = xmalloc(len * 3 + 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char	c = (unsigned char)name[i];

		if (isalnum(c) || c == '_' || c == '-' || (c == '.' && i > 0))
			out[o++] = (char)c;
		else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return (out);
}

/* images_dir/NAME/images, NAME as model_path_name makes it. */
char *
model_path_images(const struct config *conf, const char *model)
{
	const char	*base = conf->checkpoint.images_dir != NULL ?
			    conf->checkpoint.images_dir :
			    "/tmp/llmux-checkpoints";
	char		*name, *dir;

	name = model_path_name(model);
	xasprintf(&dir, "%s/%s/images", base, name);
	free(name);
	return (dir);
}
