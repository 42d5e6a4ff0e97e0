/* The writer (src/writer.c) on real sockets, with io_uring and with writev:
 * every queued byte arrives once and in order; a full socket reports 0 and
 * is finished on a later flush, a single piece (io_uring: a send) as well
 * as many (a sendmsg); a flush bigger than one submission (more
 * connections or more pieces than fit) still writes everything; a peer that
 * is gone is reported as an error, not a signal. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "src/net/conn.h"
#include "src/core/msg.h"
#include "src/base/util.h"
#include "src/net/writer.h"
#include "unit.h"

#define CONNS 300           /* more than one io_uring_enter takes (256) */
#define LINES 1500          /* per connection: more than IOV_MAX pieces */
#define MAX_ROUNDS 100000

struct peer {
	int fd;                 /* the reading end */
	char *got;
	size_t len, cap;
	int reports, last, full;
};

static struct peer peers[CONNS];

static void written(void *ctx, struct conn *c, int result)
{
	(void)ctx;
	struct peer *p = &peers[c->s.id];
	p->reports++;
	p->last = result;
	if (result == 0)
		p->full++;
}

static void drain(struct peer *p)
{
	char buf[65536];
	ssize_t n;
	while ((n = read(p->fd, buf, sizeof(buf))) > 0) {
		p->cap = p->len + (size_t)n > p->cap ? (p->len + (size_t)n) * 2 : p->cap;
		p->got = xrealloc(p->got, p->cap);
		memcpy(p->got + p->len, buf, (size_t)n);
		p->len += (size_t)n;
	}
}

