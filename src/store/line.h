/* A line of a room's history: what was said there, by whom, when. Made
 * once by the worker of the one who said it, then never changed, and
 * shared by reference between the room's recent lines in memory
 * (core/history.c), the store thread that writes it, and replies that
 * show it. */
#ifndef CHATD_STORE_LINE_H
#define CHATD_STORE_LINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What kind of line; the numbers are the database's (never change them). */
enum hline_kind {
	HLINE_SAID = 0,   /* a message */
	HLINE_ACTION = 1, /* /me, CTCP ACTION */
	HLINE_NOTICE = 2, /* an IRC NOTICE to the channel */
	HLINE_KIND_COUNT
};

struct hline {
	atomic_int refs;
	int64_t no;          /* the room's line number: 1, 2, ... for its whole life */
	int64_t time_ms;     /* when, in ms since the epoch */
	uint64_t msgid;      /* IRC's msgid (struct chat_event.id) */
	uint64_t stream_seq; /* in a cluster, its number in the stream (0: said
			      * here while the stream was away); set before it
			      * is shared */
	enum hline_kind kind;
	bool formatting;     /* the text holds IRC formatting */
	const char *room;    /* the room's name as made, NUL-terminated, in data */
	const char *nick;
	const char *user;
	const char *host;
	const char *text;    /* cleaned, NUL-terminated too */
	size_t text_len;
	char data[];
};

/* A new line with one reference; the strings are copied. */
struct hline *hline_new(const char *room, int64_t no, int64_t time_ms, uint64_t msgid,
			enum hline_kind kind, const char *nick, const char *user,
			const char *host, const char *text, size_t text_len, bool formatting);

static inline struct hline *hline_ref(struct hline *l)
{
	atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
	return l;
}

void hline_unref(struct hline *l);

/* Unrefs N lines of an array, then frees the array. */
void hline_array_free(struct hline **lines, size_t n);

#endif
