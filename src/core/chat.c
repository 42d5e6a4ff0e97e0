#include "autoconf.h"

#include "core/chat.h"
#include "core/chat_impl.h"
#include "core/remote.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/text.h"
#include "base/util.h"
#include "core/flood.h"

static const char *server_of(const struct worker *w)
{
	return worker_config(w)->irc_server_name;
}

/* An event about what S did, numbered and stamped. */
static struct chat_event event_by(struct worker *w, const struct session *s,
				  enum chat_event_kind kind)
{
	return (struct chat_event){ .kind = kind, .nick = s->member.nick, .user = s->member.user,
				    .host = s->member.host, .id = worker_event_id(w),
				    .time_ms = wall_clock_ms(), .server = server_of(w) };
}

/* How many lines a joiner is shown: none with history off. */
static unsigned replay_count(const struct worker *w)
{
	const struct config *cfg = worker_config(w);
	if (cfg->history_keep == 0)
		return 0;
	return (unsigned)(cfg->history_replay < cfg->history_keep ? cfg->history_replay
								   : cfg->history_keep);
}

void encode_for(struct encoded *e, struct room *room, const struct chat_event *ev)
{
	for (int f = 0; f < FORMAT_COUNT; f++)
		if (!e->msg[f] && room_formats(room, (enum format)f))
			e->msg[f] = event_encode((enum format)f, ev);
}

static struct msg *encoded_in(struct encoded *e, enum format f, const struct chat_event *ev)
{
	if (!e->msg[f])
		e->msg[f] = event_encode(f, ev);
	return e->msg[f];
}

void encoded_free(struct encoded *e)
{
	for (int f = 0; f < FORMAT_COUNT; f++)
		if (e->msg[f])
			msg_unref(e->msg[f]);
}

/* Sends EV to S alone, as S reads it. */
static void tell_session(struct worker *w, struct session *s, const struct chat_event *ev)
{
	struct msg *m = event_encode(s->member.format, ev);
	worker_send(w, s, m);
	msg_unref(m);
}

void send_room(struct worker *w, struct room *room, struct encoded *e, uint64_t except_id,
		      uint64_t seq, uint64_t once)
{
	struct room_send rs = { .except_id = except_id, .seq = seq, .once = once };
	memcpy(rs.msg, e->msg, sizeof(rs.msg));
	worker_send_room(w, room, &rs);
}

/* Tells EV, numbered SEQ (taken before the formats are read: see
 * room_formats()), to ROOM (not to S unless INCLUDE_SELF): one encoding
 * per format present, shared by every recipient. */
static void tell_room_seq(struct worker *w, struct session *s, struct room *room,
			  bool include_self, const struct chat_event *ev, uint64_t seq)
{
	struct encoded e = { 0 };
	encode_for(&e, room, ev);
	send_room(w, room, &e, include_self ? 0 : s->id, seq, 0);
	encoded_free(&e);
}

/* Tells EV, happening now, to ROOM (see tell_room_seq). */
static void tell_room(struct worker *w, struct session *s, struct room *room, bool include_self,
		      const struct chat_event *ev)
{
	tell_room_seq(w, s, room, include_self, ev, room_line_seq(room));
}

/* EV (said in ROOM) into the room's history, and to the store: its
 * number, taken with the history held, is the room's for the line (see
 * history.h). With history off, just the number. */
static uint64_t keep_line_in(struct worker *w, struct room_history *rh, struct room *room,
			     const struct chat_event *ev)
{
	const struct config *cfg = worker_config(w);
	if (cfg->history_keep == 0)
		return room ? room_line_seq(room) : 0;
	enum hline_kind kind = ev->kind == CHAT_ACTION ? HLINE_ACTION
			       : ev->notice            ? HLINE_NOTICE
						       : HLINE_SAID;
	struct hline *l = hline_new(ev->room, 0, ev->time_ms, ev->id, kind, ev->nick, ev->user,
				    ev->host, ev->text, ev->text_len, ev->formatting);
	l->stream_seq = ev->stream_seq;
	pthread_mutex_lock(&rh->lock);
	uint64_t seq = room ? room_line_seq(room) : 0;
	room_history_add_locked(rh, l, replay_count(w));
	pthread_mutex_unlock(&rh->lock);
	worker_store_line(w, l);
	return seq;
}

