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

struct msg *msg_printf(const char *fmt, ...)
{
	va_list ap;
	char small[256];

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	struct msg *m = msg_new((size_t)n + 1);
	if ((size_t)n < sizeof(small)) {
		memcpy(m->data, small, (size_t)n);
	} else {
		va_start(ap, fmt);
		vsnprintf(m->data, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	m->len = (uint32_t)n;
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
