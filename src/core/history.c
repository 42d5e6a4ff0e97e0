#include "autoconf.h"

#include "core/history.h"

#include <stdlib.h>

#include "base/util.h"

struct room_history *room_history_new(void)
{
	struct room_history *rh = xcalloc(1, sizeof(*rh));
	pthread_mutex_init(&rh->lock, NULL);
	return rh;
}

void room_history_free(struct room_history *rh)
{
	if (!rh)
		return;
	for (unsigned i = 0; i < rh->count; i++)
		hline_unref(rh->ring[(rh->start + i) % rh->cap]);
	free(rh->ring);
	pthread_mutex_destroy(&rh->lock);
	free(rh);
}

void room_history_clear(struct room_history *rh)
{
	pthread_mutex_lock(&rh->lock);
	for (unsigned i = 0; i < rh->count; i++)
		hline_unref(rh->ring[(rh->start + i) % rh->cap]);
	rh->count = 0;
	rh->start = 0;
	pthread_mutex_unlock(&rh->lock);
}

/* Makes room for CAP lines, keeping the newest. */
static void resize(struct room_history *rh, unsigned cap)
{
	struct hline **ring = cap ? xcalloc(cap, sizeof(*ring)) : NULL;
	unsigned drop = rh->count > cap ? rh->count - cap : 0;
	for (unsigned i = 0; i < rh->count; i++) {
		struct hline *l = rh->ring[(rh->start + i) % rh->cap];
		if (i < drop)
			hline_unref(l);
		else
			ring[i - drop] = l;
	}
	free(rh->ring);
	rh->ring = ring;
	rh->count -= drop;
	rh->start = 0;
	rh->cap = cap;
}

void room_history_add_locked(struct room_history *rh, struct hline *l, unsigned cap)
{
	l->no = ++rh->last_no;
	if (cap != rh->cap)
		resize(rh, cap);
	if (cap == 0)
		return;
	if (rh->count == rh->cap) {
		hline_unref(rh->ring[rh->start]);
		rh->ring[rh->start] = hline_ref(l);
		rh->start = (rh->start + 1) % rh->cap;
	} else {
		rh->ring[(rh->start + rh->count++) % rh->cap] = hline_ref(l);
	}
}

void room_history_snapshot_locked(struct room_history *rh, struct history_snapshot *ret)
{
	unsigned want = ret->want < CONFIG_HISTORY_REPLAY_MAX ? ret->want : CONFIG_HISTORY_REPLAY_MAX;
	unsigned n = rh->count < want ? rh->count : want;
	ret->count = n;
	for (unsigned i = 0; i < n; i++)
		ret->lines[i] = hline_ref(rh->ring[(rh->start + rh->count - n + i) % rh->cap]);
}

void room_history_load(struct room_history *rh, int64_t last_no, struct hline **lines, size_t n,
		       unsigned cap)
{
	pthread_mutex_lock(&rh->lock);
	if (cap != rh->cap)
		resize(rh, cap);
	for (size_t i = 0; i < n; i++) {
		if (cap && rh->count == rh->cap) {
			hline_unref(rh->ring[rh->start]);
			rh->ring[rh->start] = lines[i];
			rh->start = (rh->start + 1) % rh->cap;
		} else if (cap) {
			rh->ring[(rh->start + rh->count++) % rh->cap] = lines[i];
		} else {
			hline_unref(lines[i]);
		}
	}
	if (last_no > rh->last_no)
		rh->last_no = last_no;
	pthread_mutex_unlock(&rh->lock);
}

int64_t room_history_newest_ms(struct room_history *rh)
{
	pthread_mutex_lock(&rh->lock);
	int64_t t = rh->count ? rh->ring[(rh->start + rh->count - 1) % rh->cap]->time_ms : 0;
	pthread_mutex_unlock(&rh->lock);
	return t;
}

void history_snapshot_release(struct history_snapshot *snap)
{
	for (size_t i = 0; i < snap->count; i++)
		hline_unref(snap->lines[i]);
	snap->count = 0;
}
