/* cpusched: a worker thread's own scheduling, switched by how busy it is.
 * Each case runs in a thread of its own, since the attributes are per
 * thread, and reads back what the kernel really has. */
#include "autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cpusched.h"
#include "unit.h"

/* The kernel's struct sched_attr (its first version, which is all this
 * reads), here because <linux/sched/types.h> cannot be included next to
 * <pthread.h>. */
struct sched_attr {
	uint32_t size;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime;
	uint64_t sched_deadline;
	uint64_t sched_period;
};

static bool kernel_has_slices; /* sched_attr.sched_runtime for fair tasks: Linux 6.12 */

static struct sched_attr get_attr(void)
{
	struct sched_attr attr = { .size = sizeof(attr) };
	if (syscall(SYS_sched_getattr, 0, &attr, (unsigned)sizeof(attr), 0u) < 0) {
		fprintf(stderr, "sched_getattr: %s\n", strerror(errno));
		exit(1);
	}
	return attr;
}

static void set_attr(unsigned policy, int nice)
{
	struct sched_attr attr = { .size = sizeof(attr), .sched_policy = policy, .sched_nice = nice };
	if (syscall(SYS_sched_setattr, 0, &attr, 0u) < 0) {
		fprintf(stderr, "sched_setattr: %s\n", strerror(errno));
		exit(1);
	}
}

static void iterations(struct cpusched *s, int count, unsigned lines)
{
	for (int i = 0; i < count; i++)
		cpusched_iteration(s, lines);
}

/* A thread under the default policy is managed: the light mode at start,
 * batch after CPUSCHED_SWITCH_AFTER busy iterations in a row, and back;
 * its nice value is kept throughout. */
static void *managed(void *unused)
{
	(void)unused;
	set_attr(SCHED_OTHER, 3); /* anyone may raise their own nice value */
	struct cpusched s;
	cpusched_start(&s, 7);
	CHECK(s.managed);
	struct sched_attr a = get_attr();
	CHECK_INT(a.sched_policy, SCHED_OTHER);
	CHECK_INT(a.sched_nice, 3);
	if (kernel_has_slices)
		CHECK_INT(a.sched_runtime, CPUSCHED_SLICE_NS);

	/* Busy streaks broken by a light iteration do not switch. */
	iterations(&s, CPUSCHED_SWITCH_AFTER - 1, CPUSCHED_BUSY_LINES);
	iterations(&s, 1, CPUSCHED_BUSY_LINES - 1);
	iterations(&s, CPUSCHED_SWITCH_AFTER - 1, 1000);
	CHECK_INT(get_attr().sched_policy, SCHED_OTHER);
	CHECK(!s.batch);

	iterations(&s, 1, CPUSCHED_BUSY_LINES);
	a = get_attr();
	CHECK(s.batch);
	CHECK_INT(a.sched_policy, SCHED_BATCH);
	CHECK_INT(a.sched_nice, 3);

	/* Staying busy changes nothing; idle ones bring the light mode back. */
	iterations(&s, 100, 50);
	CHECK_INT(get_attr().sched_policy, SCHED_BATCH);
	iterations(&s, CPUSCHED_SWITCH_AFTER - 1, 0);
	CHECK_INT(get_attr().sched_policy, SCHED_BATCH);
	iterations(&s, 1, 0);
	a = get_attr();
	CHECK(!s.batch);
	CHECK_INT(a.sched_policy, SCHED_OTHER);
	CHECK_INT(a.sched_nice, 3);
	if (kernel_has_slices)
		CHECK_INT(a.sched_runtime, CPUSCHED_SLICE_NS);
	return NULL;
}

/* A policy chosen from outside (CPUSchedulingPolicy=, chrt) is left alone. */
static void *chosen_outside(void *arg)
{
	unsigned policy = (unsigned)(uintptr_t)arg;
	set_attr(policy, 0);
	struct cpusched s;
	cpusched_start(&s, 0);
	CHECK(!s.managed);
	iterations(&s, 3 * CPUSCHED_SWITCH_AFTER, 1000);
	CHECK_INT(get_attr().sched_policy, policy);
	iterations(&s, 3 * CPUSCHED_SWITCH_AFTER, 0);
	CHECK_INT(get_attr().sched_policy, policy);
	return NULL;
}

static void in_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	if (pthread_create(&t, NULL, fn, arg) != 0 || pthread_join(t, NULL) != 0) {
		fprintf(stderr, "pthread_create/join failed\n");
		exit(1);
	}
}

int main(void)
{
	struct utsname u;
	int major = 0, minor = 0;
	if (uname(&u) == 0 && sscanf(u.release, "%d.%d", &major, &minor) == 2)
		kernel_has_slices = major > 6 || (major == 6 && minor >= 12);
	printf("kernel %s: %s\n", u.release,
	       kernel_has_slices ? "time slices checked" : "no custom time slices, not checked");

	in_thread(managed, NULL);
	in_thread(chosen_outside, (void *)(uintptr_t)SCHED_BATCH);
	in_thread(chosen_outside, (void *)(uintptr_t)SCHED_IDLE);
	return unit_finish("test_cpusched");
}
