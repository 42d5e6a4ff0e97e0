#include "autoconf.h"

#include "core/msg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct msg *msg_new(size_t cap)
{
	struct msg *m = xmalloc(sizeof(*m) + cap);
	atomic_init(&m->refs, 1);
	m->len = 0;
	m->cap = (uint32_t)cap;
	m->flags = 0;
	return m;
}

struct msg *msg_vprintf(const char *fmt, va_list ap)
{
	char small[256];
	va_list again;

	va_copy(again, ap);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	if (n < 0)
		n = 0;
	/* One spare byte: callers often append the "
" (see chat.c reply). */
	struct msg *m = msg_new((size_t)n + 1);
	if ((size_t)n < sizeof(small))
		memcpy(m->data, small, (size_t)n);
	else
		vsnprintf(m->data, (size_t)n + 1, fmt, again);
	va_end(again);
	m->len = (uint32_t)n;
	return m;
}

struct msg *msg_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	struct msg *m = msg_vprintf(fmt, ap);
	va_end(ap);
	return m;
}

struct msg *msg_append(struct msg *m, const char *data, size_t len)
{
	if ((size_t)m->len + len > m->cap) {
		size_t cap = m->cap ? m->cap : 64;
		while (cap < (size_t)m->len + len)
			cap *= 2;
		m = xrealloc(m, sizeof(*m) + cap);
		m->cap = (uint32_t)cap;
	}
	memcpy(m->data + m->len, data, len);
	m->len += (uint32_t)len;
	return m;
}

struct msg *msg_trim(struct msg *m)
{
	if (m->cap > m->len) {
		m = xrealloc(m, sizeof(*m) + m->len);
		m->cap = m->len;
	}
	return m;
}

/* Drops N references; the last owner frees. acq_rel: it must see every
 * other owner's reads finished before it frees the bytes. */
static void msg_drop(struct msg *m, unsigned n)
{
	if (atomic_fetch_sub_explicit(&m->refs, n, memory_order_acq_rel) == n)
		free(m);
}

void msg_unref(struct msg *m)
{
	msg_drop(m, 1);
}

#define RELEASE_MIN_CAP 256
#define RELEASE_MAX_CAP 65536 /* beyond this, flush rather than grow */

static size_t release_hash(const struct msg *m, size_t cap)
{
	/* Fibonacci hashing of the address; malloc aligns to 16. */
	return (size_t)(((uintptr_t)m >> 4) * 0x9E3779B97F4A7C15ULL >> 16) & (cap - 1);
}

static void release_grow(struct msg_release *r)
{
	struct msg_release_slot *old = r->slots;
	size_t *old_used = r->used, old_count = r->used_count, old_cap = r->cap;

	r->cap = old_cap ? old_cap * 2 : RELEASE_MIN_CAP;
	r->slots = xcalloc(r->cap, sizeof(*r->slots));
	r->used = xmalloc(r->cap / 2 * sizeof(*r->used));
	r->used_count = 0;
	for (size_t i = 0; i < old_count; i++) {
		struct msg_release_slot *from = &old[old_used[i]];
		size_t at = release_hash(from->msg, r->cap);
		while (r->slots[at].msg)
			at = (at + 1) & (r->cap - 1);
		r->slots[at] = *from;
		r->used[r->used_count++] = at;
	}
	free(old);
	free(old_used);
}

void msg_release_add(struct msg_release *r, struct msg *m)
{
	if (r->used_count >= r->cap / 2) {
		if (r->cap >= RELEASE_MAX_CAP)
			msg_release_flush(r);
		else
			release_grow(r);
	}
	size_t at = release_hash(m, r->cap);
	while (r->slots[at].msg && r->slots[at].msg != m)
		at = (at + 1) & (r->cap - 1);
	if (!r->slots[at].msg) {
		r->slots[at].msg = m;
		r->used[r->used_count++] = at;
	}
	r->slots[at].count++;
}

void msg_release_flush(struct msg_release *r)
{
	for (size_t i = 0; i < r->used_count; i++) {
		struct msg_release_slot *slot = &r->slots[r->used[i]];
		msg_drop(slot->msg, slot->count);
		slot->msg = NULL;
		slot->count = 0;
	}
	r->used_count = 0;
}

void msg_release_clear(struct msg_release *r)
{
	msg_release_flush(r);
	free(r->slots);
	free(r->used);
	*r = (struct msg_release){ 0 };
}
