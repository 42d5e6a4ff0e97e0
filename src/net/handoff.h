/* Handing work from one thread to a worker thread: each worker has an
 * inbox (a mutex-guarded vector of events, woken through an eventfd), and
 * each worker gathers what it has for the others over one loop iteration in
 * its outboxes, one per other worker, and hands them over in one go.
 *
 * The ordering guarantee: outboxes_flush() locks every inbox it adds to (in
 * index order, so two workers flushing at once cannot deadlock), appends to
 * all of them, and only then unlocks them. So nobody can take a line from
 * one inbox before it is in all of them: an answer to a line, posted from a
 * worker that took the line, always lands behind that line in every inbox.
 * Filled one after the other, an answer could overtake the line whenever
 * the flushing thread lost the CPU in between. */
#ifndef CHATD_NET_HANDOFF_H
#define CHATD_NET_HANDOFF_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "net/event.h"

struct inbox {
	pthread_mutex_t lock;
	struct event *items;   /* posted, not yet taken; guarded by lock */
	size_t count, cap;
	atomic_bool pending;   /* count > 0, readable without the lock */
	int wake_fd;           /* an eventfd, readable once something was posted */
	int index;             /* the worker's, for the log */
	struct event *taken;   /* the vector last taken, owned by the taking thread */
	size_t taken_cap;
};

/* 0 or -errno (the eventfd). */
int inbox_init(struct inbox *in, int index);

/* Frees the vectors; what was posted and never taken is given to RELEASE
 * first. */
void inbox_destroy(struct inbox *in, void (*release)(struct event *ev, void *ctx), void *ctx);

/* From any thread: appends N events and wakes the inbox's worker if it may
 * be asleep (the inbox was empty). */
void inbox_post(struct inbox *in, const struct event *evs, size_t n);

/* Whether anything was posted and not taken, without locking. */
bool inbox_pending(struct inbox *in);

/* From the inbox's worker: takes everything posted so far, oldest first,
 * and clears the wake-up. The events stay valid until the next take. */
struct event *inbox_take(struct inbox *in, size_t *ret_n);

/* One worker's events for the others, gathered over a loop iteration. */
struct outboxes {
	struct outbox {
		struct event *items;
		size_t count, cap;
		bool needs_wake;  /* its inbox was empty when filled */
	} *boxes;             /* [count], one per worker, the owner's unused */
	int count;
	int owner;            /* the worker whose outboxes these are */
	/* Tests only: called after the events for TARGET were appended, with
	 * every inbox of this flush still locked. NULL in the daemon. */
	void (*after_append)(int target, void *ctx);
	void *hook_ctx;
};

void outboxes_init(struct outboxes *ob, int count, int owner);

/* Frees the boxes; events never handed over are given to RELEASE. */
void outboxes_destroy(struct outboxes *ob, void (*release)(struct event *ev, void *ctx), void *ctx);

/* Keeps EV for worker TARGET until the next flush. */
void outboxes_add(struct outboxes *ob, int target, struct event ev);

/* Hands everything kept over to INBOXES[target], all at once (see the
 * top of this file), and wakes those that may be asleep. */
void outboxes_flush(struct outboxes *ob, struct inbox *const *inboxes);

#endif
