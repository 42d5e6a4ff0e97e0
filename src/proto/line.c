/* chatd's own line protocol (docs/protocol.md): the codec between its
 * clients' lines and the chat core. Events are encoded as a kind character,
 * a space, the text and "\n", each msg allocated to its exact size (since
 * max_sendq counts queued bytes, memory must not be a multiple of them);
 * lines are parsed by protocol.c and handled here, replies included. */
#include "autoconf.h"

#include "proto/line.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/log.h"
#include "base/text.h"
#include "base/util.h"
#include "core/chat.h"
#include "proto/protocol.h"

/* HEAD (HLEN bytes) + the event's text + TAIL + "\n", in one msg. */
static struct msg *line_with_head(const struct chat_event *ev, const char *head, size_t hlen,
				  const char *tail)
{
	size_t tlen = strlen(tail);
	struct msg *m = msg_new(hlen + ev->text_len + tlen + 1);
	memcpy(m->data, head, hlen);
	/* IRC's formatting (bold, colours, CTCP) is not for terminals. */
	size_t text_len = ev->text_len;
	if (ev->formatting)
		text_len = text_strip_formatting(m->data + hlen, ev->text, ev->text_len);
	else
		memcpy(m->data + hlen, ev->text, ev->text_len);
	memcpy(m->data + hlen + text_len, tail, tlen);
	m->data[hlen + text_len + tlen] = '\n';
	m->len = (uint32_t)(hlen + text_len + tlen + 1);
	return m;
}

/* The same with HEAD printf-style. */
static struct msg *line_with_text(const struct chat_event *ev, const char *tail,
				  const char *head_fmt, ...) PRINTF_LIKE(3, 4);

static struct msg *line_with_text(const struct chat_event *ev, const char *tail,
				  const char *head_fmt, ...)
{
	char head[3 * NAME_MAX_LEN + 64];
	va_list ap;

	va_start(ap, head_fmt);
	int hlen = vsnprintf(head, sizeof(head), head_fmt, ap);
	va_end(ap);
	if (hlen < 0)
		hlen = 0;
	if ((size_t)hlen >= sizeof(head))
		hlen = sizeof(head) - 1;
	return line_with_head(ev, head, (size_t)hlen, tail);
}

struct msg *line_encode(const struct chat_event *ev)
{
	switch (ev->kind) {
	case CHAT_ENTERED:
		return msg_printf("> %s entered (%d online)\n", ev->nick, ev->online);
	case CHAT_LEFT: {
		char tail[32];
		snprintf(tail, sizeof(tail), " (%d online)", ev->online);
		if (ev->text_len)
			return line_with_text(ev, tail, "< %s left: ", ev->nick);
		return msg_printf("< %s left%s\n", ev->nick, tail);
	}
	case CHAT_JOINED:
		return msg_printf("> %s joined %s\n", ev->nick, ev->room);
	case CHAT_WENT:
		return msg_printf("< %s went to %s\n", ev->nick, ev->other);
	case CHAT_PARTED:
		if (ev->text_len)
			return line_with_text(ev, "", "< %s left %s: ", ev->nick, ev->room);
		return msg_printf("< %s left %s\n", ev->nick, ev->room);
	case CHAT_KICKED:
		if (ev->text_len)
			return line_with_text(ev, "", "< %s was kicked from %s by %s: ", ev->other, ev->room,
					      ev->nick);
		return msg_printf("< %s was kicked from %s by %s\n", ev->other, ev->room, ev->nick);
	case CHAT_TOPIC:
		if (ev->text_len)
			return line_with_text(ev, "", "* %s set the topic of %s: ", ev->nick, ev->room);
		return msg_printf("* %s cleared the topic of %s\n", ev->nick, ev->room);
	case CHAT_MODE:
		return msg_printf("* %s set mode %.*s%s%s in %s\n", ev->nick, (int)ev->text_len, ev->text,
				  ev->other ? " " : "", ev->other ? ev->other : "", ev->room);
	case CHAT_SAID: { /* the one on every line: no printf */
		char head[NAME_MAX_LEN + 4];
		return line_with_head(ev, head, str_join(head, sizeof(head), "[", ev->nick, "] ", NULL), "");
	}
	case CHAT_ACTION:
		return line_with_text(ev, "", "* %s ", ev->nick);
	case CHAT_RENAMED:
		return msg_printf("* %s is now known as %s\n", ev->nick, ev->other);
	case CHAT_PRIVATE:
		return line_with_text(ev, "", "[%s -> %s] %s%s%s", ev->nick, ev->other,
				      ev->action ? "* " : "", ev->action ? ev->nick : "",
				      ev->action ? " " : "");
	case CHAT_NOTICE:
		return line_with_text(ev, "", "# ");
	case CHAT_CLOSING:
		return line_with_text(ev, ": disconnected", "! ");
	case CHAT_SLOW_DOWN:
		return msg_printf("! slow down (at most %d lines per second)\n", ev->rate);
	case CHAT_MISSED:
		return msg_printf("# %u more arrival%s and departure%s in %s not shown "
				  "(more than %d a second)\n", ev->count, ev->count == 1 ? "" : "s",
				  ev->count == 1 ? "" : "s", ev->room, ev->rate);
	case CHAT_GUARD:
		return msg_printf("! %s is a registered nick: /identify PASSWORD within %d second%s, "
				  "or you will be renamed\n", ev->nick, ev->rate, ev->rate == 1 ? "" : "s");
	case CHAT_NICK_TAKEN:
		return msg_printf("! %s is taken on another server of this network: you are now %s\n",
				  ev->nick, ev->other);
	case CHAT_GUARD_EXPIRED:
		return msg_printf("! you did not identify for %s within %d second%s: you are now %s\n",
				  ev->nick, ev->rate, ev->rate == 1 ? "" : "s", ev->other);
	}
	return msg_printf("# ?\n");
}

