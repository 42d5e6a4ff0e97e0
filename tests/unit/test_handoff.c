/* The hand-over between worker threads (src/net/handoff.c): inboxes take
 * what was posted in order and wake their worker once per batch; outboxes
 * hand a loop iteration's events to every target at once, so that an
 * answer never overtakes the line it answers, however the threads are
 * scheduled. Real threads and eventfds, no mocks. */
#include "autoconf.h"

#include "src/net/handoff.h"
#include "unit.h"

#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

static struct event ping(uint64_t id)
{
	return (struct event){ .kind = EV_PING, .id = id };
}

static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 0) == 1;
}

static void no_release(struct event *ev, void *ctx)
{
	(void)ev;
	(*(int *)ctx)++;
}

static void test_inbox(void)
{
	struct inbox in;
	size_t n;
	int released = 0;

	CHECK_INT(inbox_init(&in, 0), 0);
	CHECK(!inbox_pending(&in));
	CHECK(!readable(in.wake_fd));
	inbox_post(&in, (struct event[]){ ping(1), ping(2) }, 2);
	CHECK(inbox_pending(&in));
	CHECK(readable(in.wake_fd));
	inbox_post(&in, (struct event[]){ ping(3) }, 1);

	struct event *evs = inbox_take(&in, &n);
	CHECK_INT(n, 3);
	for (size_t i = 0; i < n && i < 3; i++)
		CHECK_INT(evs[i].id, i + 1);
	CHECK(!inbox_pending(&in));
	CHECK(!readable(in.wake_fd)); /* the take cleared the wake-up */

	/* Many, to grow the vectors; order kept across the swap. */
	for (uint64_t i = 0; i < 1000; i++)
		inbox_post(&in, (struct event[]){ ping(i) }, 1);
	evs = inbox_take(&in, &n);
	CHECK_INT(n, 1000);
	bool in_order = true;
	for (size_t i = 0; i < n; i++)
		in_order = in_order && evs[i].id == i;
	CHECK(in_order);
	evs = inbox_take(&in, &n);
	CHECK_INT(n, 0);

	/* What nobody took is released once. */
	inbox_post(&in, (struct event[]){ ping(7), ping(8) }, 2);
	inbox_destroy(&in, no_release, &released);
	CHECK_INT(released, 2);
}

static void test_outboxes(void)
{
	struct inbox boxes[3], *inboxes[3] = { &boxes[0], &boxes[1], &boxes[2] };
	struct outboxes ob;
	size_t n;
	int released = 0;

	for (int i = 0; i < 3; i++)
		CHECK_INT(inbox_init(&boxes[i], i), 0);
	outboxes_init(&ob, 3, 0);
	outboxes_add(&ob, 1, ping(10));
	outboxes_add(&ob, 2, ping(20));
	outboxes_add(&ob, 1, ping(11));
	CHECK(!inbox_pending(&boxes[1])); /* nothing before the flush */
	outboxes_flush(&ob, inboxes);
	CHECK(!inbox_pending(&boxes[0]));
	CHECK(readable(boxes[1].wake_fd) && readable(boxes[2].wake_fd));
	struct event *evs = inbox_take(&boxes[1], &n);
	CHECK_INT(n, 2);
	if (n == 2)
		CHECK(evs[0].id == 10 && evs[1].id == 11);
	evs = inbox_take(&boxes[2], &n);
	CHECK_INT(n, 1);
	/* A second flush with nothing kept hands nothing over. */
	outboxes_flush(&ob, inboxes);
	CHECK(!inbox_pending(&boxes[1]) && !inbox_pending(&boxes[2]));

	outboxes_add(&ob, 2, ping(21));
	outboxes_destroy(&ob, no_release, &released);
	CHECK_INT(released, 1);
	for (int i = 0; i < 3; i++)
		inbox_destroy(&boxes[i], no_release, &released);
	CHECK_INT(released, 1);
}

/* ---- the ordering guarantee ------------------------------------------------ */

/* Worker 0 hands a line to workers 1 and 2. Right after the line is in
 * worker 1's inbox, the flushing thread stalls (the hook), as it would if
 * it lost the CPU there. Meanwhile worker 1 takes its inbox and answers to
 * worker 2. The answer must reach worker 2 after the line: the taking must
 * wait until the line is in every inbox. The stall lasts until the answer
 * was posted or STALL_MS passed, so a flush that unlocked inbox 1 early
 * fails this test every time, and a correct one costs STALL_MS. */
#define STALL_MS 200
#define LINE 1
#define ANSWER 2

struct race {
	struct inbox boxes[3], *inboxes[3];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool line_in_inbox_1, answer_posted;
};

static struct timespec deadline_in(int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)ms * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	return ts;
}

static void stall_after_append(int target, void *ctx)
{
	struct race *r = ctx;
	if (target != 1)
		return;
	pthread_mutex_lock(&r->lock);
	r->line_in_inbox_1 = true;
	pthread_cond_broadcast(&r->cond);
	struct timespec until = deadline_in(STALL_MS);
	while (!r->answer_posted)
		if (pthread_cond_timedwait(&r->cond, &r->lock, &until) != 0)
			break;
	pthread_mutex_unlock(&r->lock);
}

/* Worker 1: once the line is in its inbox, takes it and answers worker 2. */
static void *worker_1(void *arg)
{
	struct race *r = arg;
	pthread_mutex_lock(&r->lock);
	while (!r->line_in_inbox_1)
		pthread_cond_wait(&r->cond, &r->lock);
	pthread_mutex_unlock(&r->lock);

	size_t n = 0;
	struct event *evs = NULL;
	while (n == 0)
		evs = inbox_take(&r->boxes[1], &n);
	if (evs[0].id == LINE)
		inbox_post(&r->boxes[2], (struct event[]){ ping(ANSWER) }, 1);

	pthread_mutex_lock(&r->lock);
	r->answer_posted = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static void test_an_answer_never_overtakes_its_line(void)
{
	struct race r = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	struct outboxes ob;
	pthread_t t;
	int released = 0;

	for (int i = 0; i < 3; i++) {
		CHECK_INT(inbox_init(&r.boxes[i], i), 0);
		r.inboxes[i] = &r.boxes[i];
	}
	outboxes_init(&ob, 3, 0);
	ob.after_append = stall_after_append;
	ob.hook_ctx = &r;
	CHECK_INT(pthread_create(&t, NULL, worker_1, &r), 0);

	outboxes_add(&ob, 1, ping(LINE));
	outboxes_add(&ob, 2, ping(LINE));
	outboxes_flush(&ob, r.inboxes);
	pthread_join(t, NULL);

	size_t n;
	struct event *evs = inbox_take(&r.boxes[2], &n);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_INT(evs[0].id, LINE);
		CHECK_INT(evs[1].id, ANSWER);
	}
	outboxes_destroy(&ob, no_release, &released);
	for (int i = 0; i < 3; i++)
		inbox_destroy(&r.boxes[i], no_release, &released);
	CHECK_INT(released, 0);
}

int main(void)
{
	test_inbox();
	test_outboxes();
	test_an_answer_never_overtakes_its_line();
	return unit_finish("test_handoff");
}
