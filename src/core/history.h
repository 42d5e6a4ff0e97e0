/* A room's recent history in memory: its newest lines, as many as
 * [history] replay shows on joining, numbered in the order they were said,
 * which is also the order of the room's sequence numbers (rooms.h). The
 * lines are shared with the store thread, which keeps more of them
 * (store/store.h).
 *
 * A room's history outlives the room (which goes when its last member
 * leaves): it belongs to the registry (rooms.c), by the room's name. A
 * line is added, and a joiner's arrival numbered, under the history's own
 * lock, so every line is either in what a joiner is shown or sent to it
 * live, never both or neither. */
#ifndef CHATD_CORE_HISTORY_H
#define CHATD_CORE_HISTORY_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "base/text.h"
#include "store/line.h"

struct room_history {
	pthread_mutex_t lock;
	int64_t last_no;       /* the newest line's number (0: none yet) */
	struct hline **ring;   /* the newest lines, up to cap */
	unsigned cap, start, count;
};

/* What a joiner is shown: up to CONFIG_HISTORY_REPLAY_MAX lines, oldest
 * first, each with a reference. */
struct history_snapshot {
	unsigned want;         /* set by the caller: how many (0: none) */
	size_t count;
	struct hline *lines[CONFIG_HISTORY_REPLAY_MAX];
};

struct room_history *room_history_new(void);
void room_history_free(struct room_history *rh);

/* Lock held: numbers L as the room's next line and keeps it (a reference
 * of its own) among the newest CAP. */
void room_history_add_locked(struct room_history *rh, struct hline *l, unsigned cap);

/* Lock held: up to RET->want of the newest lines into RET. */
void room_history_snapshot_locked(struct room_history *rh, struct history_snapshot *ret);

/* At start: the room's newest lines from the store (their references are
 * taken) and its last number. */
void room_history_load(struct room_history *rh, int64_t last_no, struct hline **lines, size_t n,
		       unsigned cap);

void history_snapshot_release(struct history_snapshot *snap);

/* Forgets the lines in memory (an admin's purge); their numbers go on. */
void room_history_clear(struct room_history *rh);

/* When its newest line was said (ms since the epoch); 0: it has none in
 * memory. */
int64_t room_history_newest_ms(struct room_history *rh);

#endif
