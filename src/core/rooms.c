#include "autoconf.h"

#include "core/rooms.h"

#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"
#include "core/history.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* A chained hash of names, ignoring case, that doubles as it fills. */
struct name_table {
	struct name_entry **buckets;
	size_t size;  /* a power of two */
	size_t count;
};

struct rooms {
	pthread_mutex_t lock;
	struct name_table nicks;
	struct name_table rooms;
	/* Each room's history, by name, for the server's life: a room's
	 * lines outlive the room. */
	struct name_table histories;
	int workers;
	int online;
	int max_online;
	int invisible;
	uint64_t marks;   /* rooms_match()'s stamps handed out */
	unsigned next_guest;
	char guest_suffix[NAME_MAX_LEN + 1]; /* "-node", or "" */
};

static size_t name_hash(const char *key)
{
	return hash_bytes(key, strlen(key));
}

static void table_init(struct name_table *t)
{
	t->size = 64;
	t->count = 0;
	t->buckets = xcalloc(t->size, sizeof(*t->buckets));
}

static struct name_entry *table_find(const struct name_table *t, const char *name)
{
	char key[NAME_MAX_LEN + 1];

	ascii_lower(key, name, sizeof(key));
	for (struct name_entry *e = t->buckets[name_hash(key) & (t->size - 1)]; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static void table_grow(struct name_table *t)
{
	size_t size = t->size * 2;
	struct name_entry **buckets = xcalloc(size, sizeof(*buckets));

	for (size_t i = 0; i < t->size; i++) {
		struct name_entry *e = t->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			size_t b = name_hash(e->key) & (size - 1);
			e->next = buckets[b];
			buckets[b] = e;
		}
	}
	free(t->buckets);
	t->buckets = buckets;
	t->size = size;
}

static void table_insert(struct name_table *t, struct name_entry *e, const char *name)
{
	if (t->count >= t->size)
		table_grow(t);
	ascii_lower(e->key, name, sizeof(e->key));
	size_t b = name_hash(e->key) & (t->size - 1);
	e->next = t->buckets[b];
	t->buckets[b] = e;
	t->count++;
}

static void table_remove(struct name_table *t, struct name_entry *e)
{
	struct name_entry **p = &t->buckets[name_hash(e->key) & (t->size - 1)];
	for (; *p; p = &(*p)->next) {
		if (*p == e) {
			*p = e->next;
			t->count--;
			return;
		}
	}
}

_Static_assert(TOPIC_MAX_LEN == STORE_TOPIC_MAX, "a room's topic is kept whole");

/* What the registry keeps of a room by its name, for the server's life,
 * whether or not anyone is in it: its history, and when it is registered
 * to an account (saved.founder not empty), what the store keeps of it. */
struct history_entry {
	struct name_entry name_entry;
	struct room_history *history;
	struct store_room saved;
};

/* Room NAME's entry, made if new, under the lock. */
static struct history_entry *entry_locked(struct rooms *r, const char *name)
{
	struct name_entry *e = table_find(&r->histories, name);
	if (e)
		return container_of(e, struct history_entry, name_entry);
	struct history_entry *he = xcalloc(1, sizeof(*he));
	he->history = room_history_new();
	table_insert(&r->histories, &he->name_entry, name);
	return he;
}

size_t rooms_sweep(struct rooms *r, int64_t before_ms)
{
	size_t freed = 0;
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->histories.size; i++) {
		struct name_entry **p = &r->histories.buckets[i];
		while (*p) {
			struct history_entry *he = container_of(*p, struct history_entry, name_entry);
			/* Kept: a room that is there, or registered, or said
			 * something since BEFORE_MS. */
			if (table_find(&r->rooms, he->name_entry.key) || he->saved.founder[0] ||
			    room_history_newest_ms(he->history) >= before_ms) {
				p = &(*p)->next;
				continue;
			}
			*p = (*p)->next;
			r->histories.count--;
			room_history_free(he->history);
			free(he);
			freed++;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return freed;
}

bool rooms_history_purge(struct rooms *r, const char *name)
{
	pthread_mutex_lock(&r->lock);
	struct name_entry *e = table_find(&r->histories, name);
	if (e)
		room_history_clear(container_of(e, struct history_entry, name_entry)->history);
	pthread_mutex_unlock(&r->lock);
	return e != NULL;
}

void rooms_unregister(struct rooms *r, const char *account)
{
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->histories.size; i++) {
		for (struct name_entry *e = r->histories.buckets[i]; e; e = e->next) {
			struct history_entry *he = container_of(e, struct history_entry, name_entry);
			if (he->saved.founder[0] && strcasecmp(he->saved.founder, account) == 0)
				memset(&he->saved, 0, sizeof(he->saved));
		}
	}
	pthread_mutex_unlock(&r->lock);
}

void rooms_room_load(struct rooms *r, const struct store_room *saved)
{
	pthread_mutex_lock(&r->lock);
	entry_locked(r, saved->name)->saved = *saved;
	pthread_mutex_unlock(&r->lock);
}

void rooms_history_load(struct rooms *r, const char *name, int64_t last_no, struct hline **lines,
			size_t n, unsigned cap)
{
	pthread_mutex_lock(&r->lock);
	struct room_history *rh = entry_locked(r, name)->history;
	pthread_mutex_unlock(&r->lock);
	room_history_load(rh, last_no, lines, n, cap);
}

bool rooms_reserved(const char *nick)
{
	/* The services IRC clients talk to (irc_services.c): nobody may
	 * speak as them. */
	static const char *const reserved[] = { "NickServ" };
	for (size_t i = 0; i < sizeof(reserved) / sizeof(*reserved); i++)
		if (strcasecmp(nick, reserved[i]) == 0)
			return true;
	return false;
}

struct rooms *rooms_new(int workers)
{
	struct rooms *r = xcalloc(1, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	table_init(&r->nicks);
	table_init(&r->rooms);
	table_init(&r->histories);
	r->workers = workers;
	r->next_guest = 1;
	return r;
}

void rooms_set_guest_suffix(struct rooms *r, const char *suffix)
{
	snprintf(r->guest_suffix, sizeof(r->guest_suffix), "-%s", suffix);
}

/* The next guest nick into RET (under the lock). */
static void guest_nick(struct rooms *r, char ret[NAME_MAX_LEN + 1])
{
	do {
		size_t n = (size_t)snprintf(ret, NAME_MAX_LEN + 1, "guest%u", r->next_guest++);
		size_t k = strlen(r->guest_suffix);
		if (k > NAME_MAX_LEN - n)
			k = NAME_MAX_LEN - n; /* cut: still a valid name */
		memcpy(ret + n, r->guest_suffix, k);
		ret[n + k] = 0;
	} while (table_find(&r->nicks, ret));
}

void rooms_free(struct rooms *r)
{
	if (!r)
		return;
	/* Members are owned by connections and rooms die with their last
	 * member, so by now both tables are empty. */
	free(r->nicks.buckets);
	free(r->rooms.buckets);
	for (size_t i = 0; i < r->histories.size; i++) {
		struct name_entry *e = r->histories.buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			struct history_entry *he = container_of(e, struct history_entry, name_entry);
			room_history_free(he->history);
			free(he);
		}
	}
	free(r->histories.buckets);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

struct room *room_ref(struct room *room)
{
	atomic_fetch_add_explicit(&room->refs, 1, memory_order_relaxed);
	return room;
}

uint64_t room_next_seq(struct room *room)
{
	return atomic_fetch_add(&room->seq, 1) + 1;
}

uint64_t room_line_seq(struct room *room)
{
	return atomic_load(&room->seq) + 1;
}

void room_unref(struct room *room)
{
	if (atomic_fetch_sub_explicit(&room->refs, 1, memory_order_acq_rel) == 1) {
		free(room->local);
		free(room);
	}
}

static struct room *find_room_locked(struct rooms *r, const char *name)
{
	struct name_entry *e = table_find(&r->rooms, name);
	return e ? container_of(e, struct room, name_entry) : NULL;
}

struct room *rooms_room(struct rooms *r, const char *name, struct room_history **ret_history)
{
	pthread_mutex_lock(&r->lock);
	struct room *room = find_room_locked(r, name);
	if (room)
		room_ref(room);
	*ret_history = entry_locked(r, name)->history;
	pthread_mutex_unlock(&r->lock);
	return room;
}

static struct member *find_member_locked(struct rooms *r, const char *nick)
{
	struct name_entry *e = table_find(&r->nicks, nick);
	return e ? container_of(e, struct member, nick_entry) : NULL;
}

static struct membership *membership_of(const struct member *m, const struct room *room)
{
	struct membership *ms;
	TAILQ_FOREACH(ms, &m->rooms, member_link)
		if (ms->room == room)
			return ms;
	return NULL;
}

struct membership *rooms_membership(const struct member *m, const char *name)
{
	struct membership *ms;
	TAILQ_FOREACH(ms, &m->rooms, member_link)
		if (strcasecmp(ms->room->name, name) == 0)
			return ms;
	return NULL;
}

/* Puts M in room NAME, creating it, under the lock. ACCOUNT: what M is
 * logged in to (NULL or "": none); a room it makes is registered to it,
 * in *RET_SAVED (when not NULL), for the caller to save. */
static struct membership *join_locked(struct rooms *r, struct member *m, const char *name,
				      struct history_snapshot *snap, const char *account,
				      struct store_room *ret_saved)
{
	struct room *room = find_room_locked(r, name);
	bool created = !room;
	struct history_entry *he = entry_locked(r, name);
	struct store_room *saved = &he->saved;
	bool lobby = strcasecmp(name, LOBBY) == 0;

