#include "autoconf.h"

#include "net/conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "proto/codec.h"

#define OUT_MIN_CAP 16

struct conn *conn_new(int fd, uint64_t id, const char *peer)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->state = CONN_NEW;
	c->s.id = id;
	snprintf(c->s.peer, sizeof(c->s.peer), "%s", peer);
	c->s.member.fd = fd;
	c->s.member.conn_id = id;
	return c;
}

static void out_drop_all(struct conn *c)
{
	for (uint32_t i = 0; i < c->out_count; i++)
		msg_unref(c->out[(c->out_head + i) & (c->out_cap - 1)]);
	free(c->out);
	c->out = NULL;
	c->out_head = c->out_count = c->out_cap = 0;
	c->out_offset = c->out_bytes = 0;
}

void conn_free(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	out_drop_all(c);
	framer_reset(&c->framer);
	codec_free(&c->s);
	free(c);
}

void out_cache_clear(struct out_cache *oc)
{
	while (oc->count > 0)
		free(oc->rings[--oc->count]);
	msg_release_clear(&oc->released);
}

static void out_grow(struct conn *c, struct out_cache *oc)
{
	uint32_t cap = c->out_cap ? c->out_cap * 2 : OUT_MIN_CAP;
	struct msg **out;

	if (cap == OUT_MIN_CAP && oc->count > 0)
		out = oc->rings[--oc->count];
	else
		out = xmalloc(cap * sizeof(*out));

	for (uint32_t i = 0; i < c->out_count; i++)
		out[i] = c->out[(c->out_head + i) & (c->out_cap - 1)];
	free(c->out);
	c->out = out;
	c->out_cap = cap;
	c->out_head = 0;
}

bool conn_queue(struct conn *c, struct msg *m, size_t cap, struct out_cache *oc)
{
	if (c->out_bytes + m->len > cap)
		return false;
	if (c->out_count == c->out_cap)
		out_grow(c, oc);
	c->out[(c->out_head + c->out_count) & (c->out_cap - 1)] = m;
	c->out_count++;
	c->out_bytes += m->len;
	return true;
}

size_t conn_attempted(struct conn *c, uint64_t epoch)
{
	if (c->mark_epoch != epoch) {
		c->prev_left = c->mark_left;
		c->prev_written = c->mark_written;
	}
	size_t since = c->written_total - c->prev_written;
	size_t old = c->prev_left > since ? c->prev_left - since : 0;
	if (old > c->out_bytes)
		old = c->out_bytes;
	c->mark_left = c->out_bytes;
	c->mark_written = c->written_total;
	c->mark_epoch = epoch;
	return old;
}

/* Drops N bytes of written output from the head of the queue. */
static void out_consume(struct conn *c, size_t n, struct out_cache *oc)
{
	c->out_bytes -= n;
	c->written_total += n;
	while (n > 0) {
		struct msg *m = c->out[c->out_head];
		size_t left = m->len - c->out_offset;
		if (n < left) {
			c->out_offset += n;
			return;
		}
		n -= left;
		msg_release_add(&oc->released, m);
		c->out_offset = 0;
		c->out_head = (c->out_head + 1) & (c->out_cap - 1);
		c->out_count--;
	}
}

int conn_output_iov(const struct conn *c, struct iovec *iov, int iov_max, size_t *bytes)
{
	int n = 0;
	size_t total = 0;
	for (uint32_t i = 0; i < c->out_count && n < iov_max; i++) {
		struct msg *m = c->out[(c->out_head + i) & (c->out_cap - 1)];
		size_t skip = i == 0 ? c->out_offset : 0;
		iov[n].iov_base = m->data + skip;
		iov[n].iov_len = m->len - skip;
		total += iov[n].iov_len;
		n++;
	}
	*bytes = total;
	return n;
}

bool conn_written(struct conn *c, size_t n, struct out_cache *oc)
{
	out_consume(c, n, oc);
	if (c->out_count > 0)
		return false;
	/* Empty: the ring goes back to the cache (or, grown by a burst, to
	 * the allocator), so an idle connection holds no output buffer. */
	if (c->out_cap == OUT_MIN_CAP && oc->count < RING_CACHE_MAX)
		oc->rings[oc->count++] = c->out;
	else
		free(c->out);
	c->out = NULL;
	c->out_cap = c->out_head = 0;
	return true;
}

int conn_flush(struct conn *c, struct iovec *iov, int iov_max, struct out_cache *oc)
{
	for (;;) {
		size_t bytes;
		int n = conn_output_iov(c, iov, iov_max, &bytes);
		ssize_t w = n > 0 ? writev(c->fd, iov, n) : 0;
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		if (conn_written(c, (size_t)w, oc))
			return 1;
	}
}
