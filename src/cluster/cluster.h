/* This node's link to the others, through NATS JetStream ([cluster]):
 * one connection (nats.c, with its own threads), the room stream every
 * node publishes what its users say to and reads back in the stream's
 * order, and a thread of our own that publishes what the workers hand
 * over, so no worker ever waits on NATS.
 *
 *   workers --batches--> cluster thread --publish--> stream "CHATD"
 *   stream --ordered consumer (nats.c's thread)--> host->deliver()
 *
 * The stream keeps each message with its sequence number, which is the
 * one order every node delivers a room's lines in. The consumer is
 * nats.c's ordered consumer: after a lost connection or a gap it starts
 * again from the last sequence it delivered, so a node catches up in
 * order, nothing twice. */
#ifndef CHATD_CLUSTER_CLUSTER_H
#define CHATD_CLUSTER_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "cluster/wire.h"

#define CLUSTER_STREAM "CHATD"
#define CLUSTER_ROOM_SUBJECT "chatd.room." /* + the room's lower-case name in hex */
#define CLUSTER_MESSAGE_MAX (64 * 1024)    /* bytes of records in one message */

/* What the node running the cluster does with it; called from nats.c's
 * and the cluster's threads, never from a worker. */
struct cluster_host {
	void *ctx;
	/* A message of the room stream, its sequence number SEQ: LEN bytes of
	 * records (wire.h), valid during the call. In the stream's order. */
	void (*deliver)(void *ctx, uint64_t seq, const uint8_t *data, size_t len);
	/* The stream is reachable (UP) or not any more: lines said here go
	 * through it, or are delivered here alone meanwhile. */
	void (*changed)(void *ctx, bool up);
};

/* Records said on one worker over a loop iteration, in order, for the
 * stream: each run of records to one room becomes one message. */
struct cluster_batch {
	struct cluster_batch *next;
	struct wire_buf buf;
	struct cluster_run {
		char room[NAME_MAX_LEN + 1];
		size_t off, len;
	} *runs;
	size_t run_count, run_cap;
};

void cluster_batch_add(struct cluster_batch **b, const struct wire_record *r);
void cluster_batch_free(struct cluster_batch *b);

struct cluster;

/* Connects to [cluster] nats in the background (it retries for ever) and
 * starts the publishing thread: NULL with *RET_ERR (to free) when it
 * cannot start at all (a bad credentials file, no thread). */
struct cluster *cluster_start(const struct config *cfg, const struct cluster_host *host,
			      char **ret_err);

/* Stops publishing (what is queued is published first, for at most a
 * second), closes the connection, frees C. */
void cluster_stop(struct cluster *c);

/* This node's incarnation: a random number, new at each start, in every
 * record it says (wire_record.origin). */
uint64_t cluster_self(const struct cluster *c);

/* Whether lines said now go through the stream (connected, subscribed). */
bool cluster_up(const struct cluster *c);

/* From a worker: B (taken) to be published, after what was posted before. */
void cluster_post(struct cluster *c, struct cluster_batch *b);

/* Counters, for the metrics and the log. */
struct cluster_stats {
	uint64_t published;    /* messages the stream took */
	uint64_t lost;         /* messages it could not be given */
	uint64_t received;     /* messages delivered from it */
	uint64_t last_seq;     /* the newest delivered */
};
void cluster_get_stats(const struct cluster *c, struct cluster_stats *ret);

/* The subject of ROOM's messages into RET (SIZE at least
 * sizeof(CLUSTER_ROOM_SUBJECT) + 2 * NAME_MAX_LEN). */
void cluster_room_subject(const char *room, char *ret, size_t size);

#endif