	if (created) {
		room = xcalloc(1, sizeof(*room));
		atomic_init(&room->refs, 1); /* the registry's, while not empty */
		snprintf(room->name, sizeof(room->name), "%s", name);
		TAILQ_INIT(&room->members);
		size_t lists = (size_t)r->workers * FORMAT_COUNT;
		room->local = xcalloc(lists, sizeof(*room->local));
		for (size_t i = 0; i < lists; i++)
			TAILQ_INIT(&room->local[i]);
		room->created = time(NULL);
		room->history = he->history;
		room->topic_ops = true;
		if (saved->founder[0]) {
			/* Registered: as it was left. */
			snprintf(room->name, sizeof(room->name), "%s", saved->name);
			snprintf(room->topic, sizeof(room->topic), "%s", saved->topic);
			snprintf(room->topic_by, sizeof(room->topic_by), "%s", saved->topic_by);
			room->topic_time = (time_t)saved->topic_time;
			room->created = (time_t)saved->created;
		} else if (account && account[0] && !lobby) {
			/* Made by someone logged in: theirs from now on. */
			snprintf(saved->name, sizeof(saved->name), "%s", name);
			snprintf(saved->founder, sizeof(saved->founder), "%s", account);
			saved->created = (int64_t)room->created;
			if (ret_saved)
				*ret_saved = *saved;
		}
		room->no_external = true;
		table_insert(&r->rooms, &room->name_entry, name);
	}
	struct membership *ms = xcalloc(1, sizeof(*ms));
	ms->member = m;
	ms->room = room_ref(room);
	/* The lobby, where every line client starts, belongs to nobody: its
	 * first guest would otherwise rule everyone who comes after. A
	 * registered room's operator is its founder, whenever they come. */
	if (saved->founder[0])
		ms->op = account && strcasecmp(account, saved->founder) == 0;
	else
		ms->op = created && !lobby;
	TAILQ_INSERT_TAIL(&room->members, ms, room_link);
	TAILQ_INSERT_TAIL(&m->rooms, ms, member_link);
	room->count++;
	m->room_count++;
	/* Counted in its format before its arrival is numbered: see
	 * room_formats(). */
	if (!member_is_remote(m)) /* nothing is encoded for it here */
		atomic_fetch_add(&room->formats[m->format], 1);
	/* Numbered with the history held: the lines before are shown, the
	 * lines after are sent (see history.h). */
	pthread_mutex_lock(&room->history->lock);
	ms->joined_seq = room_next_seq(room);
	if (snap)
		room_history_snapshot_locked(room->history, snap);
	pthread_mutex_unlock(&room->history->lock);
	return ms;
}

/* Takes MS out of its room and off its member under the lock; it keeps its
 * room reference for the caller. */
static void part_locked(struct rooms *r, struct membership *ms)
{
	struct room *room = ms->room;
	struct member *m = ms->member;

	TAILQ_REMOVE(&room->members, ms, room_link);
	TAILQ_REMOVE(&m->rooms, ms, member_link);
	m->room_count--;
	ms->change_seq = room_next_seq(room);
	if (!member_is_remote(m))
		atomic_fetch_sub(&room->formats[m->format], 1);
	ms->left_count = --room->count;
	if (room->count == 0) {
		table_remove(&r->rooms, &room->name_entry);
		room_unref(room); /* the registry's; the membership still holds one */
	}
}

void membership_free(struct membership *ms)
{
	if (ms) {
		room_unref(ms->room);
		free(ms);
	}
}

int rooms_enter(struct rooms *r, struct member *m, const char *nick, const char *room,
		struct membership **ret, unsigned *ret_count, struct history_snapshot *snap)
{
	TAILQ_INIT(&m->rooms);
	m->room_count = 0;
	m->signon = time(NULL);
	pthread_mutex_lock(&r->lock);
	if (nick && (table_find(&r->nicks, nick) || rooms_reserved(nick))) {
		pthread_mutex_unlock(&r->lock);
		return -EEXIST;
	}
	if (nick) {
		snprintf(m->nick, sizeof(m->nick), "%s", nick);
	} else {
		guest_nick(r, m->nick);
	}
	table_insert(&r->nicks, &m->nick_entry, m->nick);
	m->registered = true;
	if (room) {
		*ret = join_locked(r, m, room, snap, NULL, NULL);
		*ret_count = (*ret)->room->count;
	}
	int online = ++r->online;
	if (online > r->max_online)
		r->max_online = online;
	pthread_mutex_unlock(&r->lock);
	return online;
}

int rooms_leave(struct rooms *r, struct member *m)
{
	struct membership_list gone = TAILQ_HEAD_INITIALIZER(gone);

	pthread_mutex_lock(&r->lock);
	table_remove(&r->nicks, &m->nick_entry);
	m->registered = false;
	if (m->invisible)
		r->invisible--;
	m->invisible = false;
	struct membership *ms;
	while ((ms = TAILQ_FIRST(&m->rooms))) {
		part_locked(r, ms);
		TAILQ_INSERT_TAIL(&gone, ms, member_link);
	}
	int online = --r->online;
	pthread_mutex_unlock(&r->lock);
	/* Back on the member's list, for the caller to tell each room. */
	TAILQ_CONCAT(&m->rooms, &gone, member_link);
	return online;
}

int rooms_join(struct rooms *r, struct member *m, const char *name, struct membership **ret,
	       unsigned *ret_count, struct history_snapshot *snap, const char *account,
	       struct store_room *ret_saved)
{
	int err = 0;

