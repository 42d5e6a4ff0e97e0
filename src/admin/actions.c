#include "autoconf.h"

#include "admin/actions.h"

#include <errno.h>
#include <stdarg.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "cluster/cluster.h"
#include "base/text.h"
#include "base/util.h"
#include "core/bans.h"
#include "core/rooms.h"
#include "net/worker.h"
#include "store/accounts.h"
#include "store/store.h"

/* ---- answers -------------------------------------------------------------------- */

char *action_answer_line(bool ok, const char *error, const char *text, struct json_object *result)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(ok));
	if (error)
		json_object_object_add(o, "error", json_object_new_string(error));
	if (text && *text)
		json_object_object_add(o, "text", json_object_new_string(text));
	if (result)
		json_object_object_add(o, "result", result);
	char *line = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return line;
}

char *action_answer(struct action *a, enum action_outcome outcome, const char *text)
{
	bool ok = outcome == ACTION_DONE;
	struct json_object *result = a->result;
	a->result = NULL;
	return action_answer_line(ok, ok ? NULL : a->error, text, result);
}

static enum action_outcome fail(struct action *a, const char *fmt, ...) PRINTF_LIKE(2, 3);
static enum action_outcome fail(struct action *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(a->error, sizeof(a->error), fmt, ap);
	va_end(ap);
	return ACTION_FAILED;
}

static void put_string(struct json_object *o, const char *key, const char *value)
{
	json_object_object_add(o, key, value ? json_object_new_string(value) : NULL);
}

static void put_int(struct json_object *o, const char *key, int64_t value)
{
	json_object_object_add(o, key, json_object_new_int64(value));
}

static void put_bool(struct json_object *o, const char *key, bool value)
{
	json_object_object_add(o, key, json_object_new_boolean(value));
}

