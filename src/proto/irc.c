/* IRC (docs/irc.md): a session's life (registration with CAP, PASS, NICK
 * and USER; PING both ways; QUIT), the replies every command shares, and
 * the one table of commands, dispatched from here (irc_channels.c has the
 * commands on channels and users, irc_encode.c the events). The
 * references: the "Modern IRC client protocol" document, RFC 2812, and
 * the IRCv3 specifications of capability negotiation, message-tags,
 * server-time, echo-message, msgid, multi-prefix and userhost-in-names.
 * Channels are chatd's rooms with a '#' in front; nicks and room names
 * follow chatd's one rule (text.h), compared ignoring ASCII case. */
#include "autoconf.h"

#include "proto/irc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/text.h"
#include "base/util.h"
#include "core/chat.h"
#include "core/flood.h"
#include "proto/irc_impl.h"
#include "proto/irc_message.h"

#define CRLF "\r\n"
/* A connection that has not registered by then (or by [irc] ping_timeout,
 * when shorter) is let go. */
#define REGISTRATION_TIMEOUT_MS (60 * 1000)

/* ---- capabilities -------------------------------------------------------- */

static const struct {
	const char *name;
	unsigned bit;
} cap_table[] = {
	{ "batch", CAP_BATCH },
	{ "draft/account-registration", CAP_ACCOUNT_REGISTRATION },
	{ "draft/chathistory", CAP_CHATHISTORY },
	{ "echo-message", CAP_ECHO_MESSAGE },
	{ "message-tags", CAP_MESSAGE_TAGS },
	{ "multi-prefix", CAP_MULTI_PREFIX },
	{ "sasl", CAP_SASL },
	{ "server-time", CAP_SERVER_TIME },
	{ "userhost-in-names", CAP_USERHOST_IN_NAMES },
};

struct irc_state *irc_state_of(struct session *s)
{
	return s->codec_state;
}

static enum format format_for(const struct session *s, unsigned caps)
{
	unsigned f = 0;
	if (caps & CAP_SERVER_TIME)
		f |= FORMAT_IRC_TIME_BIT;
	if (caps & CAP_MESSAGE_TAGS)
		f |= FORMAT_IRC_MSGID_BIT;
	return format_irc(f, s->framing);
}

/* ---- names in parameters ------------------------------------------------ */

void irc_copy(char *buf, size_t size, const char *p, size_t len)
{
	if (len >= size)
		len = size - 1;
	memcpy(buf, p, len);
	buf[len] = '\0';
}

/* "#name" to a room name in RET; false when it is not one. */
bool irc_room_name(const char *p, size_t len, char ret[NAME_MAX_LEN + 1])
{
	if (len < 2 || p[0] != '#' || !text_is_valid_name(p + 1, len - 1))
		return false;
	irc_copy(ret, NAME_MAX_LEN + 1, p + 1, len - 1);
	return true;
}

bool irc_nick_name(const char *p, size_t len, char ret[NAME_MAX_LEN + 1])
{
	if (!text_is_valid_name(p, len))
		return false;
	irc_copy(ret, NAME_MAX_LEN + 1, p, len);
	return true;
}

/* ---- replies ---------------------------------------------------------------- */

const char *irc_server(struct worker *w)
{
	return worker_config(w)->irc_server_name;
}

/* Who numerics are addressed to: the nick, or "*" before there is one. */
const char *irc_me(struct session *s)
{
	if (chat_joined(s))
		return s->member.nick;
	return irc_state_of(s)->nick[0] ? irc_state_of(s)->nick : "*";
}

void irc_send_text(struct worker *w, struct session *s, const char *text, size_t len)
{
	struct msg *m = msg_new(len + 2);
	m = msg_append(m, text, len);
	m = msg_append(m, CRLF, 2);
	worker_send(w, s, m);
	msg_unref(m);
}

