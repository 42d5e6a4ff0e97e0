/* What a worker counts for the metrics (admin/metrics.c): plain per-worker
 * counters, written by their worker alone (a load and a store, no locked
 * instruction, on cache lines no other thread writes) and summed by the
 * main thread when the metrics are read. */
#ifndef CHATD_NET_STATS_H
#define CHATD_NET_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/event.h"

/* Why connections ended, as the metrics label them; a close reason not in
 * stats_reason_names counts as "other". */
enum stats_reason {
	STATS_QUIT,
	STATS_CLOSED,
	STATS_RESET,
	STATS_ERROR,
	STATS_SLOW,
	STATS_FLOOD,
	STATS_IDLE,
	STATS_PING,
	STATS_STALLED,
	STATS_HANDSHAKE_TIMEOUT,
	STATS_TLS,
	STATS_HTTP,
	STATS_WEBSOCKET,
	STATS_KICKED,
	STATS_BANNED,
	STATS_SHUTDOWN,
	STATS_OTHER,
	STATS_REASON_COUNT
};

/* The metrics' label of each reason, by enum stats_reason: the close
 * reasons themselves (docs/logging.md). */
extern const char *const stats_reason_names[STATS_REASON_COUNT];

/* The reason REASON (a connection's close reason) counts as. */
enum stats_reason stats_reason_of(const char *reason);

typedef atomic_uint_least64_t stat_t;

struct worker_stats {
	/* Connections open now and ever taken, by the kind of socket they
	 * came in on (protocol, and TLS or not). */
	stat_t open[PROTO_COUNT][2];
	stat_t accepted[PROTO_COUNT][2];
	stat_t lines_in;       /* lines read from clients */
	stat_t bytes_in;       /* bytes read (over TLS: ciphertext) */
	stat_t bytes_out;      /* bytes written */
	stat_t deliveries;     /* lines of the chat queued to a client */
	stat_t messages;       /* lines said, in rooms and privately */
	stat_t tls_handshakes; /* done */
	stat_t tls_failures;   /* failed */
	stat_t banned;         /* refused as banned (a trusted proxy's client) */
	stat_t disconnects[STATS_REASON_COUNT];
	stat_t loops;          /* loop iterations */
	stat_t busy_ns;        /* time spent outside epoll_wait */
};

/* Only the owning worker calls these. */
static inline void stat_add(stat_t *counter, uint64_t n)
{
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline void stat_sub(stat_t *counter, uint64_t n)
{
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) - n,
			      memory_order_relaxed);
}

/* Any thread: a counter's value now. */
static inline uint64_t stat_get(const stat_t *counter)
{
	return atomic_load_explicit((stat_t *)counter, memory_order_relaxed);
}

/* Adds every counter of FROM to TO's (plain numbers, for reading). */
struct stats_sum {
	uint64_t open[PROTO_COUNT][2], accepted[PROTO_COUNT][2];
	uint64_t lines_in, bytes_in, bytes_out, deliveries, messages, tls_handshakes, tls_failures;
	uint64_t banned;
	uint64_t disconnects[STATS_REASON_COUNT];
};
void stats_add_to(struct stats_sum *to, const struct worker_stats *from);

#endif