	pthread_mutex_lock(&r->lock);
	struct room *room = find_room_locked(r, name);
	if (room && membership_of(m, room)) {
		err = -EALREADY;
	} else if (m->room_count >= ROOMS_PER_MEMBER) {
		err = -E2BIG;
	} else {
		*ret = join_locked(r, m, name, snap, account, ret_saved);
		*ret_count = (*ret)->room->count;
	}
	pthread_mutex_unlock(&r->lock);
	return err;
}

int rooms_part(struct rooms *r, struct member *m, const char *name, struct membership **ret,
	       unsigned *ret_count)
{
	int err = -ENOTCONN;

	pthread_mutex_lock(&r->lock);
	struct room *room = find_room_locked(r, name);
	struct membership *ms = room ? membership_of(m, room) : NULL;
	if (ms) {
		part_locked(r, ms);
		*ret = ms;
		*ret_count = ms->room->count;
		err = 0;
	}
	pthread_mutex_unlock(&r->lock);
	return err;
}

int rooms_rename(struct rooms *r, struct member *m, const char *nick,
		 char ret_old[NAME_MAX_LEN + 1])
{
	int ret = 0;
	char guest[NAME_MAX_LEN + 1];

	pthread_mutex_lock(&r->lock);
	if (!nick) {
		guest_nick(r, guest);
		nick = guest;
	}
	struct name_entry *e = table_find(&r->nicks, nick);
	if (rooms_reserved(nick)) {
		ret = -EEXIST;
	} else if (strcmp(m->nick, nick) == 0) {
		ret = -EALREADY;
	} else if (e && e != &m->nick_entry) {
		ret = -EEXIST;
	} else {
		table_remove(&r->nicks, &m->nick_entry);
		memcpy(ret_old, m->nick, sizeof(m->nick));
		snprintf(m->nick, sizeof(m->nick), "%s", nick);
		table_insert(&r->nicks, &m->nick_entry, nick);
		struct membership *ms;
		TAILQ_FOREACH(ms, &m->rooms, member_link)
			ms->change_seq = room_next_seq(ms->room);
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

void rooms_set_account(struct rooms *r, struct member *m, const char *account)
{
	pthread_mutex_lock(&r->lock);
	snprintf(m->account, sizeof(m->account), "%s", account);
	pthread_mutex_unlock(&r->lock);
}

void rooms_set_format(struct rooms *r, struct member *m, enum format format)
{
	pthread_mutex_lock(&r->lock);
	struct membership *ms;
	TAILQ_FOREACH(ms, &m->rooms, member_link) {
		atomic_fetch_add(&ms->room->formats[format], 1);
		atomic_fetch_sub(&ms->room->formats[m->format], 1);
	}
	m->format = format;
	pthread_mutex_unlock(&r->lock);
}

void rooms_set_oper(struct rooms *r, struct member *m, const char *name)
{
	pthread_mutex_lock(&r->lock);
	snprintf(m->oper, sizeof(m->oper), "%s", name);
	pthread_mutex_unlock(&r->lock);
}

void rooms_set_invisible(struct rooms *r, struct member *m, bool on)
{
	pthread_mutex_lock(&r->lock);
	if (m->registered && m->invisible != on)
		r->invisible += on ? 1 : -1;
	m->invisible = on;
	pthread_mutex_unlock(&r->lock);
}

static int compare_entries(const void *a, const void *b)
{
	return strcasecmp(((const struct room_entry *)a)->nick, ((const struct room_entry *)b)->nick);
}

/* Whether M is in a room marked STAMP, under the lock. */
static bool in_marked_room_locked(const struct member *m, uint64_t stamp)
{
	const struct membership *ms;
	TAILQ_FOREACH(ms, &m->rooms, member_link)
		if (ms->room->mark == stamp)
			return true;
	return false;
}

static void entry_of(const struct member *m, struct room_entry *e)
{
	memcpy(e->nick, m->nick, sizeof(e->nick));
	memcpy(e->user, m->user, sizeof(e->user));
	memcpy(e->host, m->host, sizeof(e->host));
	memcpy(e->realname, m->realname, sizeof(e->realname));
	e->op = e->voice = false;
	e->away = m->away[0] != '\0';
}

size_t rooms_match(struct rooms *r, const struct member *viewer, const char *mask, size_t max,
		   struct room_entry **ret)
{
	size_t n = 0;
	struct room_entry *list = xmalloc((max ? max : 1) * sizeof(*list));

	pthread_mutex_lock(&r->lock);
	/* The viewer's rooms marked, so that whether an invisible member
	 * shares one costs a look at each of its rooms, not a search. */
	uint64_t stamp = ++r->marks;
	const struct membership *vms;
	TAILQ_FOREACH(vms, &viewer->rooms, member_link)
		vms->room->mark = stamp;
	for (size_t b = 0; b < r->nicks.size && n < max; b++) {
		for (struct name_entry *e = r->nicks.buckets[b]; e && n < max; e = e->next) {
			const struct member *m = container_of(e, struct member, nick_entry);
			if (fnmatch(mask, m->nick, FNM_CASEFOLD | FNM_NOESCAPE) != 0)
				continue;
			if (m->invisible && m != viewer && !in_marked_room_locked(m, stamp))
				continue;
			entry_of(m, &list[n++]);
		}
	}
	pthread_mutex_unlock(&r->lock);
	if (n)
		qsort(list, n, sizeof(*list), compare_entries);
	*ret = list;
	return n;
}

void rooms_set_away(struct rooms *r, struct member *m, const char *text)
{
	pthread_mutex_lock(&r->lock);
	snprintf(m->away, sizeof(m->away), "%s", text);
	pthread_mutex_unlock(&r->lock);
}

bool rooms_announce(struct rooms *r, struct room *room, int rate, uint64_t now_ms,
		    unsigned *ret_suppressed)
{
	bool ok = true;

	*ret_suppressed = 0;
	if (rate <= 0)
		return true;
	pthread_mutex_lock(&r->lock);
	if (bucket_take(&room->announced, rate, rate, now_ms)) {
		*ret_suppressed = room->announce_suppressed;
		room->announce_suppressed = 0;
	} else {
		room->announce_suppressed++;
		ok = false;
	}
	pthread_mutex_unlock(&r->lock);
	return ok;
}

static void address_of(const struct member *m, struct member_address *ret)
{
	ret->worker = m->worker;
	ret->origin = m->origin;
	ret->fd = m->fd;
	ret->conn_id = m->conn_id;
	memcpy(ret->nick, m->nick, sizeof(ret->nick));
	memcpy(ret->away, m->away, sizeof(ret->away));
	ret->format = m->format;
}

bool rooms_find(struct rooms *r, const char *nick, struct member_address *ret)
{
	pthread_mutex_lock(&r->lock);
	struct member *m = find_member_locked(r, nick);
	if (m)
		address_of(m, ret);
	pthread_mutex_unlock(&r->lock);
	return m != NULL;
}

bool rooms_entry(struct rooms *r, const char *nick, struct room_entry *ret)
{
	pthread_mutex_lock(&r->lock);
	struct member *m = find_member_locked(r, nick);
	if (m)
		entry_of(m, ret);
	pthread_mutex_unlock(&r->lock);
	return m != NULL;
}

bool rooms_whois(struct rooms *r, const char *nick, struct member_info *ret)
{
	pthread_mutex_lock(&r->lock);
	struct member *m = find_member_locked(r, nick);
	if (m) {
		memcpy(ret->nick, m->nick, sizeof(ret->nick));
		memcpy(ret->user, m->user, sizeof(ret->user));
		memcpy(ret->host, m->host, sizeof(ret->host));
		memcpy(ret->realname, m->realname, sizeof(ret->realname));
		memcpy(ret->away, m->away, sizeof(ret->away));
		memcpy(ret->account, m->account, sizeof(ret->account));
		ret->oper = m->oper[0] != '\0';
		ret->signon = m->signon;
		ret->format = m->format;
		ret->room_count = 0;
		struct membership *ms;
		TAILQ_FOREACH(ms, &m->rooms, member_link) {
			if (ret->room_count == ROOMS_PER_MEMBER)
				break;
			memcpy(ret->rooms[ret->room_count].name, ms->room->name, sizeof(ms->room->name));
			ret->rooms[ret->room_count].voice = ms->voice;
			ret->rooms[ret->room_count].secret = ms->room->secret;
			ret->rooms[ret->room_count++].op = ms->op;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return m != NULL;
}

static void info_of(const struct room *room, struct room_info *ret)
{
	memcpy(ret->name, room->name, sizeof(ret->name));
	ret->count = room->count;
	memcpy(ret->topic, room->topic, sizeof(ret->topic));
	memcpy(ret->topic_by, room->topic_by, sizeof(ret->topic_by));
	ret->topic_time = room->topic_time;
	ret->created = room->created;
	ret->topic_ops = room->topic_ops;
	ret->no_external = room->no_external;
	ret->secret = room->secret;
	ret->state_seq = room->state_seq;
}

bool rooms_info(struct rooms *r, const char *name, struct room_info *ret)
{
	pthread_mutex_lock(&r->lock);
	struct room *room = find_room_locked(r, name);
	if (room)
		info_of(room, ret);
	pthread_mutex_unlock(&r->lock);
	return room != NULL;
}

size_t rooms_names(struct rooms *r, const char *name, bool sorted, struct room_entry **ret)
{
	size_t n = 0;
	struct room_entry *list = NULL;

	pthread_mutex_lock(&r->lock);
	struct room *room = find_room_locked(r, name);
	if (room) {
		list = xmalloc(room->count * sizeof(*list));
		struct membership *ms;
		TAILQ_FOREACH(ms, &room->members, room_link) {
			struct room_entry *e = &list[n++];
			entry_of(ms->member, e);
			e->op = ms->op;
			e->voice = ms->voice;
		}
	}
	pthread_mutex_unlock(&r->lock);

	if (n && sorted)
		qsort(list, n, sizeof(*list), compare_entries);
	*ret = list;
	return n;
}

static void summary_of(const struct member *m, struct member_summary *e)
{
	memcpy(e->nick, m->nick, sizeof(e->nick));
	memcpy(e->user, m->user, sizeof(e->user));
	memcpy(e->host, m->host, sizeof(e->host));
	memcpy(e->account, m->account, sizeof(e->account));
	memcpy(e->via, m->via, sizeof(e->via));
	memcpy(e->oper, m->oper, sizeof(e->oper));
	e->away = m->away[0] != '\0';
	e->op = false;
	e->signon = m->signon;
	e->room_count = m->room_count;
}

static int compare_summaries(const void *a, const void *b)
{
	return strcasecmp(((const struct member_summary *)a)->nick,
			  ((const struct member_summary *)b)->nick);
}

ssize_t rooms_everyone(struct rooms *r, const char *name, struct member_summary **ret)
{
	size_t n = 0;
	struct member_summary *list = NULL;

	*ret = NULL;
	pthread_mutex_lock(&r->lock);
	if (name) {
		struct room *room = find_room_locked(r, name);
		if (!room) {
			pthread_mutex_unlock(&r->lock);
			return -ENOENT;
		}
		list = xmalloc((room->count ? room->count : 1) * sizeof(*list));
		struct membership *ms;
		TAILQ_FOREACH(ms, &room->members, room_link) {
			summary_of(ms->member, &list[n]);
			list[n++].op = ms->op;
		}
	} else {
		list = xmalloc((r->nicks.count ? r->nicks.count : 1) * sizeof(*list));
		for (size_t b = 0; b < r->nicks.size; b++)
			for (struct name_entry *e = r->nicks.buckets[b]; e; e = e->next)
				summary_of(container_of(e, struct member, nick_entry), &list[n++]);
	}
	pthread_mutex_unlock(&r->lock);
	if (n)
		qsort(list, n, sizeof(*list), compare_summaries);
	*ret = list;
	return (ssize_t)n;
}

static int compare_infos(const void *a, const void *b)
{
	return strcasecmp(((const struct room_info *)a)->name, ((const struct room_info *)b)->name);
}

size_t rooms_list(struct rooms *r, struct room_info **ret)
{
	size_t n = 0;

	pthread_mutex_lock(&r->lock);
	struct room_info *list = xmalloc((r->rooms.count ? r->rooms.count : 1) * sizeof(*list));
	for (size_t b = 0; b < r->rooms.size; b++)
		for (struct name_entry *e = r->rooms.buckets[b]; e; e = e->next)
			info_of(container_of(e, struct room, name_entry), &list[n++]);
	pthread_mutex_unlock(&r->lock);

	qsort(list, n, sizeof(*list), compare_infos);
	*ret = list;
	return n;
}

/* M's membership of room NAME, for an operator's act, under the lock:
 * -ENOTCONN when M is not in it, -EPERM when not its operator and
 * NEED_OP. */
static int acting_locked(struct rooms *r, struct member *m, const char *name, bool need_op,
			 struct membership **ret)
{
	struct room *room = find_room_locked(r, name);
	struct membership *ms = room ? membership_of(m, room) : NULL;
	if (!ms)
		return -ENOTCONN;
	if (need_op && !ms->op)
		return -EPERM;
	*ret = ms;
	return 0;
}

/* NICK's membership of ROOM: -ENOENT, -ESRCH. */
static int target_locked(struct rooms *r, struct room *room, const char *nick,
			 struct membership **ret)
{
	struct member *t = find_member_locked(r, nick);
	if (!t)
		return -ENOENT;
	struct membership *tms = membership_of(t, room);
	if (!tms)
		return -ESRCH;
	*ret = tms;
	return 0;
}

void rooms_member_rooms(struct rooms *r, const struct member *m, char *buf, size_t size)
{
	size_t n = 0;
	const struct membership *ms;
	buf[0] = 0;
	pthread_mutex_lock(&r->lock);
	TAILQ_FOREACH(ms, &m->rooms, member_link) {
		const char *mark = ms->op ? "@" : ms->voice ? "+" : "";
		size_t want = (n ? 1 : 0) + strlen(mark) + strlen(ms->room->name);
		if (n + want >= size)
			break;
		n += (size_t)snprintf(buf + n, size - n, "%s%s%s", n ? " " : "", mark, ms->room->name);
	}
	pthread_mutex_unlock(&r->lock);
}

void rooms_set_member_status(struct rooms *r, struct membership *ms, bool op, bool voice)
{
	pthread_mutex_lock(&r->lock);
	ms->op = op;
	ms->voice = voice;
	pthread_mutex_unlock(&r->lock);
}

/* Whether M may set room NAME's topic to TOPIC, under the lock. */
static int topic_check_locked(struct rooms *r, struct member *m, const char *name,
			      const char *topic, struct room **ret)
{
	struct membership *ms;
	int err = acting_locked(r, m, name, false, &ms);
	if (err == 0 && ms->room->topic_ops && !ms->op)
		err = -EPERM;
	if (err == 0 && strcmp(ms->room->topic, topic) == 0)
		err = -EALREADY;
	if (err == 0)
		*ret = ms->room;
	return err;
}

static void topic_apply_locked(struct rooms *r, struct room *room, const char *topic,
			       const char *by, time_t when, struct store_room *ret_saved)
{
	snprintf(room->topic, sizeof(room->topic), "%s", topic);
	snprintf(room->topic_by, sizeof(room->topic_by), "%s", by);
	room->topic_time = when;
	struct store_room *saved = &entry_locked(r, room->name)->saved;
	if (saved->founder[0]) {
		snprintf(saved->topic, sizeof(saved->topic), "%s", room->topic);
		memcpy(saved->topic_by, room->topic_by, sizeof(saved->topic_by));
		saved->topic_time = (int64_t)room->topic_time;
		if (ret_saved)
			*ret_saved = *saved;
	}
}

int rooms_set_topic(struct rooms *r, struct member *m, const char *name, const char *topic,
		    struct store_room *ret_saved)
{
	struct room *room;
	pthread_mutex_lock(&r->lock);
	int err = topic_check_locked(r, m, name, topic, &room);
	if (err == 0)
		topic_apply_locked(r, room, topic, m->nick, time(NULL), ret_saved);
	pthread_mutex_unlock(&r->lock);
	return err;
}

int rooms_may_set_topic(struct rooms *r, struct member *m, const char *name, const char *topic)
{
	struct room *room;
	pthread_mutex_lock(&r->lock);
	int err = topic_check_locked(r, m, name, topic, &room);
	pthread_mutex_unlock(&r->lock);
	return err;
}

/* ROOM is as of the stream's change SEQ, under the lock. */
static void seen_change_locked(struct room *room, uint64_t seq)
{
	if (room && seq > room->state_seq)
		room->state_seq = seq;
}

int rooms_apply_topic(struct rooms *r, const char *name, const char *topic, const char *by,
		      time_t when, uint64_t seq, struct store_room *ret_saved)
{
	pthread_mutex_lock(&r->lock);
	struct room *room = find_room_locked(r, name);
	int err = !room				     ? -ENOENT
		  : seq && seq <= room->state_seq    ? -EALREADY /* a later state taken */
		  : strcmp(room->topic, topic) == 0 ? -EALREADY
						     : 0;
	if (err == 0)
		topic_apply_locked(r, room, topic, by, when, ret_saved);
	seen_change_locked(room, seq);
	pthread_mutex_unlock(&r->lock);
	return err;
}

int rooms_apply_state(struct rooms *r, const struct room_info *st, struct store_room *ret_saved)
{
	pthread_mutex_lock(&r->lock);
	struct room *room = find_room_locked(r, st->name);
	int err = !room ? -ENOENT : st->state_seq <= room->state_seq ? -EALREADY : 0;
	if (err == 0) {
		topic_apply_locked(r, room, st->topic, st->topic_by, st->topic_time, ret_saved);
		room->topic_ops = st->topic_ops;
		room->no_external = st->no_external;
		room->secret = st->secret;
		room->state_seq = st->state_seq;
	}
	pthread_mutex_unlock(&r->lock);
	return err;
}

/* Room NAME in *RET, for an operator's change by M (M NULL: decided
 * elsewhere, for the room as it is here), under the lock. */
static int deciding_locked(struct rooms *r, struct member *m, const char *name,
			   struct room **ret)
{
	struct membership *ms;
	int err = m ? acting_locked(r, m, name, true, &ms) : 0;
	*ret = find_room_locked(r, name);
	return err < 0 ? err : *ret ? 0 : -ENOENT;
}

/* MODE's flag of NICK's membership of ROOM ('o', 'v'), under the lock. */
static int status_locked(struct rooms *r, struct room *room, const char *nick, char mode,
			 bool on, bool **ret_flag, char ret_nick[NAME_MAX_LEN + 1])
{
	struct membership *tms;
	int err = target_locked(r, room, nick, &tms);
	if (err < 0)
		return err;
	bool *flag = mode == 'o' ? &tms->op : &tms->voice;
	if (*flag == on)
		return -EALREADY;
	*ret_flag = flag;
	memcpy(ret_nick, tms->member->nick, NAME_MAX_LEN + 1);
	return 0;
}

/* Room NAME's status MODE of NICK to be ON: by M when M is not NULL (and
 * then only if M may), else as decided elsewhere; changed unless
 * CHECK_ONLY. */
static int set_status(struct rooms *r, struct member *m, const char *name, const char *nick,
		      char mode, bool on, bool check_only, uint64_t seq,
		      char ret_nick[NAME_MAX_LEN + 1])
{
	struct room *room;
	bool *flag;
	if (mode != 'o' && mode != 'v')
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	int err = deciding_locked(r, m, name, &room);
	if (err == 0)
		err = status_locked(r, room, nick, mode, on, &flag, ret_nick);
	if (err == 0 && !check_only)
		*flag = on;
	seen_change_locked(room, seq);
	pthread_mutex_unlock(&r->lock);
	return err;
}

int rooms_set_status(struct rooms *r, struct member *m, const char *name, const char *nick,
		     char mode, bool on, char ret_nick[NAME_MAX_LEN + 1])
{
	return set_status(r, m, name, nick, mode, on, false, 0, ret_nick);
}

int rooms_may_set_status(struct rooms *r, struct member *m, const char *name, const char *nick,
			 char mode, bool on, char ret_nick[NAME_MAX_LEN + 1])
{
	return set_status(r, m, name, nick, mode, on, true, 0, ret_nick);
}

int rooms_apply_status(struct rooms *r, const char *name, const char *nick, char mode, bool on,
		       uint64_t seq, char ret_nick[NAME_MAX_LEN + 1])
{
	return set_status(r, NULL, name, nick, mode, on, false, seq, ret_nick);
}

/* Room NAME's MODE ('t', 'n', 's') to be ON: as set_status(). */
static int set_mode(struct rooms *r, struct member *m, const char *name, char mode, bool on,
		    bool check_only, uint64_t seq)
{
	struct room *room;
	if (mode != 't' && mode != 'n' && mode != 's')
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	int err = deciding_locked(r, m, name, &room);
	if (err == 0 && seq && seq <= room->state_seq)
		err = -EALREADY; /* a later state taken (rooms_apply_state()) */
	if (err == 0) {
		bool *flag = mode == 't' ? &room->topic_ops
			   : mode == 'n' ? &room->no_external : &room->secret;
		if (*flag == on)
			err = -EALREADY;
		else if (!check_only)
			*flag = on;
	}
	seen_change_locked(room, seq);
	pthread_mutex_unlock(&r->lock);
	return err;
}

int rooms_set_mode(struct rooms *r, struct member *m, const char *name, char mode, bool on)
{
	return set_mode(r, m, name, mode, on, false, 0);
}

int rooms_may_set_mode(struct rooms *r, struct member *m, const char *name, char mode, bool on)
{
	return set_mode(r, m, name, mode, on, true, 0);
}

int rooms_apply_mode(struct rooms *r, const char *name, char mode, bool on, uint64_t seq)
{
	return set_mode(r, NULL, name, mode, on, false, seq);
}

int rooms_may_kick(struct rooms *r, struct member *m, const char *name, const char *nick,
		   struct member_address *ret, struct room **ret_room, uint64_t *ret_joined_seq)
{
	struct membership *ms, *tms;

	pthread_mutex_lock(&r->lock);
	int err = acting_locked(r, m, name, true, &ms);
	if (err == 0)
		err = target_locked(r, ms->room, nick, &tms);
	if (err == 0) {
		address_of(tms->member, ret);
		*ret_room = room_ref(tms->room);
		*ret_joined_seq = tms->joined_seq;
	}
	pthread_mutex_unlock(&r->lock);
	return err;
}

int rooms_may_say(struct rooms *r, struct member *m, const char *name, struct room **ret)
{
	int err = 0;

	pthread_mutex_lock(&r->lock);
	struct room *room = find_room_locked(r, name);
	if (!room)
		err = -ENOENT;
	else if (room->no_external && !membership_of(m, room))
		err = -ENOTCONN;
	else
		*ret = room_ref(room);
	pthread_mutex_unlock(&r->lock);
	return err;
}

int rooms_online(struct rooms *r)
{
	pthread_mutex_lock(&r->lock);
	int online = r->online;
	pthread_mutex_unlock(&r->lock);
	return online;
}

void rooms_counts(struct rooms *r, int *ret_online, int *ret_max, int *ret_invisible)
{
	pthread_mutex_lock(&r->lock);
	*ret_online = r->online;
	*ret_max = r->max_online;
	*ret_invisible = r->invisible;
	pthread_mutex_unlock(&r->lock);
}

int rooms_count(struct rooms *r)
{
	pthread_mutex_lock(&r->lock);
	int n = (int)r->rooms.count;
	pthread_mutex_unlock(&r->lock);
	return n;
}
