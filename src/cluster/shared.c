#include "autoconf.h"

#include "cluster/shared.h"

#include <errno.h>
#include <json-c/json.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

/* How long one look at a bucket's changes waits. */
#define WATCH_WAIT_MS 50
#define BIND_RETRY_MS 1000
#define BIND_WAIT_MS 2000
#define SHARED_QUEUE_MAX 100000
/* Changes written between two looks at the buckets' changes. */
#define PUTS_PER_TURN 256

enum bucket_id { B_ACCOUNTS, B_BANS, B_COUNT };
static const char *const bucket_names[B_COUNT] = { CLUSTER_ACCOUNTS, CLUSTER_BANS };

/* A change of ours, for the thread to put in a bucket. */
struct put {
	enum bucket_id bucket;
	char key[2 * BAN_MASK_MAX + 1];
	char *value;                 /* JSON; NULL: delete the key */
	bool offered;                /* kept only if the key never was there */
};

/* A key the bucket had when this node began to watch it. */
struct known {
	uint64_t key, value;         /* hashes (fnv1a()) */
	bool deleted;
};

struct shared {
	struct cluster *cluster;
	const struct cluster_host *host;
	int replicas;
	kvStore *kv[B_COUNT];        /* the thread's (create: any thread, once bound) */
	kvWatcher *watch[B_COUNT];
	atomic_bool bound;
	atomic_bool quitting;        /* stopping, readable without the lock */
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	struct put *queue;           /* guarded by lock: queue[head..count) */
	size_t head, count, cap;
	/* The thread's: what each bucket had (sorted by key) once its first
	 * values are all in (listed), for what this node offers. */
	struct known *known[B_COUNT];
	size_t known_count[B_COUNT];
	bool listed[B_COUNT];
	bool told_full;              /* the queue's overflow, once it is told */
	bool stopping;
};

/* ---- the values: JSON, so that `nats kv get` shows them ------------------- */

static void put_hex(json_object *o, const char *key, const unsigned char *p, size_t n)
{
	char hex[2 * 64 + 1];
	for (size_t i = 0; i < n && i < 64; i++)
		snprintf(hex + 2 * i, 3, "%02x", p[i]);
	hex[2 * (n < 64 ? n : 64)] = 0;
	json_object_object_add(o, key, json_object_new_string(hex));
}

static bool get_hex(json_object *o, const char *key, unsigned char *p, size_t n)
{
	json_object *v;
	const char *s = json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
	if (!s || strlen(s) != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned x;
		if (sscanf(s + 2 * i, "%2x", &x) != 1)
			return false;
		p[i] = (unsigned char)x;
	}
	return true;
}

static bool get_text(json_object *o, const char *key, char *ret, size_t size)
{
	json_object *v;
	const char *s = json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
	if (!s || strlen(s) >= size)
		return false;
	memcpy(ret, s, strlen(s) + 1);
	return true;
}

static int64_t get_int(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static char *account_json(const struct account_row *row)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "display", json_object_new_string(row->display));
	json_object_object_add(o, "hash", json_object_new_string(row->hash));
	put_hex(o, "scram_salt", row->salt, sizeof(row->salt));
	json_object_object_add(o, "scram_iterations", json_object_new_int64(row->iterations));
	put_hex(o, "scram_stored_key", row->stored_key, sizeof(row->stored_key));
	put_hex(o, "scram_server_key", row->server_key, sizeof(row->server_key));
	json_object_object_add(o, "created", json_object_new_int64(row->created));
	char *text = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return text;
}

static bool account_of(const char *key, const char *value, size_t len, struct account_row *ret)
{
	memset(ret, 0, sizeof(*ret));
	snprintf(ret->name, sizeof(ret->name), "%s", key);
	json_tokener *t = json_tokener_new();
	json_object *o = json_tokener_parse_ex(t, value, (int)len);
	json_tokener_free(t);
	bool ok = o && get_text(o, "display", ret->display, sizeof(ret->display)) &&
		  get_text(o, "hash", ret->hash, sizeof(ret->hash)) &&
		  get_hex(o, "scram_salt", ret->salt, sizeof(ret->salt)) &&
		  get_hex(o, "scram_stored_key", ret->stored_key, sizeof(ret->stored_key)) &&
		  get_hex(o, "scram_server_key", ret->server_key, sizeof(ret->server_key)) &&
		  text_is_valid_name(ret->name, strlen(ret->name));
	if (ok) {
		ret->iterations = (unsigned)get_int(o, "scram_iterations");
		ret->created = get_int(o, "created");
	}
	json_object_put(o);
	return ok;
}

