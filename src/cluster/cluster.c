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
#include "cluster/nicks.h"
#include "cluster/shared.h"

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
/* A message the stream did not take (no leader: a NATS server lost, an
 * election) is published again, in order, every RETRY_WAIT_MS, for at
 * most RETRY_MAX_MS; new messages wait meanwhile. */
#define RETRY_WAIT_MS 250
/* How long a JetStream request (a stream, a bucket, a key) may take. */
#define JS_API_WAIT_MS 2000
/* How long stopping waits for nats.c's threads. */
#define CLOSE_WAIT_MS 5000
#define CONSUMER_HEARTBEAT_NS 1000000000LL
#define RETRY_MAX_MS 30000
#define RETRY_KEPT_MAX 65536

/* A message the stream refused, kept to be published again. */
struct failed {
	uint64_t n;          /* its number in Nats-Msg-Id: the order sent */
	char subject[sizeof(CLUSTER_ROOM_SUBJECT) + 2 * NAME_MAX_LEN + 1];
	char id[2 * NAME_MAX_LEN + 48];
	size_t len;
	char data[];
};

struct cluster {
	struct cluster_host host;
	uint64_t self;
	char node[NAME_MAX_LEN + 1];
	int replicas;
	uint64_t resume_after;   /* the stream's newest line in the store */
	int64_t max_age_ns;
	int64_t per_room;

	natsOptions *opts;
	natsConnection *nc;
	jsCtx *js;
	natsSubscription *sub;   /* the room stream's ordered consumer */
	struct nicks *nicks;     /* the nicks' thread */
	struct shared *shared;   /* the accounts' and bans' buckets' thread */
	natsSubscription *private_sub; /* what is sent to this node alone */
	natsSubscription *alive_sub;   /* the others' heartbeats */
	uint64_t next_heartbeat_ms;

	/* The other nodes heard, guarded by peers_lock (nats.c's thread adds,
	 * the cluster's thread ages them). */
	pthread_mutex_t peers_lock;
	struct peer {
		uint64_t origin;
		char node[NAME_MAX_LEN + 1];
		uint64_t heard_ms;   /* monotonic_ms(); 0: said it stops */
		bool greeted;        /* asked for its members */
	} peers[CLUSTER_NODES_MAX];
	size_t peer_count;

	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct cluster_batch *queue, **tail; /* guarded by lock */
	bool stopping;                       /* guarded by lock */
	atomic_bool connected;               /* set by nats.c's callbacks */
	atomic_bool up;                      /* connected and subscribed */
	atomic_uint_least64_t listening_since_ms; /* hearing heartbeats since
						   * (monotonic_ms(); 0: not) */
	bool told_up;                        /* the cluster thread's: host told */
	char last_why[256];                  /* the cluster thread's: the last error said */
	uint64_t why_again_ms;
	uint64_t next_msg;                   /* Nats-Msg-Id's counter */

	/* What the stream refused, for the cluster's thread to publish again
	 * (guarded by lock). */
	struct failed **failed;
	size_t failed_count, failed_cap;
	atomic_bool any_failed;
	atomic_bool quitting;    /* stopping: retries give up */

	atomic_uint_least64_t published, lost, received, last_seq;
	atomic_int_least64_t loss_logged_ms;
};

/* The subject of ROOM's messages: its lower-case name in hex. */
static void cluster_room_subject(const char *room, char *ret, size_t size)
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

