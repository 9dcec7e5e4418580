/*
 * gpu_place.c -- where a CUDA-suspended model is restored. At home when
 * each GPU it held memory on has that much free again; otherwise, when
 * migration is allowed, each GPU without room is replaced by another GPU
 * of the same kind (the same NVML name: the driver restores only onto the
 * same chip) that is none of the model's own and has the room, so the
 * driver's UUID remapping can move it there. Pure: it reads a snapshot.
 */
#include <stdio.h>
#include <string.h>

#include "supervisord/gpu/gpu.h"

#define GIB(b)	((double)(b) / (1024.0 * 1024.0 * 1024.0))

/* Is snapshot GPU i one of the model's own? */
static bool
gpu_place_home(const struct gpu_need *need, size_t n, const char *uuid)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(need[i].uuid, uuid) == 0)
			return (true);
	return (false);
}

enum gpu_place_result
gpu_place(const struct gpu_need *need, size_t n,
    const struct gpu_snapshot *s, bool allow, int *map, char *why,
    size_t whylen)
{
	const struct gpu_info	*g;
	bool			 used[GPU_MAX] = { false };
	size_t			 lacking = 0, i, j;
	int			 home[GPU_MAX];

	snprintf(why, whylen, "its GPUs have room");
	for (i = 0; i < n && i < GPU_MAX; i++) {
		home[i] = -1;
		map[i] = -1;
		if ((g = nvml_snapshot_find(s, need[i].uuid)) != NULL) {
			home[i] = (int)(g - s->v);
			used[home[i]] = true;
		}
		if (g == NULL || g->free < need[i].bytes)
			lacking++;
	}
	for (i = 0; i < n && i < GPU_MAX; i++)
		map[i] = home[i];
	if (lacking == 0)
		return (GPU_PLACE_HOME);
	for (i = 0; i < n && i < GPU_MAX; i++) {
		g = home[i] >= 0 ? &s->v[home[i]] : NULL;
		if (g != NULL && g->free >= need[i].bytes)
			continue;
		if (!allow) {
			snprintf(why, whylen, "GPU %u has %.1f GiB free, %.1f "
			    "GiB are needed (migration is off: "
			    "gpu.allow_migration)", need[i].index,
			    g != NULL ? GIB(g->free) : 0.0, GIB(need[i].bytes));
			return (GPU_PLACE_NO_ROOM);
		}
		for (j = 0; j < s->n; j++) {
			if (used[j] || strcmp(s->v[j].name, need[i].name) != 0 ||
			    gpu_place_home(need, n, s->v[j].uuid) ||
			    s->v[j].free < need[i].bytes)
				continue;
			used[j] = true;
			map[i] = (int)j;
			break;
		}
		if (j == s->n) {
			for (size_t k = 0; k < n && k < GPU_MAX; k++)
				map[k] = home[k];
			snprintf(why, whylen, "GPU %u has %.1f GiB free and no "
			    "other %s has %.1f GiB free", need[i].index,
			    g != NULL ? GIB(g->free) : 0.0, need[i].name,
			    GIB(need[i].bytes));
			return (GPU_PLACE_NO_ROOM);
		}
	}
	why[0] = '\0';
	for (i = 0; i < n && i < GPU_MAX; i++) {
		if (map[i] == home[i])
			continue;
		snprintf(why + strlen(why), whylen - strlen(why), "%sGPU %u -> "
		    "GPU %u", why[0] != '\0' ? ", " : "", need[i].index,
		    s->v[map[i]].index);
	}
	return (GPU_PLACE_MOVED);
}
