/*
 * worker.c -- blocking work off the event loop: CUDA driver calls, NVML
 * queries and checksums of checkpoint images each run on a thread of
 * their own, and their completion comes back to the loop through a pipe
 * (the job's pointer is written to it), where the job's done function
 * runs. The loop never waits for a thread. At exit, running jobs are
 * waited for (bounded) and their done functions told they are cancelled,
 * so they free what they own and call nobody back.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"

#define WORKER_EXIT_WAIT_MS	10000

struct worker_job {
	worker_fn	 work;
	worker_done_fn	 done;
	void		*arg;
	int		 fd;		/* the pipe's write end */
};

static atomic_int	worker_running;

static void *
worker_thread(void *arg)
{
	struct worker_job	*job = arg;
	ssize_t			 n;

	job->work(job->arg);
	/* A pointer is less than PIPE_BUF: the write is atomic. */
	do
		n = write(job->fd, &job, sizeof(job));
	while (n == -1 && errno == EINTR);
	if (n != (ssize_t)sizeof(job))
		fatal("worker: cannot post a completion");
	atomic_fetch_sub(&worker_running, 1);
	return (NULL);
}

static void
worker_read_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct worker_job	*job;
	ssize_t			 n;

	for (;;) {
		n = read(fd, &job, sizeof(job));
		if (n == -1 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(job))
			return;
		job->done(job->arg, false);
		free(job);
	}
}

void
worker_init(struct supervisor *sup)
{
	int	fds[2];

	if (pipe2(fds, O_CLOEXEC) != 0)
		fatal("worker: pipe");
	/* The read end only: a worker may block on a full pipe, never us. */
	if (fcntl(fds[0], F_SETFL, O_NONBLOCK) == -1)
		fatal("worker: fcntl");
	sup->worker_fds[0] = fds[0];
	sup->worker_fds[1] = fds[1];
	sup->ev_worker = event_new(sup->base, fds[0], EV_READ | EV_PERSIST,
	    worker_read_cb, sup);
	event_add(sup->ev_worker, NULL);
}

void
worker_run(struct supervisor *sup, worker_fn work, worker_done_fn done,
    void *arg)
{
	struct worker_job	*job;
	pthread_attr_t		 attr;
	pthread_t		 t;
	int			 rc;

	job = xcalloc(1, sizeof(*job));
	job->work = work;
	job->done = done;
	job->arg = arg;
	job->fd = sup->worker_fds[1];
	atomic_fetch_add(&worker_running, 1);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if ((rc = pthread_create(&t, &attr, worker_thread, job)) != 0) {
		errno = rc;
		fatal("worker: pthread_create");
	}
	pthread_attr_destroy(&attr);
}

/* At exit: wait for the threads (bounded), cancel what they finished. */
void
worker_shutdown(struct supervisor *sup)
{
	struct timespec		 ts = { 0, 10 * 1000 * 1000 };
	struct worker_job	*job;
	int			 waited = 0;

	if (sup->ev_worker == NULL)
		return;
	while (atomic_load(&worker_running) > 0 &&
	    waited < WORKER_EXIT_WAIT_MS) {
		nanosleep(&ts, NULL);
		waited += 10;
	}
	if (atomic_load(&worker_running) > 0)
		log_warnx("exiting with work still running on threads "
		    "jobs=%d", atomic_load(&worker_running));
	while (read(sup->worker_fds[0], &job, sizeof(job)) ==
	    (ssize_t)sizeof(job)) {
		job->done(job->arg, true);
		free(job);
	}
	event_free(sup->ev_worker);
	sup->ev_worker = NULL;
	if (atomic_load(&worker_running) == 0) {
		close(sup->worker_fds[0]);
		close(sup->worker_fds[1]);
	}
}

int
worker_count(void)
{
	return (atomic_load(&worker_running));
}
