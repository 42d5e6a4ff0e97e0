#include "autoconf.h"

#include "cluster/cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

/* How long a publish may wait for room among the acks in flight; what
 * still finds none is lost (counted, logged). */
#define PUBLISH_MAX_PENDING 65536
#define PUBLISH_STALL_MS 1000
/* The stream's window for de-duplicating a message published twice
 * (after a lost connection), in ns. */
#define DUPLICATES_WINDOW_NS (120LL * 1000000000)
/* What nats.c keeps of publishes while the connection is down. */
#define RECONNECT_BUFFER (64 * 1024 * 1024)
#define RECONNECT_WAIT_MS 500
/* How long to wait between attempts to set the stream up. */
#define SETUP_RETRY_MS 1000
/* A lost message is logged at most once in this many ms. */
#define LOSS_LOG_MS 60000

struct cluster {
	struct cluster_host host;
	uint64_t self;
	char node[NAME_MAX_LEN + 1];
	int replicas;
	int64_t max_age_ns;
	int64_t per_room;

	natsOptions *opts;
	natsConnection *nc;
	jsCtx *js;
	natsSubscription *sub;   /* the room stream's ordered consumer */

	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct cluster_batch *queue, **tail; /* guarded by lock */
	bool stopping;                       /* guarded by lock */
	atomic_bool connected;               /* set by nats.c's callbacks */
	atomic_bool up;                      /* connected and subscribed */
	bool told_up;                        /* the cluster thread's: host told */
	uint64_t next_msg;                   /* Nats-Msg-Id's counter */

	atomic_uint_least64_t published, lost, received, last_seq;
	atomic_int_least64_t loss_logged_ms;
};

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cluster_room_subject(const char *room, char *ret, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	char lower[NAME_MAX_LEN + 1];
	ascii_lower(lower, room, sizeof(lower));
	size_t n = (size_t)snprintf(ret, size, "%s", CLUSTER_ROOM_SUBJECT);
	for (const char *p = lower; *p && n + 2 < size; p++) {
		unsigned char ch = (unsigned char)*p;
		ret[n++] = hex[ch >> 4];
		ret[n++] = hex[ch & 15];
	}
	ret[n < size ? n : size - 1] = 0;
}

/* ---- batches ------------------------------------------------------------- */

void cluster_batch_add(struct cluster_batch **bp, const struct wire_record *r)
{
	if (!*bp)
		*bp = xcalloc(1, sizeof(**bp));
	struct cluster_batch *b = *bp;
	struct cluster_run *run = b->run_count ? &b->runs[b->run_count - 1] : NULL;
	if (!run || strcmp(run->room, r->room) != 0 || run->len >= CLUSTER_MESSAGE_MAX) {
		if (b->run_count == b->run_cap) {
			b->run_cap = b->run_cap ? 2 * b->run_cap : 8;
			b->runs = xrealloc(b->runs, b->run_cap * sizeof(*b->runs));
		}
		run = &b->runs[b->run_count++];
		memcpy(run->room, r->room, sizeof(run->room));
		run->off = b->buf.len;
		run->len = 0;
	}
	size_t before = b->buf.len;
	wire_encode(&b->buf, r);
	run->len += b->buf.len - before;
}

void cluster_batch_free(struct cluster_batch *b)
{
	while (b) {
		struct cluster_batch *next = b->next;
		wire_buf_free(&b->buf);
		free(b->runs);
		free(b);
		b = next;
	}
}

/* ---- nats.c's callbacks (its threads) ------------------------------------- */

static void poke(struct cluster *c)
{
	pthread_mutex_lock(&c->lock);
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
}

static void on_connected(natsConnection *nc, void *closure)
{
	(void)nc;
	struct cluster *c = closure;
	atomic_store(&c->connected, true);
	poke(c);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
	(void)nc;
	struct cluster *c = closure;
	atomic_store(&c->connected, false);
	poke(c);
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
	(void)nc;
	(void)closure;
	/* A slow consumer loses messages; the ordered consumer then starts
	 * again from the last one it delivered, so nothing is missed. */
	log_event(LOG_WARNING, LOG_FIELDS(.event = "cluster_error"), "cluster: %s%s",
		  natsStatus_GetText(err), sub ? " (room stream)" : "");
}

