#include "autoconf.h"

#include "core/chat.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "core/flood.h"
#include "base/log.h"
#include "proto/protocol.h"
#include "core/text.h"
#include "base/util.h"

#define NAME_RULE "must be 1-32 letters, digits, _ or -, starting with a letter"
/* Long replies come in pages, each far below the smallest max_sendq: a
 * reply the server chooses to send never counts as its reader being slow. */
#define WHO_PAGE 100   /* nicks: at most 100 * 33 bytes */
#define ROOMS_PAGE 50  /* rooms: at most 50 * 48 bytes */
#define PAGE_MAX 100000


static void reply(struct worker *w, struct session *s, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* Sends one line (the "\n" is added) to S alone. */
static void reply(struct worker *w, struct session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	struct msg *m = msg_vprintf(fmt, ap);
	va_end(ap);
	m = msg_append(m, "\n", 1);
	worker_send(w, s, m);
	msg_unref(m);
}

/* "! usage: /nick NAME", from the command table. */
static void usage(struct worker *w, struct session *s, enum command_kind kind)
{
	reply(w, s, "! usage: %s", command_info(kind)->usage);
}

/* Client text, cleaned (text.h) before anyone sees it. */
struct cleaned {
	char *text;
	size_t len;
	char stack[8192];
};

static void clean(struct cleaned *c, const char *text, size_t len)
{
	c->text = TEXT_CLEAN_MAX(len) <= sizeof(c->stack) ? c->stack : xmalloc(TEXT_CLEAN_MAX(len));
	c->len = text_clean(c->text, text, len);
}

static bool cleaned_blank(const struct cleaned *c)
{
	return text_is_blank(c->text, c->len);
}

static void cleaned_free(struct cleaned *c)
{
	if (c->text != c->stack)
		free(c->text);
}

/* Tells EV to ROOM (not to S unless INCLUDE_SELF), as an event happening
 * now: one encoding shared by every recipient. */
static void tell_room(struct worker *w, struct session *s, struct room *room, bool include_self,
		      const struct chat_event *ev)
{
	struct msg *m = event_encode(PROTO_LINE, ev);
	worker_send_room(w, room, m, include_self ? 0 : s->id, 0);
	msg_unref(m);
}

struct msg *chat_format_motd(char *const *lines, size_t count)
{
	if (count == 0)
		return NULL;
	struct msg *m = msg_new(0);
	for (size_t i = 0; i < count; i++) {
		struct cleaned c;
		clean(&c, lines[i], strlen(lines[i]));
		struct chat_event ev = { .kind = CHAT_NOTICE, .text = c.text, .text_len = c.len };
		struct msg *line = event_encode(PROTO_LINE, &ev);
		m = msg_append(m, line->data, line->len);
		msg_unref(line);
		cleaned_free(&c);
	}
	return m;
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
 * numbered SEQ (0: now; see worker_send_room), unless the room
 * is crowded (announce_max) or hears them faster than announce_rate: each
 * connection would otherwise cost everyone there two lines, which a
 * connect/close loop could turn into a flood. What was not told is counted
 * in a notice before the next one that is. */
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

void chat_connected(struct worker *w, struct session *s)
{
	unsigned room_count;
	int online = rooms_enter(worker_rooms(w), &s->member, &room_count);
	worker_room_link(w, s);
	worker_online_changed(w);
	flood_init(&s->flood, worker_config(w)->burst, worker_now_ms(w));

	struct msg *motd = worker_motd(w);
	if (motd)
		worker_send(w, s, motd);
	reply(w, s, "> Connected to the chat server as %s (%d online)", s->member.nick, online);
	struct chat_event ev = { .kind = CHAT_ENTERED, .nick = s->member.nick,
				 .room = s->member.room->name, .online = online };
	announce(w, s, s->member.room, room_count, &ev, s->member.joined_seq);
	struct log_note note;
	if (worker_log_allowed(w, s, LOG_INFO, &note))
		log_event(LOG_INFO, LOG_FIELDS(.event = "connect", .peer = s->peer, .nick = s->member.nick,
					       .suppressed = note.suppressed, LOG_ONLINE(online)),
			  "connect from %s as %s (%d online)%s", s->peer, s->member.nick, online,
			  note.text);
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
		struct cleaned c;
		clean(&c, farewell, farewell_len);
		/* A reason that cleans to nothing is no reason. */
		bool blank = cleaned_blank(&c);
		struct chat_event ev = { .kind = CHAT_LEFT, .nick = s->member.nick, .room = room->name,
					 .online = online, .text = c.text, .text_len = blank ? 0 : c.len };
		announce(w, s, room, room_count + 1, &ev, 0);
		cleaned_free(&c);
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

static bool flood_allows(struct worker *w, struct session *s);

/* An over-long line counts against the rate like any line: a flood of
 * them is answered "slow down", then cut off, not answered each. */
bool chat_line_too_long(struct worker *w, struct session *s)
{
	if (flood_allows(w, s))
		reply(w, s, "! line too long (max %zu bytes)", worker_config(w)->max_line);
	return true;
}

void chat_bytes_dropped(struct worker *w, struct session *s, size_t bytes)
{
	const struct config *cfg = worker_config(w);

	if (cfg->rate <= 0)
		return;
	s->dropped_bytes += bytes;
	while (s->dropped_bytes > cfg->max_line && worker_session_open(s)) {
		s->dropped_bytes -= cfg->max_line + 1;
		flood_allows(w, s);
	}
}

/* The page number a /who or /rooms asks for: 1 when none, 0 when ARG is
 * not one. */
static size_t page_arg(const struct command *cmd)
{
	size_t page = 0;

	if (cmd->arg_len == 0)
		return 1;
	for (size_t i = 0; i < cmd->arg_len; i++) {
		char d = cmd->arg[i];
		if (d < '0' || d > '9' || page > PAGE_MAX / 10)
			return 0;
		page = page * 10 + (size_t)(d - '0');
	}
	return page <= PAGE_MAX ? page : 0;
}

/* For page PAGE of N items, PER_PAGE a page: the first item's index in
 * *RET_FIRST and the page count in *RET_PAGES; false (and a reply) when
 * there is no such page. */
static bool page_bounds(struct worker *w, struct session *s, enum command_kind cmd_kind, size_t page,
			size_t n, size_t per_page, size_t *ret_first, size_t *ret_pages)
{
	size_t pages = n == 0 ? 1 : (n + per_page - 1) / per_page;

	if (page == 0) {
		usage(w, s, cmd_kind);
		return false;
	}
	if (page > pages) {
		reply(w, s, "! no page %zu: %s has %zu page%s", page, command_info(cmd_kind)->name, pages,
		      pages == 1 ? "" : "s");
		return false;
	}
	*ret_first = (page - 1) * per_page;
	*ret_pages = pages;
	return true;
}

/* Copies a command argument into a NUL-terminated name, if it can be one. */
static bool take_name(const char *arg, size_t len, char ret[NAME_MAX_LEN + 1])
{
	if (!text_is_valid_name(arg, len))
		return false;
	memcpy(ret, arg, len);
	ret[len] = '\0';
	return true;
}

static void do_nick(struct worker *w, struct session *s, const struct command *cmd)
{
	char nick[NAME_MAX_LEN + 1], old[NAME_MAX_LEN + 1];

	if (cmd->arg_len == 0) {
		usage(w, s, CMD_NICK);
		return;
	}
	if (!take_name(cmd->arg, cmd->arg_len, nick)) {
		reply(w, s, "! invalid nick: NAME " NAME_RULE);
		return;
	}
	int r = rooms_rename(worker_rooms(w), &s->member, nick, old);
	if (r == -EALREADY) {
		reply(w, s, "= you are already %s", nick);
	} else if (r == -EEXIST) {
		reply(w, s, "! nick taken: %s", nick);
	} else {
		struct chat_event ev = { .kind = CHAT_RENAMED, .nick = old, .other = nick,
					 .room = s->member.room->name };
		tell_room(w, s, s->member.room, true, &ev);
		log_debug("%s: %s is now known as %s", s->peer, old, nick);
	}
}

static void do_who(struct worker *w, struct session *s, const struct command *cmd)
{
	char (*nicks)[NAME_MAX_LEN + 1];
	size_t n = rooms_who(worker_rooms(w), &s->member, &nicks);
	size_t page = page_arg(cmd), first, pages;

	if (!page_bounds(w, s, CMD_WHO, page, n, WHO_PAGE, &first, &pages)) {
		free(nicks);
		return;
	}
	struct msg *m = pages == 1 ? msg_printf("= %zu in %s:", n, s->member.room->name)
				   : msg_printf("= %zu in %s, page %zu of %zu:", n, s->member.room->name,
						page, pages);
	for (size_t i = first; i < n && i < first + WHO_PAGE; i++) {
		m = msg_append(m, " ", 1);
		m = msg_append(m, nicks[i], strlen(nicks[i]));
	}
	m = msg_append(m, "\n", 1);
	free(nicks);
	worker_send(w, s, m);
	msg_unref(m);
}

static void do_msg(struct worker *w, struct session *s, const struct command *cmd)
{
	char nick[NAME_MAX_LEN + 1];
	struct member_address to;

	if (cmd->arg_len == 0 || cmd->text_len == 0) {
		usage(w, s, CMD_MSG);
		return;
	}
	if (!take_name(cmd->arg, cmd->arg_len, nick) || !rooms_find(worker_rooms(w), nick, &to)) {
		/* Cleaned like anything a client sends that goes back out. */
		struct cleaned c;
		clean(&c, cmd->arg, cmd->arg_len > NAME_MAX_LEN ? NAME_MAX_LEN : cmd->arg_len);
		reply(w, s, "! no such nick: %.*s", (int)c.len, c.text);
		cleaned_free(&c);
		return;
	}
	if (to.conn_id == s->id) {
		reply(w, s, "! you cannot /msg yourself");
		return;
	}
	struct cleaned c;
	clean(&c, cmd->text, cmd->text_len);
	if (cleaned_blank(&c)) {
		usage(w, s, CMD_MSG);
	} else {
		struct chat_event ev = { .kind = CHAT_PRIVATE, .nick = s->member.nick, .other = to.nick,
					 .text = c.text, .text_len = c.len };
		struct msg *m = event_encode(PROTO_LINE, &ev);
		worker_send_direct(w, &to, m);
		worker_send(w, s, m);
		msg_unref(m);
	}
	cleaned_free(&c);
}

static void do_join(struct worker *w, struct session *s, const struct command *cmd)
{
	char name[NAME_MAX_LEN + 1];
	struct room *old;
	unsigned old_count, count;

	if (cmd->arg_len == 0) {
		usage(w, s, CMD_JOIN);
		return;
	}
	if (!take_name(cmd->arg, cmd->arg_len, name)) {
		reply(w, s, "! invalid room: NAME " NAME_RULE);
		return;
	}
	if (rooms_move(worker_rooms(w), &s->member, name, &old, &old_count, &count) < 0) {
		reply(w, s, "! you are already in %s", s->member.room->name);
		return;
	}
	worker_room_unlink(w, s, old);
	worker_room_link(w, s);
	struct room *room = s->member.room;
	struct chat_event went = { .kind = CHAT_WENT, .nick = s->member.nick, .room = old->name,
				   .other = room->name };
	struct chat_event joined = { .kind = CHAT_JOINED, .nick = s->member.nick, .room = room->name };
	announce(w, s, old, old_count + 1, &went, 0);
	announce(w, s, room, count, &joined, s->member.joined_seq);
	reply(w, s, "= you joined %s (%u here)", room->name, count);
	room_unref(old);
}

static void do_rooms(struct worker *w, struct session *s, const struct command *cmd)
{
	struct room_summary *list;
	size_t n = rooms_list(worker_rooms(w), &list);
	size_t page = page_arg(cmd), first, pages;

	if (!page_bounds(w, s, CMD_ROOMS, page, n, ROOMS_PAGE, &first, &pages)) {
		free(list);
		return;
	}
	struct msg *m = pages == 1 ? msg_printf("= %zu room%s:", n, n == 1 ? "" : "s")
				   : msg_printf("= %zu rooms, page %zu of %zu:", n, page, pages);
	for (size_t i = first; i < n && i < first + ROOMS_PAGE; i++) {
		char item[NAME_MAX_LEN + 24];
		int len = snprintf(item, sizeof(item), "%s %s (%u)", i > first ? "," : "", list[i].name,
				   list[i].count);
		m = msg_append(m, item, (size_t)len);
	}
	m = msg_append(m, "\n", 1);
	free(list);
	worker_send(w, s, m);
	msg_unref(m);
}

static void do_help(struct worker *w, struct session *s)
{
	reply(w, s, "= commands:");
	for (size_t i = 0; i < command_table_size; i++)
		reply(w, s, "=   %-16s %s", command_table[i].usage, command_table[i].help);
	reply(w, s, "= other lines are said to your room; start a line with // to say one "
		    "beginning with /");
}

static void do_quit(struct worker *w, struct session *s, const struct command *cmd)
{
	reply(w, s, "= bye");
	worker_close_after_flush(w, s, "quit", cmd->text, cmd->text_len);
}

/* Applies [limits] rate and burst; false when the line is dropped. */
static bool flood_allows(struct worker *w, struct session *s)
{
	const struct config *cfg = worker_config(w);

	switch (flood_check(&s->flood, cfg->rate, cfg->burst, worker_now_ms(w),
			    worker_stalled_since(w, s->flood.stamp_ms))) {
	case FLOOD_OK:
		return true;
	case FLOOD_WARN:
		reply(w, s, "! slow down (at most %d lines per second)", cfg->rate);
		return false;
	case FLOOD_DROP:
		return false;
	case FLOOD_KICK:
		reply(w, s, "! flooding: disconnected");
		struct log_note note;
		if (worker_log_allowed(w, s, LOG_NOTICE, &note))
			log_event(LOG_NOTICE, LOG_FIELDS(.peer = s->peer, .nick = s->member.nick,
							 .reason = "flood", .suppressed = note.suppressed),
				  "%s (%s): flooding past %d lines per second, disconnecting%s", s->peer,
				  s->member.nick, cfg->rate, note.text);
		worker_close_after_flush(w, s, "flood", NULL, 0);
		return false;
	}
	return false;
}

bool chat_line(struct worker *w, struct session *s, const char *line, size_t len)
{
	struct command cmd;

	protocol_parse(line, len, &cmd);
	/* Every line counts, blank ones too: a client may keep itself
	 * connected with them, not keep a worker busy. */
	if (!flood_allows(w, s))
		return worker_session_open(s);
	/* Commands, never chat text, so a debug log holds no conversations. */
	if (cmd.kind != CMD_CHAT && cmd.kind != CMD_EMPTY && log_level_enabled(LOG_DEBUG))
		log_debug("%s (%s): command %s", s->peer, s->member.nick, command_name(cmd.kind));
	switch (cmd.kind) {
	case CMD_EMPTY:
		break;
	case CMD_CHAT:
	case CMD_ME: {
		struct cleaned c;
		clean(&c, cmd.text, cmd.text_len);
		if (!cleaned_blank(&c)) {
			struct chat_event ev = { .kind = cmd.kind == CMD_ME ? CHAT_ACTION : CHAT_SAID,
						 .nick = s->member.nick, .room = s->member.room->name,
						 .text = c.text, .text_len = c.len };
			tell_room(w, s, s->member.room, false, &ev);
		} else if (cmd.kind == CMD_ME) {
			usage(w, s, CMD_ME);
		} /* else nothing was left of a chat line once cleaned */
		cleaned_free(&c);
		break;
	}
	case CMD_NICK:
		do_nick(w, s, &cmd);
		break;
	case CMD_WHO:
		do_who(w, s, &cmd);
		break;
	case CMD_MSG:
		do_msg(w, s, &cmd);
		break;
	case CMD_JOIN:
		do_join(w, s, &cmd);
		break;
	case CMD_ROOMS:
		do_rooms(w, s, &cmd);
		break;
	case CMD_HELP:
		do_help(w, s);
		break;
	case CMD_QUIT:
		do_quit(w, s, &cmd);
		return false;
	case CMD_UNKNOWN: {
		struct cleaned c;
		clean(&c, cmd.arg, cmd.arg_len > 64 ? 64 : cmd.arg_len);
		reply(w, s, "! unknown command: %.*s (try /help)", (int)c.len, c.text);
		cleaned_free(&c);
		break;
	}
	}
	return true;
}
