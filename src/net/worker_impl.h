/* A worker's state, for the files that make up a worker and nothing else:
 *   worker.c     the loop: reading, the inbox, config and shutdown
 *   lifecycle.c  a connection's life: its one state machine, writing, closing
 *   fanout.c     lines to a room's members and to one connection
 *   timeouts.c   the clock: idle and stalled clients, the worker's own stalls
 * Everything here runs on the worker's own thread. */
#ifndef CHATD_NET_WORKER_IMPL_H
#define CHATD_NET_WORKER_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/host.h"
#include "net/conn.h"
#include "net/event.h"
#include "net/handoff.h"
#include "net/stats.h"
#include "net/worker.h"
#include "net/writer.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

#define READ_BUFFER_SIZE (64 * 1024)
#define TICK_MS 1000

struct worker {
	struct worker_pool *pool;
	int index;
	pthread_t thread;
	bool started;
	int epoll_fd;
	int inbox_error;          /* from inbox_init(), reported by worker_start() */
	int tick_fd;              /* every TICK_MS: idle and stalled connections */
	uint64_t now_ms;          /* CLOCK_MONOTONIC, read once per loop iteration */
	uint64_t epoch;           /* loop iterations so far */
	uint64_t events;          /* worker_event_id() handed out */
	size_t read_budget;       /* what this iteration may still read */
	unsigned rotation;        /* where handling an epoll batch starts */
	uint64_t stall_end_ms;    /* when the last stall was seen (0: never) */
	uint64_t stall_ms;        /* and how long it was */
	struct inbox inbox;
	/* Lines for other workers, gathered over one loop iteration and handed
	 * over in one go: one lock and at most one wake-up per worker per
	 * iteration, and the receiver gets them as a batch it can write out
	 * with few system calls. */
	struct outboxes outboxes;

	struct config *cfg;
	struct msg *motd;
	struct ssl_ctx_st *tls_ctx; /* SSL_CTX for new TLS connections; NULL: none */
	struct site *site;        /* the web page's files; NULL: none */
	struct ban_list *bans;    /* NULL: none */

	struct conn **by_fd;      /* this worker's connections, by socket */
	size_t by_fd_size;
	atomic_int connection_count;

	struct conn_list flush_list;  /* queued output to write this iteration */
	struct conn_list close_list;  /* DEAD: to free at the end of this iteration */
	struct conn_list drain_list;  /* leaving, oldest first (so by deadline) */

	bool shutting_down;
	atomic_uint_least64_t pong;

	unsigned *queued;         /* fanout's count per line */
	size_t *picked;           /* fanout's lines of one format */
	size_t queued_cap;

	/* A sender's lines to one room, gathered while its read is handled
	 * and sent as one (fanout.c). */
	struct room_stage {
		struct room *room;   /* a reference; NULL: nothing gathered */
		uint64_t except_id, seq;
		uint32_t lines;      /* gathered */
		struct msg *msg[FORMAT_COUNT];
		bool own[FORMAT_COUNT]; /* msg[f] is our unshared copy */
	} stage;

	/* Lines said in rooms this loop iteration, for the store thread: one
	 * hand-over per iteration, before the outboxes' (so a line anyone
	 * was sent is in the store's hands before it arrives). */
	struct hline **store_lines;
	size_t store_count, store_cap;
	/* Lines said here this iteration, for the cluster's stream: one
	 * hand-over per iteration, like the store's. */
	struct cluster_batch *cluster_out;
	uint64_t cluster_bad_logged_ms; /* a bad message of the stream, logged */
	/* Rooms as other nodes have them (worker 0's), come before the
	 * member that makes the room here: tried again after each member's
	 * record, for ROOM_STATE_WAIT_MS. */
	struct pending_room *pending_rooms;
	size_t pending_count;
	unsigned cluster_ticks;   /* worker 0: ticks, for chat_remote_sweep() */

	struct out_cache out_cache;
	struct writer *writer;    /* made on the worker's own thread */
	/* Counted for the metrics; only this worker writes them, on cache
	 * lines of their own. */
	struct worker_stats stats __attribute__((aligned(64)));
	char read_buffer[READ_BUFFER_SIZE];
};

static inline struct conn *conn_of(struct session *s)
{
	return container_of(s, struct conn, s);
}

