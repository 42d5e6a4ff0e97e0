#include "autoconf.h"

#include "net/writer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef HAVE_LIBURING
#include <liburing.h>
#endif

#include "base/log.h"
#include "base/util.h"

#define WRITER_BATCH 256        /* connections per io_uring_enter */
#define WRITER_IOVS (16 * 1024) /* pieces of output per io_uring_enter */
#define UNKNOWN INT_MIN         /* a write's result before its completion */
#define AGAIN (INT_MIN + 1)     /* written as offered, more queued: offer again */
#define EMPTY (INT_MIN + 2)     /* nothing to write: reported as all written */

/* One connection's write in the batch being made. */
struct pending {
	struct conn *c;
	struct msghdr mh;
	size_t bytes;   /* offered */
	int result;     /* from the completion: bytes written or -errno; UNKNOWN */
};

struct writer {
	bool uring;
#ifdef HAVE_LIBURING
	struct io_uring ring;
	struct pending pending[WRITER_BATCH];
#endif
	struct iovec *iov;  /* WRITER_IOVS with io_uring, IOV_MAX without */
};

/* ---- one writev per connection ------------------------------------------ */

static void flush_each(struct writer *wr, struct conn_list *list, struct out_cache *oc,
		       writer_done_fn *done, void *ctx)
{
	struct conn *c;
	while ((c = TAILQ_FIRST(list))) {
		flush_list_remove(list, c);
		if (c->state != CONN_DEAD)
			done(ctx, c, conn_flush(c, wr->iov, IOV_MAX, oc));
	}
}

#ifdef HAVE_LIBURING

/* ---- io_uring ------------------------------------------------------------ */

static void prep_write(struct io_uring *ring, struct pending *p, unsigned index)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring); /* never NULL: BATCH entries */
	/* MSG_DONTWAIT: a full socket completes at once with EAGAIN, as writev
	 * does, instead of leaving the write waiting in the kernel. One piece,
	 * the usual case at light load, goes as a send: no msghdr and iovec for
	 * the kernel to copy in. */
	if (p->mh.msg_iovlen == 1)
		io_uring_prep_send(sqe, p->c->fd, p->mh.msg_iov[0].iov_base, p->mh.msg_iov[0].iov_len,
				   MSG_DONTWAIT | MSG_NOSIGNAL);
	else
		io_uring_prep_sendmsg(sqe, p->c->fd, &p->mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, index);
}

/* Submits the REQUESTS prepared writes and waits for all of them: each
 * completes at once (written, or EAGAIN), so this never sleeps for long.
 * Returns 0, or -errno when the ring failed; a write whose completion did
 * not come keeps result UNKNOWN. */
static int submit_and_reap(struct writer *wr, unsigned count, unsigned requests)
{
	unsigned submitted = 0, reaped = 0, busy = 0;
	int r;
	/* Every request must be in the kernel before waiting for all of
	 * them; a short submission is retried (EAGAIN, EBUSY: the kernel is
	 * short of memory for a moment; not for ever). */
	while (submitted < requests) {
		r = io_uring_submit(&wr->ring);
		if (r == -EINTR || ((r == -EAGAIN || r == -EBUSY) && ++busy < 100))
			continue;
		if (r < 0)
			return r;
		if (r == 0)
			return -EIO;
		submitted += (unsigned)r;
	}
	while (reaped < requests) {
		struct io_uring_cqe *cqe;
		r = io_uring_wait_cqe(&wr->ring, &cqe);
		if (r == -EINTR)
			continue;
		if (r < 0)
			return r;
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&wr->ring, head, cqe) {
			uint64_t index = io_uring_cqe_get_data64(cqe);
			/* Only ours count (liburing's own timeouts do not). */
			if (index < count && wr->pending[index].result == UNKNOWN) {
				wr->pending[index].result = cqe->res;
				reaped++;
			}
			seen++;
		}
		io_uring_cq_advance(&wr->ring, seen);
	}
	return 0;
}

