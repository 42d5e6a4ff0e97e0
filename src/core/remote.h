/* Members of other nodes of a cluster: each node tells the others, through
 * the cluster's stream, what each of its members now is (nick, rooms) and
 * what happened (joined, parted, quit, ...), with a version that grows at
 * each change; here they become members of the registry like any other
 * (WHO, NAMES, /who and the online count see them), and the members here
 * are told what happened. Knowing no transport: net/ decodes the stream
 * and calls these, on the one worker that tells the cluster's events.
 *
 * A member's record is its whole state, so a record seen twice, or late
 * (older than the one applied), changes nothing, and a node that comes
 * (back) learns everyone from the records the others send it then. */
#ifndef CHATD_CORE_REMOTE_H
#define CHATD_CORE_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/host.h"
#include "core/rooms.h"

/* What happened to a member; the numbers are the cluster's wire format's. */
enum remote_change {
	REMOTE_STATE = 0,   /* nothing: a node tells what it has */
	REMOTE_ENTERED = 1, /* connected, into room (line protocol) */
	REMOTE_JOINED = 2,  /* came into room */
	REMOTE_PARTED = 3,  /* left room, saying text */
	REMOTE_WENT = 4,    /* left room for other */
	REMOTE_KICKED = 5,  /* was put out of room by other, for text */
	REMOTE_RENAMED = 6, /* was known as other */
	REMOTE_QUIT = 7,    /* left, saying text */
	REMOTE_CHANGE_MAX = REMOTE_QUIT,
};

struct remote_update {
	enum remote_change change;
	uint64_t origin;        /* the node (its incarnation) */
	const char *node;       /* and its name */
	uint64_t session;       /* the member's session there */
	uint64_t version;       /* higher at each change of it */
	const char *nick, *user, *host, *realname, *account;
	const char *rooms;      /* its rooms now, space-separated */
	const char *room;       /* the room concerned ("": none) */
	const char *other;
	const char *text;       /* cleaned */
	size_t text_len;
	bool formatting;
	uint64_t id;            /* the event's number (the stream's) */
	int64_t time_ms;
};

struct remotes;

struct remotes *remotes_new(void);
/* Takes every remote member out of R (workers stopped) and frees RS. */
void remotes_free(struct remotes *rs, struct rooms *r);

/* On the cluster's worker: U applied, and told here. */
void chat_remote(struct worker *w, struct remotes *rs, const struct remote_update *u);

/* On the cluster's worker, every second: members whose nick another
 * member here had take it, if it is free now. */
void chat_remote_retry(struct worker *w, struct remotes *rs);

/* On the cluster's worker, now and then: the members of nodes GONE says
 * are gone (never heard: their records read again after a restart) quit.
 * Returns how many. */
size_t chat_remote_sweep(struct worker *w, struct remotes *rs,
			 bool (*gone)(void *ctx, uint64_t origin), void *ctx);

/* On the cluster's worker: the node ORIGIN (named NODE) is gone; each of
 * its members quits here. Returns how many. */
size_t chat_remote_node_lost(struct worker *w, struct remotes *rs, uint64_t origin,
			     const char *node);

#endif
