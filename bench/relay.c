/* relay: a chat relay that does nothing but relay, as a yardstick for chatd.
 *
 * bench/run-bench sets chatd's server CPU per million deliveries beside
 * this relay's. It speaks just enough of chatd's line protocol for
 * chatd-bench --proto chatd: "> Connected to the chat server as uN" on
 * connecting, then every line a client sends goes to every other client as
 * "[uN] line". No rooms, no commands, no nick rules, no rate or memory
 * limits, no cleaning of text: nothing beyond what it needs not to crash.
 *
 * Threads: one per CPU this process may run on (sched_getaffinity), each
 * with its own epoll over the connections it owns: it reads them, finishes
 * their short writes and closes them. The main thread accepts, and hands
 * each connection to the threads in turn by adding it to that thread's
 * epoll itself (epoll_ctl may be called from any thread).
 *
 * Writing: the thread that reads a client writes what it read to every
 * other client itself: the complete lines of one read, formatted once, in
 * one send() per recipient. Only a short write leaves bytes in a
 * recipient's output buffer, which its owner finishes on EPOLLOUT; while
 * any are left, later lines go behind them, so each sender's lines keep
 * their order. Two threads may write the same socket at once (two senders
 * on different threads), and their send()s and appends must not interleave
 * with each other or with a close; so each connection has a mutex, held
 * for one send() or append, and for the close. Chosen over handing lines
 * to the owning thread's queue (chatd's way, memcached's for connections):
 * that costs a queue, a wake-up and a second pass over every line, while
 * this costs an uncontended lock and unlock per delivery, far below the
 * send() beside it; and it is the shorter code. The yardstick is the
 * system calls a delivery needs, not a design.
 *
 * Connections live in a table indexed by fd whose slots are never freed: a
 * thread fanning out checks a slot's `open`, then again under its lock,
 * and a connection is closed under that lock, so no send() reaches a
 * closed fd (one reused meanwhile is a new client, who may have the line).
 *
 *     relay PORT [THREADS]      (PORT 0: a free one, said on stderr)
 */
#include "autoconf.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_SIZE 65536    /* bytes read at once, as chatd reads */
#define EPOLL_BATCH 256
#define MAX_THREADS 64
#define MAX_FDS 1048576

struct worker;

struct conn {
	pthread_mutex_t lock;  /* below it: the acceptor, writers, the closing owner */
	bool lock_made;        /* (the acceptor's alone) */
	atomic_bool open;
	int fd;
	struct worker *owner;
	bool broken;           /* a send failed: the owner will see the error and close */
	char *out;             /* what short writes left */
	size_t out_len, out_cap;
	/* The owner's alone, set before the connection reaches its epoll: */
	char nick[24];         /* "[uN] " */
	size_t nick_len;
	char *in;              /* an unfinished line */
	size_t in_len, in_cap;
};

struct worker {
	pthread_t thread;
	int epoll_fd;
	char *lines;           /* one read's complete lines, formatted */
	size_t lines_len, lines_cap;
	char buf[READ_SIZE];
};

static struct conn *conns;  /* indexed by fd */
static int conn_slots;
static atomic_int fd_top;   /* slots at or above it were never used */
static struct worker *workers;
static int worker_count;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "relay: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

/* Makes room for NEED bytes in *BUF of *CAP. */
static void reserve(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return;
	size_t n = *cap ? *cap : 4096;
	while (n < need)
		n *= 2;
	*buf = realloc(*buf, n);
	if (!*buf)
		die("out of memory");
	*cap = n;
}

static void conn_watch(struct conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.fd = c->fd };
	epoll_ctl(c->owner->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Sends DATA, or queues it behind what is waiting; under c->lock. */
static void conn_write(struct conn *c, const char *data, size_t len)
{
	if (c->broken)
		return;
	if (c->out_len == 0) {
		ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			c->broken = true;
			return;
		}
		size_t done = n > 0 ? (size_t)n : 0;
		if (done == len)
			return;
		data += done;
		len -= done;
		conn_watch(c, EPOLLIN | EPOLLOUT);
	}
	reserve(&c->out, &c->out_cap, c->out_len + len);
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
}

/* The owner, on EPOLLOUT. */
static void conn_flush(struct conn *c)
{
	pthread_mutex_lock(&c->lock);
	if (!c->broken && c->out_len > 0) {
		ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			c->broken = true;
		} else if (n > 0) {
			memmove(c->out, c->out + n, c->out_len - (size_t)n);
			c->out_len -= (size_t)n;
		}
	}
	if (c->broken || c->out_len == 0)
		conn_watch(c, EPOLLIN);
	pthread_mutex_unlock(&c->lock);
}

/* The owner, at EOF or an error. All of it under the lock: once it is
 * released, the acceptor may give the fd, and so the slot, to a new client. */
static void conn_close(struct conn *c)
{
	pthread_mutex_lock(&c->lock);
	atomic_store(&c->open, false);
	close(c->fd);
	c->fd = -1;
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_cap = 0;
	c->broken = false;
	free(c->in);
	c->in = NULL;
	c->in_len = c->in_cap = 0;
	pthread_mutex_unlock(&c->lock);
}

