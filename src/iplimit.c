#include "autoconf.h"

#include "iplimit.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct entry {
	struct entry *next;
	struct ip_key key;
	int count;
};

struct ip_limit {
	pthread_mutex_t lock;
	struct entry **buckets;
	size_t size;  /* a power of two */
	size_t count; /* addresses with connections */
};

void ip_key_from_sockaddr(const struct sockaddr *sa, struct ip_key *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (sa->sa_family == AF_INET6) {
		memcpy(ret->bytes, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	} else if (sa->sa_family == AF_INET) {
		ret->bytes[10] = ret->bytes[11] = 0xff;
		memcpy(ret->bytes + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	}
}

static size_t hash_key(const struct ip_key *k)
{
	return hash_bytes(k->bytes, sizeof(k->bytes));
}

struct ip_limit *ip_limit_new(void)
{
	struct ip_limit *l = xcalloc(1, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	l->size = 256;
	l->buckets = xcalloc(l->size, sizeof(*l->buckets));
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

bool ip_limit_acquire(struct ip_limit *l, const struct ip_key *key, int max)
{
	bool ok = true;

	pthread_mutex_lock(&l->lock);
	struct entry **p = find(l, key);
	if (*p) {
		if (max > 0 && (*p)->count >= max)
			ok = false;
		else
			(*p)->count++;
	} else {
		if (l->count >= l->size) {
			grow(l);
			p = find(l, key);
		}
		struct entry *e = xcalloc(1, sizeof(*e));
		e->key = *key;
		e->count = 1;
		*p = e;
		l->count++;
	}
	pthread_mutex_unlock(&l->lock);
	return ok;
}

void ip_limit_release(struct ip_limit *l, const struct ip_key *key)
{
	pthread_mutex_lock(&l->lock);
	struct entry **p = find(l, key);
	struct entry *e = *p;
	if (e && --e->count == 0) {
		*p = e->next;
		free(e);
		l->count--;
	}
	pthread_mutex_unlock(&l->lock);
}