static char *ban_json(const struct ban *b)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "mask", json_object_new_string(b->mask));
	json_object_object_add(o, "reason", json_object_new_string(b->reason));
	json_object_object_add(o, "actor", json_object_new_string(b->actor));
	json_object_object_add(o, "created", json_object_new_int64(b->created));
	json_object_object_add(o, "expires", json_object_new_int64(b->expires));
	char *text = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return text;
}

static bool ban_of(const char *value, size_t len, struct ban *ret)
{
	char mask[BAN_MASK_MAX];
	json_tokener *t = json_tokener_new();
	json_object *o = json_tokener_parse_ex(t, value, (int)len);
	json_tokener_free(t);
	const char *err;
	bool ok = o && get_text(o, "mask", mask, sizeof(mask)) && ban_parse_mask(mask, ret, &err) &&
		  get_text(o, "reason", ret->reason, sizeof(ret->reason)) &&
		  get_text(o, "actor", ret->actor, sizeof(ret->actor));
	if (ok) {
		ret->created = get_int(o, "created");
		ret->expires = get_int(o, "expires");
	}
	json_object_put(o);
	return ok;
}

/* A ban's key: its mask in hex (masks hold characters keys cannot). */
static void ban_key(const char *mask, char *ret, size_t size)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)mask; *p && n + 3 <= size; p++)
		n += (size_t)snprintf(ret + n, size - n, "%02x", *p);
	ret[n] = 0;
}

static bool mask_of_key(const char *key, char *ret, size_t size)
{
	size_t n = strlen(key);
	if (n % 2 || n / 2 >= size)
		return false;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned x;
		if (sscanf(key + 2 * i, "%2x", &x) != 1 || x == 0)
			return false;
		ret[i] = (char)x;
	}
	ret[n / 2] = 0;
	return true;
}

/* ---- the thread ------------------------------------------------------------ */

static bool bind_buckets(struct shared *s)
{
	jsCtx *js = cluster_js(s->cluster);
	for (int b = 0; b < B_COUNT; b++) {
		if (s->watch[b])
			continue;
		if (!s->kv[b] && js_KeyValue(&s->kv[b], js, bucket_names[b]) != NATS_OK) {
			kvConfig kc;
			kvConfig_Init(&kc);
			kc.Bucket = bucket_names[b];
			kc.History = 1;
			kc.StorageType = js_FileStorage;
			kc.Replicas = s->replicas;
			natsStatus st = js_CreateKeyValue(&s->kv[b], js, &kc);
			if (st != NATS_OK) {
				s->kv[b] = NULL;
				log_event(LOG_WARNING, LOG_FIELDS(.event = "cluster_error"),
					  "cluster: cannot open the bucket %s: %s", bucket_names[b],
					  natsStatus_GetText(st));
				return false;
			}
		}
		/* Every key's value now, then each change: this node keeps what
		 * the others have. */
		natsStatus st = kvStore_WatchAll(&s->watch[b], s->kv[b], NULL);
		if (st != NATS_OK) {
			s->watch[b] = NULL;
			log_event(LOG_WARNING, LOG_FIELDS(.event = "cluster_error"),
				  "cluster: cannot watch the bucket %s: %s", bucket_names[b],
				  natsStatus_GetText(st));
			return false;
		}
	}
	atomic_store(&s->bound, true);
	return true;
}

