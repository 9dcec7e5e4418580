/*
 * faults.c -- the table of injectable failures: names, counts and the
 * "NAME[:COUNT[:ARG]]" spelling shared by --fake-fault and POST
 * /fake/faults.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "fakevllm.h"
#include "xmalloc.h"

static const struct {
	const char	*name;
	int32_t		 arg;	/* default argument */
} faults_table[FV_FAULT_MAX] = {
	[FV_FAULT_FAIL_SLEEP] = { "fail_sleep", 0 },
	[FV_FAULT_FAIL_WAKE] = { "fail_wake", 0 },
	[FV_FAULT_HANG_SLEEP] = { "hang_sleep", 0 },
	[FV_FAULT_HANG_WAKE] = { "hang_wake", 0 },
	[FV_FAULT_FAIL_RELOAD] = { "fail_reload", 0 },
	[FV_FAULT_CRASH_STREAM] = { "crash_stream", 1 },
	[FV_FAULT_STALL_STREAM] = { "stall_stream", 1 },
	[FV_FAULT_HEALTH_500] = { "health_500", 0 },
	[FV_FAULT_EXIT_STARTUP] = { "exit_startup", 1 },
};

const char *
fv_faults_name(int f)
{
	if (f < 0 || f >= FV_FAULT_MAX)
		return ("unknown");
	return (faults_table[f].name);
}

int
fv_faults_lookup(const char *name)
{
	int	f;

	for (f = 0; f < FV_FAULT_MAX; f++)
		if (strcmp(faults_table[f].name, name) == 0)
			return (f);
	return (-1);
}

int
fv_faults_default_arg(int f)
{
	if (f < 0 || f >= FV_FAULT_MAX)
		return (0);
	return (faults_table[f].arg);
}

void
fv_faults_set(struct fv_faults *fs, int f, int32_t count, int32_t arg)
{
	if (f < 0 || f >= FV_FAULT_MAX)
		return;
	fs->count[f] = count < -1 ? -1 : count;
	fs->arg[f] = arg;
}

static int
faults_int(const char *s, long min, long max, int32_t *out)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return (-1);
	*out = (int32_t)v;
	return (0);
}

/* Parse "NAME[:COUNT[:ARG]]"; COUNT defaults to 1, -1 means always. */
int
fv_faults_parse_spec(struct fv_faults *fs, const char *spec, char **cause)
{
	char	*copy, *name, *count, *arg;
	int32_t	 n = 1, a;
	int	 f, rc = -1;

	copy = xstrdup(spec);
	name = copy;
	if ((count = strchr(name, ':')) != NULL)
		*count++ = '\0';
	arg = NULL;
	if (count != NULL && (arg = strchr(count, ':')) != NULL)
		*arg++ = '\0';
	if ((f = fv_faults_lookup(name)) == -1) {
		xasprintf(cause, "unknown fault '%s'", name);
		goto out;
	}
	a = faults_table[f].arg;
	if (count != NULL && faults_int(count, -1, 1000000, &n) != 0) {
		xasprintf(cause, "fault %s: invalid count '%s'", name, count);
		goto out;
	}
	if (arg != NULL && faults_int(arg, 0, 1000000, &a) != 0) {
		xasprintf(cause, "fault %s: invalid argument '%s'", name, arg);
		goto out;
	}
	fv_faults_set(fs, f, n, a);
	rc = 0;
out:
	free(copy);
	return (rc);
}

/* Does fault f fire now? Consumes one occurrence; *arg gets its argument. */
int
fv_faults_take(struct fv_faults *fs, int f, int32_t *arg)
{
	if (f < 0 || f >= FV_FAULT_MAX || fs->count[f] == 0)
		return (0);
	if (fs->count[f] > 0)
		fs->count[f]--;
	if (arg != NULL)
		*arg = fs->arg[f];
	return (1);
}

/* {"fail_sleep":{"count":1,"arg":0},...} with the armed faults only. */
void
fv_faults_json(struct evbuffer *b, const struct fv_faults *fs)
{
	int	f, first = 1;

	evbuffer_add(b, "{", 1);
	for (f = 0; f < FV_FAULT_MAX; f++) {
		if (fs->count[f] == 0)
			continue;
		evbuffer_add_printf(b, "%s\"%s\":{\"count\":%d,\"arg\":%d}",
		    first ? "" : ",", faults_table[f].name,
		    (int)fs->count[f], (int)fs->arg[f]);
		first = 0;
	}
	evbuffer_add(b, "}", 1);
}