/* One message, as formatted (CRLF added), cut to 512 bytes. */
void irc_raw(struct worker *w, struct session *s, const char *fmt, ...)
{
	char buf[IRC_LINE_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
	irc_send_text(w, s, buf, text_utf8_prefix(buf, len, IRC_LINE_MAX));
}

/* ":server CODE target " + the formatted rest. */
void irc_num(struct worker *w, struct session *s, const char *code, const char *fmt, ...)
{
	char rest[IRC_LINE_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(rest, sizeof(rest), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	irc_raw(w, s, ":%s %s %s %s", irc_server(w), code, irc_me(s), rest);
}

const char *irc_echo(struct irc_echo *e, const char *p, size_t len)
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

bool irc_bulk_ok(struct worker *w, struct session *s, size_t len)
{
	struct irc_state *st = irc_state_of(s);

	if (len <= st->budget) {
		st->budget -= len;
		return true;
	}
	if (!st->cut) {
		st->cut = true;
		irc_raw(w, s, ":%s NOTICE %s :reply cut short: more than %zu bytes (half of max_sendq); "
			"ask for less (a mask, fewer channels)", irc_server(w), irc_me(s),
			worker_config(w)->max_sendq / 2);
	}
	return false;
}

void irc_need_more_params(struct worker *w, struct session *s, const char *command)
{
	irc_num(w, s, "461", "%s :Not enough parameters", command);
}

/* ---- registration ----------------------------------------------------------- */

static void send_isupport(struct worker *w, struct session *s)
{
	const struct config *cfg = worker_config(w);
	irc_num(w, s, "005",
	    "AWAYLEN=%d CASEMAPPING=ascii CHANLIMIT=#:%d CHANMODES=,,,nst CHANNELLEN=%d CHANTYPES=# "
	    "ELIST=MNU HOSTLEN=%d KICKLEN=%d MAXTARGETS=%d :are supported by this server",
	    AWAY_MAX_LEN, ROOMS_PER_MEMBER, NAME_MAX_LEN + 1, HOST_MAX_LEN, TOPIC_MAX_LEN, MAX_TARGETS);
	irc_num(w, s, "005",
	    "MODES=%d NETWORK=%s NICKLEN=%d PREFIX=(ov)@+ TARGMAX=JOIN:,KICK:%d,NAMES:,"
	    "NOTICE:%d,PART:,PRIVMSG:%d,WHOIS:1 TOPICLEN=%d USERLEN=%d :are supported by this server",
	    MODES_MAX, cfg->irc_network, NAME_MAX_LEN, MAX_TARGETS, MAX_TARGETS, MAX_TARGETS,
	    TOPIC_MAX_LEN, USER_MAX_LEN);
	if (cfg->history_keep)
		irc_num(w, s, "005", "CHATHISTORY=%d MSGREFTYPES=timestamp,msgid :are supported by "
			"this server", IRC_CHATHISTORY_MAX);
}

void irc_send_lusers(struct worker *w, struct session *s)
{
	int online, max, invisible;
	rooms_counts(worker_rooms(w), &online, &max, &invisible);
	int rooms = rooms_count(worker_rooms(w));
	irc_num(w, s, "251", ":There are %d users and %d invisible on 1 servers", online - invisible,
	    invisible);
	irc_num(w, s, "254", "%d :channels formed", rooms);
	irc_num(w, s, "255", ":I have %d clients and 0 servers", online);
	irc_num(w, s, "265", ":Current local users: %d, max: %d", online, max);
	irc_num(w, s, "266", ":Current global users: %d, max: %d", online, max);
}

void irc_send_motd(struct worker *w, struct session *s)
{
	const struct config *cfg = worker_config(w);
	if (cfg->motd_count == 0) {
		irc_num(w, s, "422", ":MOTD File is missing");
		return;
	}
	irc_num(w, s, "375", ":- %s Message of the day - ", irc_server(w));
	for (size_t i = 0; i < cfg->motd_count; i++) {
		struct text_buf c;
		text_buf_clean(&c, cfg->motd_lines[i], strlen(cfg->motd_lines[i]));
		irc_num(w, s, "372", ":- %.*s", (int)c.len, c.text);
		text_buf_free(&c);
	}
	irc_num(w, s, "376", ":End of /MOTD command.");
}

void irc_closing(struct worker *w, struct session *s, const char *reason, const char *why)
{
	irc_raw(w, s, "ERROR :Closing Link: %s (%s)", s->member.host, why);
	worker_close_after_flush(w, s, reason, NULL, 0);
}

/* Registers S once it gave NICK and USER and ended CAP negotiation. */
static void try_register(struct worker *w, struct session *s)
{
	struct irc_state *st = irc_state_of(s);
	const struct config *cfg = worker_config(w);

	if (chat_joined(s) || !st->nick[0] || !st->have_user || st->cap_negotiating)
		return;
	if (!st->pass_ok) {
		irc_num(w, s, "464", ":Password incorrect");
		irc_closing(w, s, "password", "Bad password");
		return;
	}
	int online = chat_register(w, s, st->nick, NULL, NULL);
	if (online == -EEXIST || online == -EACCES) {
		if (online == -EEXIST)
			irc_num(w, s, "433", "%s :Nickname is already in use", st->nick);
		else
			irc_num(w, s, "432", "%s :Nickname is banned on this server", st->nick);
		st->nick[0] = '\0';
		return;
	}
	irc_num(w, s, "001", ":Welcome to the %s IRC Network %s!%s@%s", cfg->irc_network, s->member.nick,
	    s->member.user, s->member.host);
	irc_num(w, s, "002", ":Your host is %s, running version chatd-%s", irc_server(w),
	    PACKAGE_VERSION);
	irc_num(w, s, "003", ":This server is chatd, speaking IRC and chatd's line protocol");
	irc_num(w, s, "004", "%s chatd-%s iw nostv ov", irc_server(w), PACKAGE_VERSION);
	send_isupport(w, s);
	irc_send_lusers(w, s);
	irc_send_motd(w, s);
}

static void do_cap(struct worker *w, struct session *s, const struct irc_message *msg)
{
	struct irc_state *st = irc_state_of(s);
	struct irc_echo e;

	if (msg->count < 1) {
		irc_need_more_params(w, s, "CAP");
		return;
	}
	char sub[16];
	irc_copy(sub, sizeof(sub), msg->params[0], msg->param_len[0]);
	for (char *p = sub; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 32);
	if (strcmp(sub, "LS") == 0 || strcmp(sub, "LIST") == 0) {
		bool list = sub[1] == 'I';
		char caps[512] = "";
		const struct config *cfg = worker_config(w);
		char version[8] = "";
		if (msg->count > 1)
			irc_copy(version, sizeof(version), msg->params[1], msg->param_len[1]);
		bool v302 = atoi(version) >= 302;
		for (size_t i = 0; i < ARRAY_SIZE(cap_table); i++) {
			if (list && !(st->caps & cap_table[i].bit))
				continue;
			if (caps[0])
				strcat(caps, " ");
			strcat(caps, cap_table[i].name);
			/* Values for clients that read them (302). */
			if (cap_table[i].bit == CAP_SASL && v302 && !list)
				strcat(caps, "=PLAIN,SCRAM-SHA-256");
		}
		/* Strict transport security, for clients that read values
		 * (CAP LS 302): in the clear, where TLS is; over TLS, how long
		 * to insist on it. Informational: never requested. */
		if (!list && v302 && cfg->irc_tls_port) {
			size_t n = strlen(caps);
			if (s->tls)
				snprintf(caps + n, sizeof(caps) - n, " sts=duration=%d", cfg->irc_sts_duration);
			else
				snprintf(caps + n, sizeof(caps) - n, " sts=port=%d", cfg->irc_tls_port);
		}
		if (!list && !chat_joined(s))
			st->cap_negotiating = true;
		irc_raw(w, s, ":%s CAP %s %s :%s", irc_server(w), irc_me(s), list ? "LIST" : "LS", caps);
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
		irc_copy(req, sizeof(req), p, len);
		if (ok) {
			st->caps = caps;
			chat_set_format(w, s, format_for(s, caps));
		}
		irc_raw(w, s, ":%s CAP %s %s :%s", irc_server(w), irc_me(s), ok ? "ACK" : "NAK", req);
	} else if (strcmp(sub, "END") == 0) {
		st->cap_negotiating = false;
		try_register(w, s);
	} else {
		irc_num(w, s, "410", "%s :Invalid CAP command", irc_echo(&e, msg->params[0], msg->param_len[0]));
	}
}

static void do_pass(struct worker *w, struct session *s, const struct irc_message *msg)
{
	const char *password = worker_config(w)->irc_password;

	if (chat_joined(s)) {
		irc_num(w, s, "462", ":You may not reregister");
		return;
	}
	if (msg->count < 1) {
		irc_need_more_params(w, s, "PASS");
		return;
	}
	if (password)
		irc_state_of(s)->pass_ok = strlen(password) == msg->param_len[0] &&
				    memcmp(password, msg->params[0], msg->param_len[0]) == 0;
}

static void do_user(struct worker *w, struct session *s, const struct irc_message *msg)
{
	struct irc_state *st = irc_state_of(s);

	if (chat_joined(s) || st->have_user) {
		irc_num(w, s, "462", ":You may not reregister");
		return;
	}
	if (msg->count < 4 || msg->param_len[0] == 0 || msg->param_len[3] == 0) {
		irc_need_more_params(w, s, "USER");
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
	struct irc_state *st = irc_state_of(s);
	char nick[NAME_MAX_LEN + 1];
	struct irc_echo e;

	if (msg->count < 1 || msg->param_len[0] == 0) {
		irc_num(w, s, "431", ":No nickname given");
		return;
	}
	if (!irc_nick_name(msg->params[0], msg->param_len[0], nick)) {
		irc_num(w, s, "432", "%s :Erroneous nickname (1-32 letters, digits, _ or -, first a letter)",
		    irc_echo(&e, msg->params[0], msg->param_len[0]));
		return;
	}
	if (!chat_joined(s)) {
		struct member_address a;
		if (rooms_find(worker_rooms(w), nick, &a)) {
			irc_num(w, s, "433", "%s :Nickname is already in use", nick);
			return;
		}
		memcpy(st->nick, nick, sizeof(nick));
		try_register(w, s);
		return;
	}
	int r = chat_rename(w, s, nick);
	if (r == -EEXIST)
		irc_num(w, s, "433", "%s :Nickname is already in use", nick);
	else if (r == -EACCES)
		irc_num(w, s, "432", "%s :Nickname is banned on this server", nick);
}

static void do_ping(struct worker *w, struct session *s, const struct irc_message *msg)
{
	if (msg->count < 1 || msg->param_len[0] == 0) {
		irc_num(w, s, "409", ":No origin specified");
		return;
	}
	struct text_buf c;
	text_buf_clean(&c, msg->params[0], msg->param_len[0]);
	irc_raw(w, s, ":%s PONG %s :%.*s", irc_server(w), irc_server(w), (int)c.len, c.text);
	text_buf_free(&c);
}

static void do_pong(struct worker *w, struct session *s, const struct irc_message *msg)
{
	(void)w, (void)msg;
	irc_state_of(s)->ping_sent = false;
}

static void do_quit(struct worker *w, struct session *s, const struct irc_message *msg)
{
	const char *text = msg->count > 0 ? msg->params[0] : "";
	size_t len = msg->count > 0 ? msg->param_len[0] : 0;
	struct text_buf c;
	text_buf_clean(&c, text, len);
	size_t n = text_utf8_prefix(c.text, c.len, TOPIC_MAX_LEN);
	irc_raw(w, s, "ERROR :Closing Link: %s (Quit%s%.*s)", s->member.host, n ? ": " : "", (int)n,
	    c.text);
	text_buf_free(&c);
	chat_quit(w, s, text, len);
}

static void do_lusers(struct worker *w, struct session *s, const struct irc_message *msg)
{
	(void)msg;
	irc_send_lusers(w, s);
}

static void do_motd(struct worker *w, struct session *s, const struct irc_message *msg)
{
	(void)msg;
	irc_send_motd(w, s);
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
	{ "AUTHENTICATE", true, irc_cmd_authenticate },
	{ "AWAY", false, irc_cmd_away },       { "CAP", true, do_cap },
	{ "CHATHISTORY", false, irc_cmd_chathistory },
	{ "ISON", false, irc_cmd_ison },       { "JOIN", false, irc_cmd_join },
	{ "KICK", false, irc_cmd_kick },       { "LIST", false, irc_cmd_list },
	{ "LUSERS", false, do_lusers },   { "MODE", false, irc_cmd_mode },
	{ "KILL", false, irc_cmd_kill },
	{ "MOTD", false, do_motd },       { "NAMES", false, irc_cmd_names },
	{ "NICK", true, do_nick },        { "NOTICE", false, irc_cmd_notice },
	{ "OPER", false, irc_cmd_oper },
	{ "PART", false, irc_cmd_part },       { "PASS", true, do_pass },
	{ "PING", true, do_ping },        { "PONG", true, do_pong },
	{ "PRIVMSG", false, irc_cmd_privmsg }, { "QUIT", true, do_quit },
	{ "REGISTER", true, irc_cmd_register },
	{ "REHASH", false, irc_cmd_rehash },
	{ "TAGMSG", false, do_tagmsg },   { "TOPIC", false, irc_cmd_topic },
	{ "USER", true, do_user },        { "USERHOST", false, irc_cmd_userhost },
	{ "WALLOPS", false, irc_cmd_wallops },
	{ "WHO", false, irc_cmd_who },         { "WHOIS", false, irc_cmd_whois },
};

/* ---- the codec's entry points --------------------------------------------- */

void irc_open(struct worker *w, struct session *s)
{
	struct irc_state *st = xcalloc(1, sizeof(*st));
	st->pass_ok = worker_config(w)->irc_password == NULL;
	st->opened_ms = worker_now_ms(w);
	s->codec_state = st;
	s->member.format = format_for(s, 0);
	peer_host(s->peer, s->member.host, sizeof(s->member.host));
	flood_init(&s->flood, worker_config(w)->burst, worker_now_ms(w));
}

void irc_free(struct session *s)
{
	if (s->codec_state)
		irc_sasl_free(s->codec_state);
	free(s->codec_state);
	s->codec_state = NULL;
}

bool irc_input(struct worker *w, struct session *s, const char *line, size_t len)
{
	if (!chat_allow_line(w, s))
		return worker_session_open(s);
	irc_state_of(s)->ping_sent = false;
	/* Message tags: read past (client-only tags are not relayed). */
	if (len > 0 && line[0] == '@') {
		size_t i = 0;
		while (i < len && line[i] != ' ')
			i++;
		if (i - 1 > IRC_CLIENT_TAGS_MAX) {
			irc_num(w, s, "417", ":Input line was too long");
			return worker_session_open(s);
		}
		line += i;
		len -= i;
	}
	if (len > IRC_LINE_MAX) {
		irc_num(w, s, "417", ":Input line was too long");
		return worker_session_open(s);
	}
	struct irc_state *st = irc_state_of(s);
	st->budget = worker_config(w)->max_sendq / 2;
	st->cut = false;
	struct irc_message msg;
	if (!irc_parse(line, len, &msg))
		return worker_session_open(s);
	const struct irc_command *cmd = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(commands) && !cmd; i++)
		if (commands[i].name[0] == msg.command[0] && strcmp(commands[i].name, msg.command) == 0)
			cmd = &commands[i];
	if (log_level_enabled(LOG_DEBUG))
		log_debug("%s (%s): IRC %s", s->peer, irc_me(s), cmd ? cmd->name : "unknown command");
	if (!cmd) {
		struct irc_echo e;
		if (chat_joined(s))
			irc_num(w, s, "421", "%s :Unknown command", irc_echo(&e, msg.command, strlen(msg.command)));
		else
			irc_num(w, s, "451", ":You have not registered");
		return worker_session_open(s);
	}
	if (!chat_joined(s) && !cmd->before_registration) {
		irc_num(w, s, "451", ":You have not registered");
		return worker_session_open(s);
	}
	cmd->handler(w, s, &msg);
	return worker_session_open(s);
}

bool irc_too_long(struct worker *w, struct session *s)
{
	if (chat_allow_line(w, s))
		irc_num(w, s, "417", ":Input line was too long");
	return worker_session_open(s);
}

bool irc_idle(struct worker *w, struct session *s, uint64_t idle_ms)
{
	struct irc_state *st = irc_state_of(s);
	uint64_t timeout_ms = (uint64_t)worker_config(w)->irc_ping_timeout * 1000;

	/* A connection holds a slot: one that never registers (a port
	 * scanner, a stuck client) does not hold it for long. */
	uint64_t register_ms = timeout_ms && timeout_ms < REGISTRATION_TIMEOUT_MS
			       ? timeout_ms : REGISTRATION_TIMEOUT_MS;
	if (!chat_joined(s) && worker_now_ms(w) - st->opened_ms >= register_ms) {
		irc_closing(w, s, "unregistered", "Registration timed out");
		return true;
	}
	if (timeout_ms == 0)
		return true;
	if (idle_ms >= timeout_ms)
		return false;
	if (idle_ms >= timeout_ms / 2 && !st->ping_sent) {
		irc_raw(w, s, "PING :%s", irc_server(w));
		st->ping_sent = true;
	}
	return true;
}
