#include "autoconf.h"

#include "core/chat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "core/flood.h"
#include "base/text.h"

/* Sends EV to S alone, as S's protocol says it. */
static void tell_session(struct worker *w, struct session *s, const struct chat_event *ev)
{
	struct msg *m = event_encode(s->proto, ev);
	worker_send(w, s, m);
	msg_unref(m);
}

/* Tells EV to ROOM (not to S unless INCLUDE_SELF), numbered SEQ (0: now;
 * see worker_send_room): one encoding shared by every recipient. */
static void tell_room(struct worker *w, struct session *s, struct room *room, bool include_self,
		      const struct chat_event *ev, uint64_t seq)
{
	struct msg *m = event_encode(PROTO_LINE, ev);
	worker_send_room(w, room, m, include_self ? 0 : s->id, seq);
	msg_unref(m);
}

/* In a room of more than announce_max, each arrival and departure told to
 * everyone would drown the chat (and cost N lines per connection, which a
 * connect/close loop could abuse): such rooms hear none. */
static bool crowded(const struct worker *w, unsigned room_count)
{
	int max = worker_config(w)->announce_max;
	return max > 0 && room_count > (unsigned)max;
}

/* Tells ROOM (of ROOM_COUNT members) of S's arrival or departure, EV,
 * numbered SEQ (0: now; see worker_send_room), unless the room is crowded
 * (announce_max) or hears them faster than announce_rate: each connection
 * would otherwise cost everyone there two lines, which a connect/close
 * loop could turn into a flood. What was not told is counted in a notice
 * before the next one that is. */
static void announce(struct worker *w, struct session *s, struct room *room, unsigned room_count,
		     const struct chat_event *ev, uint64_t seq)
{
	const struct config *cfg = worker_config(w);
	unsigned suppressed;

	if (crowded(w, room_count) ||
	    !rooms_announce(worker_rooms(w), room, cfg->announce_rate, worker_now_ms(w), &suppressed))
		return;
	struct msg *m = event_encode(PROTO_LINE, ev);
	if (suppressed) {
		struct chat_event missed = { .kind = CHAT_MISSED, .room = room->name,
					     .count = suppressed, .rate = cfg->announce_rate };
		struct msg *note = event_encode(PROTO_LINE, &missed);
		note = msg_append(note, m->data, m->len);
		msg_unref(m);
		m = note;
	}
	worker_send_room(w, room, m, s->id, seq);
	msg_unref(m);
}

int chat_connected(struct worker *w, struct session *s)
{
	unsigned room_count;
	int online = rooms_enter(worker_rooms(w), &s->member, &room_count);
	worker_room_link(w, s);
	worker_online_changed(w);
	flood_init(&s->flood, worker_config(w)->burst, worker_now_ms(w));

	struct chat_event ev = { .kind = CHAT_ENTERED, .nick = s->member.nick,
				 .room = s->member.room->name, .online = online };
	announce(w, s, s->member.room, room_count, &ev, s->member.joined_seq);
	struct log_note note;
	if (worker_log_allowed(w, s, LOG_INFO, &note))
		log_event(LOG_INFO, LOG_FIELDS(.event = "connect", .peer = s->peer, .nick = s->member.nick,
					       .suppressed = note.suppressed, LOG_ONLINE(online)),
			  "connect from %s as %s (%d online)%s", s->peer, s->member.nick, online,
			  note.text);
	return online;
}

void chat_disconnected(struct worker *w, struct session *s, const char *reason,
		       const char *farewell, size_t farewell_len)
{
	struct room *room = s->member.room;
	unsigned room_count;
	int online = rooms_leave(worker_rooms(w), &s->member, &room_count);
	worker_room_unlink(w, s, room);
	worker_online_changed(w);

	if (!worker_shutting_down(w)) {
		struct text_buf c;
		text_buf_clean(&c, farewell, farewell_len);
		/* A reason that cleans to nothing is no reason. */
		bool blank = text_buf_blank(&c);
		struct chat_event ev = { .kind = CHAT_LEFT, .nick = s->member.nick, .room = room->name,
					 .online = online, .text = c.text, .text_len = blank ? 0 : c.len };
		announce(w, s, room, room_count + 1, &ev, s->member.change_seq);
		text_buf_free(&c);
	}
	room_unref(room);
	s->member.room = NULL;
	struct log_note note;
	if (worker_log_allowed(w, s, LOG_INFO, &note))
		log_event(LOG_INFO, LOG_FIELDS(.event = "disconnect", .peer = s->peer,
					       .nick = s->member.nick, .reason = reason,
					       .suppressed = note.suppressed, LOG_ONLINE(online)),
			  "disconnect %s %s: %s (%d online)%s", s->peer, s->member.nick, reason, online,
			  note.text);
}