static void apply(struct shared *s, enum bucket_id b, kvEntry *e)
{
	const char *key = kvEntry_Key(e);
	const char *value = kvEntry_Value(e);
	size_t len = (size_t)kvEntry_ValueLen(e);
	bool gone = kvEntry_Operation(e) != kvOp_Put;
	bool ok;
	if (b == B_ACCOUNTS) {
		struct account_row row = { .deleted = gone };
		if (gone) {
			snprintf(row.name, sizeof(row.name), "%s", key);
			ok = text_is_valid_name(key, strlen(key));
		} else {
			ok = account_of(key, value, len, &row);
		}
		if (ok)
			s->host->account(s->host->ctx, &row);
		explicit_bzero(&row, sizeof(row));
	} else {
		struct ban ban = { 0 };
		char mask[BAN_MASK_MAX];
		ok = gone ? mask_of_key(key, mask, sizeof(mask)) : ban_of(value, len, &ban);
		if (ok)
			s->host->ban(s->host->ctx, gone ? NULL : &ban, gone ? mask : NULL);
	}
	if (!ok)
		log_event(LOG_WARNING, LOG_FIELDS(.event = "cluster_error"),
			  "cluster: the bucket %s holds %s, which is not chatd's: ignored",
			  bucket_names[b], key);
}

static uint64_t fnv1a(const void *data, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (const unsigned char *p = data; len--; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	return h;
}

static int compare_known(const void *a, const void *b)
{
	uint64_t x = ((const struct known *)a)->key, y = ((const struct known *)b)->key;
	return x < y ? -1 : x > y;
}

/* E, one of the values bucket B had when this node began to watch it. */
static void note_known(struct shared *s, enum bucket_id b, kvEntry *e)
{
	if (s->known_count[b] % 1024 == 0)
		s->known[b] = xrealloc(s->known[b], (s->known_count[b] + 1024) * sizeof(**s->known));
	struct known *k = &s->known[b][s->known_count[b]++];
	const char *key = kvEntry_Key(e);
	k->key = fnv1a(key, strlen(key));
	k->value = fnv1a(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e));
	k->deleted = kvEntry_Operation(e) != kvOp_Put;
}

/* What became of an offer (write_offered()). */
enum offer_outcome { OFFER_SHARED, OFFER_SAME, OFFER_DIFFERS, OFFER_DELETED, OFFER_FAILED };

/* P put in the bucket if its key never was there: what became of it,
 * judged by what the bucket had when first watched when the key was
 * there, or else by asking (P refused: its key is there, or was
 * deleted); *RET_ST the failure's status. */
static enum offer_outcome try_offer(struct shared *s, const struct put *p, natsStatus *ret_st)
{
	if (s->known_count[p->bucket]) {
		struct known want = { .key = fnv1a(p->key, strlen(p->key)) };
		const struct known *k = bsearch(&want, s->known[p->bucket],
						s->known_count[p->bucket], sizeof(*k), compare_known);
		if (k)
			return k->deleted ? OFFER_DELETED
			       : k->value == fnv1a(p->value, strlen(p->value)) ? OFFER_SAME
									      : OFFER_DIFFERS;
	}
	uint64_t rev;
	kvStore *kv = s->kv[p->bucket];
	natsStatus st = kvStore_UpdateString(&rev, kv, p->key, p->value, 0);
	if (st == NATS_OK)
		return OFFER_SHARED;
	/* NATS_ERR: the server's answer, here a revision other than 0. */
	kvEntry *e = NULL;
	if (st == NATS_ERR)
		st = kvStore_Get(&e, kv, p->key);
	enum offer_outcome o = st == NATS_NOT_FOUND ? OFFER_DELETED
			       : st != NATS_OK	      ? OFFER_FAILED
			       : (size_t)kvEntry_ValueLen(e) == strlen(p->value) &&
					 memcmp(kvEntry_Value(e), p->value, strlen(p->value)) == 0
				       ? OFFER_SAME
				       : OFFER_DIFFERS;
	kvEntry_Destroy(e);
	*ret_st = st;
	return o;
}

/* What this node had before it shared it, put in the bucket only if the
 * key never was there: revision 0 expected, which a key another node
 * deleted has not either (its delete marker), so nothing deleted comes
 * back. Told when the others' value differs: theirs is kept, here too. */
