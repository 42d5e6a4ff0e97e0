#include "autoconf.h"

#include "net/handoff.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

int inbox_init(struct inbox *in, int index)
{
	memset(in, 0, sizeof(*in));
	pthread_mutex_init(&in->lock, NULL);
	in->index = index;
	in->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return in->wake_fd < 0 ? -errno : 0;
}

void inbox_destroy(struct inbox *in, void (*release)(struct event *ev, void *ctx), void *ctx)
{
	for (size_t i = 0; i < in->count; i++)
		release(&in->items[i], ctx);
	free(in->items);
	free(in->taken);
	if (in->wake_fd >= 0)
		close(in->wake_fd);
	pthread_mutex_destroy(&in->lock);
	memset(in, 0, sizeof(*in));
	in->wake_fd = -1;
}

/* Appends N events to IN, whose lock the caller holds; true when it was
 * empty, so its worker may be asleep and must be woken. */
static bool append_locked(struct inbox *in, const struct event *evs, size_t n)
{
	if (in->count + n > in->cap) {
		size_t cap = in->cap ? in->cap : 64;
		while (cap < in->count + n)
			cap *= 2;
		in->items = xrealloc(in->items, cap * sizeof(*evs));
		in->cap = cap;
	}
	memcpy(in->items + in->count, evs, n * sizeof(*evs));
	bool was_empty = in->count == 0;
	in->count += n;
	if (was_empty)
		atomic_store_explicit(&in->pending, true, memory_order_release);
	return was_empty;
}

/* Only the first events of a batch need to wake the worker. */
static void wake(struct inbox *in)
{
	uint64_t one = 1;
	if (write(in->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_errno(LOG_ERR, errno, "worker %d: cannot wake", in->index);
}

void inbox_post(struct inbox *in, const struct event *evs, size_t n)
{
	pthread_mutex_lock(&in->lock);
	bool was_empty = append_locked(in, evs, n);
	pthread_mutex_unlock(&in->lock);
	if (was_empty)
		wake(in);
}

bool inbox_pending(struct inbox *in)
{
	return atomic_load_explicit(&in->pending, memory_order_acquire);
}

struct event *inbox_take(struct inbox *in, size_t *ret_n)
{
	uint64_t count;
	if (read(in->wake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_errno(LOG_ERR, errno, "worker %d: wake fd", in->index);

	/* Take the whole batch; posters go on filling the other vector. */
	pthread_mutex_lock(&in->lock);
	struct event *events = in->items;
	size_t cap = in->cap;
	*ret_n = in->count;
	in->items = in->taken;
	in->cap = in->taken_cap;
	in->count = 0;
	atomic_store_explicit(&in->pending, false, memory_order_relaxed);
	pthread_mutex_unlock(&in->lock);
	in->taken = events;
	in->taken_cap = cap;
	return events;
}

void outboxes_init(struct outboxes *ob, int count, int owner)
{
	memset(ob, 0, sizeof(*ob));
	ob->boxes = xcalloc((size_t)count, sizeof(*ob->boxes));
	ob->count = count;
	ob->owner = owner;
}

void outboxes_destroy(struct outboxes *ob, void (*release)(struct event *ev, void *ctx), void *ctx)
{
	for (int i = 0; ob->boxes && i < ob->count; i++) {
		for (size_t k = 0; k < ob->boxes[i].count; k++)
			release(&ob->boxes[i].items[k], ctx);
		free(ob->boxes[i].items);
	}
	free(ob->boxes);
	memset(ob, 0, sizeof(*ob));
}

void outboxes_add(struct outboxes *ob, int target, struct event ev)
{
	struct outbox *o = &ob->boxes[target];
	if (o->count == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 64;
		o->items = xrealloc(o->items, o->cap * sizeof(ev));
	}
	o->items[o->count++] = ev;
}

void outboxes_flush(struct outboxes *ob, struct inbox *const *inboxes)
{
	for (int i = 0; i < ob->count; i++) {
		struct outbox *o = &ob->boxes[i];
		if (o->count) {
			pthread_mutex_lock(&inboxes[i]->lock);
			o->needs_wake = append_locked(inboxes[i], o->items, o->count);
			if (ob->after_append)
				ob->after_append(i, ob->hook_ctx);
		}
	}
	for (int i = 0; i < ob->count; i++) {
		struct outbox *o = &ob->boxes[i];
		if (o->count) {
			pthread_mutex_unlock(&inboxes[i]->lock);
			if (o->needs_wake)
				wake(inboxes[i]);
			o->count = 0;
		}
	}
}
