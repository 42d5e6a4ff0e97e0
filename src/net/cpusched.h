/* How a worker thread asks the kernel to schedule it, by how busy it is.
 *
 * At light load a line's fan-out is a matter of latency: the worker that
 * owns the recipients should get a CPU as soon as it is woken, even from
 * another program running there (a client on the same machine, a backup),
 * so it runs under the default policy with a short time slice: on Linux
 * 6.12 and later (EEVDF) a woken task with a shorter slice than the running
 * one preempts it. Under load that same preemption cuts the workers' loop
 * iterations short, each writing fewer lines per system call, so a worker
 * that keeps handling many lines per loop iteration switches to
 * SCHED_BATCH, whose wake-ups never preempt, and back when it is light
 * again. A kernel without custom slices gets SCHED_BATCH throughout, which
 * measured better than the plain default there. docs/design.md has the
 * measurements.
 *
 * A policy set from outside (CPUSchedulingPolicy=, chrt) is left as it is:
 * one other than the default at start, and one found changed at a switch.
 * (CPUSchedulingPolicy=other is the default, so it is managed.) */
#ifndef CHATD_CPUSCHED_H
#define CHATD_CPUSCHED_H

#include <stdbool.h>
#include <stdint.h>

/* The slice asked for at light load: the kernel's shortest. */
#define CPUSCHED_SLICE_NS 100000
/* Lines (from clients and from other workers) in one loop iteration from
 * which a worker counts as busy. */
#define CPUSCHED_BUSY_LINES 8
/* Loop iterations in a row that must agree before the mode changes. */
#define CPUSCHED_SWITCH_AFTER 8

enum cpusched_plan {
	CPUSCHED_BY_LOAD, /* short slices when light, batch when busy */
	CPUSCHED_BATCH,   /* no custom slices on this kernel: batch throughout */
	CPUSCHED_AS_SET,  /* set from outside, or the kernel refused: left alone */
};

struct cpusched {
	bool managed;    /* switching by load */
	bool batch;      /* in the busy mode */
	unsigned streak; /* iterations in a row that pointed to the other mode */
	int worker;      /* for the log */
};

/* Once, in the main thread before the workers start (it tries the calls on
 * a short-lived thread of its own): what the workers will do, said in the
 * log. */
enum cpusched_plan cpusched_plan(void);

/* On the worker's own thread, before its loop. */
void cpusched_start(struct cpusched *s, enum cpusched_plan plan, int worker);

/* After each loop iteration, with the number of lines it handled. */
void cpusched_iteration(struct cpusched *s, unsigned lines);

/* The kernel's struct sched_attr, its first version, for the calling
 * thread (<linux/sched/types.h> cannot be included next to <sched.h>).
 * Both return 0 or -errno. */
struct cpusched_attr {
	uint32_t size;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime; /* for the default and batch policies: the slice */
	uint64_t sched_deadline;
	uint64_t sched_period;
};
int cpusched_get_attr(struct cpusched_attr *attr);
int cpusched_set_attr(const struct cpusched_attr *attr);

#endif
