/* IRC's side of room history: what a client is shown on JOIN, and the
 * IRCv3 draft/chathistory command (LATEST, BEFORE, AFTER, AROUND,
 * BETWEEN) answered from the store. A client that negotiated server-time
 * gets each line as it was said, with its time (and msgid) tags, in a
 * chathistory batch when it negotiated batch; one without server-time
 * gets notices from the server with the time in the text, which no client
 * can mistake for live lines, nor a bot answer. */
#include "autoconf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/chat.h"
#include "core/history.h"
#include "proto/irc_impl.h"

/* Tags of history go with server-time: without it, notices. */
static bool with_tags(struct session *s)
{
	return irc_state_of(s)->caps & CAP_SERVER_TIME;
}

/* A batch's name, unique on the connection. */
static void batch_id(struct worker *w, char id[24])
{
	snprintf(id, 24, "h%" PRIx64, worker_event_id(w));
}

static void send_line(struct worker *w, struct session *s, const char *room, const struct hline *l,
		      const char *batch)
{
	struct msg *m;
	if (with_tags(s)) {
		struct chat_event ev = {
			.kind = l->kind == HLINE_ACTION ? CHAT_ACTION : CHAT_SAID,
			.notice = l->kind == HLINE_NOTICE, .nick = l->nick, .user = l->user,
			.host = l->host, .room = room, .text = l->text, .text_len = l->text_len,
			.formatting = l->formatting, .id = l->msgid, .time_ms = l->time_ms,
			.server = irc_server(w), .batch = batch,
		};
		m = irc_encode(s->member.format, &ev);
	} else {
		m = irc_encode_history_notice(irc_server(w), room, l);
	}
	worker_send(w, s, m);
	msg_unref(m);
}

/* LINES of ROOM to S, in a chathistory batch when S has batch (always for
 * an answer to CHATHISTORY, ANSWER: the batch is what says "no more"). */
static void send_lines(struct worker *w, struct session *s, const char *room, const char *target,
		       struct hline *const *lines, size_t n, bool answer)
{
	char id[24];
	bool batch = (irc_state_of(s)->caps & CAP_BATCH) && (n || answer);
	if (batch) {
		batch_id(w, id);
		irc_raw(w, s, ":%s BATCH +%s chathistory %s", irc_server(w), id, target);
	}
	for (size_t i = 0; i < n; i++)
		send_line(w, s, room, lines[i], batch ? id : NULL);
	if (batch)
		irc_raw(w, s, ":%s BATCH -%s", irc_server(w), id);
}

void irc_replay(struct worker *w, struct session *s, const char *room, struct history_snapshot *snap)
{
	char target[NAME_MAX_LEN + 2];
	snprintf(target, sizeof(target), "#%s", room);
	if (snap->count)
		send_lines(w, s, room, target, snap->lines, snap->count, false);
	history_snapshot_release(snap);
}

/* ---- CHATHISTORY ------------------------------------------------------------- */

static void fail(struct worker *w, struct session *s, const char *code, const char *sub,
		 const char *target, const char *why)
{
	irc_raw(w, s, ":%s FAIL CHATHISTORY %s %s%s%s :%s", irc_server(w), code, sub,
		target ? " " : "", target ? target : "", why);
}