static void write_offered(struct shared *s, struct put *p)
{
	const char *what = p->bucket == B_ACCOUNTS ? "account" : "ban of";
	char mask[BAN_MASK_MAX];
	const char *name = p->bucket == B_ACCOUNTS || !mask_of_key(p->key, mask, sizeof(mask))
				   ? p->key : mask;
	natsStatus st = NATS_OK;
	switch (try_offer(s, p, &st)) {
	case OFFER_SHARED:
		log_event(LOG_INFO, LOG_FIELDS(.event = "cluster_shared"),
			  "cluster: the %s %s this node had is shared with the other nodes", what,
			  name);
		break;
	case OFFER_SAME:
		break;
	case OFFER_DIFFERS:
		log_event(LOG_NOTICE, LOG_FIELDS(.event = "cluster_conflict"),
			  "cluster: the %s %s differs on the other nodes: theirs is kept", what, name);
		break;
	case OFFER_DELETED:
		log_event(LOG_NOTICE, LOG_FIELDS(.event = "cluster_conflict"),
			  "cluster: the %s %s was deleted on another node: not shared", what, name);
		break;
	case OFFER_FAILED:
		log_event(LOG_WARNING, LOG_FIELDS(.event = "cluster_error"),
			  "cluster: the %s %s not shared with the other nodes (bucket %s): %s", what,
			  name, bucket_names[p->bucket], natsStatus_GetText(st));
		break;
	}
}

static void write_put(struct shared *s, struct put *p)
{
	uint64_t rev;
	natsStatus st = NATS_OK;
	if (p->offered)
		write_offered(s, p);
	else if (p->value)
		st = kvStore_PutString(&rev, s->kv[p->bucket], p->key, p->value);
	else
		st = kvStore_Delete(s->kv[p->bucket], p->key);
	if (st != NATS_OK)
		log_event(LOG_WARNING, LOG_FIELDS(.event = "cluster_error"),
			  "cluster: %s not shared with the other nodes (bucket %s): %s", p->key,
			  bucket_names[p->bucket], natsStatus_GetText(st));
	if (p->value) {
		explicit_bzero(p->value, strlen(p->value));
		free(p->value);
	}
}

static void *run(void *arg)
{
	struct shared *s = arg;
	for (;;) {
		pthread_mutex_lock(&s->lock);
		bool stopping = s->stopping;
		pthread_mutex_unlock(&s->lock);
		if (stopping)
			break;
		if (!atomic_load(&s->bound)) {
			if (!cluster_up(s->cluster) || !bind_buckets(s))
				for (int i = 0; i < BIND_RETRY_MS / 50 && !atomic_load(&s->quitting); i++)
					usleep(50 * 1000);
			continue;
		}
		/* A turn's share of the changes, in order; what this node
		 * offers waits until its bucket's first values are in. */
		struct put puts[PUTS_PER_TURN];
		size_t n = 0;
		pthread_mutex_lock(&s->lock);
		while (s->head < s->count && n < PUTS_PER_TURN &&
		       (!s->queue[s->head].offered || s->listed[s->queue[s->head].bucket]))
			puts[n++] = s->queue[s->head++];
		if (s->head == s->count)
			s->head = s->count = 0;
		pthread_mutex_unlock(&s->lock);
		for (size_t i = 0; i < n; i++) {
			if (!atomic_load(&s->quitting))
				write_put(s, &puts[i]);
			else
				free(puts[i].value);
		}
		for (int b = 0; b < B_COUNT; b++) {
			kvEntry *e = NULL;
			while (kvWatcher_Next(&e, s->watch[b], WATCH_WAIT_MS) == NATS_OK) {
				if (!e) { /* the values there were are all in */
					if (s->known_count[b])
						qsort(s->known[b], s->known_count[b],
						      sizeof(**s->known), compare_known);
					s->listed[b] = true;
				} else {
					if (!s->listed[b])
						note_known(s, (enum bucket_id)b, e);
					apply(s, (enum bucket_id)b, e);
				}
				kvEntry_Destroy(e);
				e = NULL;
			}
		}
	}
	return NULL;
}

static void queue(struct shared *s, enum bucket_id b, const char *key, char *value, bool offered)
{
	bool tell = false;
	pthread_mutex_lock(&s->lock);
	if (s->count == s->head)
		s->told_full = false;
	if (s->count - s->head < SHARED_QUEUE_MAX) {
		if (s->count == s->cap && s->head > 0) { /* the taken ones' room */
			memmove(s->queue, s->queue + s->head, (s->count - s->head) * sizeof(*s->queue));
			s->count -= s->head;
			s->head = 0;
		} else if (s->count == s->cap) {
			s->cap = s->cap ? 2 * s->cap : 16;
			s->queue = xrealloc(s->queue, s->cap * sizeof(*s->queue));
		}
		struct put *p = &s->queue[s->count++];
		p->bucket = b;
		snprintf(p->key, sizeof(p->key), "%s", key);
		p->value = value;
		p->offered = offered;
		value = NULL;
	} else {
		tell = !s->told_full; /* once until the queue has drained */
		s->told_full = true;
	}
	pthread_mutex_unlock(&s->lock);
	if (tell)
		log_event(LOG_WARNING, LOG_FIELDS(.event = "cluster_error"),
			  "cluster: %s and any more changes not shared with the other nodes: %d "
			  "waiting already", key, SHARED_QUEUE_MAX);
	if (value) {
		explicit_bzero(value, strlen(value));
		free(value);
	}
}

