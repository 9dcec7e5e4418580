/*
 * model_path.c -- where a model's files go on disk: its name made safe as
 * one path component (for its log, its cgroup, its images) and its
 * checkpoint images directory (images_dir, by default under the state
 * directory). Pure string work on the config.
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

/* images_dir, else under the state directory (root's, 0700). */
char *
model_path_images_dir(const struct config *conf)
{
	char	*dir;

	if (conf->checkpoint.images_dir != NULL)
		return (xstrdup(conf->checkpoint.images_dir));
	xasprintf(&dir, "%s/checkpoints", conf->state_dir != NULL ?
	    conf->state_dir : "/var/lib/llmux");
	return (dir);
}

/* images_dir/NAME/images, NAME as model_path_name makes it. */
char *
model_path_images(const struct config *conf, const char *model)
{
	char	*base, *name, *dir;

	base = model_path_images_dir(conf);
	name = model_path_name(model);
	xasprintf(&dir, "%s/%s/images", base, name);
	free(name);
	free(base);
	return (dir);
}

void
model_path_locate(const struct config *conf, const char *dir,
    struct images_loc *loc)
{
	char		*base = model_path_images_dir(conf), *copy;
	size_t		 blen = strlen(base), len;
	const char	*rest, *slash;

	memset(loc, 0, sizeof(*loc));
	rest = slash = NULL;
	if (strncmp(dir, base, blen) == 0 && dir[blen] == '/') {
		rest = dir + blen + 1;
		slash = strchr(rest, '/');
	}
	if (slash != NULL && slash != rest && strcmp(slash, "/images") == 0) {
		loc->top = base;
		loc->below = xstrndup(rest, (size_t)(slash - rest));
		loc->name = xstrdup("images");
		xasprintf(&loc->parent, "%s/%s", loc->top, loc->below);
	} else {
		free(base);
		copy = xstrdup(dir);
		len = strlen(copy);
		while (len > 1 && copy[len - 1] == '/')
			copy[--len] = '\0';
		slash = strrchr(copy, '/');
		if (slash == NULL || slash[1] == '\0') {
			/* Not a directory below another: refused later. */
			loc->top = xstrdup(copy);
			loc->name = xstrdup(".");
		} else {
			loc->top = slash == copy ? xstrdup("/") :
			    xstrndup(copy, (size_t)(slash - copy));
			loc->name = xstrdup(slash + 1);
		}
		loc->parent = xstrdup(loc->top);
		free(copy);
	}
	xasprintf(&loc->path, "%s%s%s", loc->parent,
	    strcmp(loc->parent, "/") == 0 ? "" : "/", loc->name);
}

void
model_path_loc_free(struct images_loc *loc)
{
	free(loc->top);
	free(loc->below);
	free(loc->name);
	free(loc->parent);
	free(loc->path);
	memset(loc, 0, sizeof(*loc));
}
