/* A worker thread: its own epoll loop over the connections it owns.
 *
 * Nothing outside a worker touches its connections. Other threads talk to
 * it through its inbox (a mutex-guarded vector, woken by an eventfd):
 * new connections from the listener, lines to fan out to its members of a
 * room, private lines, a new config, ping and shutdown. Each line is one
 * shared msg; a worker queues it on each of its recipients and writes all
 * their queues at the end of the loop iteration, many lines per writev. */
#ifndef CHATD_WORKER_H
#define CHATD_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "conn.h"
#include "cpusched.h"
#include "iplimit.h"
#include "msg.h"
#include "rooms.h"

struct worker;

/* What all workers share; owned by the server. */
struct worker_pool {
	struct worker **workers;
	int count;
	struct rooms *rooms;
	struct ip_limit *ip_limit; /* each connection holds a count until closed */
	atomic_int connections;    /* accepted and not yet closed, for max_clients */
	atomic_uint_least64_t next_conn_id;
	/* Wakes the main thread when the number online changed (STATUS=). */
	int status_fd;
	atomic_bool status_pending;
	bool io_uring;             /* workers write with io_uring (checked at start) */
	enum cpusched_plan sched_plan; /* how workers are scheduled (chosen at start) */
};

/* pool->count must already be the number of workers. */
struct worker *worker_new(struct worker_pool *pool, int index, struct config *cfg);
int worker_start(struct worker *w);  /* 0 or -errno */
void worker_join(struct worker *w);
void worker_free(struct worker *w);

/* Called from any thread. Each takes what it needs: the fd (closed by the
 * worker), a reference to cfg. (Lines for other workers go through the
 * sending worker's outboxes: see worker_send_room.) */
void worker_post_connection(struct worker *w, int fd, const char *peer, const struct ip_key *ip);
void worker_post_config(struct worker *w, struct config *cfg);
void worker_post_ping(struct worker *w, uint64_t seq);
void worker_post_shutdown(struct worker *w);

/* The last ping the worker answered: it is alive and looping. */
uint64_t worker_last_pong(struct worker *w);
int worker_connection_count(struct worker *w);

/* ---- for chat.c, on the worker's own thread -------------------------- */

const struct config *worker_config(const struct worker *w);
struct rooms *worker_rooms(const struct worker *w);
/* The shared MOTD lines ("# ...\n" each) of the current config, or NULL. */
struct msg *worker_motd(const struct worker *w);
bool worker_shutting_down(const struct worker *w);
/* CLOCK_MONOTONIC in ms, read once per loop iteration. */
uint64_t worker_now_ms(const struct worker *w);
/* How long, since SINCE_MS, this worker was not running (the last stall
 * seen: SIGSTOP, a slow disk); 0 when it ran throughout. */
uint64_t worker_stalled_since(const struct worker *w, uint64_t since_ms);
/* Whether a line of PRIORITY about C may be logged now ([log]
 * per_address_burst); see ip_limit_log_allowed(). */
bool worker_log_allowed(struct worker *w, const struct conn *c, int priority,
			struct ip_log_note *ret);

/* Queues M (the caller keeps its reference) on one of this worker's
 * connections; an overflowing queue gets the connection closed as slow. */
void worker_send(struct worker *w, struct conn *c, struct msg *m);

/* Sends M to everyone in ROOM but the connection EXCEPT_ID (0: none), on
 * every worker, who was in the room before the event SEQ (a room sequence
 * number, see rooms.h; 0: a new one, for an event happening now). The
 * caller keeps its reference. */
void worker_send_room(struct worker *w, struct room *room, struct msg *m, uint64_t except_id,
		      uint64_t seq);

/* Sends M to the connection at A, on whichever worker owns it. */
void worker_send_direct(struct worker *w, const struct member_address *a, struct msg *m);

/* Leaves C's room list on this worker (after rooms_leave/rooms_move). */
void worker_room_unlink(struct worker *w, struct conn *c, struct room *room);
void worker_room_link(struct worker *w, struct conn *c);

/* Stops reading C, writes what is queued (bounded in time), then closes. */
void worker_close_after_flush(struct worker *w, struct conn *c, const char *reason);

/* Notes that the number online changed, for the main thread's STATUS=. */
void worker_online_changed(struct worker *w);

#endif