/* ---- the others' side ---------------------------------------------------------- */

struct shared *shared_start(struct cluster *c, const struct cluster_host *host, int replicas,
			    char **ret_err)
{
	struct shared *s = xcalloc(1, sizeof(*s));
	s->cluster = c;
	s->host = host;
	s->replicas = replicas;
	pthread_mutex_init(&s->lock, NULL);
	int r = pthread_create(&s->thread, NULL, run, s);
	if (r != 0) {
		*ret_err = xasprintf("cannot start the shared buckets' thread: %s", strerror(r));
		shared_stop(s);
		return NULL;
	}
	s->started = true;
	return s;
}

void shared_halt(struct shared *s)
{
	if (!s || !s->started)
		return;
	atomic_store(&s->quitting, true);
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	s->started = false;
}

void shared_stop(struct shared *s)
{
	if (!s)
		return;
	shared_halt(s);
	for (int b = 0; b < B_COUNT; b++) {
		if (s->watch[b])
			kvWatcher_Destroy(s->watch[b]);
		if (s->kv[b])
			kvStore_Destroy(s->kv[b]);
	}
	for (size_t i = s->head; i < s->count; i++)
		free(s->queue[i].value);
	free(s->queue);
	for (int b = 0; b < B_COUNT; b++)
		free(s->known[b]);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int shared_account_create(struct shared *s, const struct account_row *row)
{
	/* Just connected: the buckets are being opened; a new name waits for
	 * them rather than go unchecked (for BIND_WAIT_MS at most). */
	for (int waited = 0; !atomic_load(&s->bound) && cluster_up(s->cluster) &&
			     waited < BIND_WAIT_MS; waited += 20)
		usleep(20 * 1000);
	if (!atomic_load(&s->bound)) {
		/* NATS away: kept here, and shared once it is back. */
		queue(s, B_ACCOUNTS, row->name, account_json(row), false);
		return 0;
	}
	char *value = account_json(row);
	uint64_t rev;
	natsStatus st = kvStore_CreateString(&rev, s->kv[B_ACCOUNTS], row->name, value);
	if (st != NATS_OK) {
		kvEntry *e = NULL;
		bool taken = kvStore_Get(&e, s->kv[B_ACCOUNTS], row->name) == NATS_OK;
		kvEntry_Destroy(e);
		if (taken) {
			explicit_bzero(value, strlen(value));
			free(value);
			return -EEXIST;
		}
		queue(s, B_ACCOUNTS, row->name, value, false); /* tried again by the thread */
		return 0;
	}
	explicit_bzero(value, strlen(value));
	free(value);
	return 0;
}

void shared_account_changed(struct shared *s, const struct account_row *row)
{
	queue(s, B_ACCOUNTS, row->name, row->deleted ? NULL : account_json(row), false);
}

void shared_ban_added(struct shared *s, const struct ban *b)
{
	char key[2 * BAN_MASK_MAX + 1];
	ban_key(b->mask, key, sizeof(key));
	queue(s, B_BANS, key, ban_json(b), false);
}

void shared_ban_removed(struct shared *s, const char *mask)
{
	char key[2 * BAN_MASK_MAX + 1];
	ban_key(mask, key, sizeof(key));
	queue(s, B_BANS, key, NULL, false);
}

void shared_account_offer(struct shared *s, const struct account_row *row)
{
	queue(s, B_ACCOUNTS, row->name, account_json(row), true);
}

void shared_ban_offer(struct shared *s, const struct ban *b)
{
	char key[2 * BAN_MASK_MAX + 1];
	ban_key(b->mask, key, sizeof(key));
	queue(s, B_BANS, key, ban_json(b), true);
}