/* "YYYY-MM-DDThh:mm:ss.sssZ" (the fraction optional) in ms. */
static bool parse_time(const char *p, int64_t *ret)
{
	struct tm tm = { 0 };
	int ms = 0, used = 0;
	if (sscanf(p, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec, &used) != 6)
		return false;
	p += used;
	if (*p == '.') {
		int digits = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				ms = ms * 10 + (*p - '0');
		for (; digits < 3 && digits > 0; digits++)
			ms *= 10;
	}
	if (strcmp(p, "Z") != 0 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return false;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return false;
	*ret = (int64_t)t * 1000 + ms;
	return true;
}

/* "timestamp=...", "msgid=..." (or "*" when STAR_OK) into REF. */
static bool parse_ref(const char *p, size_t len, bool star_ok, struct store_ref *ref)
{
	char buf[64];
	if (len >= sizeof(buf))
		return false;
	memcpy(buf, p, len);
	buf[len] = '\0';
	if (star_ok && strcmp(buf, "*") == 0) {
		ref->kind = STORE_REF_NONE;
		return true;
	}
	if (strncmp(buf, "timestamp=", 10) == 0) {
		ref->kind = STORE_REF_TIME;
		return parse_time(buf + 10, &ref->value);
	}
	if (strncmp(buf, "msgid=", 6) == 0 && buf[6]) {
		/* Ours: hex, with "-N" for a part of a long line. */
		char *end;
		unsigned long long v = strtoull(buf + 6, &end, 16);
		if (end == buf + 6 || (*end && *end != '-'))
			return false;
		ref->kind = STORE_REF_MSGID;
		ref->value = (int64_t)v;
		return true;
	}
	return false;
}

static const struct {
	const char *name;
	enum store_query_kind kind;
	int refs;  /* references before the limit */
} subcommands[] = {
	{ "LATEST", STORE_LATEST, 1 }, { "BEFORE", STORE_BEFORE, 1 }, { "AFTER", STORE_AFTER, 1 },
	{ "AROUND", STORE_AROUND, 1 }, { "BETWEEN", STORE_BETWEEN, 2 },
};

void irc_cmd_chathistory(struct worker *w, struct session *s, const struct irc_message *msg)
{
	struct irc_echo e;
	if (msg->count < 1) {
		irc_raw(w, s, ":%s FAIL CHATHISTORY NEED_MORE_PARAMS * :Missing parameters",
			irc_server(w));
		return;
	}
	char sub[16];
	irc_copy(sub, sizeof(sub), msg->params[0], msg->param_len[0]);
	for (char *c = sub; *c; c++)
		if (*c >= 'a' && *c <= 'z')
			*c = (char)(*c - 32);
	size_t k = 0;
	while (k < ARRAY_SIZE(subcommands) && strcmp(subcommands[k].name, sub) != 0)
		k++;
	if (k == ARRAY_SIZE(subcommands)) {
		fail(w, s, "UNKNOWN_COMMAND", irc_echo(&e, msg->params[0], msg->param_len[0]), NULL,
		     "Unknown command");
		return;
	}
	int refs = subcommands[k].refs;
	if (msg->count < 3 + refs) {
		fail(w, s, "NEED_MORE_PARAMS", sub, NULL, "Missing parameters");
		return;
	}
	struct irc_echo te;
	const char *target = irc_echo(&te, msg->params[1], msg->param_len[1]);
	struct store_query *q = xcalloc(1, sizeof(*q));
	q->kind = subcommands[k].kind;
	const char *limit = msg->params[2 + refs];
	size_t limit_len = msg->param_len[2 + refs];
	long n = 0;
	bool ok = limit_len > 0 && limit_len < 6;
	for (size_t i = 0; ok && i < limit_len; i++) {
		ok = limit[i] >= '0' && limit[i] <= '9';
		n = n * 10 + (limit[i] - '0');
	}
	if (!ok || n < 1 || !parse_ref(msg->params[2], msg->param_len[2], q->kind == STORE_LATEST, &q->a) ||
	    (refs == 2 && !parse_ref(msg->params[3], msg->param_len[3], false, &q->b))) {
		fail(w, s, "INVALID_PARAMS", sub, NULL, "Invalid parameters (a reference is "
		     "timestamp=YYYY-MM-DDThh:mm:ss.sssZ or msgid=ID; the limit a number from 1)");
		free(q);
		return;
	}
	q->limit = (unsigned)(n > IRC_CHATHISTORY_MAX ? IRC_CHATHISTORY_MAX : n);
	char room[NAME_MAX_LEN + 1];
	if (!irc_room_name(msg->params[1], msg->param_len[1], room)) {
		/* A nick: private messages are not kept, so there are none. */
		free(q);
		char nick[NAME_MAX_LEN + 1];
		if (!irc_nick_name(msg->params[1], msg->param_len[1], nick)) {
			fail(w, s, "INVALID_TARGET", sub, target, "Not a channel or a nick");
			return;
		}
		send_lines(w, s, NULL, nick, NULL, 0, true);
		return;
	}
	struct membership *ms = rooms_membership(&s->member, room);
	if (!ms) {
		free(q);
		fail(w, s, "INVALID_TARGET", sub, target, "You are not on that channel");
		return;
	}
	if (worker_config(w)->history_keep == 0) {
		free(q);
		send_lines(w, s, ms->room->name, target, NULL, 0, true);
		return;
	}
	snprintf(q->room, sizeof(q->room), "%s", ms->room->name);
	q->tag = (int)k;
	worker_history_query(w, s, q);
}

void irc_history(struct worker *w, struct session *s, const struct store_query *q)
{
	const char *sub = q->tag >= 0 && (size_t)q->tag < ARRAY_SIZE(subcommands)
				  ? subcommands[q->tag].name
				  : "LATEST";
	char target[sizeof(q->room) + 1];
	snprintf(target, sizeof(target), "#%s", q->room);
	if (q->error == -ENOENT) {
		/* A msgid that is not (or no longer) in the room's history. */
		send_lines(w, s, q->room, target, NULL, 0, true);
		return;
	}
	if (q->error) {
		fail(w, s, "MESSAGE_ERROR", sub, target, "Messages could not be retrieved");
		return;
	}
	send_lines(w, s, q->room, target, q->lines, q->count, true);
}