static uint64_t keep_line(struct worker *w, struct room *room, const struct chat_event *ev)
{
	return keep_line_in(w, room->history, room, ev);
}

static bool crowded(const struct worker *w, unsigned room_count)
{
	int max = worker_config(w)->announce_max;
	return max > 0 && room_count > (unsigned)max;
}

void announce(struct worker *w, uint64_t except_id, struct room *room, unsigned room_count,
	      struct encoded *e, const struct chat_event *ev, uint64_t seq, uint64_t once)
{
	const struct config *cfg = worker_config(w);
	unsigned suppressed;

	if (crowded(w, room_count) ||
	    !rooms_announce(worker_rooms(w), room, cfg->announce_rate, worker_now_ms(w), &suppressed))
		return;
	encode_for(e, room, ev);
	if (suppressed) {
		/* The room's own notice first, then the event (which may be
		 * told to several rooms, ONCE to each recipient). */
		struct chat_event missed = { .kind = CHAT_MISSED, .room = room->name,
					     .count = suppressed, .rate = cfg->announce_rate,
					     .time_ms = ev->time_ms, .server = ev->server };
		struct encoded noted = { 0 };
		encode_for(&noted, room, &missed);
		send_room(w, room, &noted, except_id, seq, 0);
		encoded_free(&noted);
	}
	send_room(w, room, e, except_id, seq, once);
}

static void log_connect(struct worker *w, struct session *s, int online)
{
	struct log_note note;
	bool logged = worker_log_allowed(w, s, LOG_INFO, &note);
	if (logged || log_tapping("connect"))
		log_event(LOG_INFO, LOG_FIELDS(.event = "connect", .peer = s->peer, .nick = s->member.nick,
					       .suppressed = note.suppressed, LOG_ONLINE(online),
					       .tap_only = !logged),
			  "connect from %s as %s (%d online)%s", s->peer, s->member.nick, online,
			  note.text);
}

/* S took its nick: when that is a registered account S is not logged in
 * to, S is told it has [accounts] grace seconds to identify (the tick
 * renames it after: chat_guard_expired). */
static void guard_nick(struct worker *w, struct session *s)
{
	s->guard_ms = 0;
	if ((s->member.account[0] && strcasecmp(s->member.account, s->member.nick) == 0) ||
	    !worker_nick_registered(w, s->member.nick))
		return;
	int grace = worker_config(w)->accounts_grace;
	s->guard_ms = worker_now_ms(w) + (uint64_t)grace * 1000;
	tell_session(w, s, &(struct chat_event){ .kind = CHAT_GUARD, .nick = s->member.nick,
						 .rate = grace, .server = server_of(w) });
}

int chat_register(struct worker *w, struct session *s, const char *nick, const char *room,
		  struct history_snapshot *snap)
{
	struct membership *ms = NULL;
	unsigned count = 0;
	if (nick && worker_nick_banned(w, nick))
		return -EACCES;
	if (snap)
		snap->want = replay_count(w);
	int online = rooms_enter(worker_rooms(w), &s->member, nick, room, &ms, &count, snap);
	if (online < 0)
		return online;
	worker_cluster_member(w, s, ms ? REMOTE_ENTERED : REMOTE_STATE, room, NULL, NULL, 0);
	worker_online_changed(w);
	flood_init(&s->flood, worker_config(w)->burst, worker_now_ms(w));
	if (ms) {
		worker_room_link(w, ms);
		struct chat_event ev = event_by(w, s, CHAT_ENTERED);
		ev.room = ms->room->name;
		ev.online = online;
		struct encoded e = { 0 };
		announce(w, s->id, ms->room, count, &e, &ev, ms->joined_seq, 0);
		encoded_free(&e);
	}
	log_connect(w, s, online);
	if (nick)
		guard_nick(w, s);
	return online;
}

