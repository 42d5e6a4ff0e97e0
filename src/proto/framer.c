#include "autoconf.h"

#include "proto/framer.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* A line may arrive as "text\r\n"; the \r is not part of its length. */
static size_t strip_cr(const char *line, size_t len)
{
	return len > 0 && line[len - 1] == '\r' ? len - 1 : len;
}

bool framer_has_partial(const struct framer *f)
{
	return f->partial_len > 0 || f->discarding;
}

bool framer_partial_is_new(const struct framer *f)
{
	return f->partial_new;
}

void framer_reset(struct framer *f)
{
	free(f->partial);
	*f = (struct framer){ 0 };
}

/* Callers ensure the partial never exceeds max_line + 1 bytes, so neither
 * does its buffer. */
static void keep_partial(struct framer *f, const char *data, size_t len, size_t max_line)
{
	size_t need = f->partial_len + len;
	if (need > f->partial_cap) {
		size_t cap = f->partial_cap ? f->partial_cap : 128;
		while (cap < need)
			cap *= 2;
		if (cap > max_line + 1)
			cap = max_line + 1;
		f->partial = xrealloc(f->partial, cap);
		f->partial_cap = cap;
	}
	memcpy(f->partial + f->partial_len, data, len);
	f->partial_len = need;
}

static bool dropped(const struct framer_handler *h, void *ctx, size_t bytes)
{
	return !h->dropped || bytes == 0 || h->dropped(ctx, bytes);
}

/* Starts dropping an over-long line of which CHUNK more bytes were read;
 * the partial buffer goes right away so an attacker's endless line costs
 * no memory. */
static bool start_discarding(struct framer *f, size_t chunk, const struct framer_handler *h,
			     void *ctx)
{
	size_t bytes = f->partial_len + chunk;
	free(f->partial);
	f->partial = NULL;
	f->partial_len = f->partial_cap = 0;
	f->discarding = true;
	return h->too_long(ctx) && dropped(h, ctx, bytes);
}

/* A handler stopped the feed after the LEN bytes at DATA (of the feed
 * that began at START): what was taken, in f->taken. */
static bool stopped(struct framer *f, const char *start, const char *data, size_t len)
{
	f->taken = (size_t)(data - start) + len;
	return false;
}

bool framer_feed(struct framer *f, const char *data, size_t len, size_t max_line,
		 const struct framer_handler *h, void *ctx)
{
	const char *start = data;
	f->partial_new = !framer_has_partial(f);
	f->taken = len;
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t chunk = nl ? (size_t)(nl - data) : len;

		if (f->discarding) {
			if (!dropped(h, ctx, nl ? chunk + 1 : chunk))
				return stopped(f, start, data, nl ? chunk + 1 : chunk);
			if (!nl)
				return true;
			f->discarding = false;
		} else if (!nl) {
			/* max_line + 1 bytes fit only if the last is the \r of a
			 * "\r\n" still to come. */
			size_t total = f->partial_len + chunk;
			if (total > max_line + 1 || (total == max_line + 1 && data[chunk - 1] != '\r'))
				return start_discarding(f, chunk, h, ctx) ||
				       stopped(f, start, data, chunk);
			keep_partial(f, data, chunk, max_line);
			return true;
		} else if (f->partial_len == 0) {
			size_t n = strip_cr(data, chunk);
			bool go = n > max_line ? h->too_long(ctx) && dropped(h, ctx, chunk + 1)
					       : h->line(ctx, data, n);
			if (!go)
				return stopped(f, start, data, chunk + 1);
		} else {
			bool go;
			if (f->partial_len + chunk > max_line + 1) {
				go = h->too_long(ctx) && dropped(h, ctx, f->partial_len + chunk + 1);
			} else {
				keep_partial(f, data, chunk, max_line);
				size_t n = strip_cr(f->partial, f->partial_len);
				go = n > max_line ? h->too_long(ctx) && dropped(h, ctx, f->partial_len + 1)
						  : h->line(ctx, f->partial, n);
			}
			/* The line is done either way; its buffer goes with it. */
			free(f->partial);
			f->partial = NULL;
			f->partial_len = f->partial_cap = 0;
			if (!go)
				return stopped(f, start, data, chunk + 1);
		}
		data += chunk + 1;
		len -= chunk + 1;
		f->partial_new = true; /* a line ended: what is left began after it */
	}
	return true;
}
