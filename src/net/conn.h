/* One client connection: its socket, its input framer and its output queue
 * of shared messages. A connection belongs to exactly one worker thread,
 * which is the only thread that touches it (see worker.h). */
#ifndef CHATD_CONN_H
#define CHATD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/uio.h>

#include "core/msg.h"
#include "core/session.h"
#include "net/iplimit.h"
#include "proto/framer.h"

struct tls_stream;
struct web_conn;

/* A connection's life; net/lifecycle.c makes every change (see there):
 *
 *   NEW --register--> OPEN --close_after_flush--> DRAINING --all written--> LINGERING
 *    |                 |                             |                          |
 *    +-----------------+------------kill-------------+--------------------------+--> DEAD
 */
enum conn_state {
	CONN_NEW,       /* accepted, not yet in the chat (over TLS: in the handshake) */
	CONN_OPEN,      /* in the chat: reading and writing */
	CONN_DRAINING,  /* leaving: writes what is queued, reads nothing more */
	CONN_LINGERING, /* queue written and our side shut: waits for the peer's EOF */
	CONN_DEAD,      /* out of the chat and its slot given back; freed at the end of
			 * the loop iteration, so pointers to it stay valid until then */
};

struct conn {
	/* What a fan-out reads of each recipient first, together: state,
	 * last_once, then s.id and s.member.format. */
	int fd;
	enum conn_state state;
	uint64_t last_once;        /* the last room_send.once it was sent */
	struct session s;          /* what the chat core knows of it */

	struct tls_stream *tls;    /* NULL: plaintext (see tls/stream.h) */
	struct web_conn *web;      /* the web port's (see net/web.h); NULL: another port */
	enum proto port_proto;     /* what its port carries (s.proto changes at an upgrade) */
	size_t stat_written;       /* of written_total, what the metrics have counted */
	size_t tls_counted;        /* of its output, the bytes out_bytes counts */
	uint64_t opened_ms;        /* when the worker took it (the web port: or last
				    * answered a request) */
	struct framer framer;
	struct ip_key ip;          /* counted in the pool's ip_limit until closed, */
	bool ip_counted;           /* unless it came from a trusted proxy */
	uint64_t last_line_ms;     /* for idle_timeout */
	uint64_t partial_since_ms; /* a started line waits since; 0: none */
	/* Answers owed by the store or accounts thread: while any is, its
	 * input is not read, and what was read after the line that asked
	 * waits here, so that every reply comes in the order of the lines. */
	unsigned waiting;
	char *held;
	size_t held_len;

	/* Output: a ring of messages; out_offset bytes of the first are sent. */
	struct msg **out;
	uint32_t out_head, out_count, out_cap;
	size_t out_offset;
	size_t out_bytes;          /* queued and not yet written */
	size_t written_total;      /* bytes ever written (wraps; only differences count) */
	/* After the last write attempt (in loop iteration mark_epoch): what
	 * was left, and written_total then; prev_*: the same for the last
	 * attempt of an earlier iteration. See conn_attempted(). */
	size_t mark_left, mark_written, prev_left, prev_written;
	uint64_t mark_epoch;

	uint32_t epoll_events;     /* what epoll watches now */
	const char *close_reason;  /* set once the worker decided to close it */
	uint64_t deadline_ms;      /* DRAINING/LINGERING: when to give up */

	/* The worker's lists: to write this iteration (flush_list), to free at
	 * its end (DEAD: close_list), leaving (DRAINING, LINGERING: drain_list). */
	TAILQ_ENTRY(conn) flush_link;
	TAILQ_ENTRY(conn) close_link;
	TAILQ_ENTRY(conn) drain_link;
	bool on_flush_list;
};

TAILQ_HEAD(conn_list, conn);

/* A worker's flush list: the connections with output to write this loop
 * iteration, each at most once (on_flush_list). */
static inline void flush_list_add(struct conn_list *list, struct conn *c)
{
	if (!c->on_flush_list) {
		c->on_flush_list = true;
		TAILQ_INSERT_TAIL(list, c, flush_link);
	}
}

static inline void flush_list_remove(struct conn_list *list, struct conn *c)
{
	if (c->on_flush_list) {
		TAILQ_REMOVE(list, c, flush_link);
		c->on_flush_list = false;
	}
}

/* What a worker's output queues share:
 * - spare minimum-size output rings: a queue that empties gives its ring
 *   back, one that fills takes one, so an idle connection holds no output
 *   buffer and steady traffic allocates nothing per line;
 * - the unreferences of written lines, put off until the end of the write
 *   pass (see msg_release), applied by writer_flush(). */
#define RING_CACHE_MAX 1024
struct out_cache {
	struct msg **rings[RING_CACHE_MAX];
	int count;
	struct msg_release released;
};

/* Frees the spare rings and applies the put-off unreferences. */
void out_cache_clear(struct out_cache *oc);

struct conn *conn_new(int fd, uint64_t id, const char *peer);

/* Closes the socket, drops the queue and frees. */
void conn_free(struct conn *c);

/* Queues M, taking over one reference the caller holds. Returns false, and
 * queues nothing, when that would put more than CAP bytes in the queue (a
 * hard bound on memory: see lifecycle.c for when a reader is too slow). */
bool conn_queue(struct conn *c, struct msg *m, size_t cap, struct out_cache *oc);

/* After a write attempt in the worker's loop iteration EPOCH: returns the
 * bytes that were already waiting after an attempt of an earlier iteration
 * and are still not written (writes take the oldest first): what the
 * client had the chance to read and did not. Kept per write, not per line. */
size_t conn_attempted(struct conn *c, uint64_t epoch);

/* Points IOV at up to IOV_MAX pieces of the queue, oldest first; returns
 * how many, and their total length in *BYTES. Over TLS, first seals the
 * oldest lines (dropping them into OC's releases) and points at the
 * ciphertext; -EPROTO if sealing failed. */
int conn_output_iov(struct conn *c, struct iovec *iov, int iov_max, size_t *bytes,
		    struct out_cache *oc);

/* Drops N written bytes from the head of the queue, putting off the
 * unreference of each line written whole in OC. Returns true when the queue
 * is empty; its ring is then given back to OC. */
bool conn_written(struct conn *c, size_t n, struct out_cache *oc);

/* Writes as much of the queue as the socket takes, many messages per
 * writev. Returns 1 when the queue is empty, 0 when the socket is full,
 * or -errno. */
int conn_flush(struct conn *c, struct iovec *iov, int iov_max, struct out_cache *oc);

#endif
