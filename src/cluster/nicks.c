#include "autoconf.h"

#include "cluster/nicks.h"

#include <inttypes.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"

/* Requests waiting, at most; beyond, a claim is taken as granted (and
 * logged): the node stays usable while NATS is slow. */
#define NICKS_QUEUE_MAX 100000
#define BIND_RETRY_MS 1000

struct request {
	bool claim;              /* else a release */
	char nick[NAME_MAX_LEN + 1];
	uint64_t session;
	int worker, fd;
};

struct nicks {
	struct cluster *cluster;
	const struct cluster_host *host;
	int replicas;
	kvStore *kv;             /* the thread's */
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct request *queue;   /* guarded by lock */
	size_t count, cap;
	bool stopping;
	atomic_bool quitting;    /* stopping, readable without the lock */
	unsigned long overflowed;
	/* Claims to try again (the thread's own). */
	struct request *deferred;
	size_t deferred_count, deferred_cap;
	uint64_t deferred_due_ms;
};

/* The bucket, made if new: true when it is there. */
static bool bind_bucket(struct nicks *n)
{
	if (n->kv)
		return true;
	jsCtx *js = cluster_js(n->cluster);
	if (js_KeyValue(&n->kv, js, CLUSTER_NICKS) == NATS_OK)
		return true;
	kvConfig kc;
	kvConfig_Init(&kc);
	kc.Bucket = CLUSTER_NICKS;
	kc.History = 1;
	kc.StorageType = js_FileStorage;
	kc.Replicas = n->replicas;
	natsStatus s = js_CreateKeyValue(&n->kv, js, &kc);
	if (s != NATS_OK) {
		log_event(LOG_WARNING, LOG_FIELDS(.event = "cluster_error"),
			  "cluster: cannot open the nicks' bucket %s: %s", CLUSTER_NICKS,
			  natsStatus_GetText(s));
		n->kv = NULL;
		return false;
	}
	return true;
}

/* The owner a value names: "NODE INCARNATION SESSION". */
static bool owner_of(kvEntry *e, uint64_t *ret_origin, uint64_t *ret_session)
{
	const char *v = kvEntry_ValueString(e);
	char node[NAME_MAX_LEN + 1];
	return v && sscanf(v, "%32s %" SCNx64 " %" SCNu64, node, ret_origin, ret_session) == 3;
}

enum claimed { CLAIM_OK, CLAIM_TAKEN, CLAIM_LATER };

/* Whether R's nick is (now) R's session's: created, or taken over from a
 * node that is gone; LATER when its owner's node is not known yet (this
 * node has not listened for as long as a node may be silent). Connection
 * trouble counts as yes: a node cut off from NATS keeps serving its users
 * (the next claim, once back, decides). */
static enum claimed claim(struct nicks *n, const struct request *r, const char *value)
{
	uint64_t rev;
	natsStatus s = kvStore_CreateString(&rev, n->kv, r->nick, value);
	if (s == NATS_OK)
		return CLAIM_OK;
	for (int attempt = 0; attempt < 3; attempt++) {
		kvEntry *e = NULL;
		s = kvStore_Get(&e, n->kv, r->nick);
		if (s == NATS_NOT_FOUND) {
			/* Released meanwhile (deleted keys are not found). */
			if (kvStore_CreateString(&rev, n->kv, r->nick, value) == NATS_OK)
				return CLAIM_OK;
			continue;
		}
		if (s != NATS_OK)
			return CLAIM_OK;
		uint64_t origin, session;
		bool known = owner_of(e, &origin, &session);
		uint64_t last = kvEntry_Revision(e);
		kvEntry_Destroy(e);
		if (known && origin == cluster_self(n->cluster))
			return session == r->session ? CLAIM_OK : CLAIM_TAKEN;
		enum peer_state owner = known ? cluster_peer_state(n->cluster, origin) : PEER_GONE;
		if (owner == PEER_ALIVE)
			return CLAIM_TAKEN;
		if (owner == PEER_UNKNOWN)
			return CLAIM_LATER;
		/* Its owner's node is gone: the lease is over. */
		s = kvStore_UpdateString(&rev, n->kv, r->nick, value, last);
		if (s == NATS_OK)
			return CLAIM_OK;
	}
	return CLAIM_TAKEN;
}

static void release(struct nicks *n, const struct request *r)
{
	kvEntry *e = NULL;
	if (kvStore_Get(&e, n->kv, r->nick) != NATS_OK)
		return;
	uint64_t origin, session;
	bool ours = owner_of(e, &origin, &session) && origin == cluster_self(n->cluster) &&
		    session == r->session;
	kvEntry_Destroy(e);
	if (ours && kvStore_Delete(n->kv, r->nick) == NATS_OK)
		log_debug("cluster: the nick %s is free again", r->nick);
}

/* R waits until its owner's node could have been heard (the thread's
 * own list, tried again after a while). */
static void defer(struct nicks *n, const struct request *r)
{
	if (n->deferred_count == NICKS_QUEUE_MAX)
		return; /* taken as granted */
	if (n->deferred_count == n->deferred_cap) {
		n->deferred_cap = n->deferred_cap ? 2 * n->deferred_cap : 16;
		n->deferred = xrealloc(n->deferred, n->deferred_cap * sizeof(*n->deferred));
	}
	n->deferred[n->deferred_count++] = *r;
	if (!n->deferred_due_ms)
		n->deferred_due_ms = monotonic_ms() + CLUSTER_HEARTBEAT_MS;
}