static void lines_add(struct worker *w, const struct conn *from, const char *a, size_t a_len,
		      const char *b, size_t b_len)
{
	size_t need = from->nick_len + a_len + b_len + 1;
	reserve(&w->lines, &w->lines_cap, w->lines_len + need);
	char *p = w->lines + w->lines_len;
	memcpy(p, from->nick, from->nick_len);
	p += from->nick_len;
	if (a_len > 0) /* (A is NULL when there is no unfinished line) */
		memcpy(p, a, a_len);
	p += a_len;
	memcpy(p, b, b_len);
	p[b_len] = '\n';
	w->lines_len += need;
}

/* w->lines to every open connection but FROM, one send() each. */
static void fan_out(struct worker *w, const struct conn *from)
{
	int top = atomic_load(&fd_top);
	for (int fd = 0; fd < top; fd++) {
		struct conn *c = &conns[fd];
		if (c == from || !atomic_load_explicit(&c->open, memory_order_relaxed))
			continue;
		pthread_mutex_lock(&c->lock);
		if (atomic_load_explicit(&c->open, memory_order_relaxed))
			conn_write(c, w->lines, w->lines_len);
		pthread_mutex_unlock(&c->lock);
	}
}

static void conn_read(struct worker *w, struct conn *c)
{
	ssize_t n = read(c->fd, w->buf, sizeof(w->buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	w->lines_len = 0;
	char *p = w->buf, *end = w->buf + n, *nl;
	while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
		lines_add(w, c, c->in, c->in_len, p, (size_t)(nl - p));
		c->in_len = 0;
		p = nl + 1;
	}
	if (p < end) {
		reserve(&c->in, &c->in_cap, c->in_len + (size_t)(end - p));
		memcpy(c->in + c->in_len, p, (size_t)(end - p));
		c->in_len += (size_t)(end - p);
	}
	if (w->lines_len > 0)
		fan_out(w, c);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev[EPOLL_BATCH];

	for (;;) {
		int n = epoll_wait(w->epoll_fd, ev, EPOLL_BATCH, -1);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		/* Each fd is in a batch once, and a slot changes owner only
		 * after its close: every event here is for one of ours. */
		for (int i = 0; i < n; i++) {
			struct conn *c = &conns[ev[i].data.fd];
			if (ev[i].events & EPOLLOUT)
				conn_flush(c);
			if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				conn_read(w, c);
		}
	}
	return NULL;
}

/* Sets up the slot of a new connection and gives it to its worker. */
static void conn_start(int fd, unsigned serial)
{
	static int next;
	struct conn *c = &conns[fd];
	if (!c->lock_made) {
		pthread_mutex_init(&c->lock, NULL);
		c->lock_made = true;
	}
	pthread_mutex_lock(&c->lock);
	c->fd = fd;
	c->owner = &workers[next++ % worker_count];
	c->nick_len = (size_t)snprintf(c->nick, sizeof(c->nick), "[u%u] ", serial);
	if (fd >= atomic_load(&fd_top))
		atomic_store(&fd_top, fd + 1);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
	if (epoll_ctl(c->owner->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
	/* Open before the greeting goes out: a client that has it may be
	 * sent lines at once, and a fan_out that found the slot still
	 * closed (it looks without the lock) would skip it. Nothing can
	 * reach it ahead of the greeting: writers wait for the lock. */
	atomic_store(&c->open, true);
	char hello[64];
	int len = snprintf(hello, sizeof(hello), "> Connected to the chat server as u%u\n", serial);
	conn_write(c, hello, (size_t)len);
	pthread_mutex_unlock(&c->lock);
}

static int threads_wanted(const char *arg)
{
	if (arg) {
		int n = atoi(arg);
		if (n < 1 || n > MAX_THREADS)
			die("THREADS must be 1 to %d", MAX_THREADS);
		return n;
	}
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 1;
	int n = CPU_COUNT(&set);
	return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : n;
}

static int listen_on(const char *port_arg)
{
	char *end;
	long port = strtol(port_arg, &end, 10);
	if (*end || end == port_arg || port < 0 || port > 65535)
		die("invalid port: %s", port_arg);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 4096) < 0)
		die("127.0.0.1:%ld: %s", port, strerror(errno));
	socklen_t len = sizeof(sin);
	getsockname(fd, (struct sockaddr *)&sin, &len);
	fprintf(stderr, "relay: %d threads, listening on 127.0.0.1:%d\n", worker_count, ntohs(sin.sin_port));
	return fd;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "Usage: relay PORT [THREADS]\n");
		return 2;
	}
	worker_count = threads_wanted(argv[2]);

	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("getrlimit: %s", strerror(errno));
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	conn_slots = rl.rlim_cur > MAX_FDS ? MAX_FDS : (int)rl.rlim_cur;
	conns = calloc((size_t)conn_slots, sizeof(*conns)); /* pages are touched as fds are used */
	workers = calloc((size_t)worker_count, sizeof(*workers));
	if (!conns || !workers)
		die("out of memory");

	int listen_fd = listen_on(argv[1]);
	for (int i = 0; i < worker_count; i++) {
		workers[i].epoll_fd = epoll_create1(EPOLL_CLOEXEC);
		if (workers[i].epoll_fd < 0)
			die("epoll_create1: %s", strerror(errno));
		int r = pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
		if (r != 0)
			die("pthread_create: %s", strerror(r));
	}

	unsigned serial = 0;
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				sleep(1); /* the listen queue waits meanwhile */
			else if (errno != EINTR && errno != ECONNABORTED)
				die("accept: %s", strerror(errno));
			continue;
		}
		if (fd >= conn_slots) {
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		conn_start(fd, ++serial);
	}
}
