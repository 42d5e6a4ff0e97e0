/* IRC's commands on channels and users: JOIN, PART, PRIVMSG, NOTICE,
 * NAMES, WHO, WHOIS, TOPIC, LIST, KICK, MODE, AWAY, ISON, USERHOST. Each
 * checks and words its replies, and leaves the chat itself to the core. */
#include "autoconf.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/text.h"
#include "base/util.h"
#include "core/chat.h"
#include "proto/irc_impl.h"

/* "@+" (multi-prefix), "@" or "+" or "" for E, as S asked. */
const char *irc_prefixes(struct session *s, bool op, bool voice)
{
	if (op && voice && (irc_state_of(s)->caps & CAP_MULTI_PREFIX))
		return "@+";
	return op ? "@" : voice ? "+" : "";
}

/* Whether S may see secret room NAME's members and name: a member. */
static bool may_see(struct session *s, const char *name, bool secret)
{
	return !secret || rooms_membership(&s->member, name) != NULL;
}

/* The 353 lines of room NAME (no 366); none for a secret room S is not
 * in. */
static void send_names_of(struct worker *w, struct session *s, const char *name)
{
	struct room_info info;
	if (!rooms_info(worker_rooms(w), name, &info) || !may_see(s, name, info.secret))
		return;
	struct room_entry *list;
	size_t n = rooms_names(worker_rooms(w), name, false, &list);
	bool userhost = irc_state_of(s)->caps & CAP_USERHOST_IN_NAMES;
	char line[IRC_LINE_MAX + 1], item[2 * NAME_MAX_LEN + USER_MAX_LEN + HOST_MAX_LEN + 8];
	int head = snprintf(line, sizeof(line), ":%s 353 %s %c #%s :", irc_server(w), irc_me(s),
			    info.secret ? '@' : '=', name);
	size_t len = (size_t)head;

	for (size_t i = 0; i < n; i++) {
		const char *mark = irc_prefixes(s, list[i].op, list[i].voice);
		size_t il = userhost ? str_join(item, sizeof(item), mark, list[i].nick, "!", list[i].user,
					    "@", list[i].host, NULL)
				     : str_join(item, sizeof(item), mark, list[i].nick, NULL);
		if (len + il + 1 > IRC_LINE_MAX) {
			if (!irc_bulk_ok(w, s, len))
				break;
			irc_send_text(w, s, line, len - 1);
			len = (size_t)head;
		}
		memcpy(line + len, item, il);
		len += il;
		line[len++] = ' ';
	}
	if (len > (size_t)head && irc_bulk_ok(w, s, len))
		irc_send_text(w, s, line, len - 1);
	free(list);
}

void irc_send_names(struct worker *w, struct session *s, const char *name)
{
	send_names_of(w, s, name);
	irc_num(w, s, "366", "#%s :End of /NAMES list", name);
}