/* ---- what line clients send ------------------------------------------------ */

#define NAME_RULE "must be 1-32 letters, digits, _ or -, starting with a letter"
/* Long replies come in pages, each far below the smallest max_sendq: a
 * reply the server chooses to send never counts as its reader being slow. */
#define WHO_PAGE 100   /* nicks: at most 100 * 33 bytes */
#define ROOMS_PAGE 50  /* rooms: at most 50 * 48 bytes */
#define PAGE_MAX 100000
/* /history: lines by default, and at most. */
#define HISTORY_DEFAULT 50
#define HISTORY_MAX 500

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

/* Replies HEAD, up to MAX bytes of client TEXT, and TAIL: the text cleaned
 * like anything a client sends that goes back out. */
static void reply_cleaned(struct worker *w, struct session *s, const char *head, const char *text,
			  size_t len, size_t max, const char *tail)
{
	struct text_buf c;
	text_buf_clean(&c, text, len > max ? max : len);
	reply(w, s, "%s%.*s%s", head, (int)c.len, c.text, tail);
	text_buf_free(&c);
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

/* For the page CMD asks for of N items, PER_PAGE a page: the first item's
 * index in *RET_FIRST, the page and page count in *RET_PAGE, *RET_PAGES;
 * false (and a reply) when there is no such page. */
static bool page_bounds(struct worker *w, struct session *s, const struct command *cmd, size_t n,
			size_t per_page, size_t *ret_first, size_t *ret_page, size_t *ret_pages)
{
	size_t page = page_arg(cmd), pages = n == 0 ? 1 : (n + per_page - 1) / per_page;

	if (page == 0) {
		usage(w, s, cmd->kind);
		return false;
	}
	if (page > pages) {
		reply(w, s, "! no page %zu: %s has %zu page%s", page, command_info(cmd->kind)->name,
		      pages, pages == 1 ? "" : "s");
		return false;
	}
	*ret_first = (page - 1) * per_page;
	*ret_page = page;
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

/* The one room a line client is in, or NULL (kicked from it) after
 * telling it so. */
static struct room *my_room(struct worker *w, struct session *s)
{
	struct membership *ms = TAILQ_FIRST(&s->member.rooms);
	if (!ms)
		reply(w, s, "! you are in no room: /join ROOM");
	return ms ? ms->room : NULL;
}

static void do_say(struct worker *w, struct session *s, const struct command *cmd)
{
	bool action = cmd->kind == CMD_ME;
	struct room *room = my_room(w, s);
	if (!room)
		return;
	if (!chat_say(w, s, room, action ? CHAT_ACTION : CHAT_SAID, false, cmd->text, cmd->text_len,
		      false) && action)
		usage(w, s, CMD_ME);
	/* A chat line of nothing once cleaned is simply not said. */
}

static void do_nick(struct worker *w, struct session *s, const struct command *cmd)
{
	char nick[NAME_MAX_LEN + 1];

	if (cmd->arg_len == 0) {
		usage(w, s, CMD_NICK);
		return;
	}
	if (!take_name(cmd->arg, cmd->arg_len, nick)) {
		reply(w, s, "! invalid nick: NAME " NAME_RULE);
		return;
	}
	int r = chat_rename(w, s, nick);
	if (r == -EALREADY)
		reply(w, s, "= you are already %s", nick);
	else if (r == -EEXIST)
		reply(w, s, "! nick taken: %s", nick);
	else if (r == -EACCES)
		reply(w, s, "! nick banned on this server: %s", nick);
}

static void do_who(struct worker *w, struct session *s, const struct command *cmd)
{
	struct room *my = my_room(w, s);
	if (!my)
		return;
	struct room_entry *nicks;
	size_t n = rooms_names(worker_rooms(w), my->name, true, &nicks);
	size_t first, page, pages;

	if (!page_bounds(w, s, cmd, n, WHO_PAGE, &first, &page, &pages)) {
		free(nicks);
		return;
	}
	const char *room = my->name;
	struct msg *m = pages == 1 ? msg_printf("= %zu in %s:", n, room)
				   : msg_printf("= %zu in %s, page %zu of %zu:", n, room, page, pages);
	for (size_t i = first; i < n && i < first + WHO_PAGE; i++) {
		const char *mark = nicks[i].op ? " @" : nicks[i].voice ? " +" : " ";
		m = msg_append(m, mark, strlen(mark));
		m = msg_append(m, nicks[i].nick, strlen(nicks[i].nick));
	}
	m = msg_append(m, "\n", 1);
	free(nicks);
	worker_send(w, s, m);
	msg_unref(m);
}

static void do_msg(struct worker *w, struct session *s, const struct command *cmd)
{
	char nick[NAME_MAX_LEN + 1];

	if (cmd->arg_len == 0 || cmd->text_len == 0) {
		usage(w, s, CMD_MSG);
		return;
	}
	int r = !take_name(cmd->arg, cmd->arg_len, nick) ? -ENOENT
		: strcasecmp(nick, s->member.nick) == 0 ? -ELOOP
		: chat_private(w, s, nick, cmd->text, cmd->text_len, false, false, true, NULL);
	if (r == -ENOENT)
		reply_cleaned(w, s, "! no such nick: ", cmd->arg, cmd->arg_len, NAME_MAX_LEN, "");
	else if (r == -ELOOP)
		reply(w, s, "! you cannot /msg yourself");
	else if (r == -ENODATA)
		usage(w, s, CMD_MSG);
}

/* "= topic of ROOM: ..." (or, with ALWAYS, that there is none). */
static void show_topic(struct worker *w, struct session *s, const char *name, bool always)
{
	struct room_info info;
	if (!rooms_info(worker_rooms(w), name, &info))
		return;
	if (info.topic[0]) {
		char topic[TOPIC_MAX_LEN + 1];
		size_t n = text_strip_formatting(topic, info.topic, strlen(info.topic));
		reply(w, s, "= topic of %s: %.*s (set by %s)", info.name, (int)n, topic, info.topic_by);
	}
	else if (always)
		reply(w, s, "= %s has no topic", info.name);
}

static void do_topic(struct worker *w, struct session *s, const struct command *cmd)
{
	struct room *room = my_room(w, s);
	if (!room)
		return;
	if (cmd->text_len == 0) {
		show_topic(w, s, room->name, true);
		return;
	}
	bool clear = cmd->text_len == 1 && cmd->text[0] == '-';
	int r = chat_topic(w, s, room->name, cmd->text, clear ? 0 : cmd->text_len);
	if (r == -EPERM)
		reply(w, s, "! only operators of %s set its topic", room->name);
	else if (r == -EALREADY)
		show_topic(w, s, room->name, true);
}

/* The reply to an operator's act that failed with R (see rooms.h). */
static void op_failed(struct worker *w, struct session *s, const char *room, const char *nick,
		      int r)
{
	if (r == -EPERM)
		reply(w, s, "! you are not an operator of %s", room);
	else if (r == -ENOENT)
		reply(w, s, "! no such nick: %s", nick);
	else if (r == -ESRCH)
		reply(w, s, "! %s is not in %s", nick, room);
}

static void do_kick(struct worker *w, struct session *s, const struct command *cmd)
{
	char nick[NAME_MAX_LEN + 1];
	struct room *room = my_room(w, s);
	if (!room)
		return;
	if (cmd->arg_len == 0) {
		usage(w, s, CMD_KICK);
		return;
	}
	if (!take_name(cmd->arg, cmd->arg_len, nick)) {
		reply_cleaned(w, s, "! no such nick: ", cmd->arg, cmd->arg_len, NAME_MAX_LEN, "");
		return;
	}
	int r = chat_kick(w, s, room->name, nick, cmd->text, cmd->text_len);
	op_failed(w, s, room->name, nick, r);
}

static void do_op(struct worker *w, struct session *s, const struct command *cmd)
{
	char nick[NAME_MAX_LEN + 1];
	struct room *room = my_room(w, s);
	bool on = cmd->kind == CMD_OP;
	if (!room)
		return;
	if (cmd->arg_len == 0) {
		usage(w, s, cmd->kind);
		return;
	}
	if (!take_name(cmd->arg, cmd->arg_len, nick)) {
		reply_cleaned(w, s, "! no such nick: ", cmd->arg, cmd->arg_len, NAME_MAX_LEN, "");
		return;
	}
	int r = chat_mode(w, s, room->name, 'o', on, nick);
	if (r == -EALREADY)
		reply(w, s, "= %s %s an operator of %s", nick, on ? "is already" : "is not", room->name);
	else
		op_failed(w, s, room->name, nick, r);
}

/* L as a line client reads a line of history: "~ TIME " and the line as
 * it was read live ("~ 2026-12-06T14:03:05Z [alice] hi\n"). */
static struct msg *history_encode(const struct hline *l)
{
	struct chat_event ev = { .kind = l->kind == HLINE_ACTION ? CHAT_ACTION : CHAT_SAID,
				 .nick = l->nick, .text = l->text, .text_len = l->text_len,
				 .formatting = l->formatting };
	struct msg *live = line_encode(&ev);
	char stamp[40];
	time_t t = (time_t)(l->time_ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t n = strftime(stamp, sizeof(stamp), "~ %Y-%m-%dT%H:%M:%SZ ", &tm);
	struct msg *m = msg_new(n + live->len);
	memcpy(m->data, stamp, n);
	memcpy(m->data + n, live->data, live->len);
	m->len = (uint32_t)(n + live->len);
	msg_unref(live);
	return m;
}

/* The last lines of ROOM, N of them, to S: a heading, then each. */
static void show_history(struct worker *w, struct session *s, const char *room,
			 struct hline *const *lines, size_t n)
{
	if (n == 1)
		reply(w, s, "= the last line in %s:", room);
	else
		reply(w, s, "= the last %zu lines in %s:", n, room);
	for (size_t i = 0; i < n; i++) {
		struct msg *m = history_encode(lines[i]);
		worker_send(w, s, m);
		msg_unref(m);
	}
}

/* What a joiner is shown of the room's past, if anything. */
static void show_snapshot(struct worker *w, struct session *s, const char *room,
			  struct history_snapshot *snap)
{
	if (snap->count)
		show_history(w, s, room, snap->lines, snap->count);
	history_snapshot_release(snap);
}

static void do_history(struct worker *w, struct session *s, const struct command *cmd)
{
	struct room *room = my_room(w, s);
	if (!room)
		return;
	size_t n = cmd->arg_len ? page_arg(cmd) : HISTORY_DEFAULT;
	if (n == 0 || n > HISTORY_MAX) {
		reply(w, s, "! usage: /history [N] (N: 1-%d)", HISTORY_MAX);
		return;
	}
	if (worker_config(w)->history_keep == 0) {
		reply(w, s, "= this server keeps no history");
		return;
	}
	struct store_query *q = xcalloc(1, sizeof(*q));
	q->kind = STORE_LATEST;
	snprintf(q->room, sizeof(q->room), "%s", room->name);
	q->limit = (unsigned)n;
	worker_history_query(w, s, q);
}

void line_history(struct worker *w, struct session *s, const struct store_query *q)
{
	if (q->error)
		reply(w, s, "! history is not available right now");
	else if (q->count == 0)
		reply(w, s, "= no lines kept in %s", q->room);
	else
		show_history(w, s, q->room, q->lines, q->count);
}

/* ---- accounts ---------------------------------------------------------------- */

/* A password of a command: LEN bytes at P into BUF; false (and the reason
 * told) when it cannot be one. */
static bool take_password(struct worker *w, struct session *s, const char *p, size_t len,
			  char buf[ACCOUNTS_PASSWORD_MAX + 1])
{
	if (len < ACCOUNTS_PASSWORD_MIN || len > ACCOUNTS_PASSWORD_MAX) {
		reply(w, s, "! a password is %d-%d bytes", ACCOUNTS_PASSWORD_MIN, ACCOUNTS_PASSWORD_MAX);
		return false;
	}
	memcpy(buf, p, len);
	buf[len] = '\0';
	return true;
}

static struct account_request *account_request(enum account_op op, const char *name)
{
	struct account_request *r = xcalloc(1, sizeof(*r));
	r->op = op;
	snprintf(r->name, sizeof(r->name), "%s", name);
	return r;
}

static void do_register(struct worker *w, struct session *s, const struct command *cmd)
{
	if (cmd->text_len == 0) {
		usage(w, s, CMD_REGISTER);
		return;
	}
	if (s->member.account[0]) {
		reply(w, s, "! you are logged in as %s already", s->member.account);
		return;
	}
	struct account_request *r = account_request(ACCOUNT_REGISTER, s->member.nick);
	if (!take_password(w, s, cmd->text, cmd->text_len, r->password)) {
		account_request_free(r);
		return;
	}
	worker_account_request(w, s, r);
}

static void do_identify(struct worker *w, struct session *s, const struct command *cmd)
{
	if (cmd->text_len == 0) {
		usage(w, s, CMD_IDENTIFY);
		return;
	}
	/* Two words or more: a nick, then the password. */
	const char *pass = cmd->text, *sp = memchr(cmd->text, ' ', cmd->text_len);
	size_t pass_len = cmd->text_len;
	char nick[NAME_MAX_LEN + 1];
	snprintf(nick, sizeof(nick), "%s", s->member.nick);
	if (sp) {
		if (!take_name(cmd->text, (size_t)(sp - cmd->text), nick)) {
			reply_cleaned(w, s, "! no such account: ", cmd->text, (size_t)(sp - cmd->text),
				      NAME_MAX_LEN, "");
			return;
		}
		while (*sp == ' ')
			sp++;
		pass = sp;
		pass_len = cmd->text_len - (size_t)(sp - cmd->text);
	}
	struct account_request *r = account_request(ACCOUNT_LOGIN, nick);
	if (pass_len > ACCOUNTS_PASSWORD_MAX) {
		reply(w, s, "! wrong password for %s", nick);
		account_request_free(r);
		return;
	}
	memcpy(r->password, pass, pass_len);
	r->password[pass_len] = '\0';
	worker_account_request(w, s, r);
}

static void do_password(struct worker *w, struct session *s, const struct command *cmd)
{
	if (cmd->arg_len == 0 || cmd->text_len == 0) {
		usage(w, s, CMD_PASSWORD);
		return;
	}
	if (!s->member.account[0]) {
		reply(w, s, "! you are not logged in: /identify PASSWORD first");
		return;
	}
	struct account_request *r = account_request(ACCOUNT_PASSWORD, s->member.account);
	if (cmd->arg_len > ACCOUNTS_PASSWORD_MAX ||
	    !take_password(w, s, cmd->text, cmd->text_len, r->new_password)) {
		if (cmd->arg_len > ACCOUNTS_PASSWORD_MAX)
			reply(w, s, "! wrong password");
		account_request_free(r);
		return;
	}
	memcpy(r->password, cmd->arg, cmd->arg_len);
	r->password[cmd->arg_len] = '\0';
	worker_account_request(w, s, r);
}

/* What is said of a refused login or password change. */
static void refused(struct worker *w, struct session *s, const struct account_request *r)
{
	switch (r->result) {
	case -EACCES:
		reply(w, s, "! wrong password for %s", r->name);
		break;
	case -ENOENT:
		reply(w, s, "! %s is not registered (/register PASSWORD registers your nick)", r->name);
		break;
	case -EAGAIN:
		reply(w, s, "! too many failed logins for %s or from your address: try again in %d "
			    "seconds", r->name, r->retry_s);
		break;
	case -EINVAL:
		reply(w, s, "! a password is %d-%d bytes", ACCOUNTS_PASSWORD_MIN, ACCOUNTS_PASSWORD_MAX);
		break;
	case -EEXIST:
		reply(w, s, "! %s is registered already: /identify PASSWORD", r->name);
		break;
	default:
		reply(w, s, "! accounts are not available right now; try again later");
		break;
	}
}

void line_account(struct worker *w, struct session *s, const struct account_request *r)
{
	if (r->result) {
		refused(w, s, r);
		return;
	}
	switch (r->op) {
	case ACCOUNT_REGISTER:
		chat_logged_in(w, s, r->account);
		reply(w, s, "= registered %s: you are logged in", r->account);
		break;
	case ACCOUNT_LOGIN: {
		chat_logged_in(w, s, r->account);
		reply(w, s, "= you are logged in as %s", r->account);
		int err = chat_rename(w, s, r->account);
		if (err == -EEXIST)
			reply(w, s, "= %s is in use by another connection: /nick %s once it is free "
				    "(one not logged in to %s is renamed within %d seconds)", r->account,
			      r->account, r->account, worker_config(w)->accounts_grace);
		break;
	}
	case ACCOUNT_PASSWORD:
		reply(w, s, "= password changed");
		break;
	default: /* never asked by a line client */
		break;
	}
}

static void do_join(struct worker *w, struct session *s, const struct command *cmd)
{
	char name[NAME_MAX_LEN + 1];
	unsigned count;

	if (cmd->arg_len == 0) {
		usage(w, s, CMD_JOIN);
		return;
	}
	if (!take_name(cmd->arg, cmd->arg_len, name)) {
		reply(w, s, "! invalid room: NAME " NAME_RULE);
		return;
	}
	struct history_snapshot snap = { 0 };
	int r = chat_move(w, s, name, &count, &snap);
	struct room *room = my_room(w, s);
	if (!room)
		return;
	if (r == -EALREADY) {
		reply(w, s, "! you are already in %s", room->name);
		return;
	}
	reply(w, s, "= you joined %s (%u here)", room->name, count);
	show_topic(w, s, room->name, false);
	show_snapshot(w, s, room->name, &snap);
}

static void do_rooms(struct worker *w, struct session *s, const struct command *cmd)
{
	struct room_info *list;
	size_t all = rooms_list(worker_rooms(w), &list), n = 0;
	size_t first, page, pages;

	/* A secret room (IRC's +s) is listed to its members only. */
	for (size_t i = 0; i < all; i++)
		if (!list[i].secret || rooms_membership(&s->member, list[i].name))
			list[n++] = list[i];
	if (!page_bounds(w, s, cmd, n, ROOMS_PAGE, &first, &page, &pages)) {
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

static void do_help(struct worker *w, struct session *s, const struct command *cmd)
{
	(void)cmd;
	reply(w, s, "= commands:");
	for (size_t i = 0; i < command_table_size; i++)
		reply(w, s, "=   %-16s %s", command_table[i].usage, command_table[i].help);
	reply(w, s, "= other lines are said to your room; start a line with // to say one "
		    "beginning with /");
}

static void do_quit(struct worker *w, struct session *s, const struct command *cmd)
{
	reply(w, s, "= bye");
	chat_quit(w, s, cmd->text, cmd->text_len);
}

static void do_unknown(struct worker *w, struct session *s, const struct command *cmd)
{
	reply_cleaned(w, s, "! unknown command: ", cmd->arg, cmd->arg_len, 64, " (try /help)");
}

static void do_nothing(struct worker *w, struct session *s, const struct command *cmd)
{
	(void)w, (void)s, (void)cmd;
}

/* What each kind of line does (protocol.c's command_table parses them). */
static void (*const handlers[])(struct worker *, struct session *, const struct command *) = {
	[CMD_EMPTY] = do_nothing, [CMD_CHAT] = do_say,   [CMD_ME] = do_say,
	[CMD_NICK] = do_nick,     [CMD_WHO] = do_who,    [CMD_MSG] = do_msg,
	[CMD_JOIN] = do_join,     [CMD_ROOMS] = do_rooms, [CMD_HELP] = do_help,
	[CMD_QUIT] = do_quit,     [CMD_UNKNOWN] = do_unknown, [CMD_TOPIC] = do_topic,
	[CMD_KICK] = do_kick,     [CMD_OP] = do_op,       [CMD_DEOP] = do_op,
	[CMD_HISTORY] = do_history, [CMD_REGISTER] = do_register, [CMD_IDENTIFY] = do_identify,
	[CMD_PASSWORD] = do_password,
};

void line_open(struct worker *w, struct session *s)
{
	snprintf(s->member.user, sizeof(s->member.user), "line");
	peer_host(s->peer, s->member.host, sizeof(s->member.host));
	struct history_snapshot snap = { 0 };
	int online = chat_register(w, s, NULL, LOBBY, &snap);
	struct msg *motd = worker_motd(w);
	if (motd)
		worker_send(w, s, motd);
	reply(w, s, "> Connected to the chat server as %s (%d online)", s->member.nick, online);
	show_snapshot(w, s, LOBBY, &snap);
}

bool line_input(struct worker *w, struct session *s, const char *line, size_t len)
{
	struct command cmd;

	protocol_parse(line, len, &cmd);
	/* Every line counts, blank ones too: a client may keep itself
	 * connected with them, not keep a worker busy. */
	if (!chat_allow_line(w, s))
		return worker_session_open(s);
	/* Commands, never chat text, so a debug log holds no conversations. */
	if (cmd.kind != CMD_CHAT && cmd.kind != CMD_EMPTY && log_level_enabled(LOG_DEBUG))
		log_debug("%s (%s): command %s", s->peer, s->member.nick, command_name(cmd.kind));
	handlers[cmd.kind](w, s, &cmd);
	return worker_session_open(s);
}

/* An over-long line counts against the rate like any line: a flood of
 * them is answered "slow down", then cut off, not answered each. */
bool line_too_long(struct worker *w, struct session *s)
{
	if (chat_allow_line(w, s))
		reply(w, s, "! line too long (max %zu bytes)", worker_config(w)->max_line);
	return worker_session_open(s);
}

struct msg *line_motd(char *const *lines, size_t count)
{
	if (count == 0)
		return NULL;
	struct msg *m = msg_new(0);
	for (size_t i = 0; i < count; i++) {
		struct text_buf c;
		text_buf_clean(&c, lines[i], strlen(lines[i]));
		struct chat_event ev = { .kind = CHAT_NOTICE, .text = c.text, .text_len = c.len };
		struct msg *line = line_encode(&ev);
		m = msg_append(m, line->data, line->len);
		msg_unref(line);
		text_buf_free(&c);
	}
	return m;
}
