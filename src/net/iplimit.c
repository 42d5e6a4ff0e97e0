#include "autoconf.h"

#include "net/iplimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "base/bucket.h"
#include "base/log.h"
#include "base/util.h"

/* Idle addresses looked at per call, oldest first, to drop those whose
 * buckets are full again: a few per call keep up with any rate of calls. */
#define SWEEP_MAX 4


struct entry {
	struct entry *next;             /* in its hash bucket */
	TAILQ_ENTRY(entry) idle_link;   /* while count is 0, oldest activity first */
	struct ip_key key;
	int count;                      /* connections open */
	struct bucket connects;
	struct bucket log;
	unsigned long suppressed;       /* log lines held back since the last one logged */
	bool idle;                      /* on the idle list */
};

TAILQ_HEAD(entry_list, entry);

struct ip_limit {
	pthread_mutex_t lock;
	struct ip_limit_policy policy;
	struct entry **buckets;
	size_t size;  /* a power of two */
	size_t count; /* addresses in the table */
	struct entry_list idle;
	size_t idle_count;
	size_t idle_max;
};

/* Addresses forgotten with lines held back, to be logged once unlocked. */
struct forgotten {
	struct {
		struct ip_key key;
		unsigned long count;
	} items[SWEEP_MAX + 2];
	size_t n;
};

/* ---- addresses ---------------------------------------------------------- */

/* ::ffff:a.b.c.d, an IPv4 address. */
static bool is_v4_mapped(const struct ip_key *k)
{
	static const uint8_t prefix[12] = { [10] = 0xff, [11] = 0xff };
	return memcmp(k->bytes, prefix, sizeof(prefix)) == 0;
}