static int io_uring_disabled(void)
{
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
	int v = 0;
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

static void run(bool want_uring, bool small_buffers)
{
	const char *why_not;
	struct writer *wr = writer_new(want_uring, &why_not);
	struct out_cache oc = { .count = 0 };
	struct conn *conns[CONNS];
	struct conn_list list;

	printf("writer: %s%s%s, %s socket buffers\n", writer_method(wr),
	       why_not ? ", io_uring not usable: " : "", why_not ? why_not : "",
	       small_buffers ? "small" : "default");
	if (!want_uring) {
		CHECK_STR(writer_method(wr), "writev");
	} else if (io_uring_disabled() == 0) {
		/* The check chatd makes at start, full-socket probe included. */
		const char *check_why_not;
		CHECK(writer_uring_usable(&check_why_not));
		CHECK_STR(writer_method(wr), "io_uring");
	}

	TAILQ_INIT(&list);
	for (int i = 0; i < CONNS; i++) {
		int sv[2];
		CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
		int small = 4096; /* so that sockets fill up and take only part */
		if (small_buffers)
			setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
		conns[i] = conn_new(sv[0], (uint64_t)i, "test");
		peers[i] = (struct peer){ .fd = sv[1] };
		for (int k = 0; k < LINES; k++) {
			struct msg *m = msg_printf("conn %d line %d\n", i, k);
			CHECK(conn_queue(conns[i], m, (size_t)1 << 30, &oc));
		}
		flush_list_add(&list, conns[i]);
	}

	/* Flush, read what arrived, flush again those that were full. */
	int rounds = 0, finished = 0;
	while (finished < CONNS && rounds++ < MAX_ROUNDS) {
		writer_flush(wr, &list, &oc, written, NULL);
		CHECK(TAILQ_EMPTY(&list));
		finished = 0;
		for (int i = 0; i < CONNS; i++) {
			drain(&peers[i]);
			if (peers[i].last == 1)
				finished++;
			else if (peers[i].last == 0)
				flush_list_add(&list, conns[i]);
		}
	}
	CHECK_INT(finished, CONNS);
	if (want_uring && io_uring_disabled() == 0)
		CHECK_STR(writer_method(wr), "io_uring"); /* still: no failure made it fall back */
	if (!small_buffers)
		CHECK_INT(rounds, 1); /* IOV_MAX pieces at a time, all in one flush */

	int some_full = 0;
	for (int i = 0; i < CONNS; i++) {
		struct peer *p = &peers[i];
		char *want = NULL;
		size_t want_len = 0;
		for (int k = 0; k < LINES; k++) {
			char line[64];
			int n = snprintf(line, sizeof(line), "conn %d line %d\n", i, k);
			want = xrealloc(want, want_len + (size_t)n);
			memcpy(want + want_len, line, (size_t)n);
			want_len += (size_t)n;
		}
		drain(p);
		CHECK_INT(p->len, want_len);
		CHECK(p->len == want_len && memcmp(p->got, want, want_len) == 0);
		CHECK_INT(p->last, 1);
		CHECK_INT(conns[i]->out_count, 0);
		some_full += p->full > 0;
		free(want);
	}
	if (small_buffers)
		CHECK(some_full > 0); /* they did fill up */
	else
		CHECK_INT(some_full, 0);

	/* A peer that is gone: an error for that connection only. */
	close(peers[0].fd);
	drain(&peers[1]);
	peers[0].last = peers[1].last = 99;
	CHECK(conn_queue(conns[0], msg_printf("to nobody\n"), 1 << 20, &oc));
	CHECK(conn_queue(conns[1], msg_printf("still here\n"), 1 << 20, &oc));
	flush_list_add(&list, conns[0]);
	flush_list_add(&list, conns[1]);
	writer_flush(wr, &list, &oc, written, NULL);
	CHECK_INT(peers[0].last, -EPIPE);
	CHECK_INT(peers[1].last, 1);
	size_t before = peers[1].len;
	drain(&peers[1]);
	CHECK_INT(peers[1].len - before, strlen("still here\n"));

	/* One piece (with io_uring a send, not a sendmsg) to a full socket: it
	 * is reported full, and written whole on a later flush. */
	drain(&peers[3]);
	static char filler[4096];
	size_t filled = 0;
	ssize_t n;
	while ((n = write(conns[3]->fd, filler, sizeof(filler))) > 0)
		filled += (size_t)n;
	CHECK(n < 0 && errno == EAGAIN);
	CHECK(conn_queue(conns[3], msg_printf("after the filler\n"), 1 << 20, &oc));
	peers[3].last = 99;
	flush_list_add(&list, conns[3]);
	writer_flush(wr, &list, &oc, written, NULL);
	CHECK_INT(peers[3].last, 0);
	CHECK(TAILQ_EMPTY(&list));
	before = peers[3].len;
	drain(&peers[3]);
	flush_list_add(&list, conns[3]);
	writer_flush(wr, &list, &oc, written, NULL);
	CHECK_INT(peers[3].last, 1);
	drain(&peers[3]);
	CHECK_INT(peers[3].len - before, filled + strlen("after the filler\n"));
	CHECK(memcmp(peers[3].got + peers[3].len - strlen("after the filler\n"), "after the filler\n",
		     strlen("after the filler\n")) == 0);

	/* Connections on their way to be closed are skipped. */
	CHECK(conn_queue(conns[2], msg_printf("skipped\n"), 1 << 20, &oc));
	conns[2]->state = CONN_DEAD;
	peers[2].reports = 0;
	flush_list_add(&list, conns[2]);
	writer_flush(wr, &list, &oc, written, NULL);
	CHECK_INT(peers[2].reports, 0);
	CHECK(TAILQ_EMPTY(&list));

	for (int i = 0; i < CONNS; i++) {
		conn_free(conns[i]);
		if (i != 0)
			close(peers[i].fd);
		free(peers[i].got);
	}
	out_cache_clear(&oc);
	writer_free(wr);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* as chatd does; io_uring sends with MSG_NOSIGNAL anyway */
	run(true, true);
	run(true, false);
	run(false, true);
	run(false, false);
	return unit_finish("test_writer");
}
