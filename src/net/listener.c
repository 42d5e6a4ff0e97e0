#include "autoconf.h"

#include "net/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
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

void listener_kind_of_name(const char *name, enum proto *proto, bool *tls)
{
	*proto = strcmp(name, "irc") == 0 || strcmp(name, "irc-tls") == 0 ? PROTO_IRC :
		 strcmp(name, "web") == 0 || strcmp(name, "web-tls") == 0 ? PROTO_WEB : PROTO_LINE;
	*tls = strcmp(name, "tls") == 0 || strcmp(name, "irc-tls") == 0 || strcmp(name, "web-tls") == 0;
}

const char *listener_kind_name(enum proto proto, bool tls)
{
	switch (proto) {
	case PROTO_LINE:
		return tls ? "the line protocol over TLS" : "the line protocol";
	case PROTO_IRC:
		return tls ? "IRC over TLS" : "IRC";
	case PROTO_WEB:
		return tls ? "the web page over TLS (https, wss)" : "the web page (http, ws)";
	case PROTO_COUNT:
		break;
	}
	return "?";
}

bool listener_has(const struct listener *l, enum proto proto, bool tls)
{
	for (size_t i = 0; i < l->count; i++)
		if (l->sockets[i].proto == proto && l->sockets[i].tls == tls)
			return true;
	return false;
}

/* NAME: systemd's name of an activated socket, NULL for one we bound. */
static void log_listening(const struct listen_socket *ls, const char *name)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char addr[PEER_MAX];

	if (getsockname(ls->fd, (struct sockaddr *)&ss, &len) < 0) {
		log_errno(LOG_WARNING, errno, "getsockname(fd %d)", ls->fd);
		return;
	}
	format_address((struct sockaddr *)&ss, addr, sizeof(addr));
	if (!name) {
		log_info("listening on %s for %s", addr, listener_kind_name(ls->proto, ls->tls));
		return;
	}
	/* systemd allows only printable ASCII in a name; another launcher may
	 * pass anything, and the log must stay one clean line. */
	char shown[64];
	size_t n = 0;
	for (const char *p = name; *p && n < sizeof(shown) - 1; p++)
		shown[n++] = (*p > ' ' && *p < 0x7f && *p != '"') ? *p : '?';
	shown[n] = '\0';
	log_info("listening on %s for %s (socket-activated, name \"%s\")", addr,
		 listener_kind_name(ls->proto, ls->tls), shown);
}

static int set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static void free_names(char **names)
{
	if (!names)
		return;
	for (char **p = names; *p; p++)
		free(*p);
	free(names);
}

/* N sockets from systemd, the protocol of each from its name. */
static int take_activated(struct listener *l, int n, char **names)
{
	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		int r = sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1);
		if (r < 0) {
			log_errno(LOG_ERR, -r, "socket activation: fd %d (\"%s\")", fd, names[i]);
			return -1;
		}
		if (r == 0) {
			log_error("socket activation: fd %d (\"%s\") is not a listening stream socket "
				  "(check the .socket unit: ListenStream= and Accept=no)", fd, names[i]);
			return -1;
		}
		if (l->count == LISTENER_MAX) {
			log_error("socket activation: more than %d sockets", LISTENER_MAX);
			return -1;
		}
		r = set_nonblocking(fd);
		if (r < 0) {
			log_errno(LOG_ERR, -r, "socket activation: fd %d (\"%s\")", fd, names[i]);
			return -1;
		}
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
			log_errno(LOG_ERR, errno, "socket activation: fd %d (\"%s\"): FD_CLOEXEC", fd,
				  names[i]);
			return -1;
		}
		struct listen_socket *ls = &l->sockets[l->count++];
		ls->fd = fd;
		listener_kind_of_name(names[i], &ls->proto, &ls->tls);
		log_listening(ls, names[i]);
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

int listener_bind(const char *address, int port, const char *what, int *ret_fds, size_t max)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE };
	struct addrinfo *res;
	size_t n = 0;

	int r = getaddrinfo(address, NULL, &hints, &res);
	if (r != 0) {
		log_error("bind = %s (for %s): %s", address, what,
			  r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		return -1;
	}
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		/* Cut short, the next protocol could be left without a socket. */
		if (n == max) {
			log_error("bind = %s (for %s): more than %d listening sockets in all", address,
				  what, LISTENER_MAX);
			goto fail;
		}
		int fd = bind_one(ai, port);
		if (fd == -EAFNOSUPPORT && strcmp(address, "::") == 0 && n == 0) {
			/* A kernel without IPv6: "all addresses" means all IPv4 ones. */
			log_notice("IPv6 is not available; listening on IPv4 only for %s", what);
			freeaddrinfo(res);
			return listener_bind("0.0.0.0", port, what, ret_fds, max);
		}
		if (fd < 0) {
			char addr[PEER_MAX];
			struct sockaddr_storage ss;
			address_with_port(ai, port, &ss);
			format_address((struct sockaddr *)&ss, addr, sizeof(addr));
			log_errno(LOG_ERR, -fd, "cannot listen on %s for %s", addr, what);
			goto fail;
		}
		ret_fds[n++] = fd;
		/* With port 0, every address of a name gets the first one's port. */
		if (port == 0)
			port = bound_port(fd);
	}
	freeaddrinfo(res);
	return (int)n;
fail:
	for (size_t i = 0; i < n; i++)
		close(ret_fds[i]);
	freeaddrinfo(res);
	return -1;
}

static int bind_configured(struct listener *l, const char *bind_address, int port,
			   enum proto proto, bool tls)
{
	int fds[LISTENER_MAX];
	int n = listener_bind(bind_address, port, listener_kind_name(proto, tls), fds,
			      LISTENER_MAX - l->count);
	for (int i = 0; i < n; i++) {
		struct listen_socket *ls = &l->sockets[l->count++];
		*ls = (struct listen_socket){ .fd = fds[i], .proto = proto, .tls = tls };
		log_listening(ls, NULL);
	}
	return n < 0 ? -1 : 0;
}

int listener_open(struct listener *l, const struct listen_address *addresses, size_t count)
{
	char **names = NULL;
	int r = 0;

	*l = (struct listener){ .reserve_fd = -1 };
	l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (l->reserve_fd < 0)
		log_errno(LOG_WARNING, errno, "open(/dev/null) for the reserve fd (without it, "
			  "running out of fds makes clients wait instead of being turned away)");

	/* Without LISTEN_FDNAMES every name is "unknown": the line protocol. */
	int n = sd_listen_fds_with_names(1, &names);
	if (n < 0) {
		log_errno(LOG_ERR, -n, "socket activation (LISTEN_FDS and LISTEN_FDNAMES must "
			  "agree: one name per socket)");
		return -1;
	}
	if (n > 0) {
		r = take_activated(l, n, names);
	} else {
		for (size_t i = 0; i < count && r == 0; i++)
			r = bind_configured(l, addresses[i].address, addresses[i].port,
					    addresses[i].proto, addresses[i].tls);
	}
	free_names(names);
	if (r < 0)
		listener_close(l);
	return r;
}

void listener_close(struct listener *l)
{
	for (size_t i = 0; i < l->count; i++)
		close(l->sockets[i].fd);
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
