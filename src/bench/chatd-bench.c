/* chatd-bench: a load generator for chatd (and IRC servers, to compare).
 *
 * Connects N clients (and joins them to K rooms), then starts the clock:
 * S senders each send M numbered, time-stamped lines, bounded by a window
 * of lines in flight or by a rate. Every client checks every line it gets:
 * lost, duplicated and misordered lines are counted, latency measured.
 *
 * The clients are spread over T threads (--threads, default 1), each with
 * its own epoll loop; client i belongs to thread i % T. A thread is the only
 * one to touch its clients. What threads share: the per-thread acks arrays
 * (written by their owner, summed by a sender's owner to move its window),
 * a few atomic counters, and the phase. The generator's own CPU is reported
 * too, as it shares the machine with the server.
 *
 * Each client speaks one protocol: chatd's lines, IRC, or, with --proto
 * mixed, either: every other client of a room speaks lines on --port, the
 * others IRC on --irc-port (with one room: even clients lines, odd ones
 * IRC), all in the same rooms (chatd's room benchK is IRC's #benchK), so
 * that every line crosses from one protocol to the other on its way to half
 * its recipients. With --proto ws, the clients speak IRC over WebSocket
 * (the IRCv3 transport, text frames) to --port, a web port's /ws: each
 * line a masked frame (the mask all zeros, which any server must take and
 * which costs the generator nothing), each line received a frame. */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_LIBURING
#include <liburing.h>
#endif

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "histogram.h"

#define MARK "~B "            /* starts the text of every benchmark line */
#define READ_CHUNK 65536
#define MAX_THREADS 64
#define REPORTED_DROPS 5      /* disconnections reported one by one */
#define MAX_RETRIES 5         /* connection attempts per client */
#define EPOLL_BATCH 512
#define READ_SLOT 16384       /* per client in a batch of io_uring reads */
#define READ_GROUP 16         /* clients read per io_uring_enter */

enum proto { PROTO_CHATD, PROTO_IRC, PROTO_MIXED /* the run only: a client speaks one */ };

enum client_state { C_IDLE, C_CONNECTING, C_TLS, C_UPGRADING, C_GREETING, C_JOINING, C_READY,
		    C_DEAD };

/* What the whole generator is doing; set by the main thread (and by the
 * thread that sees the last line arrive). */
enum phase { PH_CONNECT, PH_LOAD, PH_DONE };

struct client {
	int fd;
	SSL *ssl;                 /* --tls: reads from `in_tls`, writes to the socket */
	const char *in_tls;       /* what was read, for the SSL to decrypt (see tls_bio) */
	size_t in_tls_len;
	int index;
	int room;
	enum proto proto;         /* PROTO_CHATD or PROTO_IRC */
	enum client_state state;
	char *in;                 /* unfinished input line */
	size_t in_len, in_cap;
	char *out;                /* unsent output */
	size_t out_len, out_cap;
	bool want_out;
	bool got_bytes;           /* the server has said something */
	int retries;              /* connection attempts that were reset */
	int sender;               /* index among senders, or -1 */
	bool second;              /* --port2: connects there */
	uint64_t expected;        /* lines this client should get */
	uint64_t received;
	/* Receiving checks, per sender: */
	uint32_t *highest;        /* highest seq + 1 seen from each sender */
	uint8_t *seen;            /* [sender][seq] bits */
};

struct sender {
	int client;
	int room;
	uint32_t sent;            /* these two: only the owning thread */
	uint32_t complete;        /* lines every recipient has got, a prefix */
};

struct options {
	const char *host;
	const char *port;
	const char *irc_port;     /* --proto mixed: the IRC clients' port */
	const char *port2;        /* another node of a cluster: half the receivers */
	int clients, senders, rooms, threads;
	int connect_parallel;     /* connections in progress at once, all threads */
	uint32_t messages;
	double rate;              /* lines per second, all senders together; 0 = window */
	uint32_t window;
	double timeout;
	bool connect_only;        /* connect, hold the connections, send nothing */
	double hold;              /* seconds */
	long server_pid;
	enum proto proto;
	bool no_io_uring;         /* recvmsg per client even where io_uring works */
	bool tls;                 /* connect over TLS (the certificate is not checked) */
	bool ws;                  /* --proto ws: IRC over WebSocket */
};

/* Room for the receive time stamp of a recvmsg. */
union control {
	struct cmsghdr align;
	char buf[CMSG_SPACE(sizeof(struct timespec))];
};

#ifdef HAVE_LIBURING
struct uring_reads {
	struct io_uring ring;
	char *buffers;                 /* EPOLL_BATCH slots of READ_SLOT bytes */
	struct iovec iov[EPOLL_BATCH];
	struct msghdr mh[EPOLL_BATCH];
	union control control[EPOLL_BATCH];
	int result[EPOLL_BATCH];
};
#endif

/* One thread of the generator. */
struct gen {
	int index;
	pthread_t thread;
	int epoll_fd;
	int wake_fd;              /* eventfd: the phase changed, or acks for our senders */
	atomic_bool sleeping;     /* waiting in epoll with a sender held by its window */
	int *own;                 /* our clients */
	int own_count;
	int next_to_connect;      /* index into own */
	int *retry;               /* clients to connect again */
	int retry_count;
	int connecting;           /* connections started, not yet greeted */
	int ready;
	int *own_senders;
	int own_sender_count;
	uint32_t *acks;           /* [sender * messages + seq]: our clients that got it */
	bool *wake_owner;         /* [thread]: we acked lines of its senders this round */
	atomic_uint_least64_t deliveries;
	uint64_t duplicated, misordered, bad_lines;
	struct histogram latency;  /* sent -> read by the generator */
	struct histogram arrival;  /* sent -> in the recipient's socket (kernel time stamp) */
	struct histogram late;     /* paced lines: how long after its scheduled time each left */
	uint64_t unstamped;        /* lines read without a kernel time stamp */
	struct uring_reads *reads; /* NULL: no io_uring, recvmsg one by one */
	char read_buffer[READ_CHUNK];
	char plain[READ_CHUNK];    /* --tls: what a read decrypted to */
} __attribute__((aligned(64)));

static struct options opt = {
	.host = "127.0.0.1", .port = "7777", .clients = 0, .senders = 0, .rooms = 1, .threads = 1,
	.connect_parallel = 200,
	.messages = 0, .window = 64, .timeout = 60, .server_pid = 0, .proto = PROTO_CHATD,
};

static struct client *clients;
static struct sender *senders;
static int *room_size;
static atomic_int *room_dead;        /* clients of each room lost during the load */
static struct gen *gens;
static struct addrinfo *server_addr;      /* the line protocol's, or IRC's with --proto irc */
static struct addrinfo *irc_addr;         /* --proto mixed: the IRC clients' */
static struct addrinfo *second_addr;      /* --port2 */
static SSL_CTX *tls_ctx;                  /* --tls */
static uint64_t expected_deliveries;

static atomic_int phase = PH_CONNECT;
static atomic_int ready_total;
static atomic_int disconnected;
static atomic_int connect_retries;
static atomic_uint_least64_t lost_known;  /* lines for clients that were disconnected */
static atomic_uint_least64_t end_ns;     /* when the last line arrived */
static atomic_bool sender_lost;
static atomic_bool uring_reads;          /* some thread read with io_uring */
static uint64_t start_ns;                /* written before PH_LOAD is published */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int64_t timespec_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

/* The kernel stamps received data with CLOCK_REALTIME, the senders with
 * CLOCK_MONOTONIC: this is REALTIME - MONOTONIC, taken from the closest of a
 * few bracketing readings (error well under a microsecond). */
static _Atomic int64_t realtime_offset_ns; /* set as the load starts, read by all threads */

static void measure_realtime_offset(void)
{
	uint64_t best_width = UINT64_MAX;
	int64_t offset = 0;
	for (int i = 0; i < 16; i++) {
		struct timespec a, r, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		clock_gettime(CLOCK_REALTIME, &r);
		clock_gettime(CLOCK_MONOTONIC, &b);
		uint64_t width = (uint64_t)(timespec_ns(&b) - timespec_ns(&a));
		if (width < best_width) {
			best_width = width;
			offset = timespec_ns(&r) - (timespec_ns(&a) + timespec_ns(&b)) / 2;
		}
	}
	atomic_store_explicit(&realtime_offset_ns, offset, memory_order_relaxed);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "chatd-bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

static void *xalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p)
		die("out of memory");
	return p;
}

