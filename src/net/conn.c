#include "autoconf.h"

#include "net/conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "proto/codec.h"
#include "net/web.h"
#include "tls/stream.h"

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
	tls_stream_free(c->tls);
	web_conn_free(c->web);
	framer_reset(&c->framer);
	free(c->held);
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

/* Drops N bytes from the head of the queue, putting off the unreference
 * of each line dropped whole; the byte counts are the caller's. */
static void out_drop(struct conn *c, size_t n, struct out_cache *oc)
{
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

/* Points IOV at up to IOV_MAX pieces of the line queue, oldest first. */
static int queue_iov(const struct conn *c, struct iovec *iov, int iov_max, size_t *bytes)
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

/* ---- TLS: lines are encrypted as they are written ------------------------
 * The queue holds the shared lines as for everyone; a write first seals
 * the oldest of them into records, up to TLS_SEAL_AHEAD of ciphertext not
 * yet written, and writes that. out_bytes counts both, so the limits see
 * one queue. A leaving connection's last record is close_notify. */

#define TLS_SEAL_AHEAD (64 * 1024)

/* Counts in out_bytes what the stream wrote since the last count: records
 * sealed here, and what its handshake and alerts wrote meanwhile. */
static void tls_count(struct conn *c)
{
	size_t pending = tls_stream_pending(c->tls);
	c->out_bytes += pending - c->tls_counted;
	c->tls_counted = pending;
}

static int tls_seal_queue(struct conn *c, struct out_cache *oc)
{
	char record[TLS_RECORD_MAX];
	struct iovec iov[64];

	tls_count(c);
	if (c->out_count > 0 && tls_stream_pending(c->tls) < TLS_SEAL_AHEAD) {
		size_t queued = c->out_bytes - c->tls_counted; /* the lines' bytes */
		tls_stream_reserve(c->tls, queued < TLS_SEAL_AHEAD ? queued : TLS_SEAL_AHEAD);
	}
	while (c->out_count > 0 && tls_stream_pending(c->tls) < TLS_SEAL_AHEAD) {
		size_t bytes, n = 0;
		int pieces = queue_iov(c, iov, (int)ARRAY_SIZE(iov), &bytes);
		const char *plain = iov[0].iov_base;
		if (pieces == 1 || iov[0].iov_len >= TLS_RECORD_MAX) {
			/* One piece: sealed where it is. */
			n = iov[0].iov_len < TLS_RECORD_MAX ? iov[0].iov_len : TLS_RECORD_MAX;
		} else {
			for (int i = 0; i < pieces && n < TLS_RECORD_MAX; i++) {
				size_t take = iov[i].iov_len < TLS_RECORD_MAX - n ? iov[i].iov_len
										 : TLS_RECORD_MAX - n;
				memcpy(record + n, iov[i].iov_base, take);
				n += take;
			}
			plain = record;
		}
		if (!tls_stream_seal(c->tls, plain, n))
			return -EPROTO;
		out_drop(c, n, oc);
		c->out_bytes -= n;
		tls_count(c);
	}
	if (c->out_count == 0 && c->state == CONN_DRAINING) {
		tls_stream_close(c->tls);
		tls_count(c);
	}
	return 0;
}

int conn_output_iov(struct conn *c, struct iovec *iov, int iov_max, size_t *bytes,
		    struct out_cache *oc)
{
	if (!c->tls)
		return queue_iov(c, iov, iov_max, bytes);
	int r = tls_seal_queue(c, oc);
	if (r < 0)
		return r;
	const char *data;
	*bytes = tls_stream_output(c->tls, &data);
	if (*bytes == 0 || iov_max < 1)
		return 0;
	iov[0].iov_base = (void *)data;
	iov[0].iov_len = *bytes;
	return 1;
}

bool conn_written(struct conn *c, size_t n, struct out_cache *oc)
{
	c->out_bytes -= n;
	c->written_total += n;
	if (c->tls) {
		tls_stream_written(c->tls, n);
		c->tls_counted -= n;
	} else
		out_drop(c, n, oc);
	if (c->out_count > 0 || (c->tls && tls_stream_pending(c->tls) > 0))
		return false;
	/* Empty: the ring goes back to the cache (or, grown by a burst, to
	 * the allocator), so an idle connection holds no output buffer. */
	if (c->out && c->out_cap == OUT_MIN_CAP && oc->count < RING_CACHE_MAX)
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
		int n = conn_output_iov(c, iov, iov_max, &bytes, oc);
		if (n < 0)
			return n;
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