void cluster_batch_add(struct cluster_batch **bp, enum cluster_to to, uint64_t node,
		       const struct wire_record *r)
{
	if (!*bp)
		*bp = xcalloc(1, sizeof(**bp));
	struct cluster_batch *b = *bp;
	struct cluster_run *run = b->run_count ? &b->runs[b->run_count - 1] : NULL;
	if (!run || run->to != to || run->len >= CLUSTER_MESSAGE_MAX ||
	    (to == CLUSTER_TO_ROOM && strcmp(run->room, r->room) != 0) ||
	    (to == CLUSTER_TO_NODE && run->node != node)) {
		if (b->run_count == b->run_cap) {
			b->run_cap = b->run_cap ? 2 * b->run_cap : 8;
			b->runs = xrealloc(b->runs, b->run_cap * sizeof(*b->runs));
		}
		run = &b->runs[b->run_count++];
		*run = (struct cluster_run){ .to = to, .node = node, .off = b->buf.len };
		if (to == CLUSTER_TO_ROOM)
			memcpy(run->room, r->room, sizeof(run->room));
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
	int64_t now = (int64_t)monotonic_ms(), last = atomic_load(&c->loss_logged_ms);
	if (now - last >= LOSS_LOG_MS && atomic_compare_exchange_strong(&c->loss_logged_ms, &last, now))
		log_event(LOG_WARNING, LOG_FIELDS(.event = "cluster_lost", .count = atomic_load(&c->lost)),
			  "cluster: lines not published to the stream (%s); %" PRIu64 " messages lost "
			  "so far", why, (uint64_t)atomic_load(&c->lost));
}

static void on_publish_failed(jsCtx *js, jsPubAckErr *pae, void *closure)
{
	(void)js;
	struct cluster *c = closure;
	const char *id = NULL, *at;
	natsMsg *m = pae->Msg;
	if (!m || natsMsgHeader_Get(m, "Nats-Msg-Id", &id) != NATS_OK || !(at = strrchr(id, '.'))) {
		count_lost(c, 1, pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
		return;
	}
	size_t len = (size_t)natsMsg_GetDataLength(m);
	struct failed *f = xmalloc(sizeof(*f) + len);
	f->n = strtoull(at + 1, NULL, 10);
	snprintf(f->subject, sizeof(f->subject), "%s", natsMsg_GetSubject(m));
	snprintf(f->id, sizeof(f->id), "%s", id);
	f->len = len;
	memcpy(f->data, natsMsg_GetData(m), len);
	pthread_mutex_lock(&c->lock);
	if (c->failed_count < RETRY_KEPT_MAX) {
		if (c->failed_count == c->failed_cap) {
			c->failed_cap = c->failed_cap ? 2 * c->failed_cap : 64;
			c->failed = xrealloc(c->failed, c->failed_cap * sizeof(*c->failed));
		}
		c->failed[c->failed_count++] = f;
		f = NULL;
	}
	atomic_store(&c->any_failed, true);
	pthread_mutex_unlock(&c->lock);
	if (f) {
		free(f);
		count_lost(c, 1, "too many messages waiting to be published again");
	}
}

static int by_number(const void *a, const void *b)
{
	const struct failed *x = *(struct failed *const *)a, *y = *(struct failed *const *)b;
	return x->n < y->n ? -1 : x->n > y->n;
}

/* What the stream refused is published again, in the order first sent,
 * before anything newer: each until the stream takes it (the same
 * Nats-Msg-Id, so one that did arrive is not kept twice), for at most
 * RETRY_MAX_MS. */
static void publish_again(struct cluster *c)
{
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = JS_API_WAIT_MS;
	js_PublishAsyncComplete(c->js, &po); /* every answer in */
	pthread_mutex_lock(&c->lock);
	struct failed **list = c->failed;
	size_t n = c->failed_count;
	c->failed = NULL;
	c->failed_count = c->failed_cap = 0;
	atomic_store(&c->any_failed, false);
	pthread_mutex_unlock(&c->lock);
	qsort(list, n, sizeof(*list), by_number);
	log_event(LOG_NOTICE, LOG_FIELDS(.event = "cluster_retry", .count = n),
		  "cluster: the stream did not take %zu message%s; publishing %s again", n,
		  n == 1 ? "" : "s", n == 1 ? "it" : "them");
	uint64_t deadline = monotonic_ms() + RETRY_MAX_MS;
	for (size_t i = 0; i < n; i++) {
		struct failed *f = list[i];
		natsStatus s = NATS_ERR;
		while (s != NATS_OK && monotonic_ms() < deadline && !atomic_load(&c->quitting)) {
			natsMsg *m = NULL;
			s = natsMsg_Create(&m, f->subject, NULL, f->data, (int)f->len);
			if (s == NATS_OK)
				s = natsMsgHeader_Set(m, "Nats-Msg-Id", f->id);
			jsErrCode jerr = 0;
			po.MaxWait = 2000;
			if (s == NATS_OK)
				s = js_PublishMsg(NULL, c->js, m, &po, &jerr);
			natsMsg_Destroy(m);
			if (s != NATS_OK)
				usleep(RETRY_WAIT_MS * 1000);
		}
		if (s == NATS_OK)
			atomic_fetch_add(&c->published, 1);
		else
			count_lost(c, 1, natsStatus_GetText(s));
		free(f);
	}
	free(list);
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

static void on_private(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	(void)nc;
	(void)sub;
	struct cluster *c = closure;
	c->host.deliver(c->host.ctx, 0, (const uint8_t *)natsMsg_GetData(msg),
			(size_t)natsMsg_GetDataLength(msg));
	natsMsg_Destroy(msg);
}

/* A heartbeat: "NODE INCARNATION" (hex), or "NODE INCARNATION bye" from a
 * node that stops. */
static void on_alive(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	(void)nc;
	(void)sub;
	struct cluster *c = closure;
	char text[NAME_MAX_LEN + 32], node[NAME_MAX_LEN + 1], bye[4] = "";
	int len = natsMsg_GetDataLength(msg);
	uint64_t origin;
	if (len > 0 && (size_t)len < sizeof(text)) {
		memcpy(text, natsMsg_GetData(msg), (size_t)len);
		text[len] = 0;
		if (sscanf(text, "%32s %" SCNx64 " %3s", node, &origin, bye) >= 2 && origin != c->self) {
			pthread_mutex_lock(&c->peers_lock);
			size_t i = 0;
			while (i < c->peer_count && c->peers[i].origin != origin)
				i++;
			if (i == c->peer_count && c->peer_count < CLUSTER_NODES_MAX && !bye[0]) {
				c->peers[c->peer_count++] = (struct peer){ .origin = origin };
				snprintf(c->peers[i].node, sizeof(c->peers[i].node), "%s", node);
			}
			if (i < c->peer_count)
				c->peers[i].heard_ms = bye[0] ? 0 : monotonic_ms();
			pthread_mutex_unlock(&c->peers_lock);
			poke(c);
		}
	}
	natsMsg_Destroy(msg);
}

/* ---- the cluster's thread -------------------------------------------------- */

/* The stream as this node wants it (made, or its limits brought up to
 * date), and the ordered consumer that reads it: 0 or -1 (logged). */
static int set_up(struct cluster *c)
{
	jsErrCode jerr = 0;
	const char *subjects[] = { "chatd.stream.>" };
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
	jsStreamInfo *si = NULL;
	natsStatus s = js_AddStream(&si, c->js, &sc, NULL, &jerr);
	if (s != NATS_OK && jerr == JSStreamNameExistErr)
		s = js_UpdateStream(&si, c->js, &sc, NULL, &jerr);
	if (s != NATS_OK) {
		log_event(LOG_WARNING, LOG_FIELDS(.event = "cluster_error"),
			  "cluster: cannot set the stream %s up: %s (JetStream error %d)", CLUSTER_STREAM,
			  natsStatus_GetText(s), (int)jerr);
		return -1;
	}
	if (!c->private_sub) {
		char subject[sizeof(CLUSTER_PRIVATE_SUBJECT) + 16];
		snprintf(subject, sizeof(subject), CLUSTER_PRIVATE_SUBJECT "%016" PRIx64, c->self);
		s = natsConnection_Subscribe(&c->private_sub, c->nc, subject, on_private, c);
		if (s == NATS_OK)
			s = natsConnection_Subscribe(&c->alive_sub, c->nc, CLUSTER_ALIVE_SUBJECT, on_alive,
						     c);
		if (s != NATS_OK) {
			log_event(LOG_WARNING, LOG_FIELDS(.event = "cluster_error"),
				  "cluster: cannot subscribe: %s", natsStatus_GetText(s));
			return -1;
		}
	}
	uint64_t first = si->State.FirstSeq, last = si->State.LastSeq;
	jsStreamInfo_Destroy(si);
	if (c->sub)
		return 0;
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Ordered = true;
	so.Config.DeliverPolicy = js_DeliverNew;
	if (c->resume_after && c->resume_after <= last) {
		/* From the line after the newest this node wrote: what was said
		 * while it was away is kept and stored here too. */
		so.Config.DeliverPolicy = js_DeliverByStartSequence;
		so.Config.OptStartSeq = c->resume_after + 1;
		log_event(LOG_INFO, LOG_FIELDS(.event = "cluster_catch_up",
					       .count = last - c->resume_after),
			  "cluster: reading the stream from %" PRIu64 " (%" PRIu64 " message%s since "
			  "this node stopped)%s", c->resume_after + 1, last - c->resume_after,
			  last - c->resume_after == 1 ? "" : "s",
			  first > c->resume_after + 1 ? "; older ones are no longer kept" : "");
	} else if (c->resume_after) {
		log_event(LOG_NOTICE, LOG_FIELDS(.event = "cluster_catch_up"),
			  "cluster: the stream %s ends at %" PRIu64 ", before the line %" PRIu64 " this "
			  "node wrote last: it was made anew; reading from its end", CLUSTER_STREAM, last,
			  c->resume_after);
	}
	/* A consumer lost with its NATS server is noticed after a few
	 * missed heartbeats, and made again where the last line was. */
	so.Config.Heartbeat = CONSUMER_HEARTBEAT_NS;
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
		const char *data = (const char *)b->buf.data + run->off;
		char subject[sizeof(CLUSTER_ROOM_SUBJECT) + 2 * NAME_MAX_LEN + 1];
		natsStatus s;
		if (run->to == CLUSTER_TO_NODE) {
			/* Not kept: for a node that is there now. */
			snprintf(subject, sizeof(subject), CLUSTER_PRIVATE_SUBJECT "%016" PRIx64,
				 run->node);
			s = natsConnection_Publish(c->nc, subject, data, (int)run->len);
			if (s != NATS_OK)
				count_lost(c, 1, natsStatus_GetText(s));
			continue;
		}
		if (run->to == CLUSTER_TO_ROOM)
			cluster_room_subject(run->room, subject, sizeof(subject));
		else
			snprintf(subject, sizeof(subject), CLUSTER_MEMBERS_SUBJECT "%s", c->node);
		char id[2 * NAME_MAX_LEN + 48];
		snprintf(id, sizeof(id), "%s.%016" PRIx64 ".%" PRIu64, c->node, c->self, ++c->next_msg);
		natsMsg *m = NULL;
		s = natsMsg_Create(&m, subject, NULL, data, (int)run->len);
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

/* Says this node is alive (or, BYE, that it stops). */
static void heartbeat(struct cluster *c, bool bye)
{
	char text[NAME_MAX_LEN + 32];
	int n = snprintf(text, sizeof(text), "%s %016" PRIx64 "%s", c->node, c->self,
			 bye ? " bye" : "");
	natsConnection_Publish(c->nc, CLUSTER_ALIVE_SUBJECT, text, n);
	if (bye)
		natsConnection_FlushTimeout(c->nc, 500);
}

/* Asks the node ORIGIN for the state of each of its members. */
static void greet(struct cluster *c, uint64_t origin)
{
	struct wire_record r = { .kind = WIRE_HELLO, .origin = c->self, .time_ms = wall_clock_ms() };
	snprintf(r.node, sizeof(r.node), "%s", c->node);
	struct cluster_batch *b = NULL;
	cluster_batch_add(&b, CLUSTER_TO_NODE, origin, &r);
	publish(c, b);
	cluster_batch_free(b);
}

/* Heartbeats out, and the others' aged: a new one is asked for its
 * members, a silent one is lost. */
static void keep_peers(struct cluster *c)
{
	uint64_t now = monotonic_ms();
	if (c->sub && atomic_load(&c->connected) && now >= c->next_heartbeat_ms) {
		heartbeat(c, false);
		c->next_heartbeat_ms = now + CLUSTER_HEARTBEAT_MS;
	}
	pthread_mutex_lock(&c->peers_lock);
	for (size_t i = 0; i < c->peer_count;) {
		struct peer p = c->peers[i];
		if (now - p.heard_ms > CLUSTER_NODE_TIMEOUT_MS) {
			c->peers[i] = c->peers[--c->peer_count];
			pthread_mutex_unlock(&c->peers_lock);
			log_event(LOG_NOTICE, LOG_FIELDS(.event = "cluster_node_lost"),
				  "cluster: node %s %s", p.node,
				  p.heard_ms ? "is not heard from any more: its users leave"
					     : "stops: its users leave");
			c->host.node_lost(c->host.ctx, p.origin, p.node);
			pthread_mutex_lock(&c->peers_lock);
			continue;
		}
		if (!p.greeted) {
			c->peers[i].greeted = true;
			pthread_mutex_unlock(&c->peers_lock);
			log_event(LOG_INFO, LOG_FIELDS(.event = "cluster_node_found"),
				  "cluster: node %s (incarnation %016" PRIx64 ") is there", p.node,
				  p.origin);
			greet(c, p.origin);
			pthread_mutex_lock(&c->peers_lock);
		}
		i++;
	}
	pthread_mutex_unlock(&c->peers_lock);
}

/* While NATS cannot be reached, why (nats.c's last error), when it
 * changes and once a minute. */
static void say_why_not_connected(struct cluster *c)
{
	if (atomic_load(&c->connected) || !c->nc)
		return;
	const char *why = NULL;
	if (natsConnection_GetLastError(c->nc, &why) == NATS_OK || !why || !*why)
		return;
	uint64_t now = monotonic_ms();
	if (strcmp(why, c->last_why) == 0 && now < c->why_again_ms)
		return;
	snprintf(c->last_why, sizeof(c->last_why), "%s", why);
	c->why_again_ms = now + LOSS_LOG_MS;
	log_event(LOG_WARNING, LOG_FIELDS(.event = "cluster_error"),
		  "cluster: node %s cannot reach NATS: %s (trying again)", c->node, why);
}

/* Tells the host when reachability changed (only this thread does). */
static void note_state(struct cluster *c)
{
	bool up = atomic_load(&c->connected) && c->sub;
	atomic_store(&c->up, up);
	if (up == c->told_up)
		return;
	atomic_store(&c->listening_since_ms, up ? monotonic_ms() : 0);
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
		bool stopping = c->stopping;
		struct cluster_batch *b = c->queue;
		c->queue = NULL;
		c->tail = &c->queue;
		pthread_mutex_unlock(&c->lock);

		if (!c->sub && atomic_load(&c->connected) && monotonic_ms() >= next_setup_ms &&
		    set_up(c) < 0)
			next_setup_ms = monotonic_ms() + SETUP_RETRY_MS;
		note_state(c);
		say_why_not_connected(c);
		keep_peers(c);
		for (struct cluster_batch *p = b; p; p = p->next) {
			if (atomic_load(&c->any_failed))
				publish_again(c);
			publish(c, p);
		}
		cluster_batch_free(b);
		if (atomic_load(&c->any_failed))
			publish_again(c);

		pthread_mutex_lock(&c->lock);
		if (stopping && !c->queue)
			break;
		if (!b && !c->queue && !c->stopping) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 1;
			pthread_cond_timedwait(&c->wake, &c->lock, &until);
		}
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
			      uint64_t resume_after, char **ret_err)
{
	struct cluster *c = xcalloc(1, sizeof(*c));
	c->host = *host;
	c->resume_after = resume_after;
	snprintf(c->node, sizeof(c->node), "%s", cfg->cluster_node);
	c->replicas = cfg->cluster_replicas;
	c->max_age_ns = (int64_t)cfg->history_max_age * 1000000000;
	c->per_room = cfg->history_keep > 0 ? cfg->history_keep : 1000;
	if (getrandom(&c->self, sizeof(c->self), 0) != sizeof(c->self))
		c->self = (uint64_t)wall_clock_ms() ^ (uint64_t)getpid() << 32;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->peers_lock, NULL);
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
	/* What the cluster thread publishes is a batch already: no waiting
	 * for more in nats.c's flusher. */
	natsOptions_SetSendAsap(c->opts, true);
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
	jo.Wait = JS_API_WAIT_MS;
	jo.PublishAsync.MaxPending = PUBLISH_MAX_PENDING;
	jo.PublishAsync.StallWait = PUBLISH_STALL_MS;
	jo.PublishAsync.ErrHandler = on_publish_failed;
	jo.PublishAsync.ErrHandlerClosure = c;
	if ((s = natsConnection_JetStream(&c->js, c->nc, &jo)) != NATS_OK) {
		err = nats_problem(s, "JetStream");
		goto fail;
	}
	if (!(c->nicks = nicks_start(c, &c->host, c->replicas, &err)) ||
	    !(c->shared = shared_start(c, &c->host, c->replicas, &err)))
		goto fail;
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

void cluster_halt(struct cluster *c)
{
	if (!c)
		return;
	nicks_stop(c->nicks);
	c->nicks = NULL;
	shared_halt(c->shared);
}

void cluster_stop(struct cluster *c)
{
	if (!c)
		return;
	cluster_halt(c);
	shared_stop(c->shared);
	atomic_store(&c->quitting, true);
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
	if (c->sub && atomic_load(&c->connected))
		heartbeat(c, true);
	natsSubscription *subs[] = { c->sub, c->private_sub, c->alive_sub };
	for (size_t i = 0; i < sizeof(subs) / sizeof(*subs); i++) {
		if (subs[i]) {
			natsSubscription_Unsubscribe(subs[i]);
			natsSubscription_Destroy(subs[i]);
		}
	}
	if (c->nc)
		natsConnection_Close(c->nc);
	jsCtx_Destroy(c->js);
	natsConnection_Destroy(c->nc);
	natsOptions_Destroy(c->opts);
	/* nats.c's threads may still be calling us back (the connection's
	 * disconnected and closed callbacks, a message being delivered):
	 * they are all gone once the library is closed, and only then is C. */
	natsStatus s = nats_CloseAndWait(CLOSE_WAIT_MS);
	if (s != NATS_OK) {
		log_event(LOG_WARNING, LOG_FIELDS(.event = "cluster_error"),
			  "cluster: NATS's threads did not stop within %d ms: %s", CLOSE_WAIT_MS,
			  natsStatus_GetText(s));
		return; /* C stays: a callback may yet come */
	}
	cluster_batch_free(c->queue);
	for (size_t i = 0; i < c->failed_count; i++)
		free(c->failed[i]);
	free(c->failed);
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->peers_lock);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

uint64_t cluster_self(const struct cluster *c)
{
	return c->self;
}

const char *cluster_node(const struct cluster *c)
{
	return c->node;
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

void cluster_claim(struct cluster *c, const char *nick, uint64_t session, int worker, int fd)
{
	if (c->nicks)
		nicks_claim(c->nicks, nick, session, worker, fd);
}

void cluster_release(struct cluster *c, const char *nick, uint64_t session)
{
	if (c->nicks)
		nicks_release(c->nicks, nick, session);
}

int cluster_account_create(struct cluster *c, const struct account_row *row)
{
	return shared_account_create(c->shared, row);
}

void cluster_account_changed(struct cluster *c, const struct account_row *row)
{
	shared_account_changed(c->shared, row);
}

void cluster_ban_added(struct cluster *c, const struct ban *b)
{
	shared_ban_added(c->shared, b);
}

void cluster_ban_removed(struct cluster *c, const char *mask)
{
	shared_ban_removed(c->shared, mask);
}

void cluster_account_offer(struct cluster *c, const struct account_row *row)
{
	shared_account_offer(c->shared, row);
}

void cluster_ban_offer(struct cluster *c, const struct ban *b)
{
	shared_ban_offer(c->shared, b);
}

jsCtx *cluster_js(const struct cluster *c)
{
	return c->js;
}

enum peer_state cluster_peer_state(struct cluster *c, uint64_t origin)
{
	uint64_t now = monotonic_ms();
	enum peer_state state = PEER_GONE;
	pthread_mutex_lock(&c->peers_lock);
	for (size_t i = 0; i < c->peer_count; i++)
		if (c->peers[i].origin == origin && c->peers[i].heard_ms &&
		    now - c->peers[i].heard_ms <= CLUSTER_NODE_TIMEOUT_MS)
			state = PEER_ALIVE;
	pthread_mutex_unlock(&c->peers_lock);
	uint64_t since = atomic_load(&c->listening_since_ms);
	if (state == PEER_GONE && (!since || now - since <= CLUSTER_NODE_TIMEOUT_MS))
		state = PEER_UNKNOWN;
	return state;
}

void cluster_get_stats(struct cluster *c, struct cluster_stats *ret)
{
	ret->up = cluster_up(c);
	ret->nodes = 0;
	pthread_mutex_lock(&c->peers_lock);
	for (size_t i = 0; i < c->peer_count; i++)
		ret->nodes += c->peers[i].heard_ms != 0;
	pthread_mutex_unlock(&c->peers_lock);
	ret->published = atomic_load(&c->published);
	ret->lost = atomic_load(&c->lost);
	ret->received = atomic_load(&c->received);
	ret->last_seq = atomic_load(&c->last_seq);
}
