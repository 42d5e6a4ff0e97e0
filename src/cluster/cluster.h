/* This node's link to the others, through NATS JetStream ([cluster]):
 * one connection (nats.c, with its own threads), the room stream every
 * node publishes what its users say to and reads back in the stream's
 * order, and a thread of our own that publishes what the workers hand
 * over, so no worker ever waits on NATS.
 *
 *   workers --batches--> cluster thread --publish--> stream "CHATD"
 *   stream --ordered consumer (nats.c's thread)--> host->deliver()
 *
 * Besides, each node says it is alive every CLUSTER_HEARTBEAT_MS; one
 * not heard for CLUSTER_NODE_TIMEOUT_MS is lost (host->node_lost()), and
 * one heard for the first time is asked for its members (WIRE_HELLO).
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
#include "core/bans.h"
#include "store/accounts.h"

#define CLUSTER_STREAM "CHATD"
/* The stream's subjects: a room's lines (+ the room's lower-case name in
 * hex), and a node's members (+ the node's name). */
#define CLUSTER_ROOM_SUBJECT "chatd.stream.room."
#define CLUSTER_MEMBERS_SUBJECT "chatd.stream.members."
/* Outside the stream: a node's private messages and requests (+ its
 * incarnation in hex), and every node's heartbeat. */
#define CLUSTER_PRIVATE_SUBJECT "chatd.private."
#define CLUSTER_ALIVE_SUBJECT "chatd.alive"
#define CLUSTER_MESSAGE_MAX (64 * 1024)    /* bytes of records in one message */
/* A node says it is alive this often; one not heard for NODE_TIMEOUT is
 * taken for gone (its members leave). */
#define CLUSTER_HEARTBEAT_MS 2000
#define CLUSTER_NODE_TIMEOUT_MS 10000
#define CLUSTER_NODES_MAX 256
/* The key-value buckets: the nicks taken (nicks.h), the accounts and the
 * bans (shared.h). */
#define CLUSTER_NICKS "chatd_nicks"
#define CLUSTER_ACCOUNTS "chatd_accounts"
#define CLUSTER_BANS "chatd_bans"

/* What the node running the cluster does with it; called from nats.c's
 * and the cluster's threads, never from a worker. */
struct cluster_host {
	void *ctx;
	/* Records (wire.h), LEN bytes valid during the call: a message of the
	 * stream numbered SEQ, in the stream's order; or (SEQ 0) one sent to
	 * this node alone. */
	void (*deliver)(void *ctx, uint64_t seq, const uint8_t *data, size_t len);
	/* The stream is reachable (UP) or not any more: lines said here go
	 * through it, or are delivered here alone meanwhile. */
	void (*changed)(void *ctx, bool up);
	/* The node ORIGIN, named NODE, was not heard for NODE_TIMEOUT, or said
	 * it stops. */
	void (*node_lost)(void *ctx, uint64_t origin, const char *node);
	/* NICK, which the session SESSION (worker WORKER, socket FD) took, is
	 * another node's. */
	void (*nick_refused)(void *ctx, int worker, int fd, uint64_t session, const char *nick);
	/* An account as the nodes share it now (row->deleted: gone), on the
	 * shared buckets' thread. */
	void (*account)(void *ctx, const struct account_row *row);
	/* A ban the nodes share now (ADDED), or the ban of REMOVED no more. */
	void (*ban)(void *ctx, const struct ban *added, const char *removed);
};

/* Where a run of records goes. */
enum cluster_to {
	CLUSTER_TO_ROOM,    /* the stream, the room's subject */
	CLUSTER_TO_MEMBERS, /* the stream, this node's members' subject */
	CLUSTER_TO_NODE,    /* one node, outside the stream */
};

/* Records said on one worker over a loop iteration, in order, for the
 * stream: each run of records to one place becomes one message. */
struct cluster_batch {
	struct cluster_batch *next;
	struct wire_buf buf;
	struct cluster_run {
		enum cluster_to to;
		char room[NAME_MAX_LEN + 1]; /* CLUSTER_TO_ROOM */
		uint64_t node;               /* CLUSTER_TO_NODE: its incarnation */
		size_t off, len;
	} *runs;
	size_t run_count, run_cap;
};

/* R (to R->room, for CLUSTER_TO_ROOM; to the node NODE, for
 * CLUSTER_TO_NODE) added to *B (made if NULL). */
void cluster_batch_add(struct cluster_batch **b, enum cluster_to to, uint64_t node,
		       const struct wire_record *r);
void cluster_batch_free(struct cluster_batch *b);

struct cluster;

/* Connects to [cluster] nats in the background (it retries for ever) and
 * starts the publishing thread; the stream is read from after
 * RESUME_AFTER (the newest of its lines this node's store has; 0: from
 * now). NULL with *RET_ERR (to free) when it cannot start at all (a bad
 * credentials file, no thread). */
struct cluster *cluster_start(const struct config *cfg, const struct cluster_host *host,
			      uint64_t resume_after, char **ret_err);

/* The threads that call the host on their own (nicks, shared buckets)
 * stop: from then on only the stream's deliveries and the cluster's own
 * thread do. Before the accounts close. */
void cluster_halt(struct cluster *c);

/* Stops publishing (what is queued is published first, for at most a
 * second), closes the connection, frees C. */
void cluster_stop(struct cluster *c);

/* This node's incarnation: a random number, new at each start, in every
 * record it says (wire_record.origin); and its name. */
uint64_t cluster_self(const struct cluster *c);
const char *cluster_node(const struct cluster *c);

/* Whether lines said now go through the stream (connected, subscribed). */
bool cluster_up(const struct cluster *c);

/* From a worker: B (taken) to be published, after what was posted before. */
void cluster_post(struct cluster *c, struct cluster_batch *b);

/* From a worker: NICK is now the session SESSION's (worker WORKER,
 * socket FD), or not any more (nicks.h). */
void cluster_claim(struct cluster *c, const char *nick, uint64_t session, int worker, int fd);
void cluster_release(struct cluster *c, const char *nick, uint64_t session);

/* Accounts and bans, for the other nodes (shared.h). */
int cluster_account_create(struct cluster *c, const struct account_row *row);
void cluster_account_changed(struct cluster *c, const struct account_row *row);
void cluster_ban_added(struct cluster *c, const struct ban *b);
void cluster_ban_removed(struct cluster *c, const char *mask);
/* What this node kept before it shared it: put in the buckets unless the
 * others ever had it. */
void cluster_account_offer(struct cluster *c, const struct account_row *row);
void cluster_ban_offer(struct cluster *c, const struct ban *b);

/* For nicks.c: the JetStream context, and whether the node ORIGIN is
 * there (heard within CLUSTER_NODE_TIMEOUT_MS), gone, or not known yet
 * (this node has not listened that long). */
struct __jsCtx *cluster_js(const struct cluster *c);
enum peer_state { PEER_ALIVE, PEER_GONE, PEER_UNKNOWN };
enum peer_state cluster_peer_state(struct cluster *c, uint64_t origin);

/* Counters, for the metrics and the log. */
struct cluster_stats {
	bool up;               /* cluster_up() */
	int nodes;             /* other nodes heard */
	uint64_t published;    /* messages the stream took */
	uint64_t lost;         /* messages it could not be given */
	uint64_t received;     /* messages delivered from it */
	uint64_t last_seq;     /* the newest delivered */
};
void cluster_get_stats(struct cluster *c, struct cluster_stats *ret);

#endif
