#include "autoconf.h"

#include "net/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "base/log.h"

#define BACKLOG 4096 /* the kernel caps it at net.core.somaxconn */

void format_address(const struct sockaddr *sa, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(buf, size, "%s:%u", host, port);
		return;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		port = ntohs(in6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host, sizeof(host));
			snprintf(buf, size, "%s:%u", host, port);
		} else {
			inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
			snprintf(buf, size, "[%s]:%u", host, port);
		}
		return;
	}
	snprintf(buf, size, "(family %d)", sa->sa_family);
}

static void log_listening(int fd, bool activated)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char addr[PEER_MAX];

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		log_errno(LOG_WARNING, errno, "getsockname");
		return;
	}
	format_address((struct sockaddr *)&ss, addr, sizeof(addr));
	log_info("listening on %s%s", addr, activated ? " (socket-activated)" : "");
}

static int set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static int take_activated(struct listener *l, int n)
{
	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
			log_error("socket activation: fd %d is not a listening stream socket "
				  "(check the .socket unit: ListenStream= and Accept=no)", fd);
			return -1;
		}
		if (l->count == LISTENER_MAX) {
			log_error("socket activation: more than %d sockets", LISTENER_MAX);
			return -1;
		}
		int r = set_nonblocking(fd);
		if (r < 0) {
			log_errno(LOG_ERR, -r, "socket activation: fd %d", fd);
			return -1;
		}
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		l->fds[l->count++] = fd;
		log_listening(fd, true);
	}
	l->activated = true;
	return 0;
}

/* AI's address with PORT, in RET. */
static void address_with_port(const struct addrinfo *ai, int port, struct sockaddr_storage *ret)
{
	memcpy(ret, ai->ai_addr, ai->ai_addrlen);
	if (ret->ss_family == AF_INET)
		((struct sockaddr_in *)ret)->sin_port = htons((uint16_t)port);
	else if (ret->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ret)->sin6_port = htons((uint16_t)port);
}

static int bind_one(const struct addrinfo *ai, int port)
{
	int one = 1, zero = 0;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* "::" must take IPv4 too, whatever net.ipv6.bindv6only says. */
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));

	struct sockaddr_storage ss;
	address_with_port(ai, port, &ss);

	if (bind(fd, (struct sockaddr *)&ss, ai->ai_addrlen) < 0 || listen(fd, BACKLOG) < 0) {
		int err = errno;
		close(fd);
		return -err;
	}
	return fd;
}

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int bind_configured(struct listener *l, const char *bind_address, int port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE };
	struct addrinfo *res;

	int r = getaddrinfo(bind_address, NULL, &hints, &res);
	if (r != 0) {
		log_error("bind = %s: %s", bind_address, gai_strerror(r));
		return -1;
	}
	for (struct addrinfo *ai = res; ai && l->count < LISTENER_MAX; ai = ai->ai_next) {
		int fd = bind_one(ai, port);
		if (fd == -EAFNOSUPPORT && strcmp(bind_address, "::") == 0) {
			/* A kernel without IPv6: "all addresses" means all IPv4 ones. */
			log_notice("IPv6 is not available; listening on IPv4 only");
			freeaddrinfo(res);
			return bind_configured(l, "0.0.0.0", port);
		}
		if (fd < 0) {
			char addr[PEER_MAX];
			struct sockaddr_storage ss;
			address_with_port(ai, port, &ss);
			format_address((struct sockaddr *)&ss, addr, sizeof(addr));
			log_errno(LOG_ERR, -fd, "cannot listen on %s", addr);
			freeaddrinfo(res);
			return -1;
		}
		l->fds[l->count++] = fd;
		/* With port 0, every address of a name gets the first one's port. */
		if (port == 0)
			port = bound_port(fd);
		log_listening(fd, false);
	}
	freeaddrinfo(res);
	return 0;
}

int listener_open(struct listener *l, const char *bind_address, int port)
{
	*l = (struct listener){ .reserve_fd = -1 };
	l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	int n = sd_listen_fds(1);
	if (n < 0) {
		log_errno(LOG_ERR, -n, "socket activation");
		return -1;
	}
	int r = n > 0 ? take_activated(l, n) : bind_configured(l, bind_address, port);
	if (r < 0)
		listener_close(l);
	return r;
}

void listener_close(struct listener *l)
{
	for (size_t i = 0; i < l->count; i++)
		close(l->fds[i]);
	l->count = 0;
	if (l->reserve_fd >= 0)
		close(l->reserve_fd);
	l->reserve_fd = -1;
}

/* Out of fds: give up the reserve, take the connection and drop it, so the
 * client learns at once and the backlog shrinks instead of spinning us. */
static void shed_one(struct listener *l, int fd)
{
	if (l->reserve_fd < 0)
		return;
	close(l->reserve_fd);
	int victim = accept(fd, NULL, NULL);
	if (victim >= 0)
		close(victim);
	l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* At most one line a second about shedding, however hard we are pushed. */
static void log_shedding(struct listener *l, int err)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	l->shed_count++;
	if (ts.tv_sec == l->shed_logged_at)
		return;
	log_errno(LOG_WARNING, err, "accept: shedding a connection (%lu shed so far)",
		  (unsigned long)l->shed_count);
	l->shed_logged_at = ts.tv_sec;
}

int listener_set_keepalive(int fd, int idle)
{
	/* Four unanswered probes, 30 seconds apart at most, after IDLE. On
	 * first: should the tuning fail, the system's defaults still apply. */
	int on = 1, interval = idle < 30 ? idle : 30, count = 4;
	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count)) < 0)
		return -errno;
	return 0;
}

int listener_accept(struct listener *l, int fd, struct sockaddr_storage *ret_addr,
		    char peer[PEER_MAX])
{
	for (;;) {
		socklen_t len = sizeof(*ret_addr);
		int c = accept4(fd, (struct sockaddr *)ret_addr, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c >= 0) {
			int one = 1;
			/* Lines are small and batched by writev already; Nagle would
			 * only delay them. */
			setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			format_address((struct sockaddr *)ret_addr, peer, PEER_MAX);
			return c;
		}
		int err = errno;
		if (err == EINTR || err == ECONNABORTED || err == EPROTO)
			continue;
		if (err == EMFILE || err == ENFILE) {
			shed_one(l, fd);
			log_shedding(l, err);
		}
		return -err;
	}
}