static void irc_send_topic(struct worker *w, struct session *s, const struct room_info *info,
		       bool always)
{
	if (info->topic[0]) {
		irc_num(w, s, "332", "#%s :%s", info->name, info->topic);
		irc_num(w, s, "333", "#%s %s %lld", info->name, info->topic_by,
		    (long long)info->topic_time);
	} else if (always) {
		irc_num(w, s, "331", "#%s :No topic is set", info->name);
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

void irc_cmd_join(struct worker *w, struct session *s, const struct irc_message *msg)
{
	struct irc_echo e;

	if (msg->count < 1 || msg->param_len[0] == 0) {
		irc_need_more_params(w, s, "JOIN");
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
		if (!irc_room_name(item, item_len, name)) {
			irc_num(w, s, "403", "%s :No such channel (# and 1-32 letters, digits, _ or -, "
			    "first a letter)", irc_echo(&e, item, item_len));
			continue;
		}
		/* A client with draft/chathistory asks for what it wants. */
		struct history_snapshot snap = { 0 };
		bool replay = !(irc_state_of(s)->caps & CAP_CHATHISTORY);
		int r = chat_join(w, s, name, true, &count, replay ? &snap : NULL);
		if (r == -E2BIG)
			irc_num(w, s, "405", "#%s :You have joined too many channels", name);
		if (r < 0)
			continue;
		struct membership *ms = rooms_membership(&s->member, name);
		struct room_info info;
		if (rooms_info(worker_rooms(w), name, &info))
			irc_send_topic(w, s, &info, false);
		irc_send_names(w, s, ms->room->name);
		irc_replay(w, s, ms->room->name, &snap);
	}
}

void irc_cmd_part(struct worker *w, struct session *s, const struct irc_message *msg)
{
	struct irc_echo e;

	if (msg->count < 1) {
		irc_need_more_params(w, s, "PART");
		return;
	}
	const char *p = msg->params[0], *item;
	size_t len = msg->param_len[0], item_len;
	const char *reason = msg->count > 1 ? msg->params[1] : "";
	size_t reason_len = msg->count > 1 ? msg->param_len[1] : 0;
	while (irc_next_item(&p, &len, &item, &item_len)) {
		char name[NAME_MAX_LEN + 1];
		struct room_info info;
		if (!irc_room_name(item, item_len, name) || !rooms_info(worker_rooms(w), name, &info)) {
			irc_num(w, s, "403", "%s :No such channel", irc_echo(&e, item, item_len));
			continue;
		}
		if (!rooms_membership(&s->member, name)) {
			irc_num(w, s, "442", "#%s :You're not on that channel", info.name);
			continue;
		}
		chat_part(w, s, name, reason, reason_len, true);
	}
}

/* PRIVMSG and NOTICE: to channels and nicks; NOTICE gets no error. */
static void say(struct worker *w, struct session *s, const struct irc_message *msg, bool notice)
{
	const char *command = notice ? "NOTICE" : "PRIVMSG";
	struct irc_state *st = irc_state_of(s);
	struct irc_echo e;

	if (msg->count < 1 || msg->param_len[0] == 0) {
		if (!notice)
			irc_num(w, s, "411", ":No recipient given (%s)", command);
		return;
	}
	if (msg->count < 2 || msg->param_len[1] == 0) {
		if (!notice)
			irc_num(w, s, "412", ":No text to send");
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
				irc_num(w, s, "407", "%s :Too many targets", irc_echo(&e, item, item_len));
			break;
		}
		if (item_len > 0 && item[0] == '#') {
			struct room *room = NULL;
			if (!irc_room_name(item, item_len, name)) {
				if (!notice)
					irc_num(w, s, "403", "%s :No such channel",
					    irc_echo(&e, item, item_len));
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
				irc_num(w, s, "403", "%s :No such channel", irc_echo(&e, item, item_len));
			else if (r == -ENOTCONN && !notice)
				irc_num(w, s, "404", "#%s :Cannot send to channel (no external messages)", name);
			if (r < 0)
				continue;
			chat_say(w, s, room, action ? CHAT_ACTION : CHAT_SAID, notice && !action, text,
				 text_len, echo);
			room_unref(room);
			continue;
		}
		/* The service that stands in for SASL. */
		if (item_len == 8 && strncasecmp(item, "NickServ", 8) == 0) {
			if (!notice)
				irc_nickserv(w, s, msg->params[1], msg->param_len[1]);
			continue;
		}
		char away[AWAY_MAX_LEN + 1] = "";
		/* To oneself: heard once, echo-message or not. */
		int r = irc_nick_name(item, item_len, name)
			? chat_private(w, s, name, text, text_len, notice, action,
				       echo || strcasecmp(name, s->member.nick) == 0, away)
			: -ENOENT;
		if (r == -ENOENT && !notice)
			irc_num(w, s, "401", "%s :No such nick/channel", irc_echo(&e, item, item_len));
		else if (r == 0 && away[0] && !notice)
			irc_num(w, s, "301", "%s :%s", name, away);
	}
}

void irc_cmd_privmsg(struct worker *w, struct session *s, const struct irc_message *msg)
{
	say(w, s, msg, false);
}

void irc_cmd_notice(struct worker *w, struct session *s, const struct irc_message *msg)
{
	say(w, s, msg, true);
}

void irc_cmd_names(struct worker *w, struct session *s, const struct irc_message *msg)
{
	struct irc_echo e;

	if (msg->count < 1) {
		irc_num(w, s, "366", "* :End of /NAMES list");
		return;
	}
	/* Each channel's 353s, then one 366 naming them all, as asked. */
	const char *p = msg->params[0], *item;
	size_t len = msg->param_len[0], item_len;
	for (int k = 0; k < MAX_TARGETS && irc_next_item(&p, &len, &item, &item_len); k++) {
		char name[NAME_MAX_LEN + 1];
		struct room_info info;
		if (irc_room_name(item, item_len, name) && rooms_info(worker_rooms(w), name, &info))
			send_names_of(w, s, info.name);
	}
	char asked[MAX_TARGETS * (NAME_MAX_LEN + 2) + 1];
	irc_copy(asked, sizeof(asked), msg->params[0], msg->param_len[0]);
	irc_num(w, s, "366", "%s :End of /NAMES list", irc_echo(&e, asked, strlen(asked)));
}

static void who_line(struct worker *w, struct session *s, const char *channel,
		     const struct room_entry *m)
{
	irc_num(w, s, "352", "%s %s %s %s %s %c%s :0 %s", channel, m->user, m->host, irc_server(w), m->nick,
	    m->away ? 'G' : 'H', irc_prefixes(s, m->op, m->voice), m->realname);
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

void irc_cmd_who(struct worker *w, struct session *s, const struct irc_message *msg)
{
	struct irc_echo e;
	const char *mask = msg->count > 0 ? irc_echo(&e, msg->params[0], msg->param_len[0]) : "*";
	char name[NAME_MAX_LEN + 1];

	struct room_info room;
	if (msg->count > 0 && irc_room_name(msg->params[0], msg->param_len[0], name) &&
	    rooms_info(worker_rooms(w), name, &room)) {
		if (!may_see(s, room.name, room.secret)) {
			irc_num(w, s, "315", "%s :End of /WHO list", mask);
			return;
		}
		struct room_entry *list;
		size_t n = rooms_names(worker_rooms(w), room.name, false, &list);
		char channel[NAME_MAX_LEN + 2];
		snprintf(channel, sizeof(channel), "#%s", room.name);
		for (size_t i = 0; i < n && irc_bulk_ok(w, s, WHO_LINE_EST); i++)
			who_line(w, s, channel, &list[i]);
		free(list);
	} else if (msg->count > 0 && msg->param_len[0] < NAME_MAX_LEN * 2 &&
		   is_mask(msg->params[0], msg->param_len[0])) {
		char pattern[NAME_MAX_LEN * 2 + 1];
		irc_copy(pattern, sizeof(pattern), msg->params[0], msg->param_len[0]);
		if (strcmp(pattern, "0") == 0)
			strcpy(pattern, "*");
		struct room_entry *list;
		size_t n = rooms_match(worker_rooms(w), &s->member, pattern, WHO_MAX, &list);
		for (size_t i = 0; i < n; i++)
			who_line(w, s, "*", &list[i]);
		free(list);
	} else if (msg->count > 0 && irc_nick_name(msg->params[0], msg->param_len[0], name)) {
		struct room_entry entry;
		if (rooms_entry(worker_rooms(w), name, &entry))
			who_line(w, s, "*", &entry);
	}
	irc_num(w, s, "315", "%s :End of /WHO list", mask);
}

void irc_cmd_whois(struct worker *w, struct session *s, const struct irc_message *msg)
{
	struct irc_echo e;
	char nick[NAME_MAX_LEN + 1];

	if (msg->count < 1) {
		irc_num(w, s, "431", ":No nickname given");
		return;
	}
	/* WHOIS [server] nick */
	int i = msg->count > 1 ? 1 : 0;
	const char *asked = irc_echo(&e, msg->params[i], msg->param_len[i]);
	struct member_info *info = xmalloc(sizeof(*info));
	if (!irc_nick_name(msg->params[i], msg->param_len[i], nick) ||
	    !rooms_whois(worker_rooms(w), nick, info)) {
		irc_num(w, s, "401", "%s :No such nick/channel", asked);
		irc_num(w, s, "318", "%s :End of /WHOIS list", asked);
		free(info);
		return;
	}
	irc_num(w, s, "311", "%s %s %s * :%s", info->nick, info->user, info->host, info->realname);
	char line[IRC_LINE_MAX];
	size_t len = 0;
	for (size_t k = 0; k < info->room_count; k++) {
		if (!may_see(s, info->rooms[k].name, info->rooms[k].secret))
			continue;
		if (len + NAME_MAX_LEN + 3 > 400) {
			irc_num(w, s, "319", "%s :%.*s", info->nick, (int)len, line);
			len = 0;
		}
		len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s#%s", len ? " " : "",
					irc_prefixes(s, info->rooms[k].op, info->rooms[k].voice),
					info->rooms[k].name);
	}
	if (len)
		irc_num(w, s, "319", "%s :%.*s", info->nick, (int)len, line);
	irc_num(w, s, "312", "%s %s :chatd (%s protocol)", info->nick, irc_server(w),
	    info->format == FORMAT_LINE ? "line" : "IRC");
	if (info->away[0])
		irc_num(w, s, "301", "%s :%s", info->nick, info->away);
	if (info->oper)
		irc_num(w, s, "313", "%s :is an IRC operator", info->nick);
	if (info->account[0])
		irc_num(w, s, "330", "%s %s :is logged in as", info->nick, info->account);
	irc_num(w, s, "317", "%s 0 %lld :seconds idle, signon time", info->nick, (long long)info->signon);
	irc_num(w, s, "318", "%s :End of /WHOIS list", info->nick);
	free(info);
}

void irc_cmd_topic(struct worker *w, struct session *s, const struct irc_message *msg)
{
	struct irc_echo e;
	char name[NAME_MAX_LEN + 1];
	struct room_info info;

	if (msg->count < 1) {
		irc_need_more_params(w, s, "TOPIC");
		return;
	}
	if (!irc_room_name(msg->params[0], msg->param_len[0], name) ||
	    !rooms_info(worker_rooms(w), name, &info)) {
		irc_num(w, s, "403", "%s :No such channel", irc_echo(&e, msg->params[0], msg->param_len[0]));
		return;
	}
	if (!may_see(s, info.name, info.secret)) {
		irc_num(w, s, "442", "#%s :You're not on that channel", info.name);
		return;
	}
	if (msg->count < 2) {
		irc_send_topic(w, s, &info, true);
		return;
	}
	int r = chat_topic(w, s, name, msg->params[1], msg->param_len[1]);
	if (r == -ENOTCONN)
		irc_num(w, s, "442", "#%s :You're not on that channel", info.name);
	else if (r == -EPERM)
		irc_num(w, s, "482", "#%s :You're not channel operator", info.name);
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
			irc_copy(number, sizeof(number), item + 1, item_len - 1);
			unsigned long limit = strtoul(number, NULL, 10);
			if (item[0] == '<' ? room->count >= limit : room->count <= limit)
				return false;
			continue;
		}
		bool negated = item[0] == '!';
		irc_copy(pattern, sizeof(pattern), item + negated, item_len - negated);
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

void irc_cmd_list(struct worker *w, struct session *s, const struct irc_message *msg)
{
	struct room_info *list;
	size_t n = rooms_list(worker_rooms(w), &list);

	irc_num(w, s, "321", "Channel :Users  Name");
	for (size_t i = 0; i < n; i++) {
		if (!may_see(s, list[i].name, list[i].secret) ||
		    (msg->count > 0 && msg->param_len[0] > 0 &&
		     !list_wanted(&list[i], msg->params[0], msg->param_len[0])))
			continue;
		if (!irc_bulk_ok(w, s, strlen(list[i].topic) + 2 * NAME_MAX_LEN + 32))
			break;
		irc_num(w, s, "322", "#%s %u :%s", list[i].name, list[i].count, list[i].topic);
	}
	free(list);
	irc_num(w, s, "323", ":End of /LIST");
}

/* One KICK of NICK (NICK_LEN bytes) from channel CHANNEL: false when S may
 * kick nobody there (the reply sent). */
static bool kick_one(struct worker *w, struct session *s, const char *channel, size_t channel_len,
		     const char *nick_p, size_t nick_len, const struct irc_message *msg)
{
	struct irc_echo e;
	char name[NAME_MAX_LEN + 1], nick[NAME_MAX_LEN + 1];
	struct room_info info;

	if (!irc_room_name(channel, channel_len, name) || !rooms_info(worker_rooms(w), name, &info)) {
		irc_num(w, s, "403", "%s :No such channel", irc_echo(&e, channel, channel_len));
		return false;
	}
	int r = irc_nick_name(nick_p, nick_len, nick)
		? chat_kick(w, s, name, nick, msg->count > 2 ? msg->params[2] : "",
			    msg->count > 2 ? msg->param_len[2] : 0)
		: -ENOENT;
	if (r == -ENOTCONN)
		irc_num(w, s, "442", "#%s :You're not on that channel", info.name);
	else if (r == -EPERM)
		irc_num(w, s, "482", "#%s :You're not channel operator", info.name);
	else if (r == -ENOENT)
		irc_num(w, s, "401", "%s :No such nick/channel", irc_echo(&e, nick_p, nick_len));
	else if (r == -ESRCH)
		irc_num(w, s, "441", "%s #%s :They aren't on that channel", nick, info.name);
	return r != -ENOTCONN && r != -EPERM;
}

/* KICK #chan nick[,nick...], or KICK #a,#b nick1,nick2 (in pairs). */
void irc_cmd_kick(struct worker *w, struct session *s, const struct irc_message *msg)
{
	const char *channels[MAX_TARGETS], *nicks[MAX_TARGETS];
	size_t channel_len[MAX_TARGETS], nick_len[MAX_TARGETS];
	int nc = 0, nn = 0;

	if (msg->count < 2) {
		irc_need_more_params(w, s, "KICK");
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
		irc_need_more_params(w, s, "KICK");
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
	struct irc_echo e;

	if (!rooms_info(worker_rooms(w), name, &info)) {
		irc_num(w, s, "403", "#%s :No such channel", name);
		return;
	}
	if (!may_see(s, info.name, info.secret)) {
		irc_num(w, s, "442", "#%s :You're not on that channel", info.name);
		return;
	}
	if (msg->count < 2) {
		irc_num(w, s, "324", "#%s +%s%s%s", info.name, info.no_external ? "n" : "",
		    info.secret ? "s" : "", info.topic_ops ? "t" : "");
		irc_num(w, s, "329", "#%s %lld", info.name, (long long)info.created);
		return;
	}
	const char *modes = msg->params[1];
	size_t modes_len = msg->param_len[1];
	int arg = 2, changes = 0;
	bool on = true;
	/* At most MODES (3) changes with a nick, and twice that in all, a
	 * command: each is told to the whole room. */
	for (size_t i = 0; i < modes_len && changes < 2 * MODES_MAX && arg - 2 < MODES_MAX; i++) {
		char c = modes[i];
		if (c == '+' || c == '-') {
			on = c == '+';
			continue;
		}
		if (c == 'b' && (arg >= msg->count)) {
			/* The ban list: chatd has none. */
			irc_num(w, s, "368", "#%s :End of channel ban list", info.name);
			continue;
		}
		int r;
		changes++;
		if (c == 'o' || c == 'v') {
			char nick[NAME_MAX_LEN + 1];
			if (arg >= msg->count) {
				irc_need_more_params(w, s, "MODE");
				return;
			}
			const char *target = msg->params[arg];
			size_t target_len = msg->param_len[arg++];
			r = irc_nick_name(target, target_len, nick) ? chat_mode(w, s, name, c, on, nick)
								 : -ENOENT;
			if (r == -ENOENT)
				irc_num(w, s, "401", "%s :No such nick/channel", irc_echo(&e, target, target_len));
			else if (r == -ESRCH)
				irc_num(w, s, "441", "%s #%s :They aren't on that channel", nick, info.name);
		} else if (c == 't' || c == 'n' || c == 's') {
			r = chat_mode(w, s, name, c, on, NULL);
		} else {
			irc_num(w, s, "472", "%c :is unknown mode char to me", c > ' ' && c < 0x7f ? c : '?');
			continue;
		}
		if (r == -ENOTCONN) {
			irc_num(w, s, "442", "#%s :You're not on that channel", info.name);
			return;
		}
		if (r == -EPERM) {
			irc_num(w, s, "482", "#%s :You're not channel operator", info.name);
			return;
		}
	}
}

void irc_cmd_mode(struct worker *w, struct session *s, const struct irc_message *msg)
{
	struct irc_echo e;
	char name[NAME_MAX_LEN + 1];

	if (msg->count < 1) {
		irc_need_more_params(w, s, "MODE");
		return;
	}
	if (msg->param_len[0] > 0 && msg->params[0][0] == '#') {
		if (!irc_room_name(msg->params[0], msg->param_len[0], name))
			irc_num(w, s, "403", "%s :No such channel", irc_echo(&e, msg->params[0], msg->param_len[0]));
		else
			channel_mode(w, s, msg, name);
		return;
	}
	if (!irc_nick_name(msg->params[0], msg->param_len[0], name) ||
	    strcasecmp(name, s->member.nick) != 0) {
		struct member_address a;
		if (irc_nick_name(msg->params[0], msg->param_len[0], name) &&
		    rooms_find(worker_rooms(w), name, &a))
			irc_num(w, s, "502", ":Can't change mode for other users");
		else
			irc_num(w, s, "401", "%s :No such nick/channel",
			    irc_echo(&e, msg->params[0], msg->param_len[0]));
		return;
	}
	if (msg->count < 2) {
		irc_num(w, s, "221", "+%s%s", s->member.invisible ? "i" : "", s->member.oper[0] ? "o" : "");
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
		} else if (c == 'o' && !on && s->member.oper[0] && n + 2 < sizeof(changed)) {
			/* Giving up operator status; only OPER gives it. */
			rooms_set_oper(worker_rooms(w), &s->member, "");
			changed[n++] = '-';
			changed[n++] = 'o';
		} else if (c != 'i' && c != 'w' && c != 'o')
			unknown = true;
	}
	changed[n] = '\0';
	if (n)
		irc_raw(w, s, ":%s!%s@%s MODE %s :%s", s->member.nick, s->member.user, s->member.host,
		    s->member.nick, changed);
	if (unknown)
		irc_num(w, s, "501", ":Unknown MODE flag");
}

void irc_cmd_away(struct worker *w, struct session *s, const struct irc_message *msg)
{
	const char *text = msg->count > 0 ? msg->params[0] : "";
	size_t len = msg->count > 0 ? msg->param_len[0] : 0;
	chat_away(w, s, text, len);
	if (s->member.away[0])
		irc_num(w, s, "306", ":You have been marked as being away");
	else
		irc_num(w, s, "305", ":You are no longer marked as being away");
}

void irc_cmd_ison(struct worker *w, struct session *s, const struct irc_message *msg)
{
	char line[IRC_LINE_MAX];
	size_t len = 0;
	int asked = 0;

	if (msg->count < 1) {
		irc_need_more_params(w, s, "ISON");
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
			if (k > 0 && irc_nick_name(p, k, nick) && rooms_find(worker_rooms(w), nick, &a) &&
			    len + strlen(a.nick) + 2 < 400)
				len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s", len ? " " : "",
							a.nick);
			asked += k > 0;
			p += k < plen ? k + 1 : k;
			plen -= k < plen ? k + 1 : k;
		}
	}
	irc_num(w, s, "303", ":%.*s", (int)len, line);
}

void irc_cmd_userhost(struct worker *w, struct session *s, const struct irc_message *msg)
{
	char line[IRC_LINE_MAX];
	size_t len = 0;

	if (msg->count < 1) {
		irc_need_more_params(w, s, "USERHOST");
		return;
	}
	for (int i = 0; i < msg->count && i < USERHOST_MAX; i++) {
		char nick[NAME_MAX_LEN + 1];
		struct room_entry e;
		if (irc_nick_name(msg->params[i], msg->param_len[i], nick) &&
		    rooms_entry(worker_rooms(w), nick, &e))
			len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s=%c%s@%s",
						len ? " " : "", e.nick, e.away ? '-' : '+', e.user, e.host);
	}
	irc_num(w, s, "302", ":%.*s", (int)len, line);
}