static void flush_batched(struct writer *wr, struct conn_list *list, struct out_cache *oc,
			  writer_done_fn *done, void *ctx)
{
	while (wr->uring && !TAILQ_EMPTY(list)) {
		unsigned count = 0, requests = 0;
		size_t used = 0;
		struct conn *c;

		while (count < WRITER_BATCH && (c = TAILQ_FIRST(list))) {
			size_t room = WRITER_IOVS - used;
			if (used > 0 && room < IOV_MAX && room < c->out_count)
				break; /* its share would be cut short: next batch */
			flush_list_remove(list, c);
			if (c->state == CONN_DEAD)
				continue;
			struct pending *p = &wr->pending[count];
			struct iovec *iov = wr->iov + used;
			int n = conn_output_iov(c, iov, room < IOV_MAX ? (int)room : IOV_MAX, &p->bytes,
						oc);
			p->c = c;
			p->result = UNKNOWN;
			if (n <= 0) {
				/* Nothing queued (a leaving connection that was
				 * already written: all written, as writev would
				 * say), or sealing failed: reported with the
				 * others. */
				p->result = n < 0 ? n : EMPTY;
			} else {
				used += (size_t)n;
				p->mh = (struct msghdr){ .msg_iov = iov, .msg_iovlen = (size_t)n };
				prep_write(&wr->ring, p, count);
				requests++;
			}
			count++;
		}

		int r = requests ? submit_and_reap(wr, count, requests) : 0;
		if (r < 0) {
			/* From now on, writev. A write whose outcome is unknown
			 * may have sent its bytes: sending them again would
			 * repeat lines, so that connection is closed instead. */
			log_errno(LOG_WARNING, -r, "io_uring failed; writing with writev from now on");
			io_uring_queue_exit(&wr->ring);
			wr->uring = false;
		}

		/* First account for every write, then report: a report may
		 * queue more output for connections of this batch. */
		for (unsigned i = 0; i < count; i++) {
			struct pending *p = &wr->pending[i];
			if (p->result == EMPTY) {
				p->result = 1;
			} else if (p->result == UNKNOWN) {
				p->result = -EIO;
			} else if (p->result == -EAGAIN || p->result == -EWOULDBLOCK) {
				p->result = 0; /* the socket is full */
			} else if (p->result == -EINTR) {
				p->result = AGAIN;
			} else if (p->result >= 0) {
				if (conn_written(p->c, (size_t)p->result, oc))
					p->result = 1;
				else if ((size_t)p->result == p->bytes)
					p->result = AGAIN; /* all offered went: more to offer */
				else
					p->result = 0; /* the socket took only part: it is full */
			}
		}
		for (unsigned i = 0; i < count; i++) {
			struct pending *p = &wr->pending[i];
			if (p->result == AGAIN)
				flush_list_add(list, p->c);
			else
				done(ctx, p->c, p->result);
		}
	}
	flush_each(wr, list, oc, done, ctx); /* what is left if the ring failed */
}

/* Checks that the kernel completes a write (a sendmsg, or a send: prep_write
 * uses both) to a full non-blocking socket at once with EAGAIN (the whole
 * design relies on it: a write left waiting would hold a connection we may
 * free). Returns 0 or -errno. */
static int probe_full_socket(struct io_uring *ring, bool as_sendmsg)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	static char filler[4096];
	while (write(sv[0], filler, sizeof(filler)) > 0)
		;
	int r = -EAGAIN;
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		struct iovec iov = { .iov_base = filler, .iov_len = 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
		if (as_sendmsg)
			io_uring_prep_sendmsg(sqe, sv[0], &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		else
			io_uring_prep_send(sqe, sv[0], filler, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
		struct io_uring_cqe *cqe;
		struct __kernel_timespec wait = { .tv_sec = 1 };
		r = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &wait, NULL);
		if (r >= 0) {
			r = cqe->res == -EAGAIN ? 0 : cqe->res < 0 ? cqe->res : -EPROTO;
			io_uring_cqe_seen(ring, cqe);
		} else if (r == -ETIME) {
			r = -EPROTO; /* it waited: unusable (the ring's exit cancels it) */
		}
	}
	close(sv[0]);
	close(sv[1]);
	return r;
}

/* A ring for this thread: SINGLE_ISSUER and DEFER_TASKRUN (Linux 6.1) suit
 * a ring that only its own thread uses, SUBMIT_ALL keeps submitting past a
 * request the kernel rejects; older kernels get a plain ring. 0 or -errno. */
static int open_ring(struct io_uring *ring)
{
	int r = io_uring_queue_init(WRITER_BATCH, ring,
				    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
				    IORING_SETUP_SUBMIT_ALL);
	return r == -EINVAL ? io_uring_queue_init(WRITER_BATCH, ring, 0) : r;
}

#endif /* HAVE_LIBURING */

/* ---- the writer ----------------------------------------------------------- */

bool writer_uring_usable(const char **why_not)
{
#ifdef HAVE_LIBURING
	struct io_uring ring;
	int r = open_ring(&ring);
	if (r == 0) {
		r = probe_full_socket(&ring, true);
		if (r == 0)
			r = probe_full_socket(&ring, false);
		io_uring_queue_exit(&ring);
	}
	*why_not = r == 0 ? NULL
		 : r == -EPROTO ? "a write to a full socket did not complete at once" : strerror(-r);
	return r == 0;
#else
	*why_not = "built without liburing";
	return false;
#endif
}

struct writer *writer_new(bool want_uring, const char **why_not)
{
	struct writer *wr = xcalloc(1, sizeof(*wr));
	*why_not = NULL;
#ifdef HAVE_LIBURING
	/* writer_uring_usable() made the checks; this is the worker's ring. */
	int r = want_uring ? open_ring(&wr->ring) : -EOPNOTSUPP;
	wr->uring = r == 0;
	if (want_uring && r < 0)
		*why_not = strerror(-r);
#else
	if (want_uring)
		*why_not = "built without liburing";
#endif
	wr->iov = xmalloc((wr->uring ? WRITER_IOVS : IOV_MAX) * sizeof(*wr->iov));
	return wr;
}

void writer_free(struct writer *wr)
{
	if (!wr)
		return;
#ifdef HAVE_LIBURING
	if (wr->uring)
		io_uring_queue_exit(&wr->ring);
#endif
	free(wr->iov);
	free(wr);
}

const char *writer_method(const struct writer *wr)
{
	return wr->uring ? "io_uring" : "writev";
}

void writer_flush(struct writer *wr, struct conn_list *list, struct out_cache *oc,
		  writer_done_fn *done, void *ctx)
{
#ifdef HAVE_LIBURING
	if (wr->uring)
		flush_batched(wr, list, oc, done, ctx);
	else
#endif
		flush_each(wr, list, oc, done, ctx);
	msg_release_flush(&oc->released);
}