static void count_lost(struct cluster *c, uint64_t n, const char *why)
{
	atomic_fetch_add(&c->lost, n);
	int64_t now = wall_ms(), last = atomic_load(&c->loss_logged_ms);
	if (now - last >= LOSS_LOG_MS && atomic_compare_exchange_strong(&c->loss_logged_ms, &last, now))
		log_event(LOG_WARNING, LOG_FIELDS(.event = "cluster_lost", .count = atomic_load(&c->lost)),
			  "cluster: lines not published to the stream (%s); %" PRIu64 " messages lost "
			  "so far", why, (uint64_t)atomic_load(&c->lost));
}

static void on_publish_failed(jsCtx *js, jsPubAckErr *pae, void *closure)
{
	(void)js;
	struct cluster *c = closure;
	count_lost(c, 1, pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
}

static void on_room_message(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	(void)nc;
	(void)sub;
	struct cluster *c = closure;
	jsMsgMetaData *md = NULL;
	if (natsMsg_GetMetaData(&md, msg) == NATS_OK) {
		uint64_t seq = md->Sequence.Stream;
		atomic_fetch_add(&c->received, 1);
		atomic_store(&c->last_seq, seq);
		c->host.deliver(c->host.ctx, seq, (const uint8_t *)natsMsg_GetData(msg),
				(size_t)natsMsg_GetDataLength(msg));
		jsMsgMetaData_Destroy(md);
	}
	natsMsg_Destroy(msg);
}

/* ---- the cluster's thread -------------------------------------------------- */

/* The stream as this node wants it (made, or its limits brought up to
 * date), and the ordered consumer that reads it: 0 or -1 (logged). */
static int set_up(struct cluster *c)
{
	jsErrCode jerr = 0;
	const char *subjects[] = { CLUSTER_ROOM_SUBJECT "*" };
	jsStreamConfig sc;
	jsStreamConfig_Init(&sc);
	sc.Name = CLUSTER_STREAM;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.Retention = js_LimitsPolicy;
	sc.Replicas = c->replicas;
	sc.MaxAge = c->max_age_ns;
	sc.MaxMsgsPerSubject = c->per_room;
	sc.Duplicates = DUPLICATES_WINDOW_NS;
	natsStatus s = js_AddStream(NULL, c->js, &sc, NULL, &jerr);
	if (s != NATS_OK && jerr == JSStreamNameExistErr)
		s = js_UpdateStream(NULL, c->js, &sc, NULL, &jerr);
	if (s != NATS_OK) {
		log_event(LOG_WARNING, LOG_FIELDS(.event = "cluster_error"),
			  "cluster: cannot set the stream %s up: %s (JetStream error %d)", CLUSTER_STREAM,
			  nats_GetLastError(NULL) ? nats_GetLastError(NULL) : natsStatus_GetText(s),
			  (int)jerr);
		return -1;
	}
	if (c->sub)
		return 0;
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Ordered = true;
	so.Config.DeliverPolicy = js_DeliverNew;
	s = js_Subscribe(&c->sub, c->js, subjects[0], on_room_message, c, NULL, &so, &jerr);
	if (s == NATS_OK)
		s = natsSubscription_SetPendingLimits(c->sub, -1, 256 * 1024 * 1024);
	if (s != NATS_OK) {
		log_event(LOG_WARNING, LOG_FIELDS(.event = "cluster_error"),
			  "cluster: cannot read the stream %s: %s (JetStream error %d)", CLUSTER_STREAM,
			  natsStatus_GetText(s), (int)jerr);
		if (c->sub) {
			natsSubscription_Destroy(c->sub);
			c->sub = NULL;
		}
		return -1;
	}
	return 0;
}

static void publish(struct cluster *c, struct cluster_batch *b)
{
	for (size_t i = 0; i < b->run_count; i++) {
		const struct cluster_run *run = &b->runs[i];
		char subject[sizeof(CLUSTER_ROOM_SUBJECT) + 2 * NAME_MAX_LEN + 1];
		char id[2 * NAME_MAX_LEN + 48];
		cluster_room_subject(run->room, subject, sizeof(subject));
		snprintf(id, sizeof(id), "%s.%016" PRIx64 ".%" PRIu64, c->node, c->self, ++c->next_msg);
		natsMsg *m = NULL;
		natsStatus s = natsMsg_Create(&m, subject, NULL, (const char *)b->buf.data + run->off,
					      (int)run->len);
		if (s == NATS_OK)
			s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
		if (s == NATS_OK)
			s = js_PublishMsgAsync(c->js, &m, NULL);
		if (s == NATS_OK) {
			atomic_fetch_add(&c->published, 1);
		} else {
			count_lost(c, 1, natsStatus_GetText(s));
			natsMsg_Destroy(m);
		}
	}
}

/* Tells the host when reachability changed (only this thread does). */
static void note_state(struct cluster *c)
{
	bool up = atomic_load(&c->connected) && c->sub;
	atomic_store(&c->up, up);
	if (up == c->told_up)
		return;
	c->told_up = up;
	if (up)
		log_event(LOG_NOTICE, LOG_FIELDS(.event = "cluster_up"),
			  "cluster: node %s is connected to NATS and reads the stream %s", c->node,
			  CLUSTER_STREAM);
	else
		log_event(LOG_WARNING, LOG_FIELDS(.event = "cluster_down"),
			  "cluster: node %s lost NATS: its users chat among themselves until it is back",
			  c->node);
	c->host.changed(c->host.ctx, up);
}

static void *run(void *arg)
{
	struct cluster *c = arg;
	uint64_t next_setup_ms = 0;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		bool want_setup = !c->sub && atomic_load(&c->connected) &&
				  (uint64_t)wall_ms() >= next_setup_ms;
		if (want_setup) {
			pthread_mutex_unlock(&c->lock);
			if (set_up(c) < 0)
				next_setup_ms = (uint64_t)wall_ms() + SETUP_RETRY_MS;
			note_state(c);
			pthread_mutex_lock(&c->lock);
			continue;
		}
		struct cluster_batch *b = c->queue;
		c->queue = NULL;
		c->tail = &c->queue;
		if (b) {
			pthread_mutex_unlock(&c->lock);
			note_state(c);
			for (struct cluster_batch *p = b; p; p = p->next)
				publish(c, p);
			cluster_batch_free(b);
			pthread_mutex_lock(&c->lock);
			continue;
		}
		if (c->stopping)
			break;
		pthread_mutex_unlock(&c->lock);
		note_state(c);
		pthread_mutex_lock(&c->lock);
		if (c->queue || c->stopping)
			continue;
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&c->wake, &c->lock, &until);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- starting and stopping ------------------------------------------------- */

static char *nats_problem(natsStatus s, const char *what)
{
	const char *detail = nats_GetLastError(NULL);
	return xasprintf("%s: %s", what, detail && *detail ? detail : natsStatus_GetText(s));
}

struct cluster *cluster_start(const struct config *cfg, const struct cluster_host *host,
			      char **ret_err)
{
	struct cluster *c = xcalloc(1, sizeof(*c));
	c->host = *host;
	snprintf(c->node, sizeof(c->node), "%s", cfg->cluster_node);
	c->replicas = cfg->cluster_replicas;
	c->max_age_ns = (int64_t)cfg->history_max_age * 1000000000;
	c->per_room = cfg->history_keep > 0 ? cfg->history_keep : 1000;
	if (getrandom(&c->self, sizeof(c->self), 0) != sizeof(c->self))
		c->self = (uint64_t)wall_ms() ^ (uint64_t)getpid() << 32;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->wake, NULL);
	c->tail = &c->queue;

	char *err = NULL;
	natsStatus s = nats_Open(-1);
	if (s == NATS_OK)
		s = natsOptions_Create(&c->opts);
	if (s != NATS_OK) {
		err = nats_problem(s, "cannot start the NATS library");
		goto fail;
	}
	char name[NAME_MAX_LEN + 16];
	snprintf(name, sizeof(name), "chatd %s", c->node);
	if ((s = natsOptions_SetServers(c->opts, (const char **)cfg->cluster_urls,
					(int)cfg->cluster_url_count)) != NATS_OK) {
		err = nats_problem(s, "[cluster] nats");
		goto fail;
	}
	if (cfg->cluster_credentials &&
	    (s = natsOptions_SetUserCredentialsFromFiles(c->opts, cfg->cluster_credentials, NULL)) !=
		    NATS_OK) {
		err = nats_problem(s, "[cluster] credentials");
		goto fail;
	}
	if (cfg->cluster_ca &&
	    ((s = natsOptions_SetSecure(c->opts, true)) != NATS_OK ||
	     (s = natsOptions_LoadCATrustedCertificates(c->opts, cfg->cluster_ca)) != NATS_OK)) {
		err = nats_problem(s, "[cluster] ca");
		goto fail;
	}
	natsOptions_SetName(c->opts, name);
	natsOptions_SetMaxReconnect(c->opts, -1);
	natsOptions_SetReconnectWait(c->opts, RECONNECT_WAIT_MS);
	natsOptions_SetReconnectBufSize(c->opts, RECONNECT_BUFFER);
	natsOptions_SetDisconnectedCB(c->opts, on_disconnected, c);
	natsOptions_SetReconnectedCB(c->opts, on_connected, c);
	natsOptions_SetErrorHandler(c->opts, on_error, c);
	natsOptions_SetRetryOnFailedConnect(c->opts, true, on_connected, c);

	s = natsConnection_Connect(&c->nc, c->opts);
	if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
		err = nats_problem(s, "cannot connect to NATS");
		goto fail;
	}
	if (s == NATS_OK)
		atomic_store(&c->connected, true);
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = PUBLISH_MAX_PENDING;
	jo.PublishAsync.StallWait = PUBLISH_STALL_MS;
	jo.PublishAsync.ErrHandler = on_publish_failed;
	jo.PublishAsync.ErrHandlerClosure = c;
	if ((s = natsConnection_JetStream(&c->js, c->nc, &jo)) != NATS_OK) {
		err = nats_problem(s, "JetStream");
		goto fail;
	}
	int r = pthread_create(&c->thread, NULL, run, c);
	if (r != 0) {
		err = xasprintf("cannot start the cluster's thread: %s", strerror(r));
		goto fail;
	}
	c->started = true;
	log_event(LOG_INFO, LOG_FIELDS(.event = "cluster_start"),
		  "cluster: node %s (incarnation %016" PRIx64 ") connecting to %zu NATS server%s", c->node,
		  c->self, cfg->cluster_url_count, cfg->cluster_url_count == 1 ? "" : "s");
	return c;
