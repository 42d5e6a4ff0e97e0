#include "autoconf.h"

#include "core/rooms.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"

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
	int workers;
	int online;
	unsigned next_guest;
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

struct rooms *rooms_new(int workers)
{
	struct rooms *r = xcalloc(1, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	table_init(&r->nicks);
	table_init(&r->rooms);
	r->workers = workers;
	r->next_guest = 1;
	return r;
}

void rooms_free(struct rooms *r)
{
	if (!r)
		return;
	/* Members are owned by connections and rooms die with their last
	 * member, so by now both tables are empty. */
	free(r->nicks.buckets);
	free(r->rooms.buckets);
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
	return atomic_fetch_add_explicit(&room->seq, 1, memory_order_relaxed) + 1;
}

void room_unref(struct room *room)
{
	if (atomic_fetch_sub_explicit(&room->refs, 1, memory_order_acq_rel) == 1) {
		free(room->local);
		free(room);
	}
}

/* Puts M in room NAME, creating it, under the lock. */
static struct room *join_locked(struct rooms *r, struct member *m, const char *name)
{
	struct name_entry *e = table_find(&r->rooms, name);
	struct room *room;

	if (e) {
		room = container_of(e, struct room, name_entry);
	} else {
		room = xcalloc(1, sizeof(*room));
		atomic_init(&room->refs, 1); /* the registry's, while not empty */
		snprintf(room->name, sizeof(room->name), "%s", name);
		TAILQ_INIT(&room->members);
		room->local = xcalloc((size_t)r->workers, sizeof(*room->local));
		for (int w = 0; w < r->workers; w++)
			TAILQ_INIT(&room->local[w]);
		table_insert(&r->rooms, &room->name_entry, name);
	}
	TAILQ_INSERT_TAIL(&room->members, m, room_link);
	room->count++;
	m->room = room_ref(room);
	m->joined_seq = room_next_seq(room);
	return room;
}

/* Takes M out of its room under the lock; m->room keeps the member's
 * reference for the caller. */
static void part_locked(struct rooms *r, struct member *m)
{
	struct room *room = m->room;

	TAILQ_REMOVE(&room->members, m, room_link);
	m->change_seq = room_next_seq(room);
	if (--room->count == 0) {
		table_remove(&r->rooms, &room->name_entry);
		room_unref(room); /* the registry's; the member still holds one */
	}
}

int rooms_enter(struct rooms *r, struct member *m, unsigned *ret_room_count)
{
	pthread_mutex_lock(&r->lock);
	do
		snprintf(m->nick, sizeof(m->nick), "guest%u", r->next_guest++);
	while (table_find(&r->nicks, m->nick));
	table_insert(&r->nicks, &m->nick_entry, m->nick);
	*ret_room_count = join_locked(r, m, LOBBY)->count;
	int online = ++r->online;
	pthread_mutex_unlock(&r->lock);
	return online;
}

int rooms_leave(struct rooms *r, struct member *m, unsigned *ret_room_count)
{
	pthread_mutex_lock(&r->lock);
	table_remove(&r->nicks, &m->nick_entry);
	part_locked(r, m);
	*ret_room_count = m->room->count;
	int online = --r->online;
	pthread_mutex_unlock(&r->lock);
	return online;
}

int rooms_rename(struct rooms *r, struct member *m, const char *nick,
		 char ret_old[NAME_MAX_LEN + 1])
{
	int ret = 0;

	pthread_mutex_lock(&r->lock);
	struct name_entry *e = table_find(&r->nicks, nick);
	if (strcmp(m->nick, nick) == 0) {
		ret = -EALREADY;
	} else if (e && e != &m->nick_entry) {
		ret = -EEXIST;
	} else {
		table_remove(&r->nicks, &m->nick_entry);
		memcpy(ret_old, m->nick, sizeof(m->nick));
		snprintf(m->nick, sizeof(m->nick), "%s", nick);
		table_insert(&r->nicks, &m->nick_entry, nick);
		m->change_seq = room_next_seq(m->room);
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int rooms_move(struct rooms *r, struct member *m, const char *name, struct room **ret_old,
	       unsigned *ret_old_count, unsigned *ret_count)
{
	pthread_mutex_lock(&r->lock);
	if (strcasecmp(m->room->name, name) == 0) {
		pthread_mutex_unlock(&r->lock);
		return -EALREADY;
	}
	struct room *old = m->room;
	part_locked(r, m);
	*ret_old_count = old->count;
	struct room *room = join_locked(r, m, name);
	*ret_count = room->count;
	pthread_mutex_unlock(&r->lock);
	*ret_old = old;
	return 0;
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

bool rooms_find(struct rooms *r, const char *nick, struct member_address *ret)
{
	pthread_mutex_lock(&r->lock);
	struct name_entry *e = table_find(&r->nicks, nick);
	if (e) {
		struct member *m = container_of(e, struct member, nick_entry);
		ret->worker = m->worker;
		ret->fd = m->fd;
		ret->conn_id = m->conn_id;
		memcpy(ret->nick, m->nick, sizeof(ret->nick));
	}
	pthread_mutex_unlock(&r->lock);
	return e != NULL;
}

static int compare_names(const void *a, const void *b)
{
	return strcasecmp(a, b);
}

size_t rooms_who(struct rooms *r, const struct member *m, char (**ret_nicks)[NAME_MAX_LEN + 1])
{
	size_t n = 0;

	pthread_mutex_lock(&r->lock);
	char (*nicks)[NAME_MAX_LEN + 1] = xmalloc(m->room->count * sizeof(*nicks));
	struct member *it;
	TAILQ_FOREACH(it, &m->room->members, room_link)
		memcpy(nicks[n++], it->nick, sizeof(*nicks));
	pthread_mutex_unlock(&r->lock);

	qsort(nicks, n, sizeof(*nicks), compare_names);
	*ret_nicks = nicks;
	return n;
}

static int compare_summaries(const void *a, const void *b)
{
	return strcasecmp(((const struct room_summary *)a)->name,
			  ((const struct room_summary *)b)->name);
}

size_t rooms_list(struct rooms *r, struct room_summary **ret)
{
	size_t n = 0;

	pthread_mutex_lock(&r->lock);
	struct room_summary *list = xmalloc(r->rooms.count * sizeof(*list));
	for (size_t b = 0; b < r->rooms.size; b++) {
		for (struct name_entry *e = r->rooms.buckets[b]; e; e = e->next) {
			struct room *room = container_of(e, struct room, name_entry);
			memcpy(list[n].name, room->name, sizeof(list[n].name));
			list[n++].count = room->count;
		}
	}
	pthread_mutex_unlock(&r->lock);

	qsort(list, n, sizeof(*list), compare_summaries);
	*ret = list;
	return n;
}

int rooms_online(struct rooms *r)
{
	pthread_mutex_lock(&r->lock);
	int online = r->online;
	pthread_mutex_unlock(&r->lock);
	return online;
}
