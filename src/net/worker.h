/* A worker thread: its own epoll loop over the connections it owns.
 *
 * Nothing outside a worker touches its connections. Other threads talk to
 * it through its inbox (handoff.h): new connections from the listener,
 * lines to fan out to its members of a room, private lines, a new config,
 * ping and shutdown. Each line is one shared msg; a worker queues it on
 * each of its recipients and writes all their queues at the end of the
 * loop iteration, many lines per system call. What the chat core asks of
 * a worker is in core/host.h; how a worker is made, in worker_impl.h. */
#ifndef CHATD_WORKER_H
#define CHATD_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/config.h"
#include "net/conn.h"
#include "net/event.h"
#include "net/handoff.h"
#include "net/iplimit.h"
#include "core/host.h"
#include "core/msg.h"
#include "core/rooms.h"

struct site;
#include "store/store.h"

struct worker;

/* What all workers share; owned by the server. */
struct worker_pool {
	struct worker **workers;
	struct inbox **inboxes;    /* each worker's, by index (see handoff.h) */
	int count;
	struct rooms *rooms;
	struct ip_limit *ip_limit; /* each connection holds a count until closed */
	atomic_int connections;    /* accepted and not yet closed, for max_clients */
	atomic_uint_least64_t next_conn_id;
	/* Wakes the main thread when the number online changed (STATUS=). */
	int status_fd;
	atomic_bool status_pending;
	bool io_uring;             /* workers write with io_uring (checked at start) */
	struct store *store;       /* the database's thread; NULL: none (tests) */
	struct accounts *accounts; /* the accounts' thread; NULL: none (tests) */
	struct cluster *cluster;   /* the link to other nodes; NULL: none */
	struct remotes *remotes;   /* their members (worker 0's) */
	/* Where worker_event_id() starts: the wall clock in µs at start, so
	 * that ids (IRC's msgid, kept in the history) are not handed out again
	 * after a restart, short of a million events a second. */
	uint64_t id_base;
};

/* pool->count must already be the number of workers. */
struct worker *worker_new(struct worker_pool *pool, int index, struct config *cfg);
int worker_start(struct worker *w);  /* 0 or -errno */
void worker_join(struct worker *w);
void worker_free(struct worker *w);

/* Called from any thread. Each takes what it needs: the fd (closed by the
 * worker), a reference to cfg. (Lines for other workers go through the
 * sending worker's outboxes: see worker_send_room.) */
/* IP: the connection's address in the ip_limit, and whether it was
 * counted there (not for a trusted proxy's: its client is counted once
 * known). */
void worker_post_connection(struct worker *w, int fd, enum proto proto, bool tls, const char *peer,
			    const struct ip_key *ip, bool counted);
void worker_post_config(struct worker *w, struct config *cfg);
/* CTX (an SSL_CTX; a reference is taken) for the TLS handshakes from now
 * on; sessions already made keep theirs. */
void worker_post_tls(struct worker *w, void *ctx);
/* SITE (a reference is taken; NULL: none) for the web port's requests
 * from now on. */
void worker_post_site(struct worker *w, struct site *site);
void worker_post_ping(struct worker *w, uint64_t seq);
/* Puts connection FD/CONN_ID out for REASON ("kicked", "banned"), telling
 * it TEXT; ACTOR did it (logged). Nothing when it is gone already. */
void worker_post_disconnect(struct worker *w, int fd, uint64_t conn_id, const char *reason,
			    const char *text, const char *actor);
/* BANS (a reference is taken) from now on: W puts out at once whoever
 * they match. */
struct ban_list;
void worker_post_bans(struct worker *w, struct ban_list *bans);
/* TEXT, as the server's notice, to every client of W. */
void worker_post_wall(struct worker *w, const char *text);
/* From nats.c's thread: records (LEN bytes of DATA, copied) of the
 * stream, numbered SEQ, in the stream's order, or (SEQ 0) for this node
 * alone. To worker 0. */
void worker_post_cluster(struct worker *w, uint64_t seq, const uint8_t *data, size_t len);
/* From the cluster's thread: the node ORIGIN (NODE) is gone. To worker 0. */
void worker_post_node_lost(struct worker *w, uint64_t origin, const char *node);
/* From the cluster's threads: each worker tells the other nodes its
 * members' states again (RECLAIM: and claims their nicks again). */
void worker_post_tell_all(struct worker *w, bool reclaim);
/* From the cluster's nicks' thread: NICK, which the session SESSION on
 * socket FD of W took, is another node's. */
void worker_post_nick_refused(struct worker *w, int fd, uint64_t session, const char *nick);
void worker_post_shutdown(struct worker *w);

/* An admin's acts (chatctl's on the main thread, an IRC operator's on a
 * worker), logged with ACTOR. */
/* Puts NICK out (wherever it is), telling it TEXT: false when nobody has
 * it; its nick as registered in RET_NICK. */
bool worker_pool_kick(struct worker_pool *pool, const char *nick, const char *text,
		      const char *actor, char ret_nick[NAME_MAX_LEN + 1]);
/* TEXT, as the server's notice, to everyone: the number online, or
 * -E2BIG (over WALL_MAX), -ENODATA (nothing once cleaned). */
int worker_pool_wall(struct worker_pool *pool, const char *text, const char *actor);

/* The last ping the worker answered: it is alive and looping. */
uint64_t worker_last_pong(struct worker *w);
int worker_connection_count(struct worker *w);
/* Its counters, for the metrics (net/stats.h): any thread may read them. */
struct worker_stats;
const struct worker_stats *worker_stats(const struct worker *w);

#endif
