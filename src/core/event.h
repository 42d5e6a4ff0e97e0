/* What happens in the chat, as the core tells it: who did what, where. The
 * core knows no wire format; each protocol encodes an event into the bytes
 * its clients read (proto/), once, and that one msg is shared by every
 * recipient of that protocol. */
#ifndef CHATD_CORE_EVENT_H
#define CHATD_CORE_EVENT_H

#include <stddef.h>

#include "core/msg.h"

enum chat_event_kind {
	CHAT_ENTERED,  /* nick connected, into room; online */
	CHAT_LEFT,     /* nick disconnected from room; online; text: farewell (may be empty) */
	CHAT_JOINED,   /* nick came into room from another */
	CHAT_WENT,     /* nick left room for other (a room name) */
	CHAT_SAID,     /* nick said text in room */
	CHAT_ACTION,   /* nick did text in room (/me) */
	CHAT_RENAMED,  /* nick is now known as other, seen in room */
	CHAT_PRIVATE,  /* nick said text to other alone */
	CHAT_NOTICE,   /* the server says text (MOTD lines, shutdown) */
	CHAT_CLOSING,  /* the server closes this client's connection, for text */
	CHAT_SLOW_DOWN,/* this client sends more than rate lines a second */
	CHAT_MISSED,   /* count arrivals and departures in room were not told:
			* more than rate a second */
};

struct chat_event {
	enum chat_event_kind kind;
	const char *nick;
	const char *room;
	const char *other;
	const char *text;  /* cleaned (text_clean), not NUL-terminated */
	size_t text_len;
	int online;        /* everyone connected, at the moment of the event */
	unsigned count;
	int rate;
};

/* The protocols chatd speaks; a session speaks one. */
enum proto {
	PROTO_LINE,    /* chatd's own lines (docs/protocol.md) */
	PROTO_IRC,     /* IRC (docs/irc.md) */
	PROTO_COUNT,
};

/* EV as PROTO's clients read it: one msg (one or more lines, with their
 * line ends) with one reference for the caller. Implemented by each
 * protocol in proto/. */
struct msg *event_encode(enum proto proto, const struct chat_event *ev);

#endif
