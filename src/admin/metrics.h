/* The metrics: [metrics] listen serves /metrics in the Prometheus text
 * format (version 0.0.4) over plain HTTP, for a scraper on a trusted
 * network. Runs on the main thread, in the main loop (its fds are behind
 * one epoll fd of its own); a scrape sums the workers' counters
 * (net/stats.h) and reads the rest from their owners. */
#ifndef CHATD_ADMIN_METRICS_H
#define CHATD_ADMIN_METRICS_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "base/config.h"
#include "net/stats.h"

/* Why the main thread turned connections away. */
enum metrics_reject {
	REJECT_FULL,
	REJECT_PER_IP,
	REJECT_RATE,
	REJECT_BANNED,
	REJECT_COUNT
};

/* The close reason ("full", "per_ip", ...) of each, as logged. */
extern const char *const metrics_reject_names[REJECT_COUNT];

#define METRICS_WORKERS_MAX 256

/* Everything a scrape shows, gathered at once. */
struct metrics_snapshot {
	time_t started;
	struct stats_sum sum;
	int workers;
	struct {
		uint64_t busy_ns, loops;
		int connections;
	} worker[METRICS_WORKERS_MAX];
	int online, max_online, rooms;
	size_t accounts;
	uint64_t history_written, history_dropped;
	uint64_t reloads_ok, reloads_failed;
	uint64_t rejected[REJECT_COUNT];
	bool clustered;                 /* [cluster]: the figures below */
	bool cluster_up;
	int cluster_nodes;
	uint64_t cluster_published, cluster_lost, cluster_received;
};

/* Writes SNAP to OUT in the Prometheus text format. */
void metrics_render(const struct metrics_snapshot *snap, FILE *out);

struct metrics;

/* Listens on [metrics] listen of CFG, taking snapshots with COLLECT(CTX):
 * NULL when off, or when it cannot listen (logged; chatd runs without). */
struct metrics *metrics_open(const struct config *cfg,
			     void (*collect)(void *ctx, struct metrics_snapshot *ret), void *ctx);

/* The fd to watch for input in the main loop, and what to call then. */
int metrics_fd(const struct metrics *m);
void metrics_run(struct metrics *m);

void metrics_close(struct metrics *m);

#endif
