/* Splits a byte stream into lines, however the reads cut it.
 *
 * Complete lines inside the caller's read buffer are handed over in place,
 * without a copy; only a partial line left at the end of a read is copied
 * into the framer's own buffer, which exists only while such a partial line
 * does (an idle connection holds no buffer). */
#ifndef CHATD_FRAMER_H
#define CHATD_FRAMER_H

#include <stdbool.h>
#include <stddef.h>

struct framer {
	char *partial;       /* bytes of an unfinished line; NULL when none */
	size_t partial_len;
	size_t partial_cap;
	bool discarding;     /* inside an over-long line: drop bytes up to its newline */
	bool partial_new;    /* the unfinished line began in the last feed */
	size_t taken;        /* of the last feed, the bytes looked at: all of them,
			      * or those up to the line whose handler stopped it */
};

struct framer_handler {
	/* A complete line without its "\n" or "\r\n". Return false to stop
	 * framing (e.g. the connection is closing); the rest is not looked at. */
	bool (*line)(void *ctx, const char *line, size_t len);
	/* A line longer than max_line bytes was dropped; called once per such
	 * line, as soon as it is known to be too long. Return false to stop. */
	bool (*too_long)(void *ctx);
	/* Optional (may be NULL): BYTES more of over-long lines were dropped,
	 * counted as they are read, so that a caller can charge every byte a
	 * client sends to some limit. Return false to stop. */
	bool (*dropped)(void *ctx, size_t bytes);
};

/* Feeds LEN bytes. Lines longer than MAX_LINE (not counting "\r\n") are
 * dropped. Returns false when a handler stopped it (f->taken says where:
 * the bytes after it were not looked at, and may be fed again later). */
bool framer_feed(struct framer *f, const char *data, size_t len, size_t max_line,
		 const struct framer_handler *handler, void *ctx);

/* True while a partial line is buffered (for a stall timeout). */
bool framer_has_partial(const struct framer *f);

/* True when the partial line (if any) began in the last feed: a stall
 * timeout counts from there, not from a line the feed finished. */
bool framer_partial_is_new(const struct framer *f);

/* Frees the partial buffer, back to the idle state. */
void framer_reset(struct framer *f);

#endif
