/* chatd-bench: a load generator for chatd (and IRC servers, to compare).
 *
 * Connects N clients (and joins them to K rooms), then starts the clock:
 * S senders each send M numbered, time-stamped lines, bounded by a window
 * of lines in flight or by a rate. Every client checks every line it gets:
 * lost, duplicated and misordered lines are counted, latency measured.
 * One thread, one epoll loop; the generator's own CPU is reported too, as
 * it shares the machine with the server. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "histogram.h"

#define MARK "~B "            /* starts the text of every benchmark line */
#define CONNECT_PARALLEL 200  /* connections in progress at once */
#define READ_CHUNK 65536

enum proto { PROTO_CHATD, PROTO_IRC };

enum client_state { C_IDLE, C_CONNECTING, C_GREETING, C_JOINING, C_READY };

struct client {
	int fd;
	int index;
	int room;
	enum client_state state;
	char *in;                 /* unfinished input line */
	size_t in_len, in_cap;
	char *out;                /* unsent output */
	size_t out_len, out_cap;
	bool want_out;
	int sender;               /* index among senders, or -1 */
	/* Receiving checks, per sender of this client's room: */
	uint32_t *highest;        /* highest seq + 1 seen from each sender */
	uint8_t *seen;            /* [sender][seq] bits */
};

struct sender {
	int client;
	int room;
	uint32_t sent;
	uint32_t complete;        /* lines every recipient has got, a prefix */
	uint32_t *acks;           /* recipients that got each line */
};

struct options {
	const char *host;
	const char *port;
	int clients, senders, rooms;
	uint32_t messages;
	double rate;              /* lines per second, all senders together; 0 = window */
	uint32_t window;
	double timeout;
	double connect_only;      /* hold the connections this long, send nothing */
	long server_pid;
	enum proto proto;
};

static struct options opt = {
	.host = "127.0.0.1", .port = "7777", .clients = 0, .senders = 0, .rooms = 1,
	.messages = 0, .window = 64, .timeout = 60, .server_pid = 0, .proto = PROTO_CHATD,
};

static struct client *clients;
static struct sender *senders;
static int *room_size;
static int epoll_fd;
static struct addrinfo *server_addr;
static struct histogram latency;
static uint64_t deliveries, expected_deliveries, lost, duplicated, misordered, bad_lines;
static int connected, ready;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
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

/* ---- output ------------------------------------------------------------ */

static void watch(struct client *c)
{
	struct epoll_event ev = { .events = EPOLLIN | (c->want_out ? EPOLLOUT : 0), .data.ptr = c };
	epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void flush_out(struct client *c)
{
	while (c->out_len > 0) {
		ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			fprintf(stderr, "chatd-bench: client %d: send: %s\n", c->index, strerror(errno));
			exit(1);
		}
		memmove(c->out, c->out + n, c->out_len - (size_t)n);
		c->out_len -= (size_t)n;
	}
	bool want = c->out_len > 0;
	if (want != c->want_out) {
		c->want_out = want;
		watch(c);
	}
}

