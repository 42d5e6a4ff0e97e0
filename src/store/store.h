/* The database: one SQLite file in WAL mode, owned by one thread, the
 * store thread. Workers hand it the lines said in rooms in batches and
 * never wait on the disk: it writes them in transactions of
 * [store] commit_interval, keeps each room's last [history] keep lines for
 * [history] max_age, and answers questions about the past, which come
 * back through a callback on its own thread.
 *
 * A write that fails (a full disk, a read-only file) loses the lines of
 * that transaction, counted and warned about at most once a minute; the
 * next transaction tries again. */
#ifndef CHATD_STORE_STORE_H
#define CHATD_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/text.h"
#include "core/bans.h"
#include "store/line.h"

/* The schema this chatd writes; older files are migrated at open. */
#define STORE_SCHEMA_VERSION 5
/* Lines waiting for the store thread, at most; beyond, lines are dropped
 * (and counted) rather than memory grown without end. */
#define STORE_QUEUE_MAX 1000000
/* Lines one question may ask for. */
#define STORE_QUERY_MAX 1000

struct store;

/* What the store keeps, from the config; changed on reload. */
struct store_policy {
	unsigned keep;          /* lines per room; 0: none kept, none written */
	int64_t max_age_ms;     /* lines older are deleted */
	int commit_interval_ms; /* the longest a line waits to be committed */
};

/* Opens (or makes) the file at PATH, and its folder when missing, and
 * brings its schema up to date. NULL and *ERR ("PATH: why", malloc'd)
 * when it cannot. */
struct store *store_open(const char *path, char **err);

/* For each room with lines newer than SINCE_MS: FN with the room's name,
 * its last line number (also of older lines) and up to N of its newest
 * lines, oldest first (FN takes their references, and frees the array).
 * Before store_start. 0, or -1 with *ERR. */
int store_load_recent(struct store *st, unsigned n, int64_t since_ms,
		      void (*fn)(void *ctx, const char *room, int64_t last_no,
				 struct hline **lines, size_t count),
		      void *ctx, char **err);

/* Starts the store thread: 0 or -errno. */
int store_start(struct store *st, const struct store_policy *policy);

void store_set_policy(struct store *st, const struct store_policy *policy);

/* Queues N lines to be written; takes their references (LINES stays the
 * caller's). Any thread. */
void store_add(struct store *st, struct hline *const *lines, size_t n);

/* A question about a room's past: lines in order, by line number (the
 * store's answer to IRC's CHATHISTORY and the line protocol's /history). */
enum store_query_kind {
	STORE_LATEST,  /* the newest LIMIT lines after A (none: any) */
	STORE_BEFORE,  /* the newest LIMIT lines before A */
	STORE_AFTER,   /* the oldest LIMIT lines after A */
	STORE_AROUND,  /* LIMIT lines around A: as many before as after */
	STORE_BETWEEN, /* LIMIT lines between A and B (either way round;
			* from A's side) */
};

/* A point in a room's history. */
struct store_ref {
	enum { STORE_REF_NONE, STORE_REF_NO, STORE_REF_MSGID, STORE_REF_TIME } kind;
	int64_t value; /* line number, msgid, or time in ms */
};

struct store_query {
	enum store_query_kind kind;
	char room[64];          /* the room's name (any case) */
	struct store_ref a, b;
	unsigned limit;         /* 1..STORE_QUERY_MAX */
	/* The answer: lines oldest first (references held), or an error
	 * (-ENOENT: a reference matches no line; -EIO: the database). */
	struct hline **lines;
	size_t count;
	int error;
	/* Called on the store thread with the answer; owns Q from then. */
	void (*done)(struct store_query *q);
	/* The asker's, untouched by the store: where the answer goes, and
	 * what asked (a protocol's own number). */
	void *ctx;
	int fd;
	uint64_t conn_id;
	int tag;
};

/* A room registered to an account (made by someone logged in): its
 * founder, and the topic it keeps across restarts. */
#define STORE_TOPIC_MAX 300
struct store_room {
	char name[NAME_MAX_LEN + 1];     /* as made */
	char founder[NAME_MAX_LEN + 1];  /* the account */
	char topic[STORE_TOPIC_MAX + 1];
	char topic_by[NAME_MAX_LEN + 1];
	int64_t topic_time;              /* seconds since the epoch */
	int64_t created;
};

/* Queues ROOM (copied) to be written, after the lines queued before it.
 * Any thread. */
void store_save_room(struct store *st, const struct store_room *room);

/* FN for each registered room. Before store_start. 0, or -1 with *ERR. */
int store_load_rooms(struct store *st, void (*fn)(void *ctx, const struct store_room *room),
		     void *ctx, char **err);

/* In a cluster: the newest number of the cluster's stream whose line is
 * written (0: none). Before store_start. 0, or -1 with *ERR. */
int store_load_stream_seq(struct store *st, uint64_t *ret, char **err);

/* An admin's changes, written after what was queued before them. Any
 * thread. B (copied) is kept, in the place of a ban of the same mask. */
void store_save_ban(struct store *st, const struct ban *b);
/* The ban of MASK (as kept) is deleted. */
void store_delete_ban(struct store *st, const char *mask);
/* Every line of room NAME is deleted (its line numbers go on). */
void store_purge_room(struct store *st, const char *name);

/* FN for each ban kept, expired ones too. Before store_start. 0, or -1
 * with *ERR. */
int store_load_bans(struct store *st, void (*fn)(void *ctx, const struct ban *b), void *ctx,
		    char **err);

/* Queues Q after every line queued before it. Any thread. */
void store_query(struct store *st, struct store_query *q);

/* Frees Q's answer and Q. */
void store_query_free(struct store_query *q);

/* Lines written since start, and lines lost (a failed write, a full
 * queue). */
struct store_stats {
	uint64_t written;
	uint64_t dropped;
};
void store_get_stats(struct store *st, struct store_stats *ret);

/* Writes what is queued, answers what is asked, stops the thread (when
 * started), closes the file and frees ST. */
void store_close(struct store *st);

#endif
