/* How a worker thread asks the kernel to schedule it, by how busy it is.
 *
 * At light load a line's fan-out is a matter of latency: the worker that
 * owns the recipients should get a CPU as soon as it is woken, even from
 * another program running there (a client on the same machine, a backup),
 * so it runs under the default policy with a short time slice: on Linux
 * 6.12 and later (EEVDF) a woken task with a shorter slice than the running
 * one preempts it. Under load that same preemption cuts the workers' loop
 * iterations short, each writing fewer lines per system call, so a worker
 * that keeps handling many lines per loop iteration switches to SCHED_BATCH, whose
 * wake-ups never preempt, and back when it is idle again. docs/design.md
 * has the measurements.
 *
 * Only a thread that starts under the default policy is managed: one the
 * admin put under another (CPUSchedulingPolicy=, chrt) is left as it is. */
#ifndef CHATD_CPUSCHED_H
#define CHATD_CPUSCHED_H

#include <stdbool.h>

/* The slice asked for at light load: the kernel's shortest. */
#define CPUSCHED_SLICE_NS 100000
/* Lines (from clients and from other workers) in one loop iteration from
 * which a worker counts as busy. */
#define CPUSCHED_BUSY_LINES 8
/* Loop iterations in a row that must agree before the mode changes. */
#define CPUSCHED_SWITCH_AFTER 8

struct cpusched {
	bool managed;   /* the default policy at start, and the calls work */
	bool batch;     /* in the busy mode */
	unsigned streak;/* iterations in a row that pointed to the other mode */
	int nice;       /* kept as it was at start, in both modes */
	int worker;     /* for the log */
};

/* On the worker's own thread, before its loop: takes the light-load mode. */
void cpusched_start(struct cpusched *s, int worker);

/* After each loop iteration, with the number of lines it handled. */
void cpusched_iteration(struct cpusched *s, unsigned lines);

#endif