static void queue_out(struct client *c, const char *data, size_t len)
{
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

static void send_text(struct client *c, const char *text)
{
	queue_out(c, text, strlen(text));
}

/* ---- the protocol dialects --------------------------------------------- */

static void greet(struct client *c)
{
	char buf[128];
	if (opt.proto == PROTO_IRC) {
		snprintf(buf, sizeof(buf), "NICK b%d\r\nUSER b%d 0 * :chatd-bench\r\n", c->index, c->index);
		send_text(c, buf);
	}
	c->state = C_GREETING;
}

static void join(struct client *c)
{
	char buf[64];
	if (opt.proto == PROTO_IRC) {
		snprintf(buf, sizeof(buf), "JOIN #bench%d\r\n", c->room);
	} else if (opt.rooms > 1) {
		snprintf(buf, sizeof(buf), "/join bench%d\n", c->room);
	} else {
		c->state = C_READY; /* everyone starts in the lobby */
		ready++;
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
	if (opt.proto == PROTO_IRC)
		n = snprintf(buf, sizeof(buf), "PRIVMSG #bench%d :" MARK "%d %" PRIu32 " %" PRIu64 "\r\n",
			     s->room, c->sender, s->sent, now_ns());
	else
		n = snprintf(buf, sizeof(buf), MARK "%d %" PRIu32 " %" PRIu64 "\n", c->sender, s->sent,
			     now_ns());
	queue_out(c, buf, (size_t)n);
	s->sent++;
}

static void on_bench_line(struct client *c, const char *text, uint64_t now)
{
	/* Parsed by hand: at millions of lines a second, sscanf would make
	 * the generator, not the server, the thing measured. */
	uint64_t field[3];
	const char *p = text;
	for (int i = 0; i < 3; i++) {
		if (*p < '0' || *p > '9') {
			bad_lines++;
			return;
		}
		uint64_t v = 0;
		while (*p >= '0' && *p <= '9')
			v = v * 10 + (uint64_t)(*p++ - '0');
		field[i] = v;
		if (i < 2 && *p++ != ' ') {
			bad_lines++;
			return;
		}
	}
	if (field[0] >= (uint64_t)opt.senders || field[1] >= opt.messages) {
		bad_lines++;
		return;
	}
	int sender = (int)field[0];
	uint32_t seq = (uint32_t)field[1];
	uint64_t sent_at = field[2];
	struct sender *s = &senders[sender];
	if (s->room != c->room || s->client == c->index) {
		bad_lines++; /* a line for another room, or an echo */
		return;
	}
	size_t bit = (size_t)sender * opt.messages + seq;
	if (c->seen[bit / 8] & (1u << (bit % 8))) {
		duplicated++;
		return;
	}
	c->seen[bit / 8] |= (uint8_t)(1u << (bit % 8));
	if (seq + 1 < c->highest[sender])
		misordered++;
	else
		c->highest[sender] = seq + 1;
	deliveries++;
	histogram_add(&latency, now - sent_at);
	s->acks[seq]++;
	unsigned recipients = (unsigned)room_size[s->room] - 1;
	while (s->complete < s->sent && s->acks[s->complete] >= recipients)
		s->complete++;
}

static void on_line(struct client *c, char *line, size_t len, uint64_t now)
{
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	if (opt.proto == PROTO_IRC) {
		if (strncmp(line, "PING ", 5) == 0) {
			line[1] = 'O'; /* PONG */
			queue_out(c, line, len);
			queue_out(c, "\r\n", 2);
			return;
		}
		char *text = strstr(line, " :" MARK);
		if (text && c->state == C_READY) {
			on_bench_line(c, text + 2 + strlen(MARK), now);
			return;
		}
		if (c->state == C_GREETING && strstr(line, " 001 ")) {
			connected++;
			join(c);
		} else if (c->state == C_JOINING && strstr(line, " 366 ")) {
			c->state = C_READY;
			ready++;
		}
		return;
	}
	if (line[0] == '[') {
		char *text = strstr(line, "] " MARK);
		if (text && c->state == C_READY)
			on_bench_line(c, text + 2 + strlen(MARK), now);
		return;
	}
	if (c->state == C_GREETING && strncmp(line, "> Connected to the chat server as ", 34) == 0) {
		connected++;
		join(c);
	} else if (c->state == C_JOINING && strncmp(line, "= you joined ", 13) == 0) {
		c->state = C_READY;
		ready++;
	} else if (line[0] == '!') {
		fprintf(stderr, "chatd-bench: client %d: server says: %s\n", c->index, line);
	}
}

/* ---- input ------------------------------------------------------------- */

static char read_buffer[READ_CHUNK];

static void read_in(struct client *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, read_buffer, sizeof(read_buffer), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			fprintf(stderr, "chatd-bench: client %d: recv: %s\n", c->index, strerror(errno));
			exit(1);
		}
		if (n == 0) {
			fprintf(stderr, "chatd-bench: client %d: the server closed the connection\n", c->index);
			exit(1);
		}
		uint64_t now = now_ns();
		char *p = read_buffer, *end = read_buffer + n;
		while (p < end) {
			char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t chunk = nl ? (size_t)(nl - p) : (size_t)(end - p);
			if (c->in_len + chunk + 1 > c->in_cap) {
				size_t cap = c->in_cap ? c->in_cap * 2 : 256;
				while (cap < c->in_len + chunk + 1)
					cap *= 2;
				c->in = realloc(c->in, cap);
				if (!c->in)
					die("out of memory");
				c->in_cap = cap;
			}
			if (!nl && c->in_len == 0) {
				memcpy(c->in, p, chunk);
				c->in_len = chunk;
				break;
			}
			if (c->in_len > 0 || !nl) {
				memcpy(c->in + c->in_len, p, chunk);
				c->in_len += chunk;
				if (!nl)
					break;
				c->in[c->in_len] = '\0';
				on_line(c, c->in, c->in_len, now);
				c->in_len = 0;
			} else {
				*nl = '\0';
				on_line(c, p, chunk, now);
			}
			p = nl + 1;
		}
		if ((size_t)n < sizeof(read_buffer))
			return;
	}
}

