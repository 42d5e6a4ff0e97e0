/* What chatd nodes tell each other through NATS, as bytes: a message of
 * the room stream holds one or more records (a line said in a room, by
 * whom, from which node), each encoded once by the node where it was
 * said and decoded by every node, that one included. No I/O here.
 *
 * A record: a version byte, a kind byte, a flags byte, a change byte,
 * four 64-bit numbers (big-endian), then the node, room, nick, user, host, other,
 * realname, account and actor (a length byte each), the rooms and the text
 * (a 32-bit length each). Anything short, too long or of an unknown version
 * is refused whole; version 1's records (still in a stream a node may read
 * again) are version 2's too. */
#ifndef CHATD_CLUSTER_WIRE_H
#define CHATD_CLUSTER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/text.h"
#include "core/remote.h"
#include "core/rooms.h"

#define WIRE_VERSION 2  /* 1: no WIRE_ROOM, no status before a member's rooms */
#define WIRE_TEXT_MAX (64 * 1024) /* bytes of one record's text, at most */

enum wire_kind {
	WIRE_SAID = 1,   /* nick said text in room */
	WIRE_ACTION = 2, /* nick did text in room (/me) */
	WIRE_PRIVATE = 3,/* nick said text to other alone (flags: notice, action) */
	WIRE_MEMBER = 4, /* nick (session, of origin) is now as described: in
			  * rooms, or gone; change says what happened */
	WIRE_HELLO = 5,  /* origin asks for every member's state (WIRE_MEMBER) */
	WIRE_KICK = 6,   /* nick (of origin) puts other (session, of the node it
			  * is sent to) out of room, for text; no room: out of
			  * the chat (chatctl kick, IRC KILL, by actor) */
	WIRE_ROOM = 7,   /* room's topic or modes, as change says */
	WIRE_KIND_MAX = WIRE_ROOM,
};

/* What a WIRE_ROOM record changes. */
enum wire_room_change {
	WIRE_TOPIC = 1,  /* nick set the topic to text */
	WIRE_MODE = 2,   /* nick set text ("+t", "-o") for the room, or for
			  * other's membership of it ('o', 'v') */
	WIRE_STATE = 3,  /* the room as it is (to a node that asks): text
			  * the topic, other its setter, time_ms its time,
			  * rooms the modes set ("tn"), id the stream's
			  * number of the last change told */
	WIRE_ROOM_CHANGE_MAX = WIRE_STATE,
};

enum {
	WIRE_NOTICE = 1,     /* said as an IRC notice */
	WIRE_FORMATTING = 2, /* the text holds IRC formatting */
	WIRE_ACTION_FLAG = 4,/* WIRE_PRIVATE: an action */
	WIRE_DELIVERED = 8,  /* the origin delivered it to its own members
			      * already (said while the cluster was away) */
	WIRE_FLAGS = 15,
};

#define WIRE_ROOMS_MAX (ROOMS_PER_MEMBER * (NAME_MAX_LEN + 2)) /* each: status, name, space */

struct wire_record {
	enum wire_kind kind;
	unsigned flags;
	unsigned change;     /* WIRE_MEMBER: what happened (enum remote_change);
			      * WIRE_ROOM: enum wire_room_change */
	uint64_t origin;     /* the node's incarnation (cluster_self()) */
	uint64_t session;    /* the sender's session id on that node */
	uint64_t id;         /* the event's id on that node; WIRE_MEMBER: the
			      * member's version, higher at each change */
	int64_t time_ms;     /* when, in ms since the epoch */
	char node[NAME_MAX_LEN + 1];     /* the origin's name */
	char room[NAME_MAX_LEN + 1];
	char nick[NAME_MAX_LEN + 1];
	char user[USER_MAX_LEN + 1];
	char host[HOST_MAX_LEN + 1];
	char other[NAME_MAX_LEN + 1];    /* a nick, or a room (WIRE_WENT) */
	char realname[REALNAME_MAX_LEN + 1];
	char account[NAME_MAX_LEN + 1];
	char rooms[WIRE_ROOMS_MAX + 1];  /* WIRE_MEMBER: its rooms, space-separated,
					  * each after its status ('@', '+') */
	char actor[96];                  /* WIRE_KICK out of the chat: the admin */
	const char *text;    /* into the decoded bytes, not NUL-terminated */
	size_t text_len;
};

/* A growing buffer of encoded records. */
struct wire_buf {
	uint8_t *data;
	size_t len, cap;
};

/* Appends R (text at most WIRE_TEXT_MAX bytes, names within their
 * limits) to B. */
void wire_encode(struct wire_buf *b, const struct wire_record *r);

void wire_buf_free(struct wire_buf *b);

/* Decodes the record at *OFF of DATA[LEN] into RET and moves *OFF past
 * it: 1, 0 at the end, or -EBADMSG (*OFF unchanged). */
int wire_decode(const uint8_t *data, size_t len, size_t *off, struct wire_record *ret);

#endif