/* Lock held: deferred requests that are due go back in the queue. */
static void take_due(struct nicks *n)
{
	if (!n->deferred_count || monotonic_ms() < n->deferred_due_ms)
		return;
	if (n->count + n->deferred_count > n->cap) {
		n->cap = n->count + n->deferred_count;
		n->queue = xrealloc(n->queue, n->cap * sizeof(*n->queue));
	}
	memcpy(n->queue + n->count, n->deferred, n->deferred_count * sizeof(*n->deferred));
	n->count += n->deferred_count;
	n->deferred_count = 0;
	n->deferred_due_ms = 0;
}

static void *run(void *arg)
{
	struct nicks *n = arg;
	struct request *batch = NULL;
	size_t batch_cap = 0;
	char value[2 * NAME_MAX_LEN + 48];

	pthread_mutex_lock(&n->lock);
	while (!n->stopping) {
		take_due(n);
		if (n->count == 0 || !cluster_up(n->cluster)) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 1;
			pthread_cond_timedwait(&n->wake, &n->lock, &until);
			continue;
		}
		size_t count = n->count;
		if (count > batch_cap) {
			batch_cap = n->cap;
			batch = xrealloc(batch, batch_cap * sizeof(*batch));
		}
		memcpy(batch, n->queue, count * sizeof(*batch));
		n->count = 0;
		pthread_mutex_unlock(&n->lock);
		if (!bind_bucket(n)) {
			/* Kept, in order, for the next try. */
			pthread_mutex_lock(&n->lock);
			if (n->count + count > n->cap) {
				n->cap = n->count + count;
				n->queue = xrealloc(n->queue, n->cap * sizeof(*n->queue));
			}
			memmove(n->queue + count, n->queue, n->count * sizeof(*n->queue));
			memcpy(n->queue, batch, count * sizeof(*batch));
			n->count += count;
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += BIND_RETRY_MS / 1000;
			pthread_cond_timedwait(&n->wake, &n->lock, &until);
			continue;
		}
		for (size_t i = 0; i < count && !atomic_load(&n->quitting); i++) {
			const struct request *r = &batch[i];
			if (!r->claim) {
				release(n, r);
				continue;
			}
			snprintf(value, sizeof(value), "%s %016" PRIx64 " %" PRIu64,
				 cluster_node(n->cluster), cluster_self(n->cluster), r->session);
			enum claimed got = claim(n, r, value);
			if (got == CLAIM_TAKEN) {
				log_event(LOG_NOTICE, LOG_FIELDS(.event = "cluster_nick_taken", .nick = r->nick),
					  "cluster: %s is taken on another node", r->nick);
				n->host->nick_refused(n->host->ctx, r->worker, r->fd, r->session, r->nick);
			} else if (got == CLAIM_LATER) {
				defer(n, r);
			}
		}
		pthread_mutex_lock(&n->lock);
	}
	pthread_mutex_unlock(&n->lock);
	free(batch);
	return NULL;
}

struct nicks *nicks_start(struct cluster *c, const struct cluster_host *host, int replicas,
			  char **ret_err)
{
	struct nicks *n = xcalloc(1, sizeof(*n));
	n->cluster = c;
	n->host = host;
	n->replicas = replicas;
	pthread_mutex_init(&n->lock, NULL);
	pthread_cond_init(&n->wake, NULL);
	int r = pthread_create(&n->thread, NULL, run, n);
	if (r != 0) {
		*ret_err = xasprintf("cannot start the nicks' thread: %s", strerror(r));
		nicks_stop(n);
		return NULL;
	}
	n->started = true;
	return n;
}

void nicks_stop(struct nicks *n)
{
	if (!n)
		return;
	atomic_store(&n->quitting, true);
	if (n->started) {
		pthread_mutex_lock(&n->lock);
		n->stopping = true;
		pthread_cond_signal(&n->wake);
		pthread_mutex_unlock(&n->lock);
		pthread_join(n->thread, NULL);
	}
	if (n->kv)
		kvStore_Destroy(n->kv);
	free(n->queue);
	free(n->deferred);
	pthread_cond_destroy(&n->wake);
	pthread_mutex_destroy(&n->lock);
	free(n);
}

static void request(struct nicks *n, const struct request *r)
{
	pthread_mutex_lock(&n->lock);
	if (n->count >= NICKS_QUEUE_MAX) {
		if (n->overflowed++ % 10000 == 0)
			log_event(LOG_WARNING, LOG_FIELDS(.event = "cluster_error", .count = n->overflowed),
				  "cluster: %lu nick claims could not wait for NATS: taken as granted",
				  n->overflowed);
		pthread_mutex_unlock(&n->lock);
		return;
	}
	if (n->count == n->cap) {
		n->cap = n->cap ? 2 * n->cap : 64;
		n->queue = xrealloc(n->queue, n->cap * sizeof(*n->queue));
	}
	n->queue[n->count++] = *r;
	pthread_cond_signal(&n->wake);
	pthread_mutex_unlock(&n->lock);
}

void nicks_claim(struct nicks *n, const char *nick, uint64_t session, int worker, int fd)
{
	struct request r = { .claim = true, .session = session, .worker = worker, .fd = fd };
	ascii_lower(r.nick, nick, sizeof(r.nick));
	request(n, &r);
}

void nicks_release(struct nicks *n, const char *nick, uint64_t session)
{
	struct request r = { .claim = false, .session = session };
	ascii_lower(r.nick, nick, sizeof(r.nick));
	request(n, &r);
}