static void wake(struct gen *g)
{
	uint64_t one = 1;
	if (write(g->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		die("eventfd: %s", strerror(errno));
}

/* The main thread sleeps on this until all are ready, or all is done. */
static int main_wake_fd = -1;

static void wake_main(void)
{
	uint64_t one = 1;
	if (write(main_wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		die("eventfd: %s", strerror(errno));
}

/* Waits up to MS milliseconds (or until woken); -1: forever. */
static void main_wait(int ms)
{
	struct pollfd p = { .fd = main_wake_fd, .events = POLLIN };
	if (poll(&p, 1, ms) > 0) {
		uint64_t count;
		if (read(main_wake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
			die("eventfd: %s", strerror(errno));
	}
}

static void set_phase(int p)
{
	atomic_store(&phase, p);
	wake_main();
	for (int t = 0; t < opt.threads; t++)
		wake(&gens[t]);
}

/* ---- server figures from /proc ----------------------------------------- */

struct server_usage {
	double cpu_seconds;
	long rss_kib;
};

static bool read_server_usage(struct server_usage *u)
{
	char path[64], buf[4096];
	if (opt.server_pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/stat", opt.server_pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields after the ")" that ends the command name: utime is the 12th. */
	char *p = strrchr(buf, ')');
	unsigned long utime = 0, stime = 0;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
		return false;
	u->cpu_seconds = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
	/* The scheduler's own count is in nanoseconds, not 10 ms ticks. */
	double precise = 0;
	bool have_precise = false;
	snprintf(path, sizeof(path), "/proc/%ld/task", opt.server_pid);
	DIR *dir = opendir(path);
	if (dir) {
		struct dirent *de;
		while ((de = readdir(dir))) {
			if (de->d_name[0] == '.')
				continue;
			char task[64 + sizeof(de->d_name) + 16];
			unsigned long long ns;
			snprintf(task, sizeof(task), "%s/%s/schedstat", path, de->d_name);
			f = fopen(task, "r");
			if (!f)
				continue;
			if (fscanf(f, "%llu", &ns) == 1) {
				precise += (double)ns / 1e9;
				have_precise = true;
			}
			fclose(f);
		}
		closedir(dir);
	}
	if (have_precise)
		u->cpu_seconds = precise; /* (threads that ended are missing; chatd's do not end) */
	snprintf(path, sizeof(path), "/proc/%ld/status", opt.server_pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	u->rss_kib = 0;
	while (fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "VmRSS: %ld kB", &u->rss_kib) == 1)
			break;
	fclose(f);
	return true;
}

static double self_cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- losing a connection ----------------------------------------------- */

static void close_tls(struct client *c)
{
	SSL_free(c->ssl); /* and its BIOs */
	c->ssl = NULL;
}

static void drop_client(struct gen *g, struct client *c, const char *why)
{
	if (atomic_load(&phase) == PH_CONNECT) {
		/* A connection reset before the server said anything (a full
		 * accept queue can do that) is tried again, a few times. */
		if (!c->got_bytes && c->retries < MAX_RETRIES &&
		    (c->state == C_CONNECTING || c->state == C_TLS || c->state == C_UPGRADING ||
		     c->state == C_GREETING)) {
			epoll_ctl(g->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
			close_tls(c);
			close(c->fd);
			c->fd = -1;
			c->state = C_IDLE;
			c->out_len = 0;
			c->want_out = false;
			c->retries++;
			g->connecting--;
			g->retry[g->retry_count++] = c->index;
			atomic_fetch_add(&connect_retries, 1);
			return;
		}
		die("client %d: %s (while connecting)", c->index, why);
	}
	if (c->state == C_DEAD)
		return;
	int n = atomic_fetch_add(&disconnected, 1) + 1;
	if (n <= REPORTED_DROPS)
		fprintf(stderr, "chatd-bench: client %d: %s%s\n", c->index, why,
			n == REPORTED_DROPS ? " (further disconnections are only counted)" : "");
	epoll_ctl(g->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
	close_tls(c);
	close(c->fd);
	c->fd = -1;
	c->state = C_DEAD;
	c->out_len = 0;
	if (atomic_load(&phase) != PH_LOAD)
		return;
	if (c->sender >= 0) {
		/* Nobody will get the rest of its lines: the run cannot finish. */
		atomic_store(&sender_lost, true);
		set_phase(PH_DONE);
		return;
	}
	atomic_fetch_add(&room_dead[c->room], 1);
	atomic_fetch_add(&lost_known, c->expected - c->received);
}

/* ---- output ------------------------------------------------------------ */

static void watch(struct gen *g, struct client *c)
{
	struct epoll_event ev = { .events = EPOLLIN | (c->want_out ? EPOLLOUT : 0), .data.ptr = c };
	epoll_ctl(g->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* As send() does, over TLS: the SSL writes to the socket itself. */
static ssize_t tls_send(struct client *c, const char *data, size_t len)
{
	size_t n = 0;
	errno = 0;
	if (SSL_write_ex(c->ssl, data, len, &n) == 1)
		return (ssize_t)n;
	int e = SSL_get_error(c->ssl, 0);
	errno = e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? EAGAIN
		: e == SSL_ERROR_SYSCALL && errno ? errno : EPROTO;
	ERR_clear_error();
	return -1;
}

static void flush_out(struct gen *g, struct client *c)
{
	size_t done = 0;
	if (c->state == C_TLS)
		return; /* after the handshake */
	while (done < c->out_len) {
		ssize_t n = c->ssl ? tls_send(c, c->out + done, c->out_len - done)
				   : send(c->fd, c->out + done, c->out_len - done, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			char why[128];
			snprintf(why, sizeof(why), "send: %s", strerror(errno));
			drop_client(g, c, why);
			return;
		}
		done += (size_t)n;
	}
	if (done > 0) {
		memmove(c->out, c->out + done, c->out_len - done);
		c->out_len -= done;
	}
	bool want = c->out_len > 0;
	if (want != c->want_out) {
		c->want_out = want;
		watch(g, c);
	}
}

static void queue_out(struct client *c, const char *data, size_t len)
{
	if (c->state == C_DEAD)
		return;
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap * 2 : 4096;
		while (cap < c->out_len + len)
			cap *= 2;
		c->out = realloc(c->out, cap);
		if (!c->out)
			die("out of memory");
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
}

/* LEN bytes of lines (each ending in "\r\n" or "\n") to send: as they are,
 * or with --proto ws, each a masked text frame without its line end. */
static void send_lines(struct client *c, const char *data, size_t len)
{
	if (!opt.ws) {
		queue_out(c, data, len);
		return;
	}
	const char *p = data, *end = data + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);
		if (n && p[n - 1] == '\r')
			n--;
		unsigned char head[8] = { 0x81 };
		size_t h;
		if (n < 126) {
			head[1] = (unsigned char)(0x80 | n);
			h = 2;
		} else {
			head[1] = 0x80 | 126;
			head[2] = (unsigned char)(n >> 8);
			head[3] = (unsigned char)n;
			h = 4;
		}
		memset(head + h, 0, 4); /* the mask: XOR with zeros leaves the payload as it is */
		queue_out(c, (const char *)head, h + 4);
		queue_out(c, p, n);
		p = nl ? nl + 1 : end;
	}
}

static void send_text(struct client *c, const char *text)
{
	send_lines(c, text, strlen(text));
}

/* ---- the protocol dialects --------------------------------------------- */

static void greet(struct client *c)
{
	char buf[256];
	if (opt.ws && c->state != C_UPGRADING) {
		/* The upgrade first; its 101 brings us back here (took_ws). */
		snprintf(buf, sizeof(buf), "GET /ws HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Key: Y2hhdGQtYmVuY2gtMDAwMA==\r\n"
			 "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: text.ircv3.net\r\n\r\n",
			 opt.host, opt.port);
		queue_out(c, buf, strlen(buf));
		c->state = C_UPGRADING;
		return;
	}
	if (c->proto == PROTO_IRC) {
		snprintf(buf, sizeof(buf), "NICK b%d\r\nUSER b%d 0 * :chatd-bench\r\n", c->index, c->index);
		send_text(c, buf);
	}
	c->state = C_GREETING;
}

static void became_ready(struct gen *g, struct client *c)
{
	c->state = C_READY;
	g->ready++;
	if (atomic_fetch_add(&ready_total, 1) + 1 == opt.clients)
		wake_main();
}

static void join(struct gen *g, struct client *c)
{
	char buf[64];
	g->connecting--;
	if (c->proto == PROTO_IRC) {
		snprintf(buf, sizeof(buf), "JOIN #bench%d\r\n", c->room);
	} else if (opt.rooms > 1 || opt.proto == PROTO_MIXED) {
		/* Mixed: the room the IRC clients join as #bench0, not the lobby. */
		snprintf(buf, sizeof(buf), "/join bench%d\n", c->room);
	} else {
		became_ready(g, c); /* everyone starts in the lobby */
		return;
	}
	send_text(c, buf);
	c->state = C_JOINING;
}

static void send_bench_line(struct sender *s)
{
	struct client *c = &clients[s->client];
	char buf[128];
	int n;
	if (c->proto == PROTO_IRC)
		n = snprintf(buf, sizeof(buf), "PRIVMSG #bench%d :" MARK "%d %" PRIu32 " %016" PRIx64 "\r\n",
			     s->room, c->sender, s->sent, now_ns());
	else
		n = snprintf(buf, sizeof(buf), MARK "%d %" PRIu32 " %016" PRIx64 "\n", c->sender, s->sent,
			     now_ns());
	send_lines(c, buf, (size_t)n);
	s->sent++;
}

/* B in every byte of a 64-bit word. */
#define BYTES(b) (0x0101010101010101ULL * (b))

/* The top bit of each byte of X that is above LO and below HI (both < 128). */
static inline uint64_t bytes_between(uint64_t x, unsigned lo, unsigned hi)
{
	return (BYTES(127 + hi) - (x & BYTES(127))) & ~x & ((x & BYTES(127)) + BYTES(127 - lo)) & BYTES(128);
}

/* Eight lower-case hex digits at P, or false. Byte-parallel (no digit waits
 * for the one before): at millions of lines a second, the generator's own
 * parsing would otherwise be a good part of what it measures. */
static bool hex8(const char *p, uint32_t *ret)
{
	uint64_t x;
	memcpy(&x, p, 8);
	if ((bytes_between(x, '0' - 1, '9' + 1) | bytes_between(x, 'a' - 1, 'f' + 1)) != BYTES(128))
		return false;
	/* '0'-'9' are 0x30-0x39, 'a'-'f' 0x61-0x66: a letter has bit 6. */
	uint64_t v = (x & BYTES(0x0F)) + ((x >> 6) & BYTES(1)) * 9;
	v = __builtin_bswap64(v); /* the first digit in the top byte */
	v = (v | (v >> 4)) & 0x00FF00FF00FF00FFULL;
	v = (v | (v >> 8)) & 0x0000FFFF0000FFFFULL;
	v = (v | (v >> 16)) & 0x00000000FFFFFFFFULL;
	*ret = (uint32_t)v;
	return true;
}

/* TEXT, up to END, is "SENDER SEQ TIME": two decimal numbers and 16 hex
 * digits. */
static void on_bench_line(struct gen *g, struct client *c, const char *text, const char *end,
			  uint64_t now, uint64_t arrived)
{
	uint64_t field[3];
	const char *p = text;
	for (int i = 0; i < 2; i++) {
		if (*p < '0' || *p > '9') {
			g->bad_lines++;
			return;
		}
		uint64_t v = 0;
		while (*p >= '0' && *p <= '9' && v < UINT32_MAX)
			v = v * 10 + (uint64_t)(*p++ - '0');
		field[i] = v;
		if (*p++ != ' ') {
			g->bad_lines++;
			return;
		}
	}
	uint32_t high, low;
	if (end - p != 16 || !hex8(p, &high) || !hex8(p + 8, &low)) {
		g->bad_lines++;
		return;
	}
	field[2] = (uint64_t)high << 32 | low;
	if (field[0] >= (uint64_t)opt.senders || field[1] >= opt.messages) {
		g->bad_lines++;
		return;
	}
	int sender = (int)field[0];
	uint32_t seq = (uint32_t)field[1];
	uint64_t sent_at = field[2];
	struct sender *s = &senders[sender];
	if (s->room != c->room || s->client == c->index) {
		g->bad_lines++; /* a line for another room, or an echo */
		return;
	}
	size_t bit = (size_t)sender * opt.messages + seq;
	if (c->seen[bit / 8] & (1u << (bit % 8))) {
		g->duplicated++;
		return;
	}
	c->seen[bit / 8] |= (uint8_t)(1u << (bit % 8));
	if (seq + 1 < c->highest[sender])
		g->misordered++;
	else
		c->highest[sender] = seq + 1;
	c->received++;
	atomic_store_explicit(&g->deliveries, atomic_load_explicit(&g->deliveries, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	histogram_add(&g->latency, now > sent_at ? now - sent_at : 0);
	if (arrived)
		histogram_add(&g->arrival, arrived > sent_at ? arrived - sent_at : 0);
	else
		g->unstamped++;
	/* Only this thread writes its acks; the sender's thread reads them. */
	uint32_t *ack = &g->acks[bit];
	__atomic_store_n(ack, *ack + 1, __ATOMIC_RELAXED);
	int owner = opt.threads == 1 ? 0 : s->client % opt.threads;
	if (owner != g->index)
		g->wake_owner[owner] = true;
}

/* An error from the server, shown for the first few clients only. */
static void server_says(const struct client *c, const char *line)
{
	static atomic_int said;
	int n = atomic_fetch_add(&said, 1) + 1;
	if (n <= REPORTED_DROPS)
		fprintf(stderr, "chatd-bench: client %d: server says: %s\n", c->index, line);
	else if (n == REPORTED_DROPS + 1)
		fprintf(stderr, "chatd-bench: (more errors from the server not shown)\n");
}

static bool irc_numeric(const char *line, const char *code)
{
	/* ":server 001 nick ..." */
	const char *sp = strchr(line, ' ');
	return sp && strncmp(sp + 1, code, 3) == 0 && sp[4] == ' ';
}

static void on_line(struct gen *g, struct client *c, char *line, size_t len, uint64_t now, uint64_t arrived)
{
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	if (c->proto == PROTO_IRC) {
		if (line[0] == 'P' && strncmp(line, "PING ", 5) == 0) {
			line[1] = 'O'; /* PONG */
			char pong[600];
			int n = snprintf(pong, sizeof(pong), "%.*s\r\n", (int)len, line);
			send_lines(c, pong, (size_t)n < sizeof(pong) ? (size_t)n : sizeof(pong) - 1);
			return;
		}
		if (c->state == C_READY) {
			/* ":prefix PRIVMSG #chan :text": the first ':' after
			 * the prefix starts the text (strstr would cost the
			 * generator more than the rest of a line). */
			char *sp = line[0] == ':' ? memchr(line, ' ', len) : line;
			char *text = sp ? memchr(sp, ':', len - (size_t)(sp - line)) : NULL;
			if (text && text[-1] == ' ' && strncmp(text + 1, MARK, strlen(MARK)) == 0)
				on_bench_line(g, c, text + 1 + strlen(MARK), line + len, now, arrived);
			return;
		}
		if (c->state == C_GREETING && irc_numeric(line, "001")) {
			join(g, c);
		} else if (c->state == C_JOINING && irc_numeric(line, "366")) {
			became_ready(g, c);
		} else if (strncmp(line, "ERROR ", 6) == 0) {
			server_says(c, line);
		} else {
			const char *sp = strchr(line, ' ');
			if (sp && (sp[1] == '4' || sp[1] == '5') && sp[2] >= '0' && sp[2] <= '9' &&
			    sp[3] >= '0' && sp[3] <= '9' && sp[4] == ' ')
				server_says(c, line);
		}
		return;
	}
	if (line[0] == '[') {
		/* "[nick] ~B ...": the nick holds no ']' (the server's name rule). */
		char *close = memchr(line, ']', len);
		char *text = close && strncmp(close, "] " MARK, 2 + strlen(MARK)) == 0 ? close : NULL;
		if (text && c->state == C_READY)
			on_bench_line(g, c, text + 2 + strlen(MARK), line + len, now, arrived);
		return;
	}
	if (c->state == C_GREETING && strncmp(line, "> Connected to the chat server as ", 34) == 0) {
		join(g, c);
	} else if (c->state == C_JOINING && strncmp(line, "= you joined ", 13) == 0) {
		became_ready(g, c);
	} else if (line[0] == '!') {
		server_says(c, line);
	}
}

/* ---- input ------------------------------------------------------------- */

/* When the newest of the bytes a recvmsg got reached the socket (0: not
 * stamped). Earlier lines in the same read get this time too, which can
 * only make their arrival latency look longer, never shorter. */
static uint64_t arrival_time(struct msghdr *mh)
{
	uint64_t arrived = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
			struct timespec ts;
			memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
			int64_t mono = timespec_ns(&ts) -
				       atomic_load_explicit(&realtime_offset_ns, memory_order_relaxed);
			arrived = mono > 0 ? (uint64_t)mono : 0;
		}
	}
	return arrived;
}

/* Appends N bytes to C's input buffer (and keeps a NUL after them). */
static void keep_in(struct client *c, const char *p, size_t n)
{
	if (c->in_len + n + 1 > c->in_cap) {
		size_t cap = c->in_cap ? c->in_cap * 2 : 256;
		while (cap < c->in_len + n + 1)
			cap *= 2;
		c->in = realloc(c->in, cap);
		if (!c->in)
			die("out of memory");
		c->in_cap = cap;
	}
	memcpy(c->in + c->in_len, p, n);
	c->in_len += n;
	c->in[c->in_len] = '\0';
}

/* N bytes of lines from the server, read when ARRIVED. */
static void took_lines(struct gen *g, struct client *c, char *buf, size_t n, uint64_t arrived)
{
	uint64_t now = now_ns();
	char *p = buf, *end = buf + n;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t chunk = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (!nl) {
			keep_in(c, p, chunk);
			break;
		}
		if (c->in_len > 0) {
			keep_in(c, p, chunk);
			on_line(g, c, c->in, c->in_len, now, arrived);
			c->in_len = 0;
		} else {
			*nl = '\0';
			on_line(g, c, p, chunk, now, arrived);
		}
		if (c->state == C_DEAD)
			return;
		p = nl + 1;
	}
}

/* The size of the server frame at P (N bytes): header and payload, and
 * the header's in *RET_HEAD; 0 when not even its header is there. */
static size_t frame_size(const char *p, size_t n, size_t *ret_head)
{
	if (n < 2)
		return 0;
	size_t len = (unsigned char)p[1] & 0x7f, h = 2;
	if (len == 126) {
		if (n < 4)
			return 0;
		len = (size_t)(unsigned char)p[2] << 8 | (unsigned char)p[3];
		h = 4;
	} else if (len == 127) {
		if (n < 10)
			return 0;
		len = 0;
		for (int i = 2; i < 10; i++)
			len = len << 8 | (unsigned char)p[i];
		h = 10;
	}
	*ret_head = h;
	return h + len;
}

/* The payload of a whole frame, at P (LEN bytes, followed by a byte we may
 * write), as a line. */
static void took_frame(struct gen *g, struct client *c, unsigned char first, char *p, size_t len,
		       uint64_t now, uint64_t arrived)
{
	unsigned op = first & 0x0f;
	if (op == 0x8) {
		drop_client(g, c, "the server sent a WebSocket close frame");
		return;
	}
	if (op != 0x1 && op != 0x2)
		return; /* a pong: nothing to do */
	char saved = p[len];
	p[len] = '\0';
	on_line(g, c, p, len, now, arrived);
	if (c->state != C_DEAD)
		p[len] = saved;
}

/* N bytes from a WebSocket: the upgrade's response, then frames, taken
 * in place but for one cut by the read, kept in c->in. */
static void took_ws(struct gen *g, struct client *c, char *buf, size_t n, uint64_t arrived)
{
	uint64_t now = now_ns();
	char *p = buf, *end = buf + n;
	if (c->state == C_UPGRADING) {
		keep_in(c, p, n);
		char *blank = strstr(c->in, "\r\n\r\n");
		if (!blank)
			return;
		if (strncmp(c->in, "HTTP/1.1 101 ", 13) != 0) {
			char *eol = strstr(c->in, "\r\n");
			*eol = '\0';
			char why[160];
			snprintf(why, sizeof(why), "no WebSocket: %.120s", c->in);
			drop_client(g, c, why);
			return;
		}
		size_t rest = c->in_len - (size_t)(blank + 4 - c->in);
		p = end - rest; /* frames right behind the response */
		c->in_len = 0;
		greet(c);
	}
	while (p < end && c->state != C_DEAD) {
		size_t head, size;
		if (c->in_len) {
			/* Complete the frame the last read cut: its header, then
			 * its payload. */
			while (c->in_len < 10 && p < end && !frame_size(c->in, c->in_len, &head))
				keep_in(c, p++, 1);
			size = frame_size(c->in, c->in_len, &head);
			if (!size)
				return;
			size_t take = size - c->in_len < (size_t)(end - p) ? size - c->in_len : (size_t)(end - p);
			keep_in(c, p, take);
			p += take;
			if (c->in_len < size)
				return;
			c->in_len = 0;
			took_frame(g, c, (unsigned char)c->in[0], c->in + head, size - head, now, arrived);
			continue;
		}
		size = frame_size(p, (size_t)(end - p), &head);
		if (!size || size >= (size_t)(end - p)) {
			/* Cut by the read, or ending with it (no byte after it
			 * to write a NUL into): kept. */
			if (size == (size_t)(end - p)) {
				keep_in(c, p, size);
				c->in_len = 0;
				took_frame(g, c, (unsigned char)c->in[0], c->in + head, size - head, now, arrived);
				return;
			}
			keep_in(c, p, (size_t)(end - p));
			return;
		}
		took_frame(g, c, (unsigned char)p[0], p + head, size - head, now, arrived);
		p += size;
	}
}

static void took_input(struct gen *g, struct client *c, char *buf, size_t n, uint64_t arrived)
{
	if (opt.ws)
		took_ws(g, c, buf, n, arrived);
	else
		took_lines(g, c, buf, n, arrived);
}

/* The SSL's read side: what the client's last read brought (in_tls),
 * handed over without a copy of ours; nothing left says "retry". */
static int tls_bio_read(BIO *b, char *buf, int len)
{
	struct client *c = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	if (c->in_tls_len == 0) {
		BIO_set_retry_read(b);
		return -1;
	}
	size_t n = (size_t)len < c->in_tls_len ? (size_t)len : c->in_tls_len;
	memcpy(buf, c->in_tls, n);
	c->in_tls += n;
	c->in_tls_len -= n;
	return (int)n;
}

static long tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b, (void)num, (void)ptr;
	return cmd == BIO_CTRL_FLUSH;
}

static int tls_bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO_METHOD *tls_bio_method;

static const BIO_METHOD *tls_bio(void)
{
	return tls_bio_method; /* made in parse_options(), before any thread */
}

static void tls_bio_init(void)
{
	tls_bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "chatd-bench read");
	if (!tls_bio_method || !BIO_meth_set_read(tls_bio_method, tls_bio_read) ||
	    !BIO_meth_set_ctrl(tls_bio_method, tls_bio_ctrl) ||
	    !BIO_meth_set_create(tls_bio_method, tls_bio_create))
		die("out of memory");
}

/* N bytes read over TLS: the handshake's, then records to decrypt. */
static void took_tls(struct gen *g, struct client *c, const char *buf, size_t n, uint64_t arrived)
{
	c->in_tls = buf;
	c->in_tls_len = n;
	if (c->state == C_TLS) {
		int r = SSL_do_handshake(c->ssl);
		if (r != 1) {
			int e = SSL_get_error(c->ssl, r);
			if (e != SSL_ERROR_WANT_READ) {
				char why[160];
				snprintf(why, sizeof(why), "TLS handshake: %s",
					 ERR_reason_error_string(ERR_peek_last_error()) ?: "failed");
				ERR_clear_error();
				drop_client(g, c, why);
			}
			return;
		}
		greet(c);
		c->want_out = true;
		flush_out(g, c);
	}
	for (;;) {
		size_t got = 0;
		if (SSL_read_ex(c->ssl, g->plain, sizeof(g->plain), &got) == 1) {
			took_input(g, c, g->plain, got, arrived);
			if (c->state == C_DEAD)
				return;
			continue;
		}
		int e = SSL_get_error(c->ssl, 0);
		ERR_clear_error();
		if (e == SSL_ERROR_WANT_READ)
			return;
		drop_client(g, c, e == SSL_ERROR_ZERO_RETURN ? "the server closed the connection"
							      : "TLS: a bad record");
		return;
	}
}

/* What one read returned: N > 0 bytes, 0 for EOF, or -errno. Returns false
 * when the client is gone or nothing more is waiting. */
static bool took(struct gen *g, struct client *c, char *buf, ssize_t n, size_t size, uint64_t arrived)
{
	if (n < 0) {
		if (n == -EINTR)
			return true;
		if (n == -EAGAIN)
			return false;
		char why[128];
		snprintf(why, sizeof(why), "recv: %s", strerror((int)-n));
		drop_client(g, c, why);
		return false;
	}
	if (n == 0) {
		drop_client(g, c, "the server closed the connection");
		return false;
	}
	c->got_bytes = true;
	if (c->ssl) {
		took_tls(g, c, buf, (size_t)n, arrived);
		c->in_tls_len = 0; /* all taken, or of no use: BUF is not ours */
	} else
		took_input(g, c, buf, (size_t)n, arrived);
	return c->state != C_DEAD && (size_t)n == size; /* a full buffer: there may be more */
}

static void read_in(struct gen *g, struct client *c)
{
	for (;;) {
		struct iovec iov = { .iov_base = g->read_buffer, .iov_len = sizeof(g->read_buffer) };
		union control control;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = control.buf, .msg_controllen = sizeof(control.buf) };
		ssize_t n = recvmsg(c->fd, &mh, 0);
		if (n < 0)
			n = -errno;
		if (!took(g, c, g->read_buffer, n, sizeof(g->read_buffer), n > 0 ? arrival_time(&mh) : 0))
			return;
	}
}

#ifdef HAVE_LIBURING
/* Reads every ready client with one io_uring_enter instead of a recvmsg
 * each: the generator shares the cores with the server, so its system
 * calls are CPU the server does not get. */
static void read_batch(struct gen *g, struct client **ready, int count)
{
	struct uring_reads *u = g->reads;
	for (int i = 0; i < count; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
		u->iov[i] = (struct iovec){ .iov_base = u->buffers + (size_t)i * READ_SLOT, .iov_len = READ_SLOT };
		u->mh[i] = (struct msghdr){ .msg_iov = &u->iov[i], .msg_iovlen = 1,
					    .msg_control = u->control[i].buf,
					    .msg_controllen = sizeof(u->control[i].buf) };
		io_uring_prep_recvmsg(sqe, ready[i]->fd, &u->mh[i], MSG_DONTWAIT);
		io_uring_sqe_set_data64(sqe, (uint64_t)i);
		u->result[i] = -EAGAIN;
	}
	int r;
	for (int submitted = 0; submitted < count; submitted += r) {
		r = io_uring_submit(&u->ring);
		if (r == -EINTR || r == -EAGAIN || r == -EBUSY)
			r = 0;
		else if (r <= 0)
			die("io_uring: %s", r ? strerror(-r) : "nothing submitted");
	}
	unsigned reaped = 0;
	while (reaped < (unsigned)count) {
		struct io_uring_cqe *cqe;
		r = io_uring_wait_cqe(&u->ring, &cqe);
		if (r == -EINTR)
			continue;
		if (r < 0)
			die("io_uring: %s", strerror(-r));
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&u->ring, head, cqe) {
			u->result[io_uring_cqe_get_data64(cqe)] = cqe->res;
			seen++;
		}
		io_uring_cq_advance(&u->ring, seen);
		reaped += seen;
	}
	for (int i = 0; i < count; i++) {
		struct client *c = ready[i];
		if (c->state == C_DEAD)
			continue;
		int n = u->result[i];
		/* A full slot leaves the rest for the next round: epoll is
		 * level-triggered, and a recvmsg now would cost a system call
		 * plus one more to see EAGAIN. */
		took(g, c, u->buffers + (size_t)i * READ_SLOT, n, READ_SLOT, n > 0 ? arrival_time(&u->mh[i]) : 0);
	}
}

static void start_uring_reads(struct gen *g)
{
	struct uring_reads *u = calloc(1, sizeof(*u));
	if (!u)
		die("out of memory");
	u->buffers = malloc((size_t)EPOLL_BATCH * READ_SLOT);
	if (!u->buffers)
		die("out of memory");
	if (io_uring_queue_init(EPOLL_BATCH, &u->ring, 0) < 0) {
		free(u->buffers);
		free(u);
		return; /* recvmsg, one by one */
	}
	g->reads = u;
	atomic_store(&uring_reads, true);
}
#endif

/* ---- connecting -------------------------------------------------------- */

static const struct addrinfo *client_addr(const struct client *c)
{
	if (c->second)
		return second_addr;
	return opt.proto == PROTO_MIXED && c->proto == PROTO_IRC ? irc_addr : server_addr;
}

static const char *client_port(const struct client *c)
{
	if (c->second)
		return opt.port2;
	return opt.proto == PROTO_MIXED && c->proto == PROTO_IRC ? opt.irc_port : opt.port;
}

static void start_connect(struct gen *g, struct client *c)
{
	const struct addrinfo *addr = client_addr(c);
	c->fd = socket(addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket: %s (raise the open files limit, ulimit -n)", strerror(errno));
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(c->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
	if (connect(c->fd, addr->ai_addr, addr->ai_addrlen) < 0 && errno != EINPROGRESS)
		die("connect to %s:%s: %s", opt.host, client_port(c), strerror(errno));
	c->state = C_CONNECTING;
	g->connecting++;
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.ptr = c };
	epoll_ctl(g->epoll_fd, EPOLL_CTL_ADD, c->fd, &ev);
}

static void connect_more(struct gen *g)
{
	int parallel = (opt.connect_parallel + opt.threads - 1) / opt.threads;
	while (g->retry_count > 0 && g->connecting < parallel)
		start_connect(g, &clients[g->retry[--g->retry_count]]);
	while (g->next_to_connect < g->own_count && g->connecting < parallel)
		start_connect(g, &clients[g->own[g->next_to_connect++]]);
}

static void on_connected(struct gen *g, struct client *c)
{
	int err = 0;
	socklen_t len = sizeof(err);
	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
	if (err == ECONNREFUSED && atomic_load(&ready_total) == 0)
		die("cannot connect to %s:%s: %s", opt.host, client_port(c), strerror(err));
	if (err) {
		char why[128];
		snprintf(why, sizeof(why), "connect: %s", strerror(err));
		drop_client(g, c, why);
		return;
	}
	if (opt.tls) {
		/* The handshake's replies come through rbio (see took_tls), so
		 * that TLS is read as everything else is: in batches, with the
		 * kernel's time stamps. */
		c->ssl = SSL_new(tls_ctx);
		BIO *rbio = BIO_new(tls_bio());
		BIO *wbio = BIO_new_socket(c->fd, BIO_NOCLOSE);
		if (!c->ssl || !rbio || !wbio)
			die("out of memory");
		BIO_set_data(rbio, c);
		SSL_set_bio(c->ssl, rbio, wbio);
		SSL_set_connect_state(c->ssl);
		c->state = C_TLS;
		c->want_out = false;
		watch(g, c); /* connected: no more EPOLLOUT, or it would spin */
		int r = SSL_do_handshake(c->ssl); /* the ClientHello */
		if (r != 1 && SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ) {
			ERR_clear_error();
			drop_client(g, c, "TLS: cannot send the ClientHello");
		}
		return;
	}
	greet(c);
	c->want_out = true;
	flush_out(g, c);
}

/* ---- the loop ---------------------------------------------------------- */

/* epoll_wait to the microsecond where the kernel has epoll_pwait2 (5.11):
 * paced lines would otherwise leave up to a millisecond late, and at 1000
 * lines/s two would go out together. */
static int wait_events(struct gen *g, struct epoll_event *events, int timeout_us)
{
#ifdef HAVE_EPOLL_PWAIT2
	static atomic_bool no_pwait2;
	if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
		struct timespec ts = { timeout_us / 1000000, (long)(timeout_us % 1000000) * 1000 };
		int n = epoll_pwait2(g->epoll_fd, events, EPOLL_BATCH, &ts, NULL);
		if (n >= 0 || (errno != ENOSYS && errno != EPERM)) /* EPERM: a seccomp filter */
			return n;
		atomic_store(&no_pwait2, true);
	}
#endif
	return epoll_wait(g->epoll_fd, events, EPOLL_BATCH, (timeout_us + 999) / 1000);
}

static void poll_once(struct gen *g, int timeout_us)
{
	struct epoll_event events[EPOLL_BATCH];
	int n = wait_events(g, events, timeout_us);
	if (n < 0 && errno != EINTR)
		die("epoll_wait: %s", strerror(errno));
#ifdef HAVE_LIBURING
	if (g->reads && n > 1) {
		struct client *ready[EPOLL_BATCH];
		int count = 0;
		for (int i = 0; i < n; i++) {
			struct client *c = events[i].data.ptr;
			if (c && c->state != C_DEAD && c->state != C_CONNECTING &&
			    (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
				ready[count++] = c;
				events[i].events &= ~(uint32_t)(EPOLLIN | EPOLLHUP | EPOLLERR);
			}
		}
		/* In groups small enough that what the kernel copied in is
		 * still in the CPU's cache when it is parsed. */
		for (int i = 0; i < count; i += READ_GROUP)
			read_batch(g, ready + i, count - i < READ_GROUP ? count - i : READ_GROUP);
	}
#endif
	for (int i = 0; i < n; i++) {
		struct client *c = events[i].data.ptr;
		if (!c) {
			uint64_t count;
			if (read(g->wake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
				die("eventfd: %s", strerror(errno));
			continue;
		}
		if (c->state == C_DEAD)
			continue;
		if (c->state == C_CONNECTING) {
			on_connected(g, c);
			continue;
		}
		if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			read_in(g, c);
		if (c->state != C_DEAD && c->out_len > 0)
			flush_out(g, c);
	}
}

static uint64_t total_deliveries(void)
{
	uint64_t sum = 0;
	for (int t = 0; t < opt.threads; t++)
		sum += atomic_load_explicit(&gens[t].deliveries, memory_order_relaxed);
	return sum;
}

/* Moves the sender's window on over lines that every live recipient has. */
static bool advance_complete(int si)
{
	struct sender *s = &senders[si];
	int dead = atomic_load_explicit(&room_dead[s->room], memory_order_relaxed);
	uint64_t need = (uint64_t)(room_size[s->room] - 1 - dead);
	uint32_t before = s->complete;
	while (s->complete < s->sent) {
		size_t at = (size_t)si * opt.messages + s->complete;
		uint64_t sum = 0;
		for (int t = 0; t < opt.threads; t++)
			sum += __atomic_load_n(&gens[t].acks[at], __ATOMIC_RELAXED);
		if (sum < need)
			break;
		s->complete++;
	}
	return s->complete != before;
}

/* Paced: line K of all (sender K % S's) is due K / rate seconds after the
 * start. */
static uint64_t due_ns(uint64_t k)
{
	return start_ns + (uint64_t)((double)k / opt.rate * 1e9);
}

/* Sends what the window or the rate allows; returns the epoll timeout in
 * microseconds until something more is due. */
static int refill(struct gen *g, uint64_t now)
{
	if (opt.rate > 0) {
		uint64_t total = (uint64_t)opt.senders * opt.messages;
		uint64_t due = (uint64_t)((double)(now - start_ns) / 1e9 * opt.rate) + 1;
		if (due > total)
			due = total;
		bool more = false;
		for (int i = 0; i < g->own_sender_count; i++) {
			int si = g->own_senders[i];
			struct sender *s = &senders[si];
			/* Line k of all is sender k % S's; this one's share of the first DUE: */
			uint64_t quota = due > (uint64_t)si ? (due - (uint64_t)si - 1) / (uint64_t)opt.senders + 1 : 0;
			if (quota > opt.messages)
				quota = opt.messages;
			bool any = false;
			while (s->sent < quota) {
				uint64_t scheduled = due_ns((uint64_t)s->sent * (uint64_t)opt.senders + (uint64_t)si);
				uint64_t t = now_ns();
				histogram_add(&g->late, t > scheduled ? t - scheduled : 0);
				send_bench_line(s);
				any = true;
			}
			if (any)
				flush_out(g, &clients[s->client]);
			if (s->sent < opt.messages)
				more = true;
		}
		if (!more)
			return 100000;
		uint64_t next = due_ns(due);
		now = now_ns(); /* sending took time */
		return next > now ? (int)((next - now + 999) / 1000) : 0;
	}
	bool held = false;
	for (int i = 0; i < g->own_sender_count; i++) {
		int si = g->own_senders[i];
		struct sender *s = &senders[si];
		if (clients[s->client].state == C_DEAD)
			continue;
		advance_complete(si);
		bool any = false;
		while (s->sent < opt.messages && s->sent - s->complete < opt.window) {
			send_bench_line(s);
			any = true;
		}
		if (any)
			flush_out(g, &clients[s->client]);
		if (s->sent < opt.messages)
			held = true;
	}
	if (!held || opt.threads == 1)
		return 100000;
	/* Held by the window, which acks on other threads may open: tell them
	 * to wake us, then look once more, so that no wake-up is missed. */
	atomic_store(&g->sleeping, true);
	atomic_thread_fence(memory_order_seq_cst);
	for (int i = 0; i < g->own_sender_count; i++) {
		if (advance_complete(g->own_senders[i])) {
			atomic_store(&g->sleeping, false);
			return 0;
		}
	}
	return 10000; /* wake-ups are sure; this is only a safety net */
}

static void wake_owners(struct gen *g)
{
	atomic_thread_fence(memory_order_seq_cst);
	for (int t = 0; t < opt.threads; t++) {
		if (!g->wake_owner[t])
			continue;
		g->wake_owner[t] = false;
		if (atomic_exchange(&gens[t].sleeping, false))
			wake(&gens[t]);
	}
}

static void check_finished(void)
{
	if (total_deliveries() + atomic_load(&lost_known) < expected_deliveries)
		return;
	uint64_t zero = 0;
	if (atomic_compare_exchange_strong(&end_ns, &zero, now_ns()))
		set_phase(PH_DONE);
}

static void *gen_main(void *arg)
{
	struct gen *g = arg;

	while (atomic_load(&phase) == PH_CONNECT) {
		connect_more(g);
		poll_once(g, g->ready < g->own_count ? 100000 : 1000000);
	}
	if (opt.connect_only) {
		while (atomic_load(&phase) != PH_DONE)
			poll_once(g, 1000000);
		return NULL;
	}
#ifdef HAVE_LIBURING
	if (!opt.no_io_uring)
		start_uring_reads(g);
#endif
	while (atomic_load(&phase) == PH_LOAD) {
		int timeout = refill(g, now_ns());
		poll_once(g, timeout);
		atomic_store(&g->sleeping, false);
		wake_owners(g);
		check_finished();
	}
#ifdef HAVE_LIBURING
	if (g->reads) {
		io_uring_queue_exit(&g->reads->ring);
		free(g->reads->buffers);
		free(g->reads);
		g->reads = NULL;
	}
#endif
	return NULL;
}

/* ---- the command line -------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: chatd-bench [--host H] [--port P] --clients N --senders S --messages M\n"
		"                   [--rate R | --window W] [--rooms K] [--threads T] [--timeout SEC]\n"
		"                   [--connect-only SECONDS] [--connect-parallel C] [--pid SERVER_PID]\n"
		"                   [--proto chatd|irc|mixed|ws [--irc-port P]] [--tls] [--no-io-uring]\n"
		"\n"
		"  --host H           server address (default 127.0.0.1)\n"
		"  --port P           server port (default 7777)\n"
		"  --clients N        connections (all connected and joined before the clock starts)\n"
		"  --senders S        how many of them send (spread over the rooms)\n"
		"  --messages M       lines each sender sends\n"
		"  --window W         lines a sender may have in flight, not yet at every recipient (default 64)\n"
		"  --rate R           instead: lines per second, all senders together\n"
		"  --rooms K          rooms the clients are spread over (default 1)\n"
		"  --threads T        generator threads, each with its own share of the clients (default 1)\n"
		"  --timeout SEC      give up connecting, or waiting for lines, after SEC seconds (default 60)\n"
		"  --connect-only SEC connect and join, hold the connections SEC seconds, send nothing\n"
		"  --connect-parallel C  connections being set up at once (default 200)\n"
		"  --pid PID          report the server's CPU time and memory (from /proc)\n"
		"  --proto irc        drive an IRC server (NICK/USER, JOIN, PRIVMSG, PONG)\n"
		"  --proto mixed      every other client of a room speaks chatd's lines (to --port),\n"
		"                     the others IRC (to --irc-port, needed): room benchK is #benchK\n"
		"  --irc-port P       the server's IRC port, for --proto mixed\n"
		"  --port2 P          every other client of a room that does not send connects to P:\n"
		"                     another node of a cluster of chatd servers\n"
		"  --proto ws         IRC over WebSocket to --port, a web port (GET /ws, text frames)\n"
		"  --tls              connect over TLS (to the server's TLS ports; the certificate is\n"
		"                     not checked: this is a load generator)\n"
		"  --no-io-uring      read with one recvmsg per client, not in io_uring batches\n"
		"\n"
		"Exit status: 0 all lines arrived once and in order, 1 error, 2 usage,\n"
		"3 lines lost, duplicated or misordered.\n");
}

static double parse_number(const char *name, const char *s, double min, double max)
{
	char *end;
	double v = strtod(s, &end);
	if (*end || end == s || v < min || v > max) {
		fprintf(stderr, "chatd-bench: invalid %s: %s\n", name, s);
		usage(stderr);
		exit(2);
	}
	return v;
}

static void parse_options(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, 'H' },     { "port", required_argument, NULL, 'P' },
		{ "clients", required_argument, NULL, 'n' },  { "senders", required_argument, NULL, 's' },
		{ "messages", required_argument, NULL, 'm' }, { "rate", required_argument, NULL, 'r' },
		{ "window", required_argument, NULL, 'w' },   { "rooms", required_argument, NULL, 'k' },
		{ "timeout", required_argument, NULL, 't' },  { "connect-only", required_argument, NULL, 'c' },
		{ "pid", required_argument, NULL, 'p' },      { "proto", required_argument, NULL, 'x' },
		{ "threads", required_argument, NULL, 'T' },  { "connect-parallel", required_argument, NULL, 'C' },
		{ "no-io-uring", no_argument, NULL, 'U' },    { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },        { "irc-port", required_argument, NULL, 'I' },
		{ "port2", required_argument, NULL, '2' },
		{ "tls", no_argument, NULL, 'L' },
		{ NULL, 0, NULL, 0 },
	};
	int o;
	bool window_given = false;
	while ((o = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (o) {
		case 'H': opt.host = optarg; break;
		case 'U': opt.no_io_uring = true; break;
		case 'L': opt.tls = true; break;
		case 'P': opt.port = optarg; break;
		case 'I': opt.irc_port = optarg; break;
		case '2': opt.port2 = optarg; break;
		case 'n': opt.clients = (int)parse_number("--clients", optarg, 1, 1000000); break;
		case 's': opt.senders = (int)parse_number("--senders", optarg, 0, 100000); break;
		case 'm': opt.messages = (uint32_t)parse_number("--messages", optarg, 1, 100000000); break;
		case 'r': opt.rate = parse_number("--rate", optarg, 0.001, 1e9); break;
		case 'w': opt.window = (uint32_t)parse_number("--window", optarg, 1, 1e9); window_given = true; break;
		case 'k': opt.rooms = (int)parse_number("--rooms", optarg, 1, 100000); break;
		case 'C': opt.connect_parallel = (int)parse_number("--connect-parallel", optarg, 1, 1000000); break;
		case 'T': opt.threads = (int)parse_number("--threads", optarg, 1, MAX_THREADS); break;
		case 't': opt.timeout = parse_number("--timeout", optarg, 0.1, 86400); break;
		case 'c':
			opt.connect_only = true;
			opt.hold = parse_number("--connect-only", optarg, 0, 86400);
			break;
		case 'p': opt.server_pid = (long)parse_number("--pid", optarg, 1, 1e9); break;
		case 'x':
			if (strcmp(optarg, "irc") == 0)
				opt.proto = PROTO_IRC;
			else if (strcmp(optarg, "chatd") == 0)
				opt.proto = PROTO_CHATD;
			else if (strcmp(optarg, "mixed") == 0)
				opt.proto = PROTO_MIXED;
			else if (strcmp(optarg, "ws") == 0)
				opt.proto = PROTO_IRC, opt.ws = true;
			else
				die("--proto must be chatd, irc, mixed or ws, not %s", optarg);
			break;
		case 'V': printf("chatd-bench %s\n", PACKAGE_VERSION); exit(0);
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc || opt.clients == 0) {
		usage(stderr);
		exit(2);
	}
	if (opt.proto == PROTO_MIXED && !opt.irc_port)
		die("--proto mixed needs --irc-port");
	if (opt.tls && opt.proto == PROTO_MIXED)
		die("--tls is not for --proto mixed");
	if (opt.port2 && opt.proto == PROTO_MIXED)
		die("--port2 is not for --proto mixed");
	if (opt.irc_port && opt.proto != PROTO_MIXED)
		die("--irc-port is for --proto mixed (with --proto irc, --port is the IRC port)");
	if (opt.rate > 0 && window_given)
		die("--rate and --window exclude each other");
	if (!opt.connect_only && (opt.senders == 0 || opt.messages == 0))
		die("--senders and --messages are needed (or --connect-only)");
	if (opt.senders > opt.clients)
		die("--senders cannot exceed --clients");
	if (opt.rooms > opt.clients)
		die("--rooms cannot exceed --clients");
	if (opt.threads > opt.clients)
		opt.threads = opt.clients;
	if (opt.tls) {
		tls_ctx = SSL_CTX_new(TLS_client_method());
		if (!tls_ctx)
			die("TLS: cannot make a context");
		tls_bio_init();
		SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
		/* flush_out offers what is left of a buffer that may have moved.
		 * Idle connections give their record buffers back (17 KiB each
		 * way); under load, freed and taken again at every read, they
		 * would cost more than the parsing. */
		SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
					  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
					  (opt.connect_only ? SSL_MODE_RELEASE_BUFFERS : 0));
	}
	if (opt.connect_only)
		opt.senders = 0;
	/* The duplicate check keeps a bit per (client, sender, line). */
	double bitmap_bytes = (double)opt.clients * opt.senders * opt.messages / 8;
	if (bitmap_bytes > 4e9)
		die("--clients x --senders x --messages is too large (%.1f GB of bookkeeping)", bitmap_bytes / 1e9);
}

static void raise_fd_limit(void)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)opt.clients + 2 * (rlim_t)opt.threads + 64;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need) {
		rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need ? rl.rlim_max : need;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < need)
			fprintf(stderr, "chatd-bench: warning: the open files limit %lu is below %d clients\n",
				(unsigned long)rl.rlim_cur, opt.clients);
	}
}