/* ---- worker.c ------------------------------------------------------------ */

/* Hands the lines said this iteration to the store thread. */
void worker_store_flush(struct worker *w);
/* And to the cluster's. */
void worker_cluster_flush(struct worker *w);
/* LEN bytes of C's input, in the clear and unframed (net/web.c: a
 * WebSocket message's payload): lines to its protocol. False when C's
 * input is no longer read. */
bool worker_feed(struct worker *w, struct conn *c, const char *data, size_t len);

/* Whether C (a trusted proxy's client, now known) is banned: logged, and
 * the caller refuses it. */
bool worker_refuse_banned(struct worker *w, struct conn *c);

/* ---- lifecycle.c --------------------------------------------------------- */

/* A connection handed over by the listener: NEW, then OPEN in the chat
 * (over TLS, once the handshake is done: lifecycle_established()). */
void lifecycle_add(struct worker *w, int fd, const struct new_connection *nc);
/* C's TLS handshake is done: NEW -> OPEN, but for the web port, which
 * first speaks HTTP. */
void lifecycle_established(struct worker *w, struct conn *c);
/* NEW -> OPEN: into the chat (the web port: upgraded to a WebSocket). */
void lifecycle_open(struct worker *w, struct conn *c);
/* OPEN (or NEW) -> DRAINING: leaves the chat, writes what is queued. */
void lifecycle_drain(struct worker *w, struct conn *c, const char *reason, const char *farewell,
		     size_t farewell_len);
/* Any state -> DEAD: leaves the chat, gives its slot back; freed at the
 * end of the iteration. */
void lifecycle_kill(struct worker *w, struct conn *c, const char *reason);
/* The peer sent EOF (0 read). */
void lifecycle_peer_closed(struct worker *w, struct conn *c);
/* C asked the store or accounts thread something: its input waits for
 * the answer (see conn.h). */
void lifecycle_wait(struct worker *w, struct conn *c);
/* An answer C waited for came: true when it waits for no more (its input
 * is read again; what it held is the caller's to handle). */
bool lifecycle_answered(struct worker *w, struct conn *c);
/* Whether C's input is still read and handled. */
bool lifecycle_reading(const struct conn *c);
/* C has output to write this iteration (inline: once per recipient of a
 * line). */
static inline void lifecycle_mark_for_flush(struct worker *w, struct conn *c)
{
	flush_list_add(&w->flush_list, c);
}
/* Writes every queue that got output and frees every DEAD connection. */
void lifecycle_settle(struct worker *w);
/* Kills leaving connections past their deadline; returns the epoll timeout
 * until the next deadline (-1: none). */
int lifecycle_expire_drains(struct worker *w);
/* Gives back what the accepting thread counted for a connection never
 * made (an EV_CONNECTION nobody handled), or that closed; IP: its count
 * in the ip_limit, NULL when it has none. */
void lifecycle_forget(struct worker *w, const struct ip_key *ip);
/* At the end: every connection out of the chat (without telling anyone)
 * and freed. */
void lifecycle_free_all(struct worker *w);

/* ---- fanout.c ------------------------------------------------------------ */

/* Delivers a run of N consecutive EV_ROOM events for one room; each
 * event's references end here. */
void fanout_room_events(struct worker *w, struct event *evs, size_t n);
/* Sends the lines gathered in w->stage, if any; done at the end of each
 * read and before anything that could be seen to overtake them. */
void fanout_flush(struct worker *w);
/* An EV_DIRECT: M to connection FD/ID if it is still there. */
void fanout_direct_local(struct worker *w, int fd, uint64_t id, struct msg *m);
/* An EV_KICK: K to connection FD/ID if it is still there; frees K. */
void fanout_kick_local(struct worker *w, int fd, uint64_t id, struct kick *k);
/* C left unread more than max_sendq: logs it and kills C. */
void fanout_too_slow(struct worker *w, struct conn *c);

/* ---- timeouts.c ---------------------------------------------------------- */

/* Right after epoll_wait returned: LAST_MS was the previous iteration's
 * time. Notes a stall of the worker's own. */
void timeouts_woke(struct worker *w, uint64_t last_ms);
/* The tick fired: idle and stalled clients are told and let go. */
void timeouts_tick(struct worker *w);

#endif
