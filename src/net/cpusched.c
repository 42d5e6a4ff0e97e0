#include "autoconf.h"

#include "net/cpusched.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"

#define SCHED_FLAG_RESET_ON_FORK 0x01 /* <linux/sched.h>, which clashes with <sched.h> */

/* glibc 2.36 has no wrappers for these. */
int cpusched_get_attr(struct cpusched_attr *attr)
{
	memset(attr, 0, sizeof(*attr));
	attr->size = sizeof(*attr);
	return syscall(SYS_sched_getattr, 0, attr, (unsigned)sizeof(*attr), 0u) < 0 ? -errno : 0;
}

int cpusched_set_attr(const struct cpusched_attr *attr)
{
	return syscall(SYS_sched_setattr, 0, attr, 0u) < 0 ? -errno : 0;
}

static const char *policy_name(uint32_t policy)
{
	switch (policy) {
	case SCHED_OTHER: return "other";
	case SCHED_BATCH: return "batch";
	case SCHED_IDLE: return "idle";
	case SCHED_FIFO: return "fifo";
	case SCHED_RR: return "rr";
	default: return "another";
	}
}

/* Sets the calling thread's attributes ATTR, as just read, to POLICY and,
 * for the default policy, our slice (0 gives batch the default slice back).
 * Its nice value stays as it is now, which an admin may have changed with
 * renice since start, and so does a reset-on-fork flag (systemd's
 * CPUSchedulingResetOnFork=). Returns 0 or -errno. */
static int set_mode(struct cpusched_attr *attr, uint32_t policy)
{
	attr->sched_policy = policy;
	attr->sched_flags &= SCHED_FLAG_RESET_ON_FORK;
	attr->sched_runtime = policy == SCHED_OTHER ? CPUSCHED_SLICE_NS : 0;
	return cpusched_set_attr(attr);
}

struct trial {
	uint32_t policy; /* the process's, inherited */
	int error;       /* of the first call that failed, or 0 */
	bool slices;     /* the kernel took our slice */
};

/* On a thread of its own, which ends with whatever it set. */
static void *try_calls(void *arg)
{
	struct trial *t = arg;
	struct cpusched_attr attr;
	t->error = -cpusched_get_attr(&attr);
	if (t->error)
		return NULL;
	t->policy = attr.sched_policy;
	if (t->policy != SCHED_OTHER)
		return NULL;
	t->error = -set_mode(&attr, SCHED_OTHER);
	if (!t->error)
		t->error = -cpusched_get_attr(&attr);
	t->slices = !t->error && attr.sched_runtime == CPUSCHED_SLICE_NS;
	return NULL;
}

enum cpusched_plan cpusched_plan(void)
{
	struct trial t = { 0 };
	pthread_t thread;
	int r = pthread_create(&thread, NULL, try_calls, &t);
	if (r == 0)
		r = pthread_join(thread, NULL);
	if (r != 0) {
		log_errno(LOG_WARNING, r, "workers keep the scheduling they inherit: trying sched_setattr");
		return CPUSCHED_AS_SET;
	}
	if (t.error) {
		log_errno(LOG_WARNING, t.error, "workers keep the scheduling they inherit: sched_setattr");
		return CPUSCHED_AS_SET;
	}
	if (t.policy != SCHED_OTHER) {
		log_info("workers keep the scheduling policy set from outside (%s)", policy_name(t.policy));
		return CPUSCHED_AS_SET;
	}
	if (!t.slices) {
		log_info("workers run under SCHED_BATCH: this kernel has no custom time slices");
		return CPUSCHED_BATCH;
	}
	log_info("workers schedule by load: %d us time slices when light, SCHED_BATCH when busy",
		 CPUSCHED_SLICE_NS / 1000);
	return CPUSCHED_BY_LOAD;
}

/* Switches S to the batch mode or back: one read, one write. On failure,
 * or when the policy is no longer the one we set (changed from outside
 * since; a change to the very policy we set goes unnoticed), S stops
 * switching and stays as it is. */
static void switch_mode(struct cpusched *s, bool batch)
{
	uint32_t was = s->batch ? SCHED_BATCH : SCHED_OTHER;
	struct cpusched_attr now;
	int r = cpusched_get_attr(&now);
	if (r == 0 && now.sched_policy != was) {
		log_info("worker %d: scheduling policy changed from outside (%s), left as it is",
			 s->worker, policy_name(now.sched_policy));
		s->managed = false;
		return;
	}
	if (r == 0)
		r = set_mode(&now, batch ? SCHED_BATCH : SCHED_OTHER);
	if (r < 0) {
		log_errno(LOG_WARNING, -r, "worker %d: sched_setattr; it stays under %s", s->worker,
			  policy_name(was));
		s->managed = false;
		return;
	}
	s->batch = batch;
}

void cpusched_start(struct cpusched *s, enum cpusched_plan plan, int worker)
{
	*s = (struct cpusched){ .worker = worker };
	if (plan == CPUSCHED_AS_SET)
		return;
	struct cpusched_attr attr;
	int r = cpusched_get_attr(&attr);
	if (r == 0)
		r = set_mode(&attr, plan == CPUSCHED_BATCH ? SCHED_BATCH : SCHED_OTHER);
	if (r < 0) /* it worked for the trial at start: a limit reached since? */
		log_errno(LOG_WARNING, -r, "worker %d: sched_setattr; it keeps the scheduling it inherits",
			  worker);
	s->managed = r == 0 && plan == CPUSCHED_BY_LOAD;
	s->batch = r == 0 && plan == CPUSCHED_BATCH;
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
	switch_mode(s, busy);
}