void chat_disconnected(struct worker *w, struct session *s, const char *reason,
		       const char *farewell, size_t farewell_len)
{
	int online = rooms_leave(worker_rooms(w), &s->member);
	worker_online_changed(w);
	/* At shutdown the others are told the node stops, once. */
	if (!worker_shutting_down(w))
		worker_cluster_member(w, s, REMOTE_QUIT, NULL, NULL, farewell, farewell_len);

	struct text_buf c;
	text_buf_clean_chat(&c, farewell, farewell_len);
	/* A reason that cleans to nothing is no reason. */
	bool blank = text_buf_blank(&c);
	struct chat_event ev = event_by(w, s, CHAT_LEFT);
	ev.online = online;
	ev.text = c.text;
	ev.formatting = c.formatting;
	ev.text_len = blank ? 0 : c.len;
	struct encoded e = { 0 };
	struct membership *ms;
	while ((ms = TAILQ_FIRST(&s->member.rooms))) {
		TAILQ_REMOVE(&s->member.rooms, ms, member_link);
		worker_room_unlink(w, ms);
		if (!worker_shutting_down(w)) {
			/* No encoding names the room but MISSED's. */
			ev.room = ms->room->name;
			announce(w, s->id, ms->room, ms->left_count + 1, &e, &ev, ms->change_seq, ev.id);
		}
		membership_free(ms);
	}
	encoded_free(&e);
	text_buf_free(&c);
	struct log_note note;
	bool logged = worker_log_allowed(w, s, LOG_INFO, &note);
	if (logged || log_tapping("disconnect"))
		log_event(LOG_INFO, LOG_FIELDS(.event = "disconnect", .peer = s->peer,
					       .nick = s->member.nick, .reason = reason,
					       .suppressed = note.suppressed, LOG_ONLINE(online),
					       .tap_only = !logged),
			  "disconnect %s %s: %s (%d online)%s", s->peer, s->member.nick, reason, online,
			  note.text);
}

bool chat_joined(const struct session *s)
{
	return s->member.registered;
}

