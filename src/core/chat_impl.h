/* What chat.c shares with the rest of the core (remote.c) and nobody
 * else: an event's encodings, and telling rooms of them. */
#ifndef CHATD_CORE_CHAT_IMPL_H
#define CHATD_CORE_CHAT_IMPL_H

#include <stdint.h>

#include "core/event.h"
#include "core/host.h"
#include "core/rooms.h"

/* One event's encodings, made as the rooms it goes to need them. */
struct encoded {
	struct msg *msg[FORMAT_COUNT];
};

/* Encodes EV in every format someone in ROOM reads, that is not yet. */
void encode_for(struct encoded *e, struct room *room, const struct chat_event *ev);
void encoded_free(struct encoded *e);

/* Sends E (encoded for ROOM) to ROOM; see struct room_send. */
void send_room(struct worker *w, struct room *room, struct encoded *e, uint64_t except_id,
	       uint64_t seq, uint64_t once);

/* Tells ROOM (of ROOM_COUNT members) of an arrival or departure, EV,
 * encoded in E, numbered SEQ (see rooms.h), to all but EXCEPT_ID, unless
 * the room is crowded (announce_max: each arrival and departure told to
 * everyone would drown the chat, and cost N lines per connection, which a
 * connect/close loop could abuse) or hears them faster than
 * announce_rate. What was not told is counted in a notice before the next
 * one that is. ONCE as in struct room_send. */
void announce(struct worker *w, uint64_t except_id, struct room *room, unsigned room_count,
	      struct encoded *e, const struct chat_event *ev, uint64_t seq, uint64_t once);

#endif