/* ---- connecting -------------------------------------------------------- */

static int next_to_connect;

static void start_connect(struct client *c)
{
	c->fd = socket(server_addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		perror("chatd-bench: socket");
		exit(1);
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, server_addr->ai_addr, server_addr->ai_addrlen) < 0 && errno != EINPROGRESS) {
		fprintf(stderr, "chatd-bench: connect: %s\n", strerror(errno));
		exit(1);
	}
	c->state = C_CONNECTING;
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.ptr = c };
	epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c->fd, &ev);
}

static void connect_more(void)
{
	while (next_to_connect < opt.clients && next_to_connect - connected < CONNECT_PARALLEL)
		start_connect(&clients[next_to_connect++]);
}

static void on_connected(struct client *c)
{
	int err = 0;
	socklen_t len = sizeof(err);
	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
	if (err) {
		fprintf(stderr, "chatd-bench: cannot connect to %s:%s: %s\n", opt.host, opt.port, strerror(err));
		exit(1);
	}
	greet(c);
	c->want_out = true;
	flush_out(c);
}

/* ---- the loop ---------------------------------------------------------- */

static void poll_once(int timeout_ms)
{
	struct epoll_event events[512];
	int n = epoll_wait(epoll_fd, events, 512, timeout_ms);
	if (n < 0 && errno != EINTR) {
		perror("chatd-bench: epoll_wait");
		exit(1);
	}
	for (int i = 0; i < n; i++) {
		struct client *c = events[i].data.ptr;
		if (c->state == C_CONNECTING) {
			on_connected(c);
			continue;
		}
		if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			read_in(c);
		if (c->out_len > 0)
			flush_out(c);
	}
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: chatd-bench [--host H] [--port P] --clients N --senders S --messages M\n"
		"                   [--rate R | --window W] [--rooms K] [--timeout SEC]\n"
		"                   [--connect-only SECONDS] [--pid SERVER_PID] [--proto chatd|irc]\n"
		"\n"
		"  --clients N        connections (all connected and joined before the clock starts)\n"
		"  --senders S        how many of them send (spread over the rooms)\n"
		"  --messages M       lines each sender sends\n"
		"  --window W         lines a sender may have in flight, not yet at every recipient (default 64)\n"
		"  --rate R           instead: lines per second, all senders together\n"
		"  --rooms K          rooms the clients are spread over (default 1)\n"
		"  --timeout SEC      give up waiting for lines after SEC seconds (default 60)\n"
		"  --connect-only SEC connect and join, hold the connections SEC seconds, send nothing\n"
		"  --pid PID          report the server's CPU time and memory (from /proc)\n"
		"  --proto irc        drive an IRC server (NICK/USER, JOIN, PRIVMSG, PONG)\n");
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
		{ "help", no_argument, NULL, 'h' },           { "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int o;
	bool window_given = false;
	while ((o = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (o) {
		case 'H': opt.host = optarg; break;
		case 'P': opt.port = optarg; break;
		case 'n': opt.clients = (int)parse_number("--clients", optarg, 1, 1000000); break;
		case 's': opt.senders = (int)parse_number("--senders", optarg, 0, 100000); break;
		case 'm': opt.messages = (uint32_t)parse_number("--messages", optarg, 1, 100000000); break;
		case 'r': opt.rate = parse_number("--rate", optarg, 0.001, 1e9); break;
		case 'w': opt.window = (uint32_t)parse_number("--window", optarg, 1, 1e9); window_given = true; break;
		case 'k': opt.rooms = (int)parse_number("--rooms", optarg, 1, 100000); break;
		case 't': opt.timeout = parse_number("--timeout", optarg, 0.1, 86400); break;
		case 'c': opt.connect_only = parse_number("--connect-only", optarg, 0, 86400); break;
		case 'p': opt.server_pid = (long)parse_number("--pid", optarg, 1, 1e9); break;
		case 'x':
			if (strcmp(optarg, "irc") == 0)
				opt.proto = PROTO_IRC;
			else if (strcmp(optarg, "chatd") == 0)
				opt.proto = PROTO_CHATD;
			else
				die("--proto must be chatd or irc, not %s", optarg);
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
	if (opt.rate > 0 && window_given)
		die("--rate and --window exclude each other");
	if (!opt.connect_only && (opt.senders == 0 || opt.messages == 0))
		die("--senders and --messages are needed (or --connect-only)");
	if (opt.senders > opt.clients)
		die("--senders cannot exceed --clients");
	if (opt.rooms > opt.clients)
		die("--rooms cannot exceed --clients");
}

static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)opt.clients + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < (rlim_t)opt.clients + 64)
			fprintf(stderr, "chatd-bench: warning: fd limit %lu is below %d clients\n",
				(unsigned long)rl.rlim_cur, opt.clients);
	}
}