bool chat_joined(const struct session *s)
{
	return s->member.room != NULL;
}

bool chat_allow_line(struct worker *w, struct session *s)
{
	const struct config *cfg = worker_config(w);

	switch (flood_check(&s->flood, cfg->rate, cfg->burst, worker_now_ms(w),
			    worker_stalled_since(w, s->flood.stamp_ms))) {
	case FLOOD_OK:
		return true;
	case FLOOD_WARN:
		tell_session(w, s, &(struct chat_event){ .kind = CHAT_SLOW_DOWN, .rate = cfg->rate });
		return false;
	case FLOOD_DROP:
		return false;
	case FLOOD_KICK: {
		static const char flooding[] = "flooding";
		tell_session(w, s, &(struct chat_event){ .kind = CHAT_CLOSING, .text = flooding,
							 .text_len = sizeof(flooding) - 1 });
		struct log_note note;
		if (worker_log_allowed(w, s, LOG_NOTICE, &note))
			log_event(LOG_NOTICE, LOG_FIELDS(.peer = s->peer, .nick = s->member.nick,
							 .reason = "flood", .suppressed = note.suppressed),
				  "%s (%s): flooding past %d lines per second, disconnecting%s", s->peer,
				  s->member.nick, cfg->rate, note.text);
		worker_close_after_flush(w, s, "flood", NULL, 0);
		return false;
	}
	}
	return false;
}

void chat_bytes_dropped(struct worker *w, struct session *s, size_t bytes)
{
	const struct config *cfg = worker_config(w);

	if (cfg->rate <= 0)
		return;
	s->dropped_bytes += bytes;
	while (s->dropped_bytes > cfg->max_line && worker_session_open(s)) {
		s->dropped_bytes -= cfg->max_line + 1;
		chat_allow_line(w, s);
	}
}

bool chat_say(struct worker *w, struct session *s, enum chat_event_kind kind, const char *text,
	      size_t len)
{
	struct text_buf c;
	text_buf_clean(&c, text, len);
	bool said = !text_buf_blank(&c);
	if (said) {
		struct chat_event ev = { .kind = kind, .nick = s->member.nick,
					 .room = s->member.room->name, .text = c.text, .text_len = c.len };
		tell_room(w, s, s->member.room, false, &ev, 0);
	}
	text_buf_free(&c);
	return said;
}

int chat_rename(struct worker *w, struct session *s, const char *nick)
{
	char old[NAME_MAX_LEN + 1];
	int r = rooms_rename(worker_rooms(w), &s->member, nick, old);

	if (r == 0) {
		struct chat_event ev = { .kind = CHAT_RENAMED, .nick = old, .other = nick,
					 .room = s->member.room->name };
		tell_room(w, s, s->member.room, true, &ev, s->member.change_seq);
		log_debug("%s: %s is now known as %s", s->peer, old, nick);
	}
	return r;
}

int chat_move(struct worker *w, struct session *s, const char *name, unsigned *ret_count)
{
	struct room *old;
	unsigned old_count, count;

	if (rooms_move(worker_rooms(w), &s->member, name, &old, &old_count, &count) < 0)
		return -EALREADY;
	worker_room_unlink(w, s, old);
	worker_room_link(w, s);
	struct room *room = s->member.room;
	struct chat_event went = { .kind = CHAT_WENT, .nick = s->member.nick, .room = old->name,
				   .other = room->name };
	struct chat_event joined = { .kind = CHAT_JOINED, .nick = s->member.nick, .room = room->name };
	announce(w, s, old, old_count + 1, &went, s->member.change_seq);
	announce(w, s, room, count, &joined, s->member.joined_seq);
	room_unref(old);
	*ret_count = count;
	return 0;
}

int chat_private(struct worker *w, struct session *s, const char *nick, const char *text,
		 size_t len, bool echo)
{
	struct member_address to;

	if (!rooms_find(worker_rooms(w), nick, &to))
		return -ENOENT;
	if (to.conn_id == s->id)
		return -ELOOP;
	struct text_buf c;
	text_buf_clean(&c, text, len);
	int r = -ENODATA;
	if (!text_buf_blank(&c)) {
		struct chat_event ev = { .kind = CHAT_PRIVATE, .nick = s->member.nick, .other = to.nick,
					 .text = c.text, .text_len = c.len };
		struct msg *m = event_encode(PROTO_LINE, &ev);
		worker_send_direct(w, &to, m);
		if (echo)
			worker_send(w, s, m);
		msg_unref(m);
		r = 0;
	}
	text_buf_free(&c);
	return r;
}

void chat_quit(struct worker *w, struct session *s, const char *farewell, size_t len)
{
	worker_close_after_flush(w, s, "quit", farewell, len);
}