/* "2h05m", "3d04h": how long ago T was. */
static void format_age(time_t t, char *buf, size_t size)
{
	long s = (long)(time(NULL) - t);
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(buf, size, "%lds", s);
	else if (s < 3600)
		snprintf(buf, size, "%ldm%02lds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, size, "%ldh%02ldm", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, size, "%ldd%02ldh", s / 86400, s % 86400 / 3600);
}

/* A room as an admin types it: "lobby" or IRC's "#lobby". */
static const char *room_name(const char *arg)
{
	return arg[0] == '#' ? arg + 1 : arg;
}

/* ---- the commands ------------------------------------------------------------------ */

static enum action_outcome do_status(struct action *a)
{
	a->host->status(a->host->server, a->result, a->text);
	return ACTION_DONE;
}

static enum action_outcome do_who(struct action *a)
{
	const char *room = a->nargs ? room_name(a->args[0]) : NULL;
	struct member_summary *list;
	ssize_t n = rooms_everyone(a->host->pool->rooms, room, &list);
	if (n == -ENOENT)
		return fail(a, "no such room: %s", a->args[0]);
	put_string(a->result, "room", room);
	struct json_object *members = json_object_new_array();
	if (n > 0)
		fprintf(a->text, "%-20s %-8s %-24s %-16s %-8s %s\n", "NICK", "VIA", "ADDRESS", "ACCOUNT",
			"ON FOR", room ? "OP" : "ROOMS");
	for (ssize_t i = 0; i < n; i++) {
		const struct member_summary *m = &list[i];
		struct json_object *o = json_object_new_object();
		put_string(o, "nick", m->nick);
		put_string(o, "user", m->user);
		put_string(o, "address", m->host);
		put_string(o, "account", m->account[0] ? m->account : NULL);
		put_string(o, "via", m->via);
		put_bool(o, "away", m->away);
		put_int(o, "since", (int64_t)m->signon);
		put_int(o, "rooms", m->room_count);
		if (room)
			put_bool(o, "op", m->op);
		json_object_array_add(members, o);
		char age[32], last[16];
		format_age(m->signon, age, sizeof(age));
		if (room)
			snprintf(last, sizeof(last), "%s", m->op ? "op" : "-");
		else
			snprintf(last, sizeof(last), "%u", m->room_count);
		fprintf(a->text, "%-20s %-8s %-24s %-16s %-8s %s\n", m->nick, m->via, m->host,
			m->account[0] ? m->account : "-", age, last);
	}
	json_object_object_add(a->result, "members", members);
	put_int(a->result, "count", n);
	fprintf(a->text, "%zd %s%s%s\n", n, n == 1 ? "person" : "people",
		room ? " in " : " online", room ? room : "");
	free(list);
	return ACTION_DONE;
}

static enum action_outcome do_rooms(struct action *a)
{
	struct room_info *list;
	size_t n = rooms_list(a->host->pool->rooms, &list);
	struct json_object *rooms = json_object_new_array();
	if (n)
		fprintf(a->text, "%-24s %7s  %s\n", "ROOM", "PEOPLE", "TOPIC");
	for (size_t i = 0; i < n; i++) {
		const struct room_info *r = &list[i];
		struct json_object *o = json_object_new_object();
		put_string(o, "name", r->name);
		put_int(o, "members", r->count);
		put_string(o, "topic", r->topic[0] ? r->topic : NULL);
		put_string(o, "topic_by", r->topic_by[0] ? r->topic_by : NULL);
		put_int(o, "created", (int64_t)r->created);
		char modes[8] = "+";
		if (r->topic_ops)
			strcat(modes, "t");
		if (r->no_external)
			strcat(modes, "n");
		if (r->secret)
			strcat(modes, "s");
		put_string(o, "modes", modes);
		json_object_array_add(rooms, o);
		fprintf(a->text, "%-24s %7u  %s\n", r->name, r->count, r->topic);
	}
	json_object_object_add(a->result, "rooms", rooms);
	put_int(a->result, "count", (int64_t)n);
	fprintf(a->text, "%zu room%s\n", n, n == 1 ? "" : "s");
	free(list);
	return ACTION_DONE;
}

static enum action_outcome do_kick(struct action *a)
{
	char text[512], nick[NAME_MAX_LEN + 1];
	if (a->nargs > 1 && a->args[1][0])
		snprintf(text, sizeof(text), "kicked by an admin: %s", a->args[1]);
	else
		snprintf(text, sizeof(text), "kicked by an admin");
	if (!worker_pool_kick(a->host->pool, a->args[0], text, a->actor, nick))
		return fail(a, "nobody online is called %s", a->args[0]);
	put_string(a->result, "nick", nick);
	fprintf(a->text, "kicked %s\n", nick);
	return ACTION_DONE;
}

static enum action_outcome do_wall(struct action *a)
{
	int online = worker_pool_wall(a->host->pool, a->args[0], a->actor);
	if (online == -E2BIG)
		return fail(a, "the message is too long (%zu bytes; at most %d)", strlen(a->args[0]),
			    WALL_MAX);
	if (online < 0)
		return fail(a, "the message is empty");
	put_int(a->result, "online", online);
	fprintf(a->text, "told %d %s\n", online, online == 1 ? "person" : "people");
	return ACTION_DONE;
}

static enum action_outcome do_reload(struct action *a)
{
	struct config_errors errors = { 0 };
	if (a->host->reload(a->host->server, a->actor, &errors) == 0) {
		fprintf(a->text, "reloaded\n");
		put_bool(a->result, "reloaded", true);
		return ACTION_DONE;
	}
	struct json_object *list = json_object_new_array();
	for (size_t i = 0; i < errors.count; i++) {
		json_object_array_add(list, json_object_new_string(errors.messages[i]));
		fprintf(a->text, "%s\n", errors.messages[i]);
	}
	json_object_object_add(a->result, "errors", list);
	config_errors_free(&errors);
	return fail(a, "reload failed; the config in use stays");
}

static enum action_outcome do_log_level(struct action *a)
{
	int old = log_get_level();
	if (a->nargs == 0) {
		put_string(a->result, "level", log_level_name(old));
		fprintf(a->text, "%s\n", log_level_name(old));
		return ACTION_DONE;
	}
	int level;
	if (!log_level_from_name(a->args[0], &level))
		return fail(a, "no such level: %s (debug, info, notice, warning, error)", a->args[0]);
	log_set_level(level);
	/* Said at the level that is sure to be seen, under both levels. */
	log_event(LOG_WARNING, LOG_FIELDS(.event = "log_level", .actor = a->actor),
		  "log level %s (was %s) until the next reload", log_level_name(level),
		  log_level_name(old));
	put_string(a->result, "level", log_level_name(level));
	put_string(a->result, "was", log_level_name(old));
	fprintf(a->text, "log level %s (was %s) until the next reload\n", log_level_name(level),
		log_level_name(old));
	return ACTION_DONE;
}

/* ---- bans ---------------------------------------------------------------------------- */

static void format_when(int64_t t, char *buf, size_t size)
{
	time_t when = (time_t)t;
	struct tm tm;
	localtime_r(&when, &tm);
	strftime(buf, size, "%Y-%m-%d %H:%M", &tm);
}

static struct json_object *ban_json(const struct ban *b)
{
	struct json_object *o = json_object_new_object();
	put_string(o, "mask", b->mask);
	put_string(o, "kind", b->kind == BAN_ADDRESS ? "address" : "nick");
	put_string(o, "reason", b->reason);
	put_string(o, "by", b->actor);
	put_int(o, "created", b->created);
	json_object_object_add(o, "expires", b->expires ? json_object_new_int64(b->expires) : NULL);
	return o;
}

static enum action_outcome do_ban_add(struct action *a)
{
	struct ban b = { .created = time(NULL) };
	const char *why;
	if (!ban_parse_mask(a->args[0], &b, &why))
		return fail(a, "%s: %s", a->args[0], why);
	/* MASK [DURATION] [REASON]: a second word that is no duration
	 * starts the reason. */
	int64_t duration = 0;
	size_t reason_from = 1;
	if (a->nargs > 1 && ban_parse_duration(a->args[1], &duration))
		reason_from = 2;
	char reason[BAN_REASON_MAX] = "";
	for (size_t i = reason_from; i < a->nargs; i++) {
		size_t len = strlen(reason);
		if (strlen(a->args[i]) + len + 2 > sizeof(reason))
			return fail(a, "the reason is too long (at most %d bytes)", BAN_REASON_MAX - 1);
		snprintf(reason + len, sizeof(reason) - len, "%s%s", len ? " " : "", a->args[i]);
	}
	struct text_buf clean;
	text_buf_clean(&clean, reason, strlen(reason));
	snprintf(b.reason, sizeof(b.reason), "%.*s", (int)clean.len, clean.text);
	text_buf_free(&clean);
	snprintf(b.actor, sizeof(b.actor), "%s", a->actor);
	b.expires = duration ? b.created + duration : 0;
	const struct ban_list *old = a->host->bans(a->host->server);
	bool replaces = false;
	for (size_t i = 0; i < old->count && !replaces; i++)
		replaces = strcmp(old->bans[i].mask, b.mask) == 0;
	if (old->count >= BANS_MAX && !replaces)
		return fail(a, "too many bans (at most %d): lift some first", BANS_MAX);
	struct ban_list *l = ban_list_with(old, &b);
	store_save_ban(a->host->pool->store, &b);
	if (a->host->pool->cluster)
		cluster_ban_added(a->host->pool->cluster, &b);
	a->host->set_bans(a->host->server, l);
	char until[32] = "until lifted";
	if (b.expires) {
		char when[24];
		format_when(b.expires, when, sizeof(when));
		snprintf(until, sizeof(until), "until %s", when);
	}
	log_event(LOG_NOTICE, LOG_FIELDS(.event = "ban_added", .actor = a->actor, .reason = b.mask),
		  "ban of %s %s%s%s", b.mask, until, b.reason[0] ? ": " : "", b.reason);
	json_object_object_add(a->result, "ban", ban_json(&b));
	fprintf(a->text, "banned %s %s%s%s\n", b.mask, until, b.reason[0] ? ": " : "", b.reason);
	return ACTION_DONE;
}

static enum action_outcome do_ban_del(struct action *a)
{
	/* The mask as it is kept (a nick mask in lower case). */
	struct ban key;
	const char *why;
	const char *mask = ban_parse_mask(a->args[0], &key, &why) ? key.mask : a->args[0];
	struct ban_list *l = ban_list_without(a->host->bans(a->host->server), mask);
	if (!l)
		return fail(a, "no ban of %s (chatctl ban list shows them)", a->args[0]);
	store_delete_ban(a->host->pool->store, mask);
	if (a->host->pool->cluster)
		cluster_ban_removed(a->host->pool->cluster, mask);
	log_event(LOG_NOTICE, LOG_FIELDS(.event = "ban_removed", .actor = a->actor, .reason = mask),
		  "ban of %s lifted", mask);
	fprintf(a->text, "lifted the ban of %s\n", mask);
	put_string(a->result, "mask", mask);
	a->host->set_bans(a->host->server, l);
	return ACTION_DONE;
}

static enum action_outcome do_ban_list(struct action *a)
{
	const struct ban_list *l = a->host->bans(a->host->server);
	struct json_object *list = json_object_new_array();
	int64_t now = time(NULL);
	size_t shown = 0;
	for (size_t i = 0; i < l->count; i++) {
		const struct ban *b = &l->bans[i];
		if (b->expires && b->expires <= now)
			continue;
		if (shown++ == 0)
			fprintf(a->text, "%-24s %-16s %-30s %s\n", "MASK", "UNTIL", "BY", "REASON");
		char until[24] = "lifted";
		if (b->expires)
			format_when(b->expires, until, sizeof(until));
		fprintf(a->text, "%-24s %-16s %-30s %s\n", b->mask, until, b->actor, b->reason);
		json_object_array_add(list, ban_json(b));
	}
	json_object_object_add(a->result, "bans", list);
	fprintf(a->text, "%zu ban%s\n", shown, shown == 1 ? "" : "s");
	return ACTION_DONE;
}

/* ---- history -------------------------------------------------------------------------- */

static enum action_outcome do_history_purge(struct action *a)
{
	const char *room = room_name(a->args[0]);
	if (!text_is_valid_name(room, strlen(room)))
		return fail(a, "not a room name: %s", a->args[0]);
	rooms_history_purge(a->host->pool->rooms, room);
	store_purge_room(a->host->pool->store, room);
	log_event(LOG_NOTICE, LOG_FIELDS(.event = "history_purged", .actor = a->actor, .reason = room),
		  "history of %s purged", room);
	put_string(a->result, "room", room);
	fprintf(a->text, "forgot every line said in %s\n", room);
	return ACTION_DONE;
}

/* ---- accounts: answered by the accounts thread ------------------------------------------ */

struct account_asker {
	struct control *ctl;
	struct rooms *rooms;
	uint64_t client;
};

static const char *account_error(int result)
{
	switch (result) {
	case -EEXIST: return "that account exists already";
	case -ENOENT: return "no such account";
	case -EINVAL: return "a password is 8 to 128 bytes";
	default: return "the database failed (see the log)";
	}
}

/* On the accounts thread. */
static void account_answered(struct account_request *r)
{
	struct account_asker *asker = r->ctx;
	struct json_object *result = json_object_new_object();
	char *text = NULL;
	if (r->result == 0) {
		switch (r->op) {
		case ACCOUNT_ADD:
			text = xasprintf("registered %s\n", r->account);
			break;
		case ACCOUNT_SET_PASSWORD:
			text = xasprintf("set the password of %s\n", r->account);
			break;
		case ACCOUNT_DELETE:
			rooms_unregister(asker->rooms, r->account);
			text = xasprintf("deleted %s\n", r->account);
			break;
		default: {
			struct json_object *list = json_object_new_array();
			size_t len = 0;
			FILE *out = open_memstream(&text, &len);
			if (out && r->list_count)
				fprintf(out, "%-20s %-16s %s\n", "ACCOUNT", "REGISTERED", "LAST LOGIN");
			for (size_t i = 0; i < r->list_count; i++) {
				const struct account_info *info = &r->list[i];
				struct json_object *o = json_object_new_object();
				put_string(o, "name", info->name);
				put_int(o, "created", info->created);
				put_int(o, "last_login", info->last_login);
				json_object_array_add(list, o);
				char created[24], login[24];
				format_when(info->created, created, sizeof(created));
				format_when(info->last_login, login, sizeof(login));
				if (out)
					fprintf(out, "%-20s %-16s %s\n", info->name, created, login);
			}
			if (out) {
				fprintf(out, "%zu account%s\n", r->list_count, r->list_count == 1 ? "" : "s");
				fclose(out);
			}
			json_object_object_add(result, "accounts", list);
			break;
		}
		}
		if (r->op != ACCOUNT_LIST)
			put_string(result, "account", r->account);
	}
	char *line = r->result == 0 ? action_answer_line(true, NULL, text, result)
				    : action_answer_line(false, account_error(r->result), NULL, NULL);
	if (r->result != 0)
		json_object_put(result);
	free(text);
	control_post(asker->ctl, asker->client, line);
	free(asker);
	account_request_free(r);
}

static enum action_outcome ask_accounts(struct action *a, enum account_op op)
{
	struct accounts *accounts = a->host->pool->accounts;
	if (op != ACCOUNT_LIST && !text_is_valid_name(a->args[0], strlen(a->args[0])))
		return fail(a, "not a nick: %s", a->args[0]);
	if (a->password) {
		size_t len = strlen(a->password);
		if (len < ACCOUNTS_PASSWORD_MIN || len > ACCOUNTS_PASSWORD_MAX)
			return fail(a, "a password is %d to %d bytes", ACCOUNTS_PASSWORD_MIN,
				    ACCOUNTS_PASSWORD_MAX);
	}
	struct account_request *r = xcalloc(1, sizeof(*r));
	r->op = op;
	if (op != ACCOUNT_LIST)
		snprintf(r->name, sizeof(r->name), "%s", a->args[0]);
	if (a->password) {
		/* ADD takes it as the password, SET_PASSWORD as the new one. */
		snprintf(op == ACCOUNT_ADD ? r->password : r->new_password, sizeof(r->password), "%s",
			 a->password);
	}
	snprintf(r->address, sizeof(r->address), "chatctl");
	snprintf(r->actor, sizeof(r->actor), "%s", a->actor);
	struct account_asker *asker = xmalloc(sizeof(*asker));
	*asker = (struct account_asker){ .ctl = a->ctl, .rooms = a->host->pool->rooms,
					 .client = a->client };
	r->ctx = asker;
	r->done = account_answered;
	accounts_request(accounts, r);
	return ACTION_LATER;
}

static enum action_outcome do_account_list(struct action *a)
{
	return ask_accounts(a, ACCOUNT_LIST);
}

static enum action_outcome do_account_add(struct action *a)
{
	return ask_accounts(a, ACCOUNT_ADD);
}

static enum action_outcome do_account_del(struct action *a)
{
	return ask_accounts(a, ACCOUNT_DELETE);
}

static enum action_outcome do_account_passwd(struct action *a)
{
	return ask_accounts(a, ACCOUNT_SET_PASSWORD);
}

static enum action_outcome do_monitor(struct action *a)
{
	(void)a;
	return ACTION_MONITOR;
}

typedef enum action_outcome action_fn(struct action *a);

static action_fn *const actions[ADMIN_COMMAND_COUNT] = {
	[ADMIN_STATUS] = do_status,
	[ADMIN_WHO] = do_who,
	[ADMIN_ROOMS] = do_rooms,
	[ADMIN_KICK] = do_kick,
	[ADMIN_WALL] = do_wall,
	[ADMIN_RELOAD] = do_reload,
	[ADMIN_LOG_LEVEL] = do_log_level,
	[ADMIN_MONITOR] = do_monitor,
	[ADMIN_BAN_ADD] = do_ban_add,
	[ADMIN_BAN_DEL] = do_ban_del,
	[ADMIN_BAN_LIST] = do_ban_list,
	[ADMIN_HISTORY_PURGE] = do_history_purge,
	[ADMIN_ACCOUNT_LIST] = do_account_list,
	[ADMIN_ACCOUNT_ADD] = do_account_add,
	[ADMIN_ACCOUNT_DEL] = do_account_del,
	[ADMIN_ACCOUNT_PASSWD] = do_account_passwd,
};

_Static_assert(ADMIN_COMMAND_COUNT == 16, "every command has its action below");

enum action_outcome action_run(struct action *a)
{
	return actions[a->id](a);
}
