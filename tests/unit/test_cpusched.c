/* cpusched: a worker thread's own scheduling, switched by how busy it is.
 * Each case runs in a thread of its own, since the attributes are per
 * thread, and reads back what the kernel really has. Nice values only go
 * up from the one inherited, so the test runs unprivileged too. */
#include "autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/utsname.h>

#include "net/cpusched.h"
#include "base/log.h"
#include "unit.h"

static bool kernel_has_slices; /* sched_attr.sched_runtime for fair tasks (Linux 6.12) */
static int inherited_nice;

static struct cpusched_attr get_attr(void)
{
	struct cpusched_attr attr;
	int r = cpusched_get_attr(&attr);
	if (r < 0) {
		fprintf(stderr, "sched_getattr: %s\n", strerror(-r));
		exit(1);
	}
	return attr;
}

static void set_attr(uint32_t policy, int nice)
{
	struct cpusched_attr attr = { .size = sizeof(attr), .sched_policy = policy, .sched_nice = nice };
	int r = cpusched_set_attr(&attr);
	if (r < 0) {
		fprintf(stderr, "sched_setattr: %s\n", strerror(-r));
		exit(1);
	}
}

static void iterations(struct cpusched *s, int count, unsigned lines)
{
	for (int i = 0; i < count; i++)
		cpusched_iteration(s, lines);
}

/* An unmanaged thread: neither busy nor light iterations move it off
 * POLICY. */
static void check_stays(struct cpusched *s, uint32_t policy)
{
	CHECK(!s->managed);
	iterations(s, 3 * CPUSCHED_SWITCH_AFTER, 1000);
	CHECK_INT(get_attr().sched_policy, policy);
	iterations(s, 3 * CPUSCHED_SWITCH_AFTER, 0);
	CHECK_INT(get_attr().sched_policy, policy);
}

static int nicer(int by)
{
	return inherited_nice + by > 19 ? 19 : inherited_nice + by;
}

/* Under the default policy: by load on kernels with custom slices, batch
 * throughout on the others. */
static void *plan_default(void *unused)
{
	(void)unused;
	set_attr(SCHED_OTHER, inherited_nice);
	uint64_t slice_before = get_attr().sched_runtime;
	CHECK_INT(cpusched_plan(), kernel_has_slices ? CPUSCHED_BY_LOAD : CPUSCHED_BATCH);
	/* The trial ran on a thread of its own: this one is untouched. */
	CHECK_INT(get_attr().sched_policy, SCHED_OTHER);
	CHECK_INT(get_attr().sched_runtime, slice_before);
	if (kernel_has_slices)
		CHECK(slice_before != CPUSCHED_SLICE_NS);

	struct cpusched s;
	cpusched_start(&s, CPUSCHED_BATCH, 1);
	CHECK_INT(get_attr().sched_policy, SCHED_BATCH);
	check_stays(&s, SCHED_BATCH);
	return NULL;
}

/* A managed thread: the light mode at start, batch after
 * CPUSCHED_SWITCH_AFTER busy iterations in a row, and back; its nice value,
 * even one changed meanwhile, is kept throughout. */
static void *by_load(void *unused)
{
	(void)unused;
	set_attr(SCHED_OTHER, nicer(2));
	struct cpusched s;
	cpusched_start(&s, CPUSCHED_BY_LOAD, 7);
	CHECK(s.managed);
	struct cpusched_attr a = get_attr();
	CHECK_INT(a.sched_policy, SCHED_OTHER);
	CHECK_INT(a.sched_nice, nicer(2));
	if (kernel_has_slices)
		CHECK_INT(a.sched_runtime, CPUSCHED_SLICE_NS);

	/* Busy streaks broken by a light iteration do not switch. */
	iterations(&s, CPUSCHED_SWITCH_AFTER - 1, CPUSCHED_BUSY_LINES);
	iterations(&s, 1, CPUSCHED_BUSY_LINES - 1);
	iterations(&s, CPUSCHED_SWITCH_AFTER - 1, 1000);
	CHECK_INT(get_attr().sched_policy, SCHED_OTHER);
	CHECK(!s.batch);

	struct cpusched_attr renice = get_attr(); /* an admin's renice, as far as the kernel knows */
	renice.sched_nice = nicer(4);
	CHECK_INT(cpusched_set_attr(&renice), 0);
	iterations(&s, 1, CPUSCHED_BUSY_LINES);
	a = get_attr();
	CHECK(s.batch);
	CHECK_INT(a.sched_policy, SCHED_BATCH);
	CHECK_INT(a.sched_nice, nicer(4));
	if (kernel_has_slices)
		CHECK(a.sched_runtime != CPUSCHED_SLICE_NS); /* the default slice back */

	/* Staying busy changes nothing; light iterations bring the light mode back. */
	iterations(&s, 100, 50);
	CHECK_INT(get_attr().sched_policy, SCHED_BATCH);
	iterations(&s, CPUSCHED_SWITCH_AFTER - 1, 0);
	CHECK_INT(get_attr().sched_policy, SCHED_BATCH);
	iterations(&s, 1, 0);
	a = get_attr();
	CHECK(!s.batch);
	CHECK(s.managed);
	CHECK_INT(a.sched_policy, SCHED_OTHER);
	CHECK_INT(a.sched_nice, nicer(4));
	if (kernel_has_slices)
		CHECK_INT(a.sched_runtime, CPUSCHED_SLICE_NS);

	/* A policy changed from outside meanwhile is left as it is. (Only as
	 * root does this reach the check: unprivileged, the kernel refuses
	 * idle -> batch anyway, and the switching stops on that error.) */
	set_attr(SCHED_IDLE, nicer(4));
	iterations(&s, CPUSCHED_SWITCH_AFTER, 1000);
	CHECK_INT(get_attr().sched_policy, SCHED_IDLE);
	check_stays(&s, SCHED_IDLE);
	return NULL;
}

/* A policy chosen from outside before start (CPUSchedulingPolicy=, chrt)
 * is left alone. */
static void *chosen_outside(void *arg)
{
	uint32_t policy = (uint32_t)(uintptr_t)arg;
	set_attr(policy, nicer(1));
	CHECK_INT(cpusched_plan(), CPUSCHED_AS_SET);
	struct cpusched s;
	cpusched_start(&s, CPUSCHED_AS_SET, 0);
	check_stays(&s, policy);
	return NULL;
}

/* Whether the kernel keeps a slice asked for, found with the bare calls
 * rather than with the code under test. */
static void *probe_slices(void *unused)
{
	(void)unused;
	struct cpusched_attr attr = { .size = sizeof(attr), .sched_policy = SCHED_OTHER,
				      .sched_nice = inherited_nice, .sched_runtime = CPUSCHED_SLICE_NS };
	kernel_has_slices = cpusched_set_attr(&attr) == 0 && get_attr().sched_runtime == CPUSCHED_SLICE_NS;
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
	inherited_nice = get_attr().sched_nice;
	in_thread(probe_slices, NULL);
	struct utsname u;
	printf("kernel %s: %s\n", uname(&u) == 0 ? u.release : "?",
	       kernel_has_slices ? "time slices checked" : "no custom time slices, not checked");
	log_set_level(LOG_WARNING); /* what the cases are told is checked, not printed */

	in_thread(plan_default, NULL);
	in_thread(by_load, NULL);
	in_thread(chosen_outside, (void *)(uintptr_t)SCHED_BATCH);
	in_thread(chosen_outside, (void *)(uintptr_t)SCHED_IDLE);
	return unit_finish("test_cpusched");
}