void ip_key_from_sockaddr(const struct sockaddr *sa, struct ip_key *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (sa->sa_family == AF_INET6) {
		memcpy(ret->bytes, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		if (!is_v4_mapped(ret))
			memset(ret->bytes + 8, 0, 8); /* the /64 */
	} else if (sa->sa_family == AF_INET) {
		ret->bytes[10] = ret->bytes[11] = 0xff;
		memcpy(ret->bytes + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	}
}

void ip_key_format(const struct ip_key *key, char ret[IP_KEY_TEXT_MAX])
{
	char text[INET6_ADDRSTRLEN];

	if (is_v4_mapped(key)) {
		inet_ntop(AF_INET, key->bytes + 12, ret, IP_KEY_TEXT_MAX);
		return;
	}
	inet_ntop(AF_INET6, key->bytes, text, sizeof(text));
	snprintf(ret, IP_KEY_TEXT_MAX, "%s/64", text);
}

/* ---- token buckets ------------------------------------------------------ */

/* ---- the table ---------------------------------------------------------- */

static size_t hash_key(const struct ip_key *k)
{
	return hash_bytes(k->bytes, sizeof(k->bytes));
}

struct ip_limit *ip_limit_new(const struct ip_limit_policy *policy, size_t idle_max)
{
	struct ip_limit *l = xcalloc(1, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	l->policy = *policy;
	l->size = 256;
	l->buckets = xcalloc(l->size, sizeof(*l->buckets));
	TAILQ_INIT(&l->idle);
	l->idle_max = idle_max ? idle_max : 1;
	return l;
}

void ip_limit_free(struct ip_limit *l)
{
	if (!l)
		return;
	for (size_t b = 0; b < l->size; b++) {
		struct entry *e = l->buckets[b], *next;
		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(l->buckets);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

void ip_limit_set_policy(struct ip_limit *l, const struct ip_limit_policy *policy)
{
	pthread_mutex_lock(&l->lock);
	l->policy = *policy;
	pthread_mutex_unlock(&l->lock);
}

static void grow(struct ip_limit *l)
{
	size_t size = l->size * 2;
	struct entry **buckets = xcalloc(size, sizeof(*buckets));
	for (size_t b = 0; b < l->size; b++) {
		struct entry *e = l->buckets[b], *next;
		for (; e; e = next) {
			next = e->next;
			size_t nb = hash_key(&e->key) & (size - 1);
			e->next = buckets[nb];
			buckets[nb] = e;
		}
	}
	free(l->buckets);
	l->buckets = buckets;
	l->size = size;
}

/* The entry for KEY (its link, so it can be unlinked), or the link where
 * it would go. Under the lock. */
static struct entry **find(struct ip_limit *l, const struct ip_key *key)
{
	struct entry **p = &l->buckets[hash_key(key) & (l->size - 1)];
	while (*p && memcmp(&(*p)->key, key, sizeof(*key)) != 0)
		p = &(*p)->next;
	return p;
}

/* A new address with full buckets, linked where find() said. */
static struct entry *insert(struct ip_limit *l, struct entry **p, const struct ip_key *key,
			    uint64_t now_ms)
{
	if (l->count >= l->size) {
		grow(l);
		p = find(l, key);
	}
	struct entry *e = xcalloc(1, sizeof(*e));
	e->key = *key;
	e->connects.stamp_ms = e->log.stamp_ms = now_ms;
	*p = e;
	l->count++;
	return e;
}

static void forget(struct ip_limit *l, struct entry *e, struct forgotten *f)
{
	struct entry **p = find(l, &e->key);
	*p = e->next;
	l->count--;
	if (e->idle) {
		TAILQ_REMOVE(&l->idle, e, idle_link);
		l->idle_count--;
	}
	if (e->suppressed && f->n < ARRAY_SIZE(f->items)) {
		f->items[f->n].key = e->key;
		f->items[f->n].count = e->suppressed;
		f->n++;
	}
	free(e);
}

/* Whether an address without connections may be forgotten: nothing it did
 * lately still counts against it. */
static bool expired(const struct ip_limit *l, const struct entry *e, uint64_t now_ms)
{
	double rate = l->policy.connect_rate;
	return bucket_full(&e->connects, rate, rate, now_ms) &&
	       bucket_full(&e->log, IP_LIMIT_LOG_RATE, l->policy.log_burst, now_ms);
}

/* Drops a few of the idle addresses, oldest first, that have expired. */
static void sweep(struct ip_limit *l, uint64_t now_ms, struct forgotten *f)
{
	for (int i = 0; i < SWEEP_MAX; i++) {
		struct entry *e = TAILQ_FIRST(&l->idle);
		if (!e || !expired(l, e, now_ms))
			return;
		forget(l, e, f);
	}
}

/* E has no connection open now (and is not on the idle list): it is kept
 * while it matters, as the newest idle address; at the bound the oldest
 * makes room. E may be freed. */
static void add_idle(struct ip_limit *l, struct entry *e, uint64_t now_ms, struct forgotten *f)
{
	if (expired(l, e, now_ms)) {
		forget(l, e, f);
		return;
	}
	while (l->idle_count >= l->idle_max)
		forget(l, TAILQ_FIRST(&l->idle), f);
	TAILQ_INSERT_TAIL(&l->idle, e, idle_link);
	e->idle = true;
	l->idle_count++;
}

/* Something happened about E, which has no connection open. */
static void touch_idle(struct ip_limit *l, struct entry *e, uint64_t now_ms, struct forgotten *f)
{
	if (!e->idle) {
		add_idle(l, e, now_ms, f);
		return;
	}
	TAILQ_REMOVE(&l->idle, e, idle_link);
	TAILQ_INSERT_TAIL(&l->idle, e, idle_link);
}

static void log_forgotten(const struct forgotten *f)
{
	char addr[IP_KEY_TEXT_MAX];
	for (size_t i = 0; i < f->n; i++) {
		ip_key_format(&f->items[i].key, addr);
		log_event(LOG_NOTICE, LOG_FIELDS(.suppressed = f->items[i].count),
			  "%lu more message%s about %s not logged", f->items[i].count,
			  f->items[i].count == 1 ? "" : "s", addr);
	}
}

enum ip_verdict ip_limit_acquire(struct ip_limit *l, const struct ip_key *key, uint64_t now_ms)
{
	struct forgotten f = { .n = 0 };
	enum ip_verdict v = IP_OK;

	pthread_mutex_lock(&l->lock);
	sweep(l, now_ms, &f);
	struct entry **p = find(l, key);
	struct entry *e = *p ? *p : insert(l, p, key, now_ms);
	int max = l->policy.max_per_ip, rate = l->policy.connect_rate;
	/* The count first: a connection refused for it takes no token. */
	if (max > 0 && e->count >= max)
		v = IP_TOO_MANY;
	else if (rate > 0 && !bucket_take(&e->connects, rate, rate, now_ms))
		v = IP_TOO_FAST;
	if (v == IP_OK) {
		if (e->idle) {
			TAILQ_REMOVE(&l->idle, e, idle_link);
			e->idle = false;
			l->idle_count--;
		}
		e->count++;
	} else if (e->count == 0) {
		touch_idle(l, e, now_ms, &f);
	}
	pthread_mutex_unlock(&l->lock);
	log_forgotten(&f);
	return v;
}

void ip_limit_release(struct ip_limit *l, const struct ip_key *key, uint64_t now_ms)
{
	struct forgotten f = { .n = 0 };

	pthread_mutex_lock(&l->lock);
	sweep(l, now_ms, &f);
	struct entry *e = *find(l, key);
	if (e && e->count > 0 && --e->count == 0)
		add_idle(l, e, now_ms, &f);
	pthread_mutex_unlock(&l->lock);
	log_forgotten(&f);
}

bool ip_limit_log_allowed(struct ip_limit *l, const struct ip_key *key, int priority,
			  uint64_t now_ms, struct log_note *ret)
{
	struct forgotten f = { .n = 0 };
	bool allowed = true;

	ret->suppressed = 0;
	ret->text[0] = '\0';
	if (!log_level_enabled(priority))
		return false;
	pthread_mutex_lock(&l->lock);
	sweep(l, now_ms, &f);
	struct entry **p = find(l, key);
	int burst = l->policy.log_burst;
	if (burst > 0 || *p) {
		struct entry *e = *p ? *p : insert(l, p, key, now_ms);
		/* No limit (burst 0, since a reload): what was held back before
		 * is still said. */
		allowed = burst == 0 || bucket_take(&e->log, IP_LIMIT_LOG_RATE, burst, now_ms);
		if (allowed) {
			ret->suppressed = e->suppressed;
			e->suppressed = 0;
		} else {
			e->suppressed++;
		}
		if (e->count == 0)
			touch_idle(l, e, now_ms, &f);
	}
	pthread_mutex_unlock(&l->lock);
	log_forgotten(&f);

	if (ret->suppressed) {
		char addr[IP_KEY_TEXT_MAX];
		ip_key_format(key, addr);
		snprintf(ret->text, sizeof(ret->text), " (%lu more message%s about %s not logged)",
			 ret->suppressed, ret->suppressed == 1 ? "" : "s", addr);
	}
	return allowed;
}

size_t ip_limit_addresses(struct ip_limit *l)
{
	pthread_mutex_lock(&l->lock);
	size_t n = l->count;
	pthread_mutex_unlock(&l->lock);
	return n;
}
