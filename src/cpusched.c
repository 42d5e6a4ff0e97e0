#include "autoconf.h"

#include "cpusched.h"

#include <errno.h>
#include <linux/sched.h> /* not <sched.h>: its struct sched_param clashes */
#include <linux/sched/types.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

/* glibc 2.36 has no wrappers for these. */
static int get_attr(struct sched_attr *attr)
{
	return (int)syscall(SYS_sched_getattr, 0, attr, (unsigned)sizeof(*attr), 0u);
}

static int set_attr(struct sched_attr *attr)
{
	return (int)syscall(SYS_sched_setattr, 0, attr, 0u);
}

/* Applies the mode S is in; on failure S is no longer managed. */
static void apply(struct cpusched *s)
{
	struct sched_attr attr = {
		.size = sizeof(attr),
		.sched_policy = s->batch ? SCHED_BATCH : SCHED_NORMAL,
		.sched_nice = s->nice,
		/* 0 gives the batch mode the default slice back. Kernels before
		 * 6.12 ignore the slice: the light mode is then the plain
		 * default policy. */
		.sched_runtime = s->batch ? 0 : CPUSCHED_SLICE_NS,
	};
	if (set_attr(&attr) < 0) {
		log_errno(LOG_WARNING, errno,
			  "worker %d: cannot choose its scheduling (sched_setattr), it keeps the default",
			  s->worker);
		s->managed = false;
	}
}

void cpusched_start(struct cpusched *s, int worker)
{
	*s = (struct cpusched){ .worker = worker };
	struct sched_attr attr = { .size = sizeof(attr) };
	if (get_attr(&attr) < 0) {
		log_errno(LOG_WARNING, errno, "worker %d: sched_getattr", worker);
		return;
	}
	if (attr.sched_policy != SCHED_NORMAL) {
		log_debug("worker %d: scheduling policy %u set from outside, left as it is", worker,
			  attr.sched_policy);
		return;
	}
	s->managed = true;
	s->nice = attr.sched_nice;
	apply(s);
}

void cpusched_iteration(struct cpusched *s, unsigned lines)
{
	if (!s->managed)
		return;
	bool busy = lines >= CPUSCHED_BUSY_LINES;
	if (busy == s->batch) {
		s->streak = 0;
		return;
	}
	if (++s->streak < CPUSCHED_SWITCH_AFTER)
		return;
	s->streak = 0;
	s->batch = busy;
	apply(s);
}
