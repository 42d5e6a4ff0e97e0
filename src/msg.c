#include "autoconf.h"

#include "msg.h"

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

void msg_unref(struct msg *m)
{
	/* acq_rel: the last owner must see every other owner's reads finished
	 * before it frees the bytes. */
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
		free(m);
}