fail:
	*ret_err = err;
	cluster_stop(c);
	return NULL;
}

void cluster_stop(struct cluster *c)
{
	if (!c)
		return;
	if (c->started) {
		pthread_mutex_lock(&c->lock);
		c->stopping = true;
		pthread_cond_signal(&c->wake);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->thread, NULL);
	}
	if (c->js && atomic_load(&c->connected)) {
		jsPubOptions po;
		jsPubOptions_Init(&po);
		po.MaxWait = 1000;
		js_PublishAsyncComplete(c->js, &po);
	}
	if (c->sub) {
		natsSubscription_Unsubscribe(c->sub);
		natsSubscription_Destroy(c->sub);
	}
	if (c->nc)
		natsConnection_Close(c->nc);
	jsCtx_Destroy(c->js);
	natsConnection_Destroy(c->nc);
	natsOptions_Destroy(c->opts);
	cluster_batch_free(c->queue);
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->lock);
	free(c);
	nats_CloseAndWait(1000);
}

uint64_t cluster_self(const struct cluster *c)
{
	return c->self;
}

bool cluster_up(const struct cluster *c)
{
	return atomic_load(&c->up);
}

void cluster_post(struct cluster *c, struct cluster_batch *b)
{
	pthread_mutex_lock(&c->lock);
	*c->tail = b;
	c->tail = &b->next;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
}

void cluster_get_stats(const struct cluster *c, struct cluster_stats *ret)
{
	ret->published = atomic_load(&((struct cluster *)c)->published);
	ret->lost = atomic_load(&((struct cluster *)c)->lost);
	ret->received = atomic_load(&((struct cluster *)c)->received);
	ret->last_seq = atomic_load(&((struct cluster *)c)->last_seq);
}
