/* IRC operators: OPER with a name and password from [operators] (hashed
 * there; checked by the accounts thread, with the login limits), then
 * KILL, WALLOPS and REHASH, which do what chatctl kick, wall and reload do,
 * logged with the operator as the actor. */
#include "autoconf.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/chat.h"
#include "proto/irc_impl.h"
#include "store/accounts.h"

/* Checked for a name that is no operator's, so that an answer takes as
 * long either way (its password is nobody's). */
static const char no_operator_hash[] = "$y$j9T$Vq2P0lW5m1xJc8Zk3Ra9u.$"
				       "Y5vEVVQN/leoBuusmsMkij3H3psjema1hULSgAbs.A1";

/* "oper NAME (NICK from HOST)": who did it, for the log. */
static void actor_of(struct session *s, char *buf, size_t size)
{
	snprintf(buf, size, "oper %s (%s from %s)", s->member.oper, s->member.nick, s->member.host);
}

/* Whether S is an operator (still in [operators]: a reload may have
 * removed it); if not, it is told. */
static bool operator(struct worker *w, struct session *s)
{
	if (s->member.oper[0] && config_operator_hash(worker_config(w), s->member.oper))
		return true;
	if (s->member.oper[0])
		rooms_set_oper(worker_rooms(w), &s->member, "");
	irc_num(w, s, "481", ":Permission Denied- You're not an IRC operator");
	return false;
}

void irc_cmd_oper(struct worker *w, struct session *s, const struct irc_message *msg)
{
	if (msg->count < 2 || msg->param_len[0] == 0) {
		irc_need_more_params(w, s, "OPER");
		return;
	}
	struct account_request *r = xcalloc(1, sizeof(*r));
	r->op = ACCOUNT_OPER;
	r->tag = ASKED_BY_OPER;
	irc_copy(r->name, sizeof(r->name), msg->params[0], msg->param_len[0]);
	irc_copy(r->password, sizeof(r->password), msg->params[1], msg->param_len[1]);
	const char *hash = config_operator_hash(worker_config(w), r->name);
	snprintf(r->oper_hash, sizeof(r->oper_hash), "%s", hash ? hash : no_operator_hash);
	snprintf(r->address, sizeof(r->address), "%s", s->member.host);
	worker_account_request(w, s, r);
}

void irc_oper_answer(struct worker *w, struct session *s, const struct account_request *r)
{
	if (r->result == -EAGAIN) {
		irc_num(w, s, "464", ":Password incorrect");
		irc_raw(w, s, ":%s NOTICE %s :Too many failed attempts: try again in %d seconds",
			irc_server(w), irc_me(s), r->retry_s);
		return;
	}
	/* A name in the config may have been removed by a reload since. */
	if (r->result != 0 || !config_operator_hash(worker_config(w), r->name)) {
		irc_num(w, s, "464", ":Password incorrect");
		return;
	}
	rooms_set_oper(worker_rooms(w), &s->member, r->name);
	irc_num(w, s, "381", ":You are now an IRC operator");
	irc_raw(w, s, ":%s!%s@%s MODE %s :+o", s->member.nick, s->member.user, s->member.host,
		s->member.nick);
	char actor[192];
	actor_of(s, actor, sizeof(actor));
	log_event(LOG_NOTICE, LOG_FIELDS(.event = "oper", .peer = s->peer, .nick = s->member.nick,
					 .actor = actor),
		  "%s (%s) is now the IRC operator %s", s->member.nick, s->peer, r->name);
}

void irc_cmd_kill(struct worker *w, struct session *s, const struct irc_message *msg)
{
	if (!operator(w, s))
		return;
	char nick[NAME_MAX_LEN + 1], found[NAME_MAX_LEN + 1], reason[256] = "", text[400], actor[192];
	if (msg->count < 1 || msg->param_len[0] == 0) {
		irc_need_more_params(w, s, "KILL");
		return;
	}
	if (msg->count > 1)
		irc_copy(reason, sizeof(reason), msg->params[1], msg->param_len[1]);
	irc_copy(nick, sizeof(nick), msg->params[0], msg->param_len[0]);
	snprintf(text, sizeof(text), "Killed by %s%s%s", s->member.nick, reason[0] ? ": " : "", reason);
	actor_of(s, actor, sizeof(actor));
	if (!worker_admin_kick(w, nick, text, actor, found)) {
		struct irc_echo e;
		irc_num(w, s, "401", "%s :No such nick/channel",
			irc_echo(&e, msg->params[0], msg->param_len[0]));
	}
}

void irc_cmd_wallops(struct worker *w, struct session *s, const struct irc_message *msg)
{
	if (!operator(w, s))
		return;
	if (msg->count < 1 || msg->param_len[0] == 0) {
		irc_need_more_params(w, s, "WALLOPS");
		return;
	}
	char text[WALL_MAX + NAME_MAX_LEN + 8], actor[192];
	snprintf(text, sizeof(text), "%s: %.*s", s->member.nick, (int)msg->param_len[0],
		 msg->params[0]);
	actor_of(s, actor, sizeof(actor));
	int r = worker_admin_wall(w, text, actor);
	if (r < 0)
		irc_raw(w, s, ":%s NOTICE %s :WALLOPS not sent: %s", irc_server(w), irc_me(s),
			r == -E2BIG ? "too long" : "empty");
}

void irc_cmd_rehash(struct worker *w, struct session *s, const struct irc_message *msg)
{
	(void)msg;
	if (!operator(w, s))
		return;
	char actor[192];
	actor_of(s, actor, sizeof(actor));
	const char *path = worker_config(w)->path;
	const char *file = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	irc_num(w, s, "382", "%s :Rehashing", file);
	log_event(LOG_NOTICE, LOG_FIELDS(.event = "rehash", .nick = s->member.nick, .actor = actor),
		  "REHASH by %s: reloading the config", actor);
	/* The main thread reloads, as on systemctl reload: its outcome is
	 * in the log (and chatctl reload says it). */
	if (kill(getpid(), SIGHUP) < 0)
		log_errno(LOG_ERR, errno, "REHASH: cannot signal the main thread");
}
