/* IRC (docs/irc.md). The references: the "Modern IRC client protocol"
 * document, RFC 2812, and the IRCv3 specifications of capability
 * negotiation, message-tags, server-time, echo-message, msgid and
 * multi-prefix. Channels are chatd's rooms with a '#' in front; nicks and
 * room names follow chatd's one rule (text.h), compared ignoring ASCII
 * case. */
#include "autoconf.h"

#include "proto/irc.h"

#include <errno.h>
#include <fnmatch.h>
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
#include "core/flood.h"
#include "proto/irc_message.h"

#define CRLF "\r\n"
#define MAX_TARGETS 4   /* PRIVMSG/NOTICE targets, ISUPPORT MAXTARGETS */
#define USERHOST_MAX 5
#define ISON_MAX 64
#define WHO_MAX 200     /* users a WHO mask lists at most */
/* A connection that has not registered by then (or by [irc] ping_timeout,
 * when shorter) is let go. */
#define REGISTRATION_TIMEOUT_MS (60 * 1000)

/* ---- capabilities -------------------------------------------------------- */

enum {
	CAP_MULTI_PREFIX = 1 << 0,
	CAP_MESSAGE_TAGS = 1 << 1,
	CAP_SERVER_TIME = 1 << 2,
	CAP_ECHO_MESSAGE = 1 << 3,
	CAP_USERHOST_IN_NAMES = 1 << 4,
};

static const struct {
	const char *name;
	unsigned bit;
} cap_table[] = {
	{ "echo-message", CAP_ECHO_MESSAGE },
	{ "message-tags", CAP_MESSAGE_TAGS },
	{ "multi-prefix", CAP_MULTI_PREFIX },
	{ "server-time", CAP_SERVER_TIME },
	{ "userhost-in-names", CAP_USERHOST_IN_NAMES },
};

/* What an IRC session is, beyond what the core knows. */
struct irc_state {
	bool cap_negotiating;  /* registration waits for CAP END */
	bool pass_ok;          /* PASS matched [irc] password (or none is asked) */
	bool have_user;
	bool ping_sent;        /* a PING of ours is unanswered */
	unsigned caps;
	uint64_t opened_ms;    /* when it connected */
	char nick[NAME_MAX_LEN + 1]; /* asked for before registration; "" none */
};

static struct irc_state *state(struct session *s)
{
	return s->codec_state;
}

static enum format format_for(unsigned caps)
{
	unsigned f = 0;
	if (caps & CAP_SERVER_TIME)
		f |= FORMAT_IRC_TIME_BIT;
	if (caps & CAP_MESSAGE_TAGS)
		f |= FORMAT_IRC_MSGID_BIT;
	return (enum format)(FORMAT_IRC + f);
}

/* ---- encoding events ------------------------------------------------------- */

