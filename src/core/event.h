/* What happens in the chat, as the core tells it: who did what, where. The
 * core knows no wire format; each protocol encodes an event into the bytes
 * its clients read (proto/), once, and that one msg is shared by every
 * recipient of that protocol. */
#ifndef CHATD_CORE_EVENT_H
#define CHATD_CORE_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/msg.h"

enum chat_event_kind {
	CHAT_ENTERED,  /* nick connected, into room (line protocol); online */
	CHAT_LEFT,     /* nick disconnected, was in room; online; text: farewell
			* (may be empty); told once to each who shared a room */
	CHAT_JOINED,   /* nick came into room */
	CHAT_WENT,     /* nick left room for other (a room name) */
	CHAT_PARTED,   /* nick left room; text: why (may be empty) */
	CHAT_KICKED,   /* nick put other out of room; text: why (may be empty) */
	CHAT_TOPIC,    /* nick set room's topic to text (empty: cleared) */
	CHAT_MODE,     /* nick set room's mode text ("+o", "-t") [for other] */
	CHAT_SAID,     /* nick said text in room (notice: as a notice) */
	CHAT_ACTION,   /* nick did text in room (/me) */
	CHAT_RENAMED,  /* nick is now known as other; told once to each who
			* shares a room, and to nick */
	CHAT_PRIVATE,  /* nick said text to other alone (notice, action: how) */
	CHAT_NOTICE,   /* the server says text (shutdown) */
	CHAT_CLOSING,  /* the server closes this client's connection, for text */
	CHAT_SLOW_DOWN,/* this client sends more than rate lines a second */
	CHAT_MISSED,   /* count arrivals and departures in room were not told:
			* more than rate a second */
	CHAT_GUARD,    /* nick is a registered account this client is not logged
			* in to: it has rate seconds to identify */
	CHAT_GUARD_EXPIRED, /* it did not identify for nick within rate seconds,
			     * and is now other */
	CHAT_NICK_TAKEN, /* nick is another server's (a cluster's): this client
			  * is now other */
};

struct chat_event {
	enum chat_event_kind kind;
	const char *nick;  /* who did it, and their user@host (IRC's prefix) */
	const char *user;
	const char *host;
	const char *room;
	const char *other;
	const char *text;  /* cleaned (text_clean_chat), not NUL-terminated */
	size_t text_len;
	int online;        /* everyone connected, at the moment of the event */
	unsigned count;
	int rate;
	bool notice;       /* CHAT_SAID, CHAT_PRIVATE: a notice, not a message */
	bool action;       /* CHAT_PRIVATE: an action (/me) */
	bool formatting;   /* text holds IRC formatting (text_is_formatting) */
	uint64_t id;       /* unique for the server's life (IRC msgid); 0: none */
	uint64_t stream_seq; /* a line of a cluster's stream: its number there */
	const char *server; /* the server's name ([irc] server_name) */
	int64_t time_ms;   /* when, in ms since the epoch (IRC server-time) */
	const char *batch; /* IRC: the batch it is sent in (a line of history
			    * replayed to one client); NULL: none */
};

/* The protocols chatd speaks; a session speaks one. */
enum proto {
	PROTO_LINE,    /* chatd's own lines (docs/protocol.md) */
	PROTO_IRC,     /* IRC (docs/irc.md), over a stream or a WebSocket */
	PROTO_WEB,     /* the web port: HTTP, until /ws makes it IRC over a
			* WebSocket (docs/web.md) */
	PROTO_COUNT,
};

/* How IRC lines travel: as a stream of lines, or one per WebSocket
 * message, in text or binary frames (the IRCv3 WebSocket subprotocols). */
enum irc_framing {
	FRAMING_STREAM,
	FRAMING_WS_TEXT,
	FRAMING_WS_BINARY,
};

/* The bytes a session reads: its protocol, and for IRC the message tags
 * it asked for and its framing. Every event is encoded at most once per
 * format present among its recipients, and shared by all of them. */
enum format {
	FORMAT_LINE,
	FORMAT_IRC,             /* + tag bits + 4 * framing: */
	FORMAT_IRC_TIME,        /* IRCv3 server-time */
	FORMAT_IRC_MSGID,       /* IRCv3 message-tags: msgid */
	FORMAT_IRC_TIME_MSGID,
	FORMAT_COUNT = FORMAT_IRC + 12,
};

#define FORMAT_IRC_TIME_BIT 1
#define FORMAT_IRC_MSGID_BIT 2
#define FORMAT_IRC_TAG_BITS 3

static inline enum format format_irc(unsigned tag_bits, enum irc_framing framing)
{
	return (enum format)(FORMAT_IRC + (tag_bits & FORMAT_IRC_TAG_BITS) + 4 * (unsigned)framing);
}

/* Of an IRC format (not FORMAT_LINE): its tags, and its framing. */
static inline unsigned format_tags(enum format f)
{
	return (unsigned)(f - FORMAT_IRC) & FORMAT_IRC_TAG_BITS;
}

static inline enum irc_framing format_framing(enum format f)
{
	return (enum irc_framing)((unsigned)(f - FORMAT_IRC) >> 2);
}

/* EV as clients reading FORMAT read it: one msg (one or more lines, with
 * their line ends) with one reference for the caller. Implemented by each
 * protocol in proto/. */
struct msg *event_encode(enum format format, const struct chat_event *ev);

#endif
