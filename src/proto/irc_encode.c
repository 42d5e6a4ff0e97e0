/* IRC's side of the core's events: each event as the messages an IRC
 * client reads, with the tags its format asks for (server-time, msgid),
 * long text split so that no message passes 512 bytes. */
#include "autoconf.h"

#include "proto/irc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/text.h"
#include "base/util.h"
#include "core/rooms.h"

#define CRLF "\r\n"

/* "@batch=...;time=...;msgid=... " for FORMAT and EV, or "". */
static size_t tags(enum format format, const struct chat_event *ev, unsigned part, char *buf,
		   size_t size)
{
	unsigned bits = format == FORMAT_LINE ? 0 : format_tags(format);
	size_t n = 0;

	if (format == FORMAT_LINE || (bits == 0 && !ev->batch))
		return 0;
	buf[n++] = '@';
	if (ev->batch)
		n += (size_t)snprintf(buf + n, size - n, "batch=%s", ev->batch);
	if (bits & FORMAT_IRC_TIME_BIT) {
		if (n > 1)
			buf[n++] = ';';
		int64_t ms = ev->time_ms;
		time_t sec = (time_t)(ms / 1000);
		struct tm tm;
		gmtime_r(&sec, &tm);
		n += strftime(buf + n, size - n, "time=%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(buf + n, size - n, ".%03dZ", (int)(ms % 1000));
	}
	if ((bits & FORMAT_IRC_MSGID_BIT) && ev->id) {
		if (n > 1)
			buf[n++] = ';';
		n += (size_t)snprintf(buf + n, size - n, "msgid=%llx", (unsigned long long)ev->id);
		if (part)
			n += (size_t)snprintf(buf + n, size - n, "-%u", part);
	}
	if (n == 1)
		return 0;
	buf[n++] = ' ';
	return n;
}

/* An encoding being built: on the stack for the usual one message, and
 * made into a msg of its exact size at the end (max_sendq counts bytes,
 * so memory must not be a multiple of them). */
struct out {
	char *p;
	size_t len, cap;
	char stack[1024];
};

static void out_put(struct out *o, const char *data, size_t len)
{
	if (o->len + len > o->cap) {
		size_t cap = o->cap * 2;
		while (cap < o->len + len)
			cap *= 2;
		if (o->p == o->stack) {
			o->p = xmalloc(cap);
			memcpy(o->p, o->stack, o->len);
		} else {
			o->p = xrealloc(o->p, cap);
		}
		o->cap = cap;
	}
	memcpy(o->p + o->len, data, len);
	o->len += len;
}

static struct msg *out_finish(struct out *o)
{
	struct msg *m = msg_new(o->len);
	memcpy(m->data, o->p, o->len);
	m->len = (uint32_t)o->len;
	if (o->p != o->stack)
		free(o->p);
	return m;
}

/* Adds one message: TAGS, HEAD, TEXT (LEN bytes), TAIL, CRLF. */
static void put(struct out *o, const char *tag, size_t tag_len, const char *head, size_t head_len,
		const char *text, size_t len, const char *tail, size_t tail_len)
{
	out_put(o, tag, tag_len);
	out_put(o, head, head_len);
	out_put(o, text, len);
	out_put(o, tail, tail_len);
	out_put(o, CRLF, 2);
}

/* HEAD (HEAD_LEN bytes) + TEXT + TAIL, split into as many messages as 512
 * bytes each need, between two characters; a message with no text is one
 * message. */
static struct msg *put_split(enum format format, const struct chat_event *ev, const char *head,
			     size_t head_len, const char *tail)
{
	struct out o = { .p = o.stack, .cap = sizeof(o.stack) };
	char tag[128];
	size_t tail_len = strlen(tail);
	size_t room = IRC_LINE_MAX - head_len - tail_len;
	const char *text = ev->text;
	size_t left = ev->text_len;
	unsigned part = 0;

	do {
		size_t n = text_utf8_prefix(text, left, room);
		if (n == 0 && left > 0)
			n = left < room ? left : room; /* cannot happen with room > 4 */
		size_t tag_len = tags(format, ev, part++, tag, sizeof(tag));
		put(&o, tag, tag_len, head, head_len, text, n, tail, tail_len);
		text += n;
		left -= n;
	} while (left > 0);
	return out_finish(&o);
}

/* HEAD + at most what fits of TEXT + TAIL, one message. */
static struct msg *put_cut(enum format format, const struct chat_event *ev, const char *head,
			   const char *text, size_t len, const char *tail)
{
	struct out o = { .p = o.stack, .cap = sizeof(o.stack) };
	char tag[128];
	size_t head_len = strlen(head), tail_len = strlen(tail);
	size_t n = text_utf8_prefix(text, len, IRC_LINE_MAX - head_len - tail_len);
	size_t tag_len = tags(format, ev, 0, tag, sizeof(tag));
	put(&o, tag, tag_len, head, head_len, text, n, tail, tail_len);
	return out_finish(&o);
}

struct msg *irc_encode(enum format format, const struct chat_event *ev)
{
	char head[4 * NAME_MAX_LEN + USER_MAX_LEN + HOST_MAX_LEN + 64];
	char prefix[NAME_MAX_LEN + USER_MAX_LEN + HOST_MAX_LEN + 4];
	const char *server = ev->server ? ev->server : "chatd";
	size_t n;

	str_join(prefix, sizeof(prefix), ev->nick ? ev->nick : server, "!", ev->user ? ev->user : "-",
	     "@", ev->host ? ev->host : server, NULL);
	switch (ev->kind) {
	case CHAT_ENTERED:
	case CHAT_JOINED:
		snprintf(head, sizeof(head), ":%s JOIN #%s", prefix, ev->room);
		return put_cut(format, ev, head, "", 0, "");
	case CHAT_LEFT:
		snprintf(head, sizeof(head), ":%s QUIT :%s", prefix, ev->text_len ? "Quit: " : "Quit");
		return put_cut(format, ev, head, ev->text, ev->text_len, "");
	case CHAT_WENT:
		snprintf(head, sizeof(head), ":%s PART #%s :went to #%s", prefix, ev->room, ev->other);
		return put_cut(format, ev, head, "", 0, "");
	case CHAT_PARTED:
		snprintf(head, sizeof(head), ":%s PART #%s%s", prefix, ev->room, ev->text_len ? " :" : "");
		return put_cut(format, ev, head, ev->text, ev->text_len, "");
	case CHAT_KICKED:
		snprintf(head, sizeof(head), ":%s KICK #%s %s :", prefix, ev->room, ev->other);
		if (ev->text_len)
			return put_cut(format, ev, head, ev->text, ev->text_len, "");
		return put_cut(format, ev, head, ev->nick, strlen(ev->nick), "");
	case CHAT_TOPIC:
		snprintf(head, sizeof(head), ":%s TOPIC #%s :", prefix, ev->room);
		return put_cut(format, ev, head, ev->text, ev->text_len, "");
	case CHAT_MODE:
		snprintf(head, sizeof(head), ":%s MODE #%s %.*s%s%s", prefix, ev->room, (int)ev->text_len,
			 ev->text, ev->other ? " " : "", ev->other ? ev->other : "");
		return put_cut(format, ev, head, "", 0, "");
	case CHAT_SAID:
		n = str_join(head, sizeof(head), ":", prefix, ev->notice ? " NOTICE #" : " PRIVMSG #",
			     ev->room, " :", NULL);
		return put_split(format, ev, head, n, "");
	case CHAT_ACTION:
		n = str_join(head, sizeof(head), ":", prefix, " PRIVMSG #", ev->room, " :\001ACTION ",
			     NULL);
		return put_split(format, ev, head, n, "\001");
	case CHAT_RENAMED:
		snprintf(head, sizeof(head), ":%s NICK :%s", prefix, ev->other);
		return put_cut(format, ev, head, "", 0, "");
	case CHAT_PRIVATE:
		snprintf(head, sizeof(head), ":%s %s %s :%s", prefix,
			 ev->notice ? "NOTICE" : "PRIVMSG", ev->other, ev->action ? "\001ACTION " : "");
		return put_split(format, ev, head, strlen(head), ev->action ? "\001" : "");
	case CHAT_NOTICE:
		snprintf(head, sizeof(head), ":%s NOTICE * :", server);
		return put_split(format, ev, head, strlen(head), "");
	case CHAT_CLOSING:
		snprintf(head, sizeof(head), "ERROR :Closing Link: %s (", ev->host ? ev->host : "*");
		return put_cut(FORMAT_IRC, ev, head, ev->text, ev->text_len, ")");
	case CHAT_SLOW_DOWN:
		snprintf(head, sizeof(head), ":%s NOTICE %s :slow down (at most %d lines per second)",
			 server, ev->nick ? ev->nick : "*", ev->rate);
		return put_cut(format, ev, head, "", 0, "");
	case CHAT_GUARD:
		snprintf(head, sizeof(head),
			 ":NickServ!NickServ@%s NOTICE %s :%s is a registered nick: identify within %d "
			 "second%s (SASL, or /msg NickServ IDENTIFY password), or your nick will be "
			 "changed", server, ev->nick, ev->nick, ev->rate, ev->rate == 1 ? "" : "s");
		return put_cut(format, ev, head, "", 0, "");
	case CHAT_GUARD_EXPIRED:
		snprintf(head, sizeof(head),
			 ":NickServ!NickServ@%s NOTICE %s :You did not identify for %s within %d "
			 "second%s: your nick is now %s", server, ev->other, ev->nick, ev->rate,
			 ev->rate == 1 ? "" : "s", ev->other);
		return put_cut(format, ev, head, "", 0, "");
	case CHAT_NICK_TAKEN:
		snprintf(head, sizeof(head),
			 ":%s NOTICE %s :%s is taken on another server of this network: your nick is "
			 "now %s", server, ev->other, ev->nick, ev->other);
		return put_cut(format, ev, head, "", 0, "");
	case CHAT_MISSED:
		snprintf(head, sizeof(head),
			 ":%s NOTICE #%s :%u more arrival%s and departure%s not shown "
			 "(more than %d a second)", server, ev->room, ev->count,
			 ev->count == 1 ? "" : "s", ev->count == 1 ? "" : "s", ev->rate);
		return put_cut(format, ev, head, "", 0, "");
	}
	return msg_new(0);
}

struct msg *irc_encode_history_notice(const char *server, const char *room, const struct hline *l)
{
	char head[2 * NAME_MAX_LEN + HOST_MAX_LEN + 96], stamp[32];
	time_t t = (time_t)(l->time_ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	int n = snprintf(head, sizeof(head), ":%s NOTICE #%s :[%s] %s%s%s ", server, room, stamp,
			 l->kind == HLINE_ACTION ? "* " : "<", l->nick,
			 l->kind == HLINE_ACTION ? "" : ">");
	struct chat_event ev = { .kind = CHAT_NOTICE, .text = l->text, .text_len = l->text_len };
	return put_split(FORMAT_IRC, &ev, head, (size_t)n, "");
}