int main(int argc, char **argv)
{
	parse_options(argc, argv);
	raise_fd_limit();

	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	int r = getaddrinfo(opt.host, opt.port, &hints, &server_addr);
	if (r != 0)
		die("cannot resolve the host: %s", gai_strerror(r));

	epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	clients = xalloc(sizeof(*clients) * (size_t)opt.clients);
	room_size = xalloc(sizeof(*room_size) * (size_t)opt.rooms);
	senders = xalloc(sizeof(*senders) * (size_t)(opt.senders ? opt.senders : 1));
	for (int i = 0; i < opt.clients; i++) {
		clients[i].index = i;
		clients[i].room = i % opt.rooms;
		clients[i].sender = -1;
		clients[i].fd = -1;
		room_size[clients[i].room]++;
	}
	/* Senders spread over the rooms: client i is in room i % K. */
	for (int s = 0; s < opt.senders; s++) {
		senders[s].client = s;
		senders[s].room = clients[s].room;
		senders[s].acks = xalloc(sizeof(uint32_t) * opt.messages);
		clients[s].sender = s;
	}
	if (!opt.connect_only) {
		for (int i = 0; i < opt.clients; i++) {
			clients[i].highest = xalloc(sizeof(uint32_t) * (size_t)opt.senders);
			clients[i].seen = xalloc(((size_t)opt.senders * opt.messages + 7) / 8);
		}
		for (int s = 0; s < opt.senders; s++)
			expected_deliveries += (uint64_t)opt.messages * (uint64_t)(room_size[senders[s].room] - 1);
	}

	struct server_usage before = { 0 }, after_connect = { 0 }, after = { 0 };
	bool have_usage = read_server_usage(&before);

	uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(opt.timeout * 1e9);
	while (ready < opt.clients) {
		connect_more();
		poll_once(100);
		if (now_ns() > deadline) {
			fprintf(stderr, "chatd-bench: only %d of %d clients ready after %.0f s\n", ready,
				opt.clients, opt.timeout);
			return 1;
		}
	}
	double connect_seconds = (double)(now_ns() - t0) / 1e9;
	if (have_usage)
		read_server_usage(&after_connect);

	double send_seconds = 0, cpu_self = 0;
	if (opt.connect_only) {
		uint64_t until = now_ns() + (uint64_t)(opt.connect_only * 1e9);
		while (now_ns() < until)
			poll_once(100);
		if (have_usage)
			read_server_usage(&after);
	} else {
		double cpu0 = self_cpu_seconds();
		uint64_t start = now_ns();
		deadline = start + (uint64_t)(opt.timeout * 1e9);
		uint64_t total_lines = (uint64_t)opt.senders * opt.messages, sent_lines = 0;
		while (deliveries + lost < expected_deliveries) {
			uint64_t now = now_ns();
			if (now > deadline)
				break;
			/* Refill: each sender up to its window, or the rate's quota. */
			if (opt.rate > 0) {
				uint64_t due = (uint64_t)((double)(now - start) / 1e9 * opt.rate) + 1;
				if (due > total_lines)
					due = total_lines;
				while (sent_lines < due) {
					struct sender *s = &senders[sent_lines % (uint64_t)opt.senders];
					if (s->sent < opt.messages) {
						send_bench_line(s);
						flush_out(&clients[s->client]);
					}
					sent_lines++;
				}
			} else {
				for (int i = 0; i < opt.senders; i++) {
					struct sender *s = &senders[i];
					bool any = false;
					while (s->sent < opt.messages && s->sent - s->complete < opt.window) {
						send_bench_line(s);
						any = true;
					}
					if (any)
						flush_out(&clients[s->client]);
				}
			}
			poll_once(opt.rate > 0 ? 1 : 100);
		}
		send_seconds = (double)(now_ns() - start) / 1e9;
		cpu_self = self_cpu_seconds() - cpu0;
		if (have_usage)
			read_server_usage(&after);
		lost = expected_deliveries - deliveries;
	}

	/* The report: a table for people, one key=value line for scripts. */
	double rate = send_seconds > 0 ? (double)deliveries / send_seconds : 0;
	printf("chatd-bench %s: %d clients in %d room%s%s\n", PACKAGE_VERSION, opt.clients, opt.rooms,
	       opt.rooms == 1 ? "" : "s", opt.proto == PROTO_IRC ? ", IRC protocol" : "");
	printf("  connect      %d clients ready in %.3f s\n", opt.clients, connect_seconds);
	if (!opt.connect_only) {
		if (opt.rate > 0)
			printf("  load         %d senders x %u lines at %.0f lines/s\n", opt.senders, opt.messages, opt.rate);
		else
			printf("  load         %d senders x %u lines, window %u\n", opt.senders, opt.messages, opt.window);
		printf("  deliveries   %" PRIu64 " of %" PRIu64 " in %.3f s = %.3f M/s\n", deliveries,
		       expected_deliveries, send_seconds, rate / 1e6);
		printf("  latency      p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms\n",
		       histogram_quantile(&latency, 0.5) / 1e6, histogram_quantile(&latency, 0.99) / 1e6,
		       histogram_quantile(&latency, 0.999) / 1e6, latency.max / 1e6);
		printf("  errors       lost %" PRIu64 "  duplicated %" PRIu64 "  misordered %" PRIu64
		       "  unexpected %" PRIu64 "\n", lost, duplicated, misordered, bad_lines);
		printf("  generator    %.2f s CPU\n", cpu_self);
	}
	double server_cpu = after.cpu_seconds - after_connect.cpu_seconds;
	double rss_per_conn = opt.clients ? (double)(after_connect.rss_kib - before.rss_kib) / opt.clients : 0;
	if (have_usage) {
		printf("  server       RSS %ld KiB before, %ld KiB connected (%.2f KiB per connection)\n",
		       before.rss_kib, after_connect.rss_kib, rss_per_conn);
		if (!opt.connect_only)
			printf("               CPU %.3f s for the load = %.3f s per million deliveries\n",
			       server_cpu, deliveries ? server_cpu / ((double)deliveries / 1e6) : 0);
	}
	printf("RESULT clients=%d senders=%d messages=%u rooms=%d connect_s=%.4f deliveries=%" PRIu64
	       " expected=%" PRIu64 " seconds=%.4f rate=%.0f p50_ms=%.4f p99_ms=%.4f p999_ms=%.4f max_ms=%.4f"
	       " lost=%" PRIu64 " duplicated=%" PRIu64 " misordered=%" PRIu64 " generator_cpu_s=%.3f",
	       opt.clients, opt.senders, opt.messages, opt.rooms, connect_seconds, deliveries,
	       expected_deliveries, send_seconds, rate, histogram_quantile(&latency, 0.5) / 1e6,
	       histogram_quantile(&latency, 0.99) / 1e6, histogram_quantile(&latency, 0.999) / 1e6,
	       latency.max / 1e6, lost, duplicated, misordered, cpu_self);
	if (have_usage)
		printf(" server_cpu_s=%.3f server_cpu_per_million_s=%.4f rss_before_kib=%ld rss_connected_kib=%ld"
		       " rss_per_conn_kib=%.3f",
		       server_cpu, deliveries ? server_cpu / ((double)deliveries / 1e6) : 0, before.rss_kib,
		       after_connect.rss_kib, rss_per_conn);
	printf("\n");
	return lost || duplicated || misordered ? 3 : 0;
}