/* ---- setting up -------------------------------------------------------- */

static void setup(void)
{
	clients = xalloc(sizeof(*clients) * (size_t)opt.clients);
	room_size = xalloc(sizeof(*room_size) * (size_t)opt.rooms);
	room_dead = xalloc(sizeof(*room_dead) * (size_t)opt.rooms);
	int *room_senders = xalloc(sizeof(int) * (size_t)opt.rooms);
	senders = xalloc(sizeof(*senders) * (size_t)(opt.senders ? opt.senders : 1));
	for (int i = 0; i < opt.clients; i++) {
		clients[i].index = i;
		clients[i].room = i % opt.rooms;
		/* Mixed: every other client of a room speaks IRC (with one room,
		 * the odd ones), so that each room, and its senders (its first
		 * clients), have both protocols. */
		clients[i].proto = opt.proto == PROTO_MIXED && (i / opt.rooms) % 2 ? PROTO_IRC :
				   opt.proto == PROTO_MIXED ? PROTO_CHATD : opt.proto;
		clients[i].sender = -1;
		/* --port2: every other client of a room on the other node; the
		 * senders (the first ones) stay on --port. */
		clients[i].second = opt.port2 && i >= opt.senders && (i / opt.rooms) % 2;
		clients[i].fd = -1;
		room_size[clients[i].room]++;
	}
	/* Senders spread over the rooms: client i is in room i % K. */
	for (int s = 0; s < opt.senders; s++) {
		senders[s].client = s;
		senders[s].room = clients[s].room;
		clients[s].sender = s;
		room_senders[senders[s].room]++;
	}
	if (!opt.connect_only) {
		for (int i = 0; i < opt.clients; i++) {
			struct client *c = &clients[i];
			c->highest = xalloc(sizeof(uint32_t) * (size_t)opt.senders);
			c->seen = xalloc(((size_t)opt.senders * opt.messages + 7) / 8);
			c->expected = (uint64_t)(room_senders[c->room] - (c->sender >= 0)) * opt.messages;
			expected_deliveries += c->expected;
		}
	}
	free(room_senders);

	main_wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (main_wake_fd < 0)
		die("eventfd: %s", strerror(errno));
	gens = aligned_alloc(64, sizeof(*gens) * (size_t)opt.threads);
	if (!gens)
		die("out of memory");
	memset(gens, 0, sizeof(*gens) * (size_t)opt.threads);
	for (int t = 0; t < opt.threads; t++) {
		struct gen *g = &gens[t];
		g->index = t;
		g->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
		g->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (g->epoll_fd < 0 || g->wake_fd < 0)
			die("epoll/eventfd: %s", strerror(errno));
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
		epoll_ctl(g->epoll_fd, EPOLL_CTL_ADD, g->wake_fd, &ev);
		g->own = xalloc(sizeof(int) * (size_t)(opt.clients / opt.threads + 1));
		g->retry = xalloc(sizeof(int) * (size_t)(opt.clients / opt.threads + 1));
		g->own_senders = xalloc(sizeof(int) * (size_t)(opt.senders / opt.threads + 1));
		g->wake_owner = xalloc(sizeof(bool) * (size_t)opt.threads);
		if (!opt.connect_only)
			g->acks = xalloc(sizeof(uint32_t) * (size_t)opt.senders * opt.messages);
	}
	for (int i = 0; i < opt.clients; i++) {
		struct gen *g = &gens[i % opt.threads];
		g->own[g->own_count++] = i;
	}
	for (int s = 0; s < opt.senders; s++) {
		struct gen *g = &gens[senders[s].client % opt.threads];
		g->own_senders[g->own_sender_count++] = s;
	}
}