bool chat_allow_line(struct worker *w, struct session *s)
{
	const struct config *cfg = worker_config(w);

	switch (flood_check(&s->flood, cfg->rate, cfg->burst, worker_now_ms(w),
			    worker_stalled_since(w, s->flood.stamp_ms))) {
	case FLOOD_OK:
		return true;
	case FLOOD_WARN:
		tell_session(w, s, &(struct chat_event){ .kind = CHAT_SLOW_DOWN, .rate = cfg->rate,
							 .nick = s->member.nick, .server = server_of(w) });
		return false;
	case FLOOD_DROP:
		return false;
	case FLOOD_KICK: {
		static const char flooding[] = "flooding";
		tell_session(w, s, &(struct chat_event){ .kind = CHAT_CLOSING, .text = flooding,
							 .text_len = sizeof(flooding) - 1,
							 .host = s->member.host });
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

int chat_join(struct worker *w, struct session *s, const char *name, bool echo,
	      unsigned *ret_count, struct history_snapshot *snap)
{
	struct membership *ms;
	if (snap)
		snap->want = replay_count(w);
	struct store_room saved = { 0 };
	int r = rooms_join(worker_rooms(w), &s->member, name, &ms, ret_count, snap, s->member.account,
			   &saved);
	if (r < 0)
		return r;
	if (saved.founder[0]) {
		worker_store_room(w, &saved);
		log_event(LOG_INFO, LOG_FIELDS(.event = "room_registered", .peer = s->peer,
					       .nick = s->member.nick),
			  "room %s registered to account %s", saved.name, saved.founder);
	}
	worker_room_link(w, ms);
	worker_cluster_member(w, s, REMOTE_JOINED, ms->room->name, NULL, NULL, 0);
	struct chat_event ev = event_by(w, s, CHAT_JOINED);
	ev.room = ms->room->name;
	struct encoded e = { 0 };
	if (echo)
		worker_send(w, s, encoded_in(&e, s->member.format, &ev));
	announce(w, s->id, ms->room, *ret_count, &e, &ev, ms->joined_seq, 0);
	encoded_free(&e);
	return 0;
}

/* Tells MS's room (S taken out of it already) of EV, and S too with ECHO;
 * frees MS. */
static void departed(struct worker *w, struct session *s, struct membership *ms,
		     const struct chat_event *ev, bool echo)
{
	struct encoded e = { 0 };
	worker_room_unlink(w, ms);
	worker_cluster_member(w, s, ev->kind == CHAT_WENT ? REMOTE_WENT : REMOTE_PARTED, ev->room,
			      ev->other, ev->text, ev->text_len);
	if (echo)
		worker_send(w, s, encoded_in(&e, s->member.format, ev));
	announce(w, s->id, ms->room, ms->left_count + 1, &e, ev, ms->change_seq, 0);
	encoded_free(&e);
	membership_free(ms);
}

int chat_part(struct worker *w, struct session *s, const char *name, const char *reason,
	      size_t len, bool echo)
{
	struct membership *ms;
	unsigned count;
	int r = rooms_part(worker_rooms(w), &s->member, name, &ms, &count);
	if (r < 0)
		return r;
	struct text_buf c;
	text_buf_clean_chat(&c, reason, len);
	struct chat_event ev = event_by(w, s, CHAT_PARTED);
	ev.room = ms->room->name;
	ev.text = c.text;
	ev.formatting = c.formatting;
	ev.text_len = text_buf_blank(&c) ? 0 : c.len;
	departed(w, s, ms, &ev, echo);
	text_buf_free(&c);
	return 0;
}

int chat_move(struct worker *w, struct session *s, const char *name, unsigned *ret_count,
	      struct history_snapshot *snap)
{
	struct membership *old = TAILQ_FIRST(&s->member.rooms);
	if (old && strcasecmp(old->room->name, name) == 0)
		return -EALREADY;
	if (old) {
		char old_name[NAME_MAX_LEN + 1];
		unsigned count;
		struct membership *ms;
		memcpy(old_name, old->room->name, sizeof(old_name));
		if (rooms_part(worker_rooms(w), &s->member, old_name, &ms, &count) == 0) {
			struct chat_event ev = event_by(w, s, CHAT_WENT);
			ev.room = ms->room->name;
			ev.other = name;
			departed(w, s, ms, &ev, false);
		}
	}
	return chat_join(w, s, name, false, ret_count, snap);
}

bool chat_say(struct worker *w, struct session *s, struct room *room, enum chat_event_kind kind,
	      bool notice, const char *text, size_t len, bool echo)
{
	struct text_buf c;
	text_buf_clean_chat(&c, text, len);
	bool said = !text_buf_blank(&c);
	if (said) {
		struct chat_event ev = event_by(w, s, kind);
		ev.room = room->name;
		ev.text = c.text;
		ev.formatting = c.formatting;
		ev.text_len = c.len;
		ev.notice = notice;
		/* In a cluster, the line comes back from the stream, in its
		 * order, to be kept and told (chat_relayed). */
		if (!worker_cluster_line(w, s->id, &ev))
			tell_room_seq(w, s, room, false, &ev, keep_line(w, room, &ev));
		if (echo)
			tell_session(w, s, &ev);
		worker_said(w);
	}
	text_buf_free(&c);
	return said;
}

void chat_relayed(struct worker *w, const struct chat_event *ev, uint64_t except_id)
{
	struct room_history *rh;
	struct room *room = rooms_room(worker_rooms(w), ev->room, &rh);
	uint64_t seq = keep_line_in(w, rh, room, ev);
	if (!room)
		return;
	struct encoded e = { 0 };
	encode_for(&e, room, ev);
	send_room(w, room, &e, except_id, seq, 0);
	encoded_free(&e);
	room_unref(room);
}

int chat_rename(struct worker *w, struct session *s, const char *nick)
{
	char old[NAME_MAX_LEN + 1];
	if (nick && worker_nick_banned(w, nick) && strcasecmp(nick, s->member.nick) != 0)
		return -EACCES;
	int r = rooms_rename(worker_rooms(w), &s->member, nick, old);
	if (r < 0)
		return r;
	nick = s->member.nick; /* a guest's, when NULL */
	worker_cluster_member(w, s, REMOTE_RENAMED, NULL, old, NULL, 0);

	struct chat_event ev = event_by(w, s, CHAT_RENAMED);
	ev.nick = old;
	ev.other = nick;
	struct encoded e = { 0 };
	struct membership *ms;
	TAILQ_FOREACH(ms, &s->member.rooms, member_link) {
		ev.room = ms->room->name;
		encode_for(&e, ms->room, &ev);
		send_room(w, ms->room, &e, 0, ms->change_seq, ev.id);
	}
	/* In no room, S still hears of it. */
	if (TAILQ_EMPTY(&s->member.rooms))
		worker_send(w, s, encoded_in(&e, s->member.format, &ev));
	encoded_free(&e);
	log_debug("%s: %s is now known as %s", s->peer, old, nick);
	guard_nick(w, s);
	return 0;
}

void chat_logged_in(struct worker *w, struct session *s, const char *account)
{
	rooms_set_account(worker_rooms(w), &s->member, account);
	worker_cluster_member(w, s, REMOTE_STATE, NULL, NULL, NULL, 0);
	if (strcasecmp(account, s->member.nick) == 0)
		s->guard_ms = 0;
}

void chat_guard_expired(struct worker *w, struct session *s)
{
	char nick[NAME_MAX_LEN + 1];
	snprintf(nick, sizeof(nick), "%s", s->member.nick);
	s->guard_ms = 0;
	if (chat_rename(w, s, NULL) < 0)
		return;
	tell_session(w, s, &(struct chat_event){ .kind = CHAT_GUARD_EXPIRED, .nick = nick,
						 .other = s->member.nick,
						 .rate = worker_config(w)->accounts_grace,
						 .server = server_of(w) });
	struct log_note note;
	if (worker_log_allowed(w, s, LOG_NOTICE, &note))
		log_event(LOG_NOTICE, LOG_FIELDS(.event = "nick_guard", .peer = s->peer, .nick = nick,
						 .suppressed = note.suppressed),
			  "%s did not identify for the registered nick %s: renamed %s%s", s->peer,
			  nick, s->member.nick, note.text);
}

void chat_nick_taken(struct worker *w, struct session *s)
{
	char nick[NAME_MAX_LEN + 1];
	snprintf(nick, sizeof(nick), "%s", s->member.nick);
	if (chat_rename(w, s, NULL) < 0)
		return;
	tell_session(w, s, &(struct chat_event){ .kind = CHAT_NICK_TAKEN, .nick = nick,
						 .other = s->member.nick, .server = server_of(w) });
}

int chat_private(struct worker *w, struct session *s, const char *nick, const char *text,
		 size_t len, bool notice, bool action, bool echo, char *ret_away)
{
	struct member_address to;

	if (!rooms_find(worker_rooms(w), nick, &to))
		return -ENOENT;
	if (to.conn_id == s->id && to.worker >= 0 && !echo)
		return -ELOOP;
	if (ret_away)
		memcpy(ret_away, to.away, sizeof(to.away));
	struct text_buf c;
	text_buf_clean_chat(&c, text, len);
	int r = -ENODATA;
	if (!text_buf_blank(&c)) {
		struct chat_event ev = event_by(w, s, CHAT_PRIVATE);
		ev.other = to.nick;
		ev.text = c.text;
		ev.formatting = c.formatting;
		ev.text_len = c.len;
		ev.notice = notice;
		ev.action = action;
		struct encoded e = { 0 };
		if (to.worker < 0)
			worker_cluster_private(w, &to, &ev);
		else if (to.conn_id != s->id)
			worker_send_direct(w, &to, encoded_in(&e, to.format, &ev));
		if (echo)
			worker_send(w, s, encoded_in(&e, s->member.format, &ev));
		encoded_free(&e);
		worker_said(w);
		r = 0;
	}
	text_buf_free(&c);
	return r;
}

/* TEXT cleaned into RET (MAX bytes and a NUL), cut between two
 * characters; "" when it cleans to nothing. Returns its length. */
static size_t clean_into(char *ret, size_t max, const char *text, size_t len)
{
	struct text_buf c;
	text_buf_clean_chat(&c, text, len);
	size_t n = text_buf_blank(&c) ? 0 : text_utf8_prefix(c.text, c.len, max);
	memcpy(ret, c.text, n);
	ret[n] = '\0';
	text_buf_free(&c);
	return n;
}

/* EV, a room change another node decided (or this one, in a cluster),
 * with TEXT and OTHER as made here, to everyone in the room here. */
static void tell_room_change(struct worker *w, const struct chat_event *ev, const char *text,
			     size_t len, const char *other)
{
	struct room_history *rh;
	struct room *room = rooms_room(worker_rooms(w), ev->room, &rh);
	if (!room)
		return;
	struct chat_event e = *ev;
	e.room = room->name;
	e.text = text;
	e.text_len = len;
	e.other = other;
	struct encoded enc = { 0 };
	encode_for(&enc, room, &e);
	send_room(w, room, &enc, 0, room_line_seq(room), 0);
	encoded_free(&enc);
	room_unref(room);
}

/* S's change of room NAME, which S is in: TEXT and OTHER as the event's. */
static struct chat_event change_by(struct worker *w, struct session *s, enum chat_event_kind kind,
				   const char *name, const char *text, size_t len, const char *other)
{
	struct chat_event ev = event_by(w, s, kind);
	ev.room = rooms_membership(&s->member, name)->room->name;
	ev.text = text;
	ev.text_len = len;
	ev.formatting = text_has_formatting(text, len);
	ev.other = other;
	return ev;
}

int chat_topic(struct worker *w, struct session *s, const char *name, const char *text,
	       size_t len)
{
	char topic[TOPIC_MAX_LEN + 1];
	size_t n = clean_into(topic, TOPIC_MAX_LEN, text, len);
	struct rooms *rs = worker_rooms(w);
	bool clustered = worker_clustered(w);
	struct chat_event ev;
	int r;

	/* In a cluster, decided here and made on every node (this one too)
	 * in the stream's order (chat_room_relayed). */
	if (clustered) {
		if ((r = rooms_may_set_topic(rs, &s->member, name, topic)) < 0)
			return r;
		ev = change_by(w, s, CHAT_TOPIC, name, topic, n, NULL);
		if (worker_cluster_room(w, &ev, false))
			return 0;
	}
	struct store_room saved = { 0 };
	if ((r = rooms_set_topic(rs, &s->member, name, topic, &saved)) < 0)
		return r;
	if (saved.founder[0])
		worker_store_room(w, &saved);
	ev = change_by(w, s, CHAT_TOPIC, name, topic, n, NULL);
	tell_room(w, s, rooms_membership(&s->member, name)->room, true, &ev);
	if (clustered)
		worker_cluster_room(w, &ev, true);
	return 0;
}

int chat_mode(struct worker *w, struct session *s, const char *name, char mode, bool on,
	      const char *nick)
{
	char target[NAME_MAX_LEN + 1] = "";
	char change[3] = { on ? '+' : '-', mode, '\0' };
	struct rooms *rs = worker_rooms(w);
	bool clustered = worker_clustered(w);
	const char *other = nick ? target : NULL;
	struct chat_event ev;
	int r;

	if (clustered) { /* as for the topic */
		r = nick ? rooms_may_set_status(rs, &s->member, name, nick, mode, on, target)
			 : rooms_may_set_mode(rs, &s->member, name, mode, on);
		if (r < 0)
			return r;
		ev = change_by(w, s, CHAT_MODE, name, change, 2, other);
		if (worker_cluster_room(w, &ev, false))
			return 0;
	}
	r = nick ? rooms_set_status(rs, &s->member, name, nick, mode, on, target)
		 : rooms_set_mode(rs, &s->member, name, mode, on);
	if (r < 0)
		return r;
	ev = change_by(w, s, CHAT_MODE, name, change, 2, other);
	tell_room(w, s, rooms_membership(&s->member, name)->room, true, &ev);
	if (clustered)
		worker_cluster_room(w, &ev, true);
	return 0;
}

int chat_room_relayed(struct worker *w, const struct chat_event *ev)
{
	struct rooms *rs = worker_rooms(w);
	char target[NAME_MAX_LEN + 1] = "";
	int r;
	if (ev->kind == CHAT_TOPIC) {
		char topic[TOPIC_MAX_LEN + 1];
		size_t n = clean_into(topic, TOPIC_MAX_LEN, ev->text, ev->text_len);
		struct store_room saved = { 0 };
		r = rooms_apply_topic(rs, ev->room, topic, ev->nick, (time_t)(ev->time_ms / 1000),
				      ev->stream_seq, &saved);
		if (r == 0 && saved.founder[0])
			worker_store_room(w, &saved);
		if (r == 0)
			tell_room_change(w, ev, topic, n, NULL);
		return r;
	}
	if (ev->text_len != 2 || (ev->text[0] != '+' && ev->text[0] != '-'))
		return -EINVAL;
	bool on = ev->text[0] == '+';
	r = ev->other ? rooms_apply_status(rs, ev->room, ev->other, ev->text[1], on,
					   ev->stream_seq, target)
		      : rooms_apply_mode(rs, ev->room, ev->text[1], on, ev->stream_seq);
	if (r == 0)
		tell_room_change(w, ev, ev->text, 2, ev->other ? target : NULL);
	return r;
}

int chat_kick(struct worker *w, struct session *s, const char *name, const char *nick,
	      const char *reason, size_t len)
{
	struct member_address to;
	struct room *room;
	uint64_t joined_seq;
	int r = rooms_may_kick(worker_rooms(w), &s->member, name, nick, &to, &room, &joined_seq);
	if (r < 0)
		return r;
	struct text_buf c;
	text_buf_clean_chat(&c, reason, len);
	size_t n = text_buf_blank(&c) ? 0 : text_utf8_prefix(c.text, c.len, TOPIC_MAX_LEN);
	struct kick *k = xcalloc(1, sizeof(*k) + n + 1);
	struct membership *ms = rooms_membership(&s->member, name);
	memcpy(k->room, ms->room->name, sizeof(k->room));
	memcpy(k->by, s->member.nick, sizeof(k->by));
	memcpy(k->by_user, s->member.user, sizeof(k->by_user));
	memcpy(k->by_host, s->member.host, sizeof(k->by_host));
	k->conn_id = to.conn_id;
	k->room_ref = room;
	k->joined_seq = joined_seq;
	memcpy(k->reason, c.text, n);
	k->reason_len = n;
	text_buf_free(&c);
	if (to.worker < 0)
		worker_cluster_kick(w, &to, k); /* done by its own node */
	else
		worker_send_kick(w, &to, k);
	return 0;
}

void chat_kick_free(struct kick *k)
{
	room_unref(k->room_ref);
	free(k);
}

void chat_kicked(struct worker *w, struct session *s, struct kick *k)
{
	struct membership *ms = chat_joined(s) ? rooms_membership(&s->member, k->room) : NULL;
	unsigned count;

	/* The same membership the kick was decided on: not one of a room
	 * made anew since, nor a later arrival in it. */
	if (s->id == k->conn_id && ms && ms->room == k->room_ref &&
	    (ms->joined_seq == k->joined_seq || k->joined_seq == 0) &&
	    rooms_part(worker_rooms(w), &s->member, k->room, &ms, &count) == 0) {
		struct chat_event ev = { .kind = CHAT_KICKED, .nick = k->by, .user = k->by_user,
					 .host = k->by_host, .room = ms->room->name,
					 .other = s->member.nick, .text = k->reason,
					 .text_len = k->reason_len, .id = worker_event_id(w),
					 .formatting = text_has_formatting(k->reason, k->reason_len),
					 .time_ms = wall_clock_ms(), .server = server_of(w) };
		struct encoded e = { 0 };
		worker_room_unlink(w, ms);
		worker_cluster_member(w, s, REMOTE_KICKED, ev.room, k->by, k->reason, k->reason_len);
		/* Everyone is told, crowded room or not: it is no arrival. */
		encode_for(&e, ms->room, &ev);
		send_room(w, ms->room, &e, s->id, ms->change_seq, 0);
		worker_send(w, s, encoded_in(&e, s->member.format, &ev));
		encoded_free(&e);
		membership_free(ms);
		log_debug("%s: %s kicked from %s by %s", s->peer, s->member.nick, k->room, k->by);
	}
	chat_kick_free(k);
}

void chat_away(struct worker *w, struct session *s, const char *text, size_t len)
{
	char away[AWAY_MAX_LEN + 1];
	clean_into(away, AWAY_MAX_LEN, text, len);
	rooms_set_away(worker_rooms(w), &s->member, away);
}

void chat_set_format(struct worker *w, struct session *s, enum format format)
{
	struct membership *ms;

	if (s->member.format == format)
		return;
	/* Each format's members are a list of their own (see room_local()). */
	TAILQ_FOREACH(ms, &s->member.rooms, member_link)
		worker_room_unlink(w, ms);
	rooms_set_format(worker_rooms(w), &s->member, format);
	TAILQ_FOREACH(ms, &s->member.rooms, member_link)
		worker_room_link(w, ms);
}

void chat_quit(struct worker *w, struct session *s, const char *farewell, size_t len)
{
	worker_close_after_flush(w, s, "quit", farewell, len);
}