/* "@time=...;msgid=... " for FORMAT, or "". */
static size_t tags(enum format format, const struct chat_event *ev, unsigned part, char *buf,
		   size_t size)
{
	unsigned bits = (unsigned)(format - FORMAT_IRC);
	size_t n = 0;

	if (format == FORMAT_LINE || bits == 0)
		return 0;
	buf[n++] = '@';
	if (bits & FORMAT_IRC_TIME_BIT) {
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

/* Joins the strings up to a NULL into DST (SIZE bytes, cut to fit);
 * returns the length. Without printf: this runs for every line said. */
static size_t join(char *dst, size_t size, ...)
{
	va_list ap;
	size_t n = 0;

	va_start(ap, size);
	for (const char *p; (p = va_arg(ap, const char *));) {
		size_t len = strlen(p);
		if (len > size - 1 - n)
			len = size - 1 - n;
		memcpy(dst + n, p, len);
		n += len;
	}
	va_end(ap);
	dst[n] = '\0';
	return n;
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

/* HEAD + TEXT + TAIL, split into as many messages as 512 bytes each need,
 * between two characters; a message with no text is one message. */
static struct msg *put_split(enum format format, const struct chat_event *ev, const char *head,
			     const char *tail)
{
	struct out o = { .p = o.stack, .cap = sizeof(o.stack) };
	char tag[128];
	size_t head_len = strlen(head), tail_len = strlen(tail);
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

	join(prefix, sizeof(prefix), ev->nick ? ev->nick : server, "!", ev->user ? ev->user : "-",
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
		join(head, sizeof(head), ":", prefix, ev->notice ? " NOTICE #" : " PRIVMSG #", ev->room,
		     " :", NULL);
		return put_split(format, ev, head, "");
	case CHAT_ACTION:
		join(head, sizeof(head), ":", prefix, " PRIVMSG #", ev->room, " :\001ACTION ", NULL);
		return put_split(format, ev, head, "\001");
	case CHAT_RENAMED:
		snprintf(head, sizeof(head), ":%s NICK :%s", prefix, ev->other);
		return put_cut(format, ev, head, "", 0, "");
	case CHAT_PRIVATE:
		snprintf(head, sizeof(head), ":%s %s %s :%s", prefix,
			 ev->notice ? "NOTICE" : "PRIVMSG", ev->other, ev->action ? "\001ACTION " : "");
		return put_split(format, ev, head, ev->action ? "\001" : "");
	case CHAT_NOTICE:
		snprintf(head, sizeof(head), ":%s NOTICE * :", server);
		return put_split(format, ev, head, "");
	case CHAT_CLOSING:
		snprintf(head, sizeof(head), "ERROR :Closing Link: %s (", ev->host ? ev->host : "*");
		return put_cut(FORMAT_IRC, ev, head, ev->text, ev->text_len, ")");
	case CHAT_SLOW_DOWN:
		snprintf(head, sizeof(head), ":%s NOTICE %s :slow down (at most %d lines per second)",
			 server, ev->nick ? ev->nick : "*", ev->rate);
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

/* ---- names in parameters ------------------------------------------------ */

static void copy(char *buf, size_t size, const char *p, size_t len)
{
	if (len >= size)
		len = size - 1;
	memcpy(buf, p, len);
	buf[len] = '\0';
}

/* "#name" to a room name in RET; false when it is not one. */
static bool room_name(const char *p, size_t len, char ret[NAME_MAX_LEN + 1])
{
	if (len < 2 || p[0] != '#' || !text_is_valid_name(p + 1, len - 1))
		return false;
	copy(ret, NAME_MAX_LEN + 1, p + 1, len - 1);
	return true;
}

static bool nick_name(const char *p, size_t len, char ret[NAME_MAX_LEN + 1])
{
	if (!text_is_valid_name(p, len))
		return false;
	copy(ret, NAME_MAX_LEN + 1, p, len);
	return true;
}

/* ---- replies ---------------------------------------------------------------- */

static const char *server_name(struct worker *w)
{
	return worker_config(w)->irc_server_name;
}

/* Who numerics are addressed to: the nick, or "*" before there is one. */
static const char *me(struct session *s)
{
	if (chat_joined(s))
		return s->member.nick;
	return state(s)->nick[0] ? state(s)->nick : "*";
}

static void send_text(struct worker *w, struct session *s, const char *text, size_t len)
{
	struct msg *m = msg_new(len + 2);
	m = msg_append(m, text, len);
	m = msg_append(m, CRLF, 2);
	worker_send(w, s, m);
	msg_unref(m);
}

static void raw(struct worker *w, struct session *s, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* One message, as formatted (CRLF added), cut to 512 bytes. */
static void raw(struct worker *w, struct session *s, const char *fmt, ...)
{
	char buf[IRC_LINE_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
	send_text(w, s, buf, text_utf8_prefix(buf, len, IRC_LINE_MAX));
}

static void num(struct worker *w, struct session *s, const char *code, const char *fmt, ...)
	PRINTF_LIKE(4, 5);

/* ":server CODE target " + the formatted rest. */
static void num(struct worker *w, struct session *s, const char *code, const char *fmt, ...)
{
	char rest[IRC_LINE_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(rest, sizeof(rest), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	raw(w, s, ":%s %s %s %s", server_name(w), code, me(s), rest);
}

/* A parameter echoed back in a numeric: cleaned and bounded. */
struct echo {
	char text[MAX_TARGETS * (NAME_MAX_LEN + 2) + 1];
};

static const char *echo_param(struct echo *e, const char *p, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len && n + 1 < sizeof(e->text); i++)
		if ((unsigned char)p[i] > ' ' && p[i] != ':' && p[i] != 0x7f)
			e->text[n++] = p[i];
	e->text[n] = '\0';
	if (n == 0)
		return "*";
	return e->text;
}

static void need_more_params(struct worker *w, struct session *s, const char *command)
{
	num(w, s, "461", "%s :Not enough parameters", command);
}

/* ---- registration ----------------------------------------------------------- */

static void send_isupport(struct worker *w, struct session *s)
{
	const struct config *cfg = worker_config(w);
	num(w, s, "005",
	    "AWAYLEN=%d CASEMAPPING=ascii CHANLIMIT=#:%d CHANMODES=,,,nt CHANNELLEN=%d CHANTYPES=# "
	    "ELIST=MNU HOSTLEN=%d KICKLEN=%d MAXTARGETS=%d :are supported by this server",
	    AWAY_MAX_LEN, ROOMS_PER_MEMBER, NAME_MAX_LEN + 1, HOST_MAX_LEN, TOPIC_MAX_LEN, MAX_TARGETS);
	num(w, s, "005",
	    "MODES=3 NETWORK=%s NICKLEN=%d PREFIX=(ov)@+ TARGMAX=JOIN:,KICK:%d,NAMES:,"
	    "NOTICE:%d,PART:,PRIVMSG:%d,WHOIS:1 TOPICLEN=%d USERLEN=%d :are supported by this server",
	    cfg->irc_network, NAME_MAX_LEN, MAX_TARGETS, MAX_TARGETS, MAX_TARGETS, TOPIC_MAX_LEN,
	    USER_MAX_LEN);
}

static void send_lusers(struct worker *w, struct session *s)
{
	int online, max, invisible;
	rooms_counts(worker_rooms(w), &online, &max, &invisible);
	int rooms = rooms_count(worker_rooms(w));
	num(w, s, "251", ":There are %d users and %d invisible on 1 servers", online - invisible,
	    invisible);
	num(w, s, "254", "%d :channels formed", rooms);
	num(w, s, "255", ":I have %d clients and 0 servers", online);
	num(w, s, "265", ":Current local users: %d, max: %d", online, max);
	num(w, s, "266", ":Current global users: %d, max: %d", online, max);
}

static void send_motd(struct worker *w, struct session *s)
{
	const struct config *cfg = worker_config(w);
	if (cfg->motd_count == 0) {
		num(w, s, "422", ":MOTD File is missing");
		return;
	}
	num(w, s, "375", ":- %s Message of the day - ", server_name(w));
	for (size_t i = 0; i < cfg->motd_count; i++) {
		struct text_buf c;
		text_buf_clean(&c, cfg->motd_lines[i], strlen(cfg->motd_lines[i]));
		num(w, s, "372", ":- %.*s", (int)c.len, c.text);
		text_buf_free(&c);
	}
	num(w, s, "376", ":End of /MOTD command.");
}

static void closing(struct worker *w, struct session *s, const char *reason, const char *why)
{
	raw(w, s, "ERROR :Closing Link: %s (%s)", s->member.host, why);
	worker_close_after_flush(w, s, reason, NULL, 0);
}

/* Registers S once it gave NICK and USER and ended CAP negotiation. */
static void try_register(struct worker *w, struct session *s)
{
	struct irc_state *st = state(s);
	const struct config *cfg = worker_config(w);

	if (chat_joined(s) || !st->nick[0] || !st->have_user || st->cap_negotiating)
		return;
	if (!st->pass_ok) {
		num(w, s, "464", ":Password incorrect");
		closing(w, s, "password", "Bad password");
		return;
	}
	int online = chat_register(w, s, st->nick, NULL);
	if (online == -EEXIST) {
		num(w, s, "433", "%s :Nickname is already in use", st->nick);
		st->nick[0] = '\0';
		return;
	}
	num(w, s, "001", ":Welcome to the %s IRC Network %s!%s@%s", cfg->irc_network, s->member.nick,
	    s->member.user, s->member.host);
	num(w, s, "002", ":Your host is %s, running version chatd-%s", server_name(w),
	    PACKAGE_VERSION);
	num(w, s, "003", ":This server is chatd, speaking IRC and chatd's line protocol");
	num(w, s, "004", "%s chatd-%s iw notv ov", server_name(w), PACKAGE_VERSION);
	send_isupport(w, s);
	send_lusers(w, s);
	send_motd(w, s);
}

static void do_cap(struct worker *w, struct session *s, const struct irc_message *msg)
{
	struct irc_state *st = state(s);
	struct echo e;

	if (msg->count < 1) {
		need_more_params(w, s, "CAP");
		return;
	}
	char sub[16];
	copy(sub, sizeof(sub), msg->params[0], msg->param_len[0]);
	for (char *p = sub; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 32);
	if (strcmp(sub, "LS") == 0 || strcmp(sub, "LIST") == 0) {
		bool list = sub[1] == 'I';
		char caps[128] = "";
		for (size_t i = 0; i < ARRAY_SIZE(cap_table); i++) {
			if (list && !(st->caps & cap_table[i].bit))
				continue;
			if (caps[0])
				strcat(caps, " ");
			strcat(caps, cap_table[i].name);
		}
		if (!list && !chat_joined(s))
			st->cap_negotiating = true;
		raw(w, s, ":%s CAP %s %s :%s", server_name(w), me(s), list ? "LIST" : "LS", caps);
	} else if (strcmp(sub, "REQ") == 0) {
		if (!chat_joined(s))
			st->cap_negotiating = true;
		const char *p = msg->count > 1 ? msg->params[1] : "";
		size_t len = msg->count > 1 ? msg->param_len[1] : 0;
		unsigned caps = st->caps;
		bool ok = len > 0;
		size_t i = 0;
		while (i < len && ok) {
			while (i < len && p[i] == ' ')
				i++;
			size_t start = i;
			while (i < len && p[i] != ' ')
				i++;
			if (i == start)
				break;
			bool off = p[start] == '-';
			const char *name = p + start + off;
			size_t name_len = i - start - off;
			unsigned bit = 0;
			for (size_t k = 0; k < ARRAY_SIZE(cap_table); k++)
				if (strlen(cap_table[k].name) == name_len &&
				    memcmp(cap_table[k].name, name, name_len) == 0)
					bit = cap_table[k].bit;
			if (!bit)
				ok = false;
			else if (off)
				caps &= ~bit;
			else
				caps |= bit;
		}
		char req[IRC_LINE_MAX];
		copy(req, sizeof(req), p, len);
		if (ok) {
			st->caps = caps;
			chat_set_format(w, s, format_for(caps));
		}
		raw(w, s, ":%s CAP %s %s :%s", server_name(w), me(s), ok ? "ACK" : "NAK", req);
	} else if (strcmp(sub, "END") == 0) {
		st->cap_negotiating = false;
		try_register(w, s);
	} else {
		num(w, s, "410", "%s :Invalid CAP command", echo_param(&e, msg->params[0], msg->param_len[0]));
	}
}

static void do_pass(struct worker *w, struct session *s, const struct irc_message *msg)
{
	const char *password = worker_config(w)->irc_password;

	if (chat_joined(s)) {
		num(w, s, "462", ":You may not reregister");
		return;
	}
	if (msg->count < 1) {
		need_more_params(w, s, "PASS");
		return;
	}
	if (password)
		state(s)->pass_ok = strlen(password) == msg->param_len[0] &&
				    memcmp(password, msg->params[0], msg->param_len[0]) == 0;
}

static void do_user(struct worker *w, struct session *s, const struct irc_message *msg)
{
	struct irc_state *st = state(s);

	if (chat_joined(s) || st->have_user) {
		num(w, s, "462", ":You may not reregister");
		return;
	}
	if (msg->count < 4 || msg->param_len[0] == 0 || msg->param_len[3] == 0) {
		need_more_params(w, s, "USER");
		return;
	}
	/* The user name as a name: what IRC shows before the "@". */
	size_t n = 0;
	s->member.user[n++] = '~';
	for (size_t i = 0; i < msg->param_len[0] && n < USER_MAX_LEN; i++) {
		char c = msg->params[0][i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '_' || c == '-' || c == '.')
			s->member.user[n++] = c;
	}
	if (n == 1)
		s->member.user[n++] = 'u';
	s->member.user[n] = '\0';
	struct text_buf c;
	text_buf_clean(&c, msg->params[3], msg->param_len[3]);
	size_t rn = text_utf8_prefix(c.text, c.len, REALNAME_MAX_LEN);
	memcpy(s->member.realname, c.text, rn);
	s->member.realname[rn] = '\0';
	text_buf_free(&c);
	st->have_user = true;
	try_register(w, s);
}

static void do_nick(struct worker *w, struct session *s, const struct irc_message *msg)
{
	struct irc_state *st = state(s);
	char nick[NAME_MAX_LEN + 1];
	struct echo e;

	if (msg->count < 1 || msg->param_len[0] == 0) {
		num(w, s, "431", ":No nickname given");
		return;
	}
	if (!nick_name(msg->params[0], msg->param_len[0], nick)) {
		num(w, s, "432", "%s :Erroneous nickname (1-32 letters, digits, _ or -, first a letter)",
		    echo_param(&e, msg->params[0], msg->param_len[0]));
		return;
	}
	if (!chat_joined(s)) {
		struct member_address a;
		if (rooms_find(worker_rooms(w), nick, &a)) {
			num(w, s, "433", "%s :Nickname is already in use", nick);
			return;
		}
		memcpy(st->nick, nick, sizeof(nick));
		try_register(w, s);
		return;
	}
	if (chat_rename(w, s, nick) == -EEXIST)
		num(w, s, "433", "%s :Nickname is already in use", nick);
}

/* ---- channels ------------------------------------------------------------- */

/* "@+" (multi-prefix), "@" or "+" or "" for E, as S asked. */
static const char *prefixes(const struct session *s, bool op, bool voice)
{
	if (op && voice && (state((struct session *)s)->caps & CAP_MULTI_PREFIX))
		return "@+";
	return op ? "@" : voice ? "+" : "";
}

/* The 353 lines of room NAME (no 366). */
static void send_names_of(struct worker *w, struct session *s, const char *name)
{
	struct room_entry *list;
	size_t n = rooms_names(worker_rooms(w), name, false, &list);
	bool userhost = state(s)->caps & CAP_USERHOST_IN_NAMES;
	char line[IRC_LINE_MAX + 1], item[2 * NAME_MAX_LEN + USER_MAX_LEN + HOST_MAX_LEN + 8];
	int head = snprintf(line, sizeof(line), ":%s 353 %s = #%s :", server_name(w), me(s), name);
	size_t len = (size_t)head;

	for (size_t i = 0; i < n; i++) {
		const char *mark = prefixes(s, list[i].op, list[i].voice);
		size_t il = userhost ? join(item, sizeof(item), mark, list[i].nick, "!", list[i].user,
					    "@", list[i].host, NULL)
				     : join(item, sizeof(item), mark, list[i].nick, NULL);
		if (len + il + 1 > IRC_LINE_MAX) {
			send_text(w, s, line, len - 1);
			len = (size_t)head;
		}
		memcpy(line + len, item, il);
		len += il;
		line[len++] = ' ';
	}
	if (len > (size_t)head)
		send_text(w, s, line, len - 1);
	free(list);
}

static void send_names(struct worker *w, struct session *s, const char *name)
{
	send_names_of(w, s, name);
	num(w, s, "366", "#%s :End of /NAMES list", name);
}

static void send_topic(struct worker *w, struct session *s, const struct room_info *info,
		       bool always)
{
	if (info->topic[0]) {
		num(w, s, "332", "#%s :%s", info->name, info->topic);
		num(w, s, "333", "#%s %s %lld", info->name, info->topic_by,
		    (long long)info->topic_time);
	} else if (always) {
		num(w, s, "331", "#%s :No topic is set", info->name);
	}
}

static void part_all(struct worker *w, struct session *s)
{
	struct membership *ms;
	while ((ms = TAILQ_FIRST(&s->member.rooms))) {
		char name[NAME_MAX_LEN + 1];
		memcpy(name, ms->room->name, sizeof(name));
		chat_part(w, s, name, NULL, 0, true);
	}
}

static void do_join(struct worker *w, struct session *s, const struct irc_message *msg)
{
	struct echo e;

	if (msg->count < 1) {
		need_more_params(w, s, "JOIN");
		return;
	}
	if (msg->param_len[0] == 1 && msg->params[0][0] == '0') {
		part_all(w, s);
		return;
	}
	const char *p = msg->params[0], *item;
	size_t len = msg->param_len[0], item_len;
	while (irc_next_item(&p, &len, &item, &item_len)) {
		char name[NAME_MAX_LEN + 1];
		unsigned count;
		if (!room_name(item, item_len, name)) {
			num(w, s, "403", "%s :No such channel (# and 1-32 letters, digits, _ or -, "
			    "first a letter)", echo_param(&e, item, item_len));
			continue;
		}
		int r = chat_join(w, s, name, true, &count);
		if (r == -E2BIG)
			num(w, s, "405", "#%s :You have joined too many channels", name);
		if (r < 0)
			continue;
		struct membership *ms = rooms_membership(&s->member, name);
		struct room_info info;
		if (rooms_info(worker_rooms(w), name, &info))
			send_topic(w, s, &info, false);
		send_names(w, s, ms->room->name);
	}
}

static void do_part(struct worker *w, struct session *s, const struct irc_message *msg)
{
	struct echo e;

	if (msg->count < 1) {
		need_more_params(w, s, "PART");
		return;
	}
	const char *p = msg->params[0], *item;
	size_t len = msg->param_len[0], item_len;
	const char *reason = msg->count > 1 ? msg->params[1] : "";
	size_t reason_len = msg->count > 1 ? msg->param_len[1] : 0;
	while (irc_next_item(&p, &len, &item, &item_len)) {
		char name[NAME_MAX_LEN + 1];
		struct room_info info;
		if (!room_name(item, item_len, name) || !rooms_info(worker_rooms(w), name, &info)) {
			num(w, s, "403", "%s :No such channel", echo_param(&e, item, item_len));
			continue;
		}
		if (!rooms_membership(&s->member, name)) {
			num(w, s, "442", "#%s :You're not on that channel", info.name);
			continue;
		}
		chat_part(w, s, name, reason, reason_len, true);
	}
}

/* PRIVMSG and NOTICE: to channels and nicks; NOTICE gets no error. */
static void say(struct worker *w, struct session *s, const struct irc_message *msg, bool notice)
{
	const char *command = notice ? "NOTICE" : "PRIVMSG";
	struct irc_state *st = state(s);
	struct echo e;

	if (msg->count < 1 || msg->param_len[0] == 0) {
		if (!notice)
			num(w, s, "411", ":No recipient given (%s)", command);
		return;
	}
	if (msg->count < 2 || msg->param_len[1] == 0) {
		if (!notice)
			num(w, s, "412", ":No text to send");
		return;
	}
	const char *text = msg->params[1];
	size_t text_len = msg->param_len[1];
	bool action = false;
	if (text_len >= 8 && memcmp(text, "\001ACTION ", 8) == 0) {
		action = true;
		text += 8;
		text_len -= 8;
		if (text_len > 0 && text[text_len - 1] == '\001')
			text_len--;
	}
	bool echo = st->caps & CAP_ECHO_MESSAGE;
	const char *p = msg->params[0], *item;
	size_t len = msg->param_len[0], item_len;
	for (int targets = 0; irc_next_item(&p, &len, &item, &item_len); targets++) {
		char name[NAME_MAX_LEN + 1];
		if (targets == MAX_TARGETS) {
			if (!notice)
				num(w, s, "407", "%s :Too many targets", echo_param(&e, item, item_len));
			break;
		}
		if (item_len > 0 && item[0] == '#') {
			struct room *room = NULL;
			if (!room_name(item, item_len, name)) {
				if (!notice)
					num(w, s, "403", "%s :No such channel",
					    echo_param(&e, item, item_len));
				continue;
			}
			/* A member says it without the registry's lock. */
			struct membership *ms = rooms_membership(&s->member, name);
			if (ms) {
				chat_say(w, s, ms->room, action ? CHAT_ACTION : CHAT_SAID,
					 notice && !action, text, text_len, echo);
				continue;
			}
			int r = rooms_may_say(worker_rooms(w), &s->member, name, &room);
			if (r == -ENOENT && !notice)
				num(w, s, "403", "%s :No such channel", echo_param(&e, item, item_len));
			else if (r == -ENOTCONN && !notice)
				num(w, s, "404", "#%s :Cannot send to channel (no external messages)", name);
			if (r < 0)
				continue;
			chat_say(w, s, room, action ? CHAT_ACTION : CHAT_SAID, notice && !action, text,
				 text_len, echo);
			room_unref(room);
			continue;
		}
		char away[AWAY_MAX_LEN + 1] = "";
		/* To oneself: heard once, echo-message or not. */
		int r = nick_name(item, item_len, name)
			? chat_private(w, s, name, text, text_len, notice, action,
				       echo || strcasecmp(name, s->member.nick) == 0, away)
			: -ENOENT;
		if (r == -ENOENT && !notice)
			num(w, s, "401", "%s :No such nick/channel", echo_param(&e, item, item_len));
		else if (r == 0 && away[0] && !notice)
			num(w, s, "301", "%s :%s", name, away);
	}
}

static void do_privmsg(struct worker *w, struct session *s, const struct irc_message *msg)
{
	say(w, s, msg, false);
}

static void do_notice(struct worker *w, struct session *s, const struct irc_message *msg)
{
	say(w, s, msg, true);
}

static void do_names(struct worker *w, struct session *s, const struct irc_message *msg)
{
	struct echo e;

	if (msg->count < 1) {
		num(w, s, "366", "* :End of /NAMES list");
		return;
	}
	/* Each channel's 353s, then one 366 naming them all, as asked. */
	const char *p = msg->params[0], *item;
	size_t len = msg->param_len[0], item_len;
	for (int k = 0; k < MAX_TARGETS && irc_next_item(&p, &len, &item, &item_len); k++) {
		char name[NAME_MAX_LEN + 1];
		struct room_info info;
		if (room_name(item, item_len, name) && rooms_info(worker_rooms(w), name, &info))
			send_names_of(w, s, info.name);
	}
	char asked[MAX_TARGETS * (NAME_MAX_LEN + 2) + 1];
	copy(asked, sizeof(asked), msg->params[0], msg->param_len[0]);
	num(w, s, "366", "%s :End of /NAMES list", echo_param(&e, asked, strlen(asked)));
}

static void who_line(struct worker *w, struct session *s, const char *channel,
		     const struct room_entry *m)
{
	num(w, s, "352", "%s %s %s %s %s %c%s :0 %s", channel, m->user, m->host, server_name(w), m->nick,
	    m->away ? 'G' : 'H', prefixes(s, m->op, m->voice), m->realname);
}

/* Whether a WHO mask is a pattern rather than one nick. */
static bool is_mask(const char *p, size_t len)
{
	if (len == 1 && p[0] == '0')
		return true;
	for (size_t i = 0; i < len; i++)
		if (p[i] == '*' || p[i] == '?')
			return true;
	return false;
}

static void do_who(struct worker *w, struct session *s, const struct irc_message *msg)
{
	struct echo e;
	const char *mask = msg->count > 0 ? echo_param(&e, msg->params[0], msg->param_len[0]) : "*";
	char name[NAME_MAX_LEN + 1];

	struct room_info room;
	if (msg->count > 0 && room_name(msg->params[0], msg->param_len[0], name) &&
	    rooms_info(worker_rooms(w), name, &room)) {
		struct room_entry *list;
		size_t n = rooms_names(worker_rooms(w), room.name, false, &list);
		char channel[NAME_MAX_LEN + 2];
		snprintf(channel, sizeof(channel), "#%s", room.name);
		for (size_t i = 0; i < n; i++)
			who_line(w, s, channel, &list[i]);
		free(list);
	} else if (msg->count > 0 && msg->param_len[0] < NAME_MAX_LEN * 2 &&
		   is_mask(msg->params[0], msg->param_len[0])) {
		char pattern[NAME_MAX_LEN * 2 + 1];
		copy(pattern, sizeof(pattern), msg->params[0], msg->param_len[0]);
		if (strcmp(pattern, "0") == 0)
			strcpy(pattern, "*");
		struct room_entry *list;
		size_t n = rooms_match(worker_rooms(w), &s->member, pattern, WHO_MAX, &list);
		for (size_t i = 0; i < n; i++)
			who_line(w, s, "*", &list[i]);
		free(list);
	} else if (msg->count > 0 && nick_name(msg->params[0], msg->param_len[0], name)) {
		struct member_info *info = xmalloc(sizeof(*info));
		if (rooms_whois(worker_rooms(w), name, info)) {
			struct room_entry entry = { .away = info->away[0] != '\0' };
			memcpy(entry.nick, info->nick, sizeof(entry.nick));
			memcpy(entry.user, info->user, sizeof(entry.user));
			memcpy(entry.host, info->host, sizeof(entry.host));
			memcpy(entry.realname, info->realname, sizeof(entry.realname));
			who_line(w, s, "*", &entry);
		}
		free(info);
	}
	num(w, s, "315", "%s :End of /WHO list", mask);
}

static void do_whois(struct worker *w, struct session *s, const struct irc_message *msg)
{
	struct echo e;
	char nick[NAME_MAX_LEN + 1];

	if (msg->count < 1) {
		num(w, s, "431", ":No nickname given");
		return;
	}
	/* WHOIS [server] nick */
	int i = msg->count > 1 ? 1 : 0;
	const char *asked = echo_param(&e, msg->params[i], msg->param_len[i]);
	struct member_info *info = xmalloc(sizeof(*info));
	if (!nick_name(msg->params[i], msg->param_len[i], nick) ||
	    !rooms_whois(worker_rooms(w), nick, info)) {
		num(w, s, "401", "%s :No such nick/channel", asked);
		num(w, s, "318", "%s :End of /WHOIS list", asked);
		free(info);
		return;
	}
	num(w, s, "311", "%s %s %s * :%s", info->nick, info->user, info->host, info->realname);
	char line[IRC_LINE_MAX];
	size_t len = 0;
	for (size_t k = 0; k < info->room_count; k++) {
		if (len + NAME_MAX_LEN + 3 > 400) {
			num(w, s, "319", "%s :%.*s", info->nick, (int)len, line);
			len = 0;
		}
		len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s#%s", len ? " " : "",
					prefixes(s, info->rooms[k].op, info->rooms[k].voice),
					info->rooms[k].name);
	}
	if (len)
		num(w, s, "319", "%s :%.*s", info->nick, (int)len, line);
	num(w, s, "312", "%s %s :chatd (%s protocol)", info->nick, server_name(w),
	    info->format == FORMAT_LINE ? "line" : "IRC");
	if (info->away[0])
		num(w, s, "301", "%s :%s", info->nick, info->away);
	num(w, s, "317", "%s 0 %lld :seconds idle, signon time", info->nick, (long long)info->signon);
	num(w, s, "318", "%s :End of /WHOIS list", info->nick);
	free(info);
}

static void do_topic(struct worker *w, struct session *s, const struct irc_message *msg)
{
	struct echo e;
	char name[NAME_MAX_LEN + 1];
	struct room_info info;

	if (msg->count < 1) {
		need_more_params(w, s, "TOPIC");
		return;
	}
	if (!room_name(msg->params[0], msg->param_len[0], name) ||
	    !rooms_info(worker_rooms(w), name, &info)) {
		num(w, s, "403", "%s :No such channel", echo_param(&e, msg->params[0], msg->param_len[0]));
		return;
	}
	if (msg->count < 2) {
		send_topic(w, s, &info, true);
		return;
	}
	int r = chat_topic(w, s, name, msg->params[1], msg->param_len[1]);
	if (r == -ENOTCONN)
		num(w, s, "442", "#%s :You're not on that channel", info.name);
	else if (r == -EPERM)
		num(w, s, "482", "#%s :You're not channel operator", info.name);
}

/* Whether LIST's argument ITEMS (ELIST=MNU: channels and masks, any of
 * which may match; "!mask", none of which may; "<N", ">N": user counts,
 * all of which must hold) wants ROOM. */
static bool list_wanted(const struct room_info *room, const char *items, size_t items_len)
{
	char channel[NAME_MAX_LEN + 2], pattern[2 * NAME_MAX_LEN + 2];
	const char *item;
	size_t item_len;
	bool any_positive = false, matched = false;

	snprintf(channel, sizeof(channel), "#%s", room->name);
	while (irc_next_item(&items, &items_len, &item, &item_len)) {
		if (item_len == 0 || item_len >= sizeof(pattern))
			continue;
		if (item[0] == '<' || item[0] == '>') {
			char number[16];
			copy(number, sizeof(number), item + 1, item_len - 1);
			unsigned long limit = strtoul(number, NULL, 10);
			if (item[0] == '<' ? room->count >= limit : room->count <= limit)
				return false;
			continue;
		}
		bool negated = item[0] == '!';
		copy(pattern, sizeof(pattern), item + negated, item_len - negated);
		bool match = fnmatch(pattern, channel, FNM_CASEFOLD | FNM_NOESCAPE) == 0;
		if (negated && match)
			return false;
		if (!negated) {
			any_positive = true;
			matched = matched || match;
		}
	}
	return !any_positive || matched;
}

static void do_list(struct worker *w, struct session *s, const struct irc_message *msg)
{
	struct room_info *list;
	size_t n = rooms_list(worker_rooms(w), &list);

	num(w, s, "321", "Channel :Users  Name");
	for (size_t i = 0; i < n; i++) {
		if (msg->count > 0 && msg->param_len[0] > 0 &&
		    !list_wanted(&list[i], msg->params[0], msg->param_len[0]))
			continue;
		num(w, s, "322", "#%s %u :%s", list[i].name, list[i].count, list[i].topic);
	}
	free(list);
	num(w, s, "323", ":End of /LIST");
}

/* One KICK of NICK (NICK_LEN bytes) from channel CHANNEL: false when S may
 * kick nobody there (the reply sent). */
static bool kick_one(struct worker *w, struct session *s, const char *channel, size_t channel_len,
		     const char *nick_p, size_t nick_len, const struct irc_message *msg)
{
	struct echo e;
	char name[NAME_MAX_LEN + 1], nick[NAME_MAX_LEN + 1];
	struct room_info info;

	if (!room_name(channel, channel_len, name) || !rooms_info(worker_rooms(w), name, &info)) {
		num(w, s, "403", "%s :No such channel", echo_param(&e, channel, channel_len));
		return false;
	}
	int r = nick_name(nick_p, nick_len, nick)
		? chat_kick(w, s, name, nick, msg->count > 2 ? msg->params[2] : "",
			    msg->count > 2 ? msg->param_len[2] : 0)
		: -ENOENT;
	if (r == -ENOTCONN)
		num(w, s, "442", "#%s :You're not on that channel", info.name);
	else if (r == -EPERM)
		num(w, s, "482", "#%s :You're not channel operator", info.name);
	else if (r == -ENOENT)
		num(w, s, "401", "%s :No such nick/channel", echo_param(&e, nick_p, nick_len));
	else if (r == -ESRCH)
		num(w, s, "441", "%s #%s :They aren't on that channel", nick, info.name);
	return r != -ENOTCONN && r != -EPERM;
}

/* KICK #chan nick[,nick...], or KICK #a,#b nick1,nick2 (in pairs). */
static void do_kick(struct worker *w, struct session *s, const struct irc_message *msg)
{
	const char *channels[MAX_TARGETS], *nicks[MAX_TARGETS];
	size_t channel_len[MAX_TARGETS], nick_len[MAX_TARGETS];
	int nc = 0, nn = 0;

	if (msg->count < 2) {
		need_more_params(w, s, "KICK");
		return;
	}
	const char *p = msg->params[0];
	size_t len = msg->param_len[0];
	while (nc < MAX_TARGETS && irc_next_item(&p, &len, &channels[nc], &channel_len[nc]))
		nc++;
	p = msg->params[1];
	len = msg->param_len[1];
	while (nn < MAX_TARGETS && irc_next_item(&p, &len, &nicks[nn], &nick_len[nn]))
		nn++;
	if (nc == 0 || nn == 0 || (nc > 1 && nc != nn)) {
		need_more_params(w, s, "KICK");
		return;
	}
	for (int i = 0; i < nn; i++) {
		int c = nc == 1 ? 0 : i;
		if (!kick_one(w, s, channels[c], channel_len[c], nicks[i], nick_len[i], msg) && nc == 1)
			return;
	}
}

static void channel_mode(struct worker *w, struct session *s, const struct irc_message *msg,
			 const char *name)
{
	struct room_info info;
	struct echo e;

	if (!rooms_info(worker_rooms(w), name, &info)) {
		num(w, s, "403", "#%s :No such channel", name);
		return;
	}
	if (msg->count < 2) {
		num(w, s, "324", "#%s +%s%s", info.name, info.no_external ? "n" : "",
		    info.topic_ops ? "t" : "");
		num(w, s, "329", "#%s %lld", info.name, (long long)info.created);
		return;
	}
	const char *modes = msg->params[1];
	size_t modes_len = msg->param_len[1];
	int arg = 2;
	bool on = true;
	for (size_t i = 0; i < modes_len; i++) {
		char c = modes[i];
		if (c == '+' || c == '-') {
			on = c == '+';
			continue;
		}
		if (c == 'b' && (arg >= msg->count)) {
			/* The ban list: chatd has none. */
			num(w, s, "368", "#%s :End of channel ban list", info.name);
			continue;
		}
		int r;
		if (c == 'o' || c == 'v') {
			char nick[NAME_MAX_LEN + 1];
			if (arg >= msg->count) {
				need_more_params(w, s, "MODE");
				return;
			}
			const char *target = msg->params[arg];
			size_t target_len = msg->param_len[arg++];
			r = nick_name(target, target_len, nick) ? chat_mode(w, s, name, c, on, nick)
								 : -ENOENT;
			if (r == -ENOENT)
				num(w, s, "401", "%s :No such nick/channel", echo_param(&e, target, target_len));
			else if (r == -ESRCH)
				num(w, s, "441", "%s #%s :They aren't on that channel", nick, info.name);
		} else if (c == 't' || c == 'n') {
			r = chat_mode(w, s, name, c, on, NULL);
		} else {
			num(w, s, "472", "%c :is unknown mode char to me", c > ' ' && c < 0x7f ? c : '?');
			continue;
		}
		if (r == -ENOTCONN) {
			num(w, s, "442", "#%s :You're not on that channel", info.name);
			return;
		}
		if (r == -EPERM) {
			num(w, s, "482", "#%s :You're not channel operator", info.name);
			return;
		}
	}
}

static void do_mode(struct worker *w, struct session *s, const struct irc_message *msg)
{
	struct echo e;
	char name[NAME_MAX_LEN + 1];

	if (msg->count < 1) {
		need_more_params(w, s, "MODE");
		return;
	}
	if (msg->params[0][0] == '#') {
		if (!room_name(msg->params[0], msg->param_len[0], name))
			num(w, s, "403", "%s :No such channel", echo_param(&e, msg->params[0], msg->param_len[0]));
		else
			channel_mode(w, s, msg, name);
		return;
	}
	if (!nick_name(msg->params[0], msg->param_len[0], name) ||
	    strcasecmp(name, s->member.nick) != 0) {
		struct member_address a;
		if (nick_name(msg->params[0], msg->param_len[0], name) &&
		    rooms_find(worker_rooms(w), name, &a))
			num(w, s, "502", ":Can't change mode for other users");
		else
			num(w, s, "401", "%s :No such nick/channel",
			    echo_param(&e, msg->params[0], msg->param_len[0]));
		return;
	}
	if (msg->count < 2) {
		num(w, s, "221", "+%s", s->member.invisible ? "i" : "");
		return;
	}
	bool on = true, unknown = false;
	char changed[8];
	size_t n = 0;
	for (size_t i = 0; i < msg->param_len[1]; i++) {
		char c = msg->params[1][i];
		if (c == '+' || c == '-')
			on = c == '+';
		else if (c == 'i' && s->member.invisible != on && n + 2 < sizeof(changed)) {
			rooms_set_invisible(worker_rooms(w), &s->member, on);
			changed[n++] = on ? '+' : '-';
			changed[n++] = 'i';
		} else if (c != 'i' && c != 'w')
			unknown = true;
	}
	changed[n] = '\0';
	if (n)
		raw(w, s, ":%s!%s@%s MODE %s :%s", s->member.nick, s->member.user, s->member.host,
		    s->member.nick, changed);
	if (unknown)
		num(w, s, "501", ":Unknown MODE flag");
}

static void do_away(struct worker *w, struct session *s, const struct irc_message *msg)
{
	const char *text = msg->count > 0 ? msg->params[0] : "";
	size_t len = msg->count > 0 ? msg->param_len[0] : 0;
	chat_away(w, s, text, len);
	if (s->member.away[0])
		num(w, s, "306", ":You have been marked as being away");
	else
		num(w, s, "305", ":You are no longer marked as being away");
}

static void do_ison(struct worker *w, struct session *s, const struct irc_message *msg)
{
	char line[IRC_LINE_MAX];
	size_t len = 0;
	int asked = 0;

	if (msg->count < 1) {
		need_more_params(w, s, "ISON");
		return;
	}
	for (int i = 0; i < msg->count; i++) {
		const char *p = msg->params[i];
		size_t plen = msg->param_len[i];
		while (plen > 0 && asked < ISON_MAX) {
			size_t k = 0;
			while (k < plen && p[k] != ' ')
				k++;
			char nick[NAME_MAX_LEN + 1];
			struct member_address a;
			if (k > 0 && nick_name(p, k, nick) && rooms_find(worker_rooms(w), nick, &a) &&
			    len + strlen(a.nick) + 2 < 400)
				len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s", len ? " " : "",
							a.nick);
			asked += k > 0;
			p += k < plen ? k + 1 : k;
			plen -= k < plen ? k + 1 : k;
		}
	}
	num(w, s, "303", ":%.*s", (int)len, line);
}

static void do_userhost(struct worker *w, struct session *s, const struct irc_message *msg)
{
	char line[IRC_LINE_MAX];
	size_t len = 0;

	if (msg->count < 1) {
		need_more_params(w, s, "USERHOST");
		return;
	}
	struct member_info *info = xmalloc(sizeof(*info));
	for (int i = 0; i < msg->count && i < USERHOST_MAX; i++) {
		char nick[NAME_MAX_LEN + 1];
		if (nick_name(msg->params[i], msg->param_len[i], nick) &&
		    rooms_whois(worker_rooms(w), nick, info))
			len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s=%c%s@%s",
						len ? " " : "", info->nick, info->away[0] ? '-' : '+',
						info->user, info->host);
	}
	free(info);
	num(w, s, "302", ":%.*s", (int)len, line);
}

static void do_ping(struct worker *w, struct session *s, const struct irc_message *msg)
{
	if (msg->count < 1 || msg->param_len[0] == 0) {
		num(w, s, "409", ":No origin specified");
		return;
	}
	struct text_buf c;
	text_buf_clean(&c, msg->params[0], msg->param_len[0]);
	raw(w, s, ":%s PONG %s :%.*s", server_name(w), server_name(w), (int)c.len, c.text);
	text_buf_free(&c);
}

static void do_pong(struct worker *w, struct session *s, const struct irc_message *msg)
{
	(void)w, (void)msg;
	state(s)->ping_sent = false;
}

static void do_quit(struct worker *w, struct session *s, const struct irc_message *msg)
{
	const char *text = msg->count > 0 ? msg->params[0] : "";
	size_t len = msg->count > 0 ? msg->param_len[0] : 0;
	struct text_buf c;
	text_buf_clean(&c, text, len);
	size_t n = text_utf8_prefix(c.text, c.len, TOPIC_MAX_LEN);
	raw(w, s, "ERROR :Closing Link: %s (Quit%s%.*s)", s->member.host, n ? ": " : "", (int)n,
	    c.text);
	text_buf_free(&c);
	chat_quit(w, s, text, len);
}

static void do_lusers(struct worker *w, struct session *s, const struct irc_message *msg)
{
	(void)msg;
	send_lusers(w, s);
}

static void do_motd(struct worker *w, struct session *s, const struct irc_message *msg)
{
	(void)msg;
	send_motd(w, s);
}

static void do_tagmsg(struct worker *w, struct session *s, const struct irc_message *msg)
{
	/* Client-only tags (typing notices): chatd relays none. */
	(void)w, (void)s, (void)msg;
}

/* The commands: one entry each, for dispatch and docs/irc.md. */
static const struct irc_command {
	const char *name;
	bool before_registration;  /* allowed before it */
	void (*handler)(struct worker *, struct session *, const struct irc_message *);
} commands[] = {
	{ "AWAY", false, do_away },       { "CAP", true, do_cap },
	{ "ISON", false, do_ison },       { "JOIN", false, do_join },
	{ "KICK", false, do_kick },       { "LIST", false, do_list },
	{ "LUSERS", false, do_lusers },   { "MODE", false, do_mode },
	{ "MOTD", false, do_motd },       { "NAMES", false, do_names },
	{ "NICK", true, do_nick },        { "NOTICE", false, do_notice },
	{ "PART", false, do_part },       { "PASS", true, do_pass },
	{ "PING", true, do_ping },        { "PONG", true, do_pong },
	{ "PRIVMSG", false, do_privmsg }, { "QUIT", true, do_quit },
	{ "TAGMSG", false, do_tagmsg },   { "TOPIC", false, do_topic },
	{ "USER", true, do_user },        { "USERHOST", false, do_userhost },
	{ "WHO", false, do_who },         { "WHOIS", false, do_whois },
};

/* ---- the codec's entry points --------------------------------------------- */

void irc_open(struct worker *w, struct session *s)
{
	struct irc_state *st = xcalloc(1, sizeof(*st));
	st->pass_ok = worker_config(w)->irc_password == NULL;
	st->opened_ms = worker_now_ms(w);
	s->codec_state = st;
	s->member.format = FORMAT_IRC;
	peer_host(s->peer, s->member.host, sizeof(s->member.host));
	flood_init(&s->flood, worker_config(w)->burst, worker_now_ms(w));
}

void irc_free(struct session *s)
{
	free(s->codec_state);
	s->codec_state = NULL;
}

bool irc_input(struct worker *w, struct session *s, const char *line, size_t len)
{
	if (!chat_allow_line(w, s))
		return worker_session_open(s);
	state(s)->ping_sent = false;
	/* Message tags: read past (client-only tags are not relayed). */
	if (len > 0 && line[0] == '@') {
		size_t i = 0;
		while (i < len && line[i] != ' ')
			i++;
		if (i - 1 > IRC_CLIENT_TAGS_MAX) {
			num(w, s, "417", ":Input line was too long");
			return worker_session_open(s);
		}
		line += i;
		len -= i;
	}
	if (len > IRC_LINE_MAX) {
		num(w, s, "417", ":Input line was too long");
		return worker_session_open(s);
	}
	struct irc_message msg;
	if (!irc_parse(line, len, &msg))
		return worker_session_open(s);
	const struct irc_command *cmd = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(commands) && !cmd; i++)
		if (strcmp(commands[i].name, msg.command) == 0)
			cmd = &commands[i];
	if (log_level_enabled(LOG_DEBUG))
		log_debug("%s (%s): IRC %s", s->peer, me(s), cmd ? cmd->name : "unknown command");
	if (!cmd) {
		struct echo e;
		if (chat_joined(s))
			num(w, s, "421", "%s :Unknown command", echo_param(&e, msg.command, strlen(msg.command)));
		else
			num(w, s, "451", ":You have not registered");
		return worker_session_open(s);
	}
	if (!chat_joined(s) && !cmd->before_registration) {
		num(w, s, "451", ":You have not registered");
		return worker_session_open(s);
	}
	cmd->handler(w, s, &msg);
	return worker_session_open(s);
}

bool irc_too_long(struct worker *w, struct session *s)
{
	if (chat_allow_line(w, s))
		num(w, s, "417", ":Input line was too long");
	return worker_session_open(s);
}

bool irc_idle(struct worker *w, struct session *s, uint64_t idle_ms)
{
	struct irc_state *st = state(s);
	uint64_t timeout_ms = (uint64_t)worker_config(w)->irc_ping_timeout * 1000;

	/* A connection holds a slot: one that never registers (a port
	 * scanner, a stuck client) does not hold it for long. */
	uint64_t register_ms = timeout_ms && timeout_ms < REGISTRATION_TIMEOUT_MS
			       ? timeout_ms : REGISTRATION_TIMEOUT_MS;
	if (!chat_joined(s) && worker_now_ms(w) - st->opened_ms >= register_ms) {
		closing(w, s, "unregistered", "Registration timed out");
		return true;
	}
	if (timeout_ms == 0)
		return true;
	if (idle_ms >= timeout_ms)
		return false;
	if (idle_ms >= timeout_ms / 2 && !st->ping_sent) {
		raw(w, s, "PING :%s", server_name(w));
		st->ping_sent = true;
	}
	return true;
}