static void start_threads(void)
{
	for (int t = 0; t < opt.threads; t++) {
		int r = pthread_create(&gens[t].thread, NULL, gen_main, &gens[t]);
		if (r != 0)
			die("pthread_create: %s", strerror(r));
	}
}

static void join_threads(void)
{
	for (int t = 0; t < opt.threads; t++)
		pthread_join(gens[t].thread, NULL);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	parse_options(argc, argv);
	raise_fd_limit();

	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	int r = getaddrinfo(opt.host, opt.port, &hints, &server_addr);
	if (r != 0)
		die("cannot resolve the host: %s", gai_strerror(r));
	if (opt.proto == PROTO_MIXED) {
		r = getaddrinfo(opt.host, opt.irc_port, &hints, &irc_addr);
		if (r != 0)
			die("cannot resolve the host or the IRC port: %s", gai_strerror(r));
	}
	if (opt.port2) {
		r = getaddrinfo(opt.host, opt.port2, &hints, &second_addr);
		if (r != 0)
			die("cannot resolve the host or --port2: %s", gai_strerror(r));
	}
	setup();

	struct server_usage before = { 0 }, after_connect = { 0 }, after = { 0 };
	bool have_usage = read_server_usage(&before);

	/* Connecting: the threads connect their clients; we wait for all. */
	uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(opt.timeout * 1e9);
	start_threads();
	bool connect_timed_out = false;
	while (atomic_load(&ready_total) < opt.clients) {
		if (now_ns() > deadline) {
			fprintf(stderr, "chatd-bench: only %d of %d clients ready after %.1f s\n",
				atomic_load(&ready_total), opt.clients, opt.timeout);
			if (!opt.connect_only)
				exit(1);
			/* Connect-only: how far it got is the result. */
			connect_timed_out = true;
			break;
		}
		main_wait(100);
	}
	int ready_count = atomic_load(&ready_total);
	double connect_cpu_self = self_cpu_seconds();
	double connect_seconds = (double)(now_ns() - t0) / 1e9;
	if (have_usage)
		read_server_usage(&after_connect);

	double send_seconds = 0, cpu_self = 0;
	bool timed_out = false;
	if (opt.connect_only) {
		set_phase(PH_LOAD); /* holding: a disconnection is counted, not fatal */
		if (!connect_timed_out)
			sleep_ms((long)(opt.hold * 1000));
		if (have_usage)
			read_server_usage(&after);
		set_phase(PH_DONE);
	} else {
		double cpu0 = self_cpu_seconds();
		measure_realtime_offset();
		start_ns = now_ns();
		deadline = start_ns + (uint64_t)(opt.timeout * 1e9);
		set_phase(PH_LOAD);
		while (atomic_load(&phase) == PH_LOAD) {
			if (now_ns() > deadline) {
				timed_out = true;
				uint64_t zero = 0;
				atomic_compare_exchange_strong(&end_ns, &zero, now_ns());
				set_phase(PH_DONE);
				break;
			}
			uint64_t now = now_ns();
			main_wait(now < deadline ? (int)((deadline - now) / 1000000 + 1) : 0);
		}
		uint64_t end = atomic_load(&end_ns);
		if (!end)
			end = now_ns(); /* a sender was disconnected */
		send_seconds = (double)(end - start_ns) / 1e9;
		if (have_usage)
			read_server_usage(&after);
		cpu_self = self_cpu_seconds() - cpu0;
	}
	join_threads();

	uint64_t deliveries = 0, duplicated = 0, misordered = 0, bad_lines = 0;
	static struct histogram latency, arrival, late;
	uint64_t unstamped = 0;
	for (int t = 0; t < opt.threads; t++) {
		struct gen *g = &gens[t];
		deliveries += atomic_load(&g->deliveries);
		duplicated += g->duplicated;
		misordered += g->misordered;
		bad_lines += g->bad_lines;
		histogram_merge(&latency, &g->latency);
		histogram_merge(&arrival, &g->arrival);
		histogram_merge(&late, &g->late);
		unstamped += g->unstamped;
	}
	/* A line that never got to a recipient holds its sender's window, so
	 * after one such line a windowed sender stops for good: the lines it
	 * never sent are counted apart (unsent), not as lost deliveries. */
	uint64_t unsent = 0, owed = expected_deliveries;
	for (int i = 0; i < opt.senders && !opt.connect_only; i++) {
		uint64_t left = opt.messages - senders[i].sent;
		uint64_t undue = left * (uint64_t)(room_size[senders[i].room] - 1);
		unsent += left;
		owed = owed > undue ? owed - undue : 0;
	}
	uint64_t lost = owed > deliveries ? owed - deliveries : 0;

	/* The report: a table for people, one key=value line for scripts. */
	double rate = send_seconds > 0 ? (double)deliveries / send_seconds : 0;
	double p50 = (double)histogram_quantile(&latency, 0.5) / 1e6;
	double p99 = (double)histogram_quantile(&latency, 0.99) / 1e6;
	double p999 = (double)histogram_quantile(&latency, 0.999) / 1e6;
	double max = (double)latency.max / 1e6;
	double a50 = (double)histogram_quantile(&arrival, 0.5) / 1e6;
	double a99 = (double)histogram_quantile(&arrival, 0.99) / 1e6;
	double a999 = (double)histogram_quantile(&arrival, 0.999) / 1e6;
	double late50 = (double)histogram_quantile(&late, 0.5) / 1e6;
	double late99 = (double)histogram_quantile(&late, 0.99) / 1e6;
	double late_max = (double)late.max / 1e6;
	double amax = (double)arrival.max / 1e6;
	int drops = atomic_load(&disconnected);
	printf("chatd-bench %s: %d clients in %d room%s%s, %d thread%s\n", PACKAGE_VERSION, opt.clients,
	       opt.rooms, opt.rooms == 1 ? "" : "s",
	       opt.ws ? ", IRC over WebSocket" : opt.proto == PROTO_IRC ? ", IRC protocol" :
	       opt.proto == PROTO_MIXED ? ", half of each room IRC" :
	       opt.port2 ? ", half the receivers on --port2" : "",
	       opt.threads, opt.threads == 1 ? "" : "s");
	if (connect_timed_out)
		printf("  connect      only %d of %d clients ready after %.3f s\n", ready_count, opt.clients,
		       connect_seconds);
	else
		printf("  connect      %d clients ready in %.3f s\n", opt.clients, connect_seconds);
	if (atomic_load(&connect_retries))
		printf("               %d connection attempts were reset and made again\n",
		       atomic_load(&connect_retries));
	if (!opt.connect_only) {
		if (opt.rate > 0)
			printf("  load         %d senders x %u lines at %.0f lines/s\n", opt.senders, opt.messages, opt.rate);
		else
			printf("  load         %d senders x %u lines, window %u\n", opt.senders, opt.messages, opt.window);
		printf("  deliveries   %" PRIu64 " of %" PRIu64 " in %.3f s = %.3f M/s%s\n", deliveries,
		       expected_deliveries, send_seconds, rate / 1e6, timed_out ? " (timed out)" : "");
		printf("  latency      p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms  (sent to read)\n",
		       p50, p99, p999, max);
		if (arrival.count)
			printf("               p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms  (sent to arrival)%s\n",
			       a50, a99, a999, amax, unstamped ? "  some lines had no time stamp" : "");
		printf("  errors       lost %" PRIu64 "  duplicated %" PRIu64 "  misordered %" PRIu64
		       "  unexpected %" PRIu64 "  disconnected %d\n", lost, duplicated, misordered, bad_lines, drops);
		if (late.count)
			printf("  pacing       lines left p50 %.3f ms  p99 %.3f ms  max %.3f ms after their"
			       " scheduled time\n", late50, late99, late_max);
		if (unsent)
			printf("               %" PRIu64 " lines never sent (%s)\n", unsent,
			       opt.rate > 0 ? "out of time" : "held by a window that a lost line stopped, or out of time");
		printf("  generator    %.2f s CPU (%.0f%% of one core), reading with %s\n", cpu_self,
		       send_seconds > 0 ? 100 * cpu_self / send_seconds : 0,
		       atomic_load(&uring_reads) ? "io_uring" : "recvmsg");
	}
	double server_cpu = after.cpu_seconds - after_connect.cpu_seconds;
	double rss_per_conn = ready_count ? (double)(after_connect.rss_kib - before.rss_kib) / ready_count : 0;
	double per_million = deliveries ? server_cpu / ((double)deliveries / 1e6) : 0;
	if (have_usage) {
		printf("  server       RSS %ld KiB before, %ld KiB connected (%.2f KiB per connection)\n",
		       before.rss_kib, after_connect.rss_kib, rss_per_conn);
		if (!opt.connect_only)
			printf("               CPU %.3f s for the load (%.0f%% of one core) = %.3f s per million deliveries\n",
			       server_cpu, send_seconds > 0 ? 100 * server_cpu / send_seconds : 0, per_million);
	}
	printf("RESULT proto=%s clients=%d senders=%d messages=%u rooms=%d threads=%d window=%u rate_target=%.0f"
	       " ready=%d connect_retries=%d connect_s=%.4f deliveries=%" PRIu64 " expected=%" PRIu64 " seconds=%.4f rate=%.0f"
	       " p50_ms=%.4f p99_ms=%.4f p999_ms=%.4f max_ms=%.4f"
	       " arrival_p50_ms=%.4f arrival_p99_ms=%.4f arrival_p999_ms=%.4f arrival_max_ms=%.4f unstamped=%" PRIu64
	       " lost=%" PRIu64 " duplicated=%" PRIu64
	       " misordered=%" PRIu64 " unexpected=%" PRIu64 " disconnected=%d timed_out=%d unsent=%" PRIu64
	       " late_p50_ms=%.4f late_p99_ms=%.4f late_max_ms=%.4f generator_cpu_s=%.3f"
	       " connect_generator_cpu_s=%.3f reads=%s tls=%d",
	       opt.ws ? "ws" : opt.proto == PROTO_IRC ? "irc" : opt.proto == PROTO_MIXED ? "mixed" : "chatd", opt.clients, opt.senders, opt.messages, opt.rooms,
	       opt.threads, opt.rate > 0 ? 0 : opt.window, opt.rate, ready_count, atomic_load(&connect_retries),
	       connect_seconds, deliveries,
	       expected_deliveries, send_seconds, rate, p50, p99, p999, max, a50, a99, a999, amax, unstamped, lost, duplicated, misordered,
	       bad_lines, drops, timed_out, unsent, late50, late99, late_max, cpu_self, connect_cpu_self,
	       atomic_load(&uring_reads) ? "io_uring" : "recvmsg", opt.tls);
	if (have_usage)
		printf(" server_cpu_s=%.3f server_cpu_per_million_s=%.4f rss_before_kib=%ld rss_connected_kib=%ld"
		       " rss_per_conn_kib=%.3f connect_server_cpu_s=%.3f",
		       server_cpu, per_million, before.rss_kib, after_connect.rss_kib, rss_per_conn,
		       after_connect.cpu_seconds - before.cpu_seconds);
	printf("\n");
	fflush(stdout);
	if (atomic_load(&sender_lost))
		fprintf(stderr, "chatd-bench: a sender was disconnected; the run is incomplete\n");
	if (connect_timed_out)
		return 1;
	return lost || duplicated || misordered || drops || unsent ? 3 : 0;
}
