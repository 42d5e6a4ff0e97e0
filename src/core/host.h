/* What the chat core asks of the thread it runs on: the config and the
 * registry in force, the clock, the log throttle, and the ways to send.
 * The core calls these and knows nothing of sockets, epoll or other
 * threads; the network layer (net/worker.c, net/fanout.c, net/lifecycle.c)
 * implements them for its worker threads. */
#ifndef CHATD_CORE_HOST_H
#define CHATD_CORE_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "base/log.h"
#include "core/msg.h"
#include "core/rooms.h"
#include "core/session.h"
#include "store/line.h"
#include "store/accounts.h"
#include "store/store.h"

/* The thread the core runs on; opaque here. */
struct worker;

const struct config *worker_config(const struct worker *w);
struct rooms *worker_rooms(const struct worker *w);
/* The shared MOTD lines ("# ...\n" each) of the current config, or NULL. */
struct msg *worker_motd(const struct worker *w);
bool worker_shutting_down(const struct worker *w);
/* A number no other event of the server's life has (IRC's msgid, and
 * room_send.once), without a shared counter. */
uint64_t worker_event_id(struct worker *w);
/* CLOCK_MONOTONIC in ms, read once per loop iteration. */
uint64_t worker_now_ms(const struct worker *w);
/* How long, since SINCE_MS, this worker was not running (the last stall
 * seen: SIGSTOP, a slow disk); 0 when it ran throughout. */
uint64_t worker_stalled_since(const struct worker *w, uint64_t since_ms);
/* Whether a line of PRIORITY about S's address may be logged now ([log]
 * per_address_burst); see ip_limit_log_allowed(). */
bool worker_log_allowed(struct worker *w, const struct session *s, int priority,
			struct log_note *ret);
/* Notes that the number online changed, for the main thread's STATUS=. */
void worker_online_changed(struct worker *w);

#define WALL_MAX 1000 /* bytes of a wall message */

/* An IRC operator's KILL and WALLOPS: as worker_pool_kick() and
 * worker_pool_wall() (net/worker.h). */
bool worker_admin_kick(struct worker *w, const char *nick, const char *text, const char *actor,
		       char ret_nick[NAME_MAX_LEN + 1]);
int worker_admin_wall(struct worker *w, const char *text, const char *actor);

/* Whether NICK is banned (chatctl ban). */
bool worker_nick_banned(struct worker *w, const char *nick);

/* A line was said (in a room, or privately): counted for the metrics. */
void worker_said(struct worker *w);

/* In a cluster ([cluster] nats): EV, said by the session SESSION, to the
 * room stream, which brings it back to be told here in its order
 * (chat_relayed): true. False when there is no cluster, or the stream
 * cannot be reached now: the caller tells it here (it goes to the stream
 * when the stream is back, for the other nodes). */
bool worker_cluster_line(struct worker *w, uint64_t session, const struct chat_event *ev);

/* Whether this node is one of a cluster ([cluster] nats). */
bool worker_clustered(const struct worker *w);

/* In a cluster: EV, a change of a room (CHAT_TOPIC, or CHAT_MODE: text
 * "+t", or "+o" for other), decided here, to the room stream, which
 * brings it back to be made and told on every node in its order
 * (chat_room_relayed): true. False when there is no cluster, or the
 * stream cannot be reached now: the caller makes the change here, and
 * then, MADE, hands it on (published when the stream is back, for the
 * other nodes). */
bool worker_cluster_room(struct worker *w, const struct chat_event *ev, bool made);

/* In a cluster: S changed (CHANGE: what happened; ROOM, OTHER, TEXT as
 * in struct remote_update, NULL when none): the other nodes are told
 * S's whole state. Nothing without a cluster. */
void worker_cluster_member(struct worker *w, struct session *s, int change, const char *room,
			   const char *other, const char *text, size_t text_len);

/* In a cluster: EV, a private message, to the member of another node at
 * TO. */
void worker_cluster_private(struct worker *w, const struct member_address *to,
			    const struct chat_event *ev);

/* L (its reference taken) to be written to the store, with the other
 * lines of this loop iteration. */
void worker_store_line(struct worker *w, struct hline *l);

/* Asks the store Q for S (Q->room, kind, refs, limit, tag set by the
 * caller): the answer comes back through codec_history(), after the lines
 * S could have seen so far are in the store's hands. Q is taken. */
void worker_history_query(struct worker *w, struct session *s, struct store_query *q);

/* ROOM, registered to an account, to be saved (with the lines of this
 * loop iteration). */
void worker_store_room(struct worker *w, const struct store_room *room);

/* Whether NICK is a registered account. */
bool worker_nick_registered(struct worker *w, const char *nick);

/* Asks the accounts thread R for S (R->op and its fields set by the
 * caller): the answer comes back through codec_account(). R is taken. */
void worker_account_request(struct worker *w, struct session *s, struct account_request *r);

/* Whether S is still reading and writing (not leaving). */
bool worker_session_open(const struct session *s);

/* Queues M (the caller keeps its reference) for S; an overflowing queue
 * gets S closed as slow. */
void worker_send(struct worker *w, struct session *s, struct msg *m);

/* A room event as each format present reads it, to everyone in ROOM but
 * the session EXCEPT_ID (0: none) who was in the room before the event SEQ
 * (a room sequence number, see rooms.h), and, when ONCE is not 0, to no
 * session that already got an event with the same ONCE (an event told to
 * several rooms: a quit, a nick change). */
struct room_send {
	struct msg *msg[FORMAT_COUNT]; /* NULL: nobody reads that format here */
	uint64_t except_id;
	uint64_t seq;
	uint64_t once;
};

/* Sends RS on every worker. The caller keeps its references. */
void worker_send_room(struct worker *w, struct room *room, const struct room_send *rs);

/* Sends M to the session at A, on whichever worker owns it. */
void worker_send_direct(struct worker *w, const struct member_address *a, struct msg *m);

/* A kick, handed to the kicked member's worker (only it changes its
 * member): chat_kicked() is called there with it. */
struct kick {
	struct room *room_ref;      /* the room, held: a kick is from that room, not
				     * from a later one of the same name */
	uint64_t joined_seq;        /* and of the membership it was decided on */
	char room[NAME_MAX_LEN + 1];
	char by[NAME_MAX_LEN + 1];
	char by_user[USER_MAX_LEN + 1];
	char by_host[HOST_MAX_LEN + 1];
	uint64_t conn_id;           /* the kicked session, as when decided */
	size_t reason_len;
	char reason[];              /* cleaned */
};

/* Hands K (the callee's to free, with chat_kick_free) to the worker of
 * the session at A. */
void worker_send_kick(struct worker *w, const struct member_address *a, struct kick *k);

/* In a cluster: K, a kick of the member of another node at TO, to be
 * carried out there (K is freed). */
void worker_cluster_kick(struct worker *w, const struct member_address *to, struct kick *k);

/* Puts MS in, or takes it out of, its room's list of this worker's
 * members (after rooms_join/rooms_part/rooms_leave). */
void worker_room_link(struct worker *w, struct membership *ms);
void worker_room_unlink(struct worker *w, struct membership *ms);

/* Stops reading S, writes what is queued (bounded in time), then closes;
 * S leaves the chat first (chat_disconnected, with FAREWELL, the /quit
 * reason, if any). */
void worker_close_after_flush(struct worker *w, struct session *s, const char *reason,
			      const char *farewell, size_t farewell_len);

#endif
