#include "autoconf.h"

#include "target.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/util.h"

static bool valid_port(const char *s)
{
	long port;
	return parse_long(s, &port) && port >= 1 && port <= 65535;
}

static int set_host(struct target *t, const char *host, size_t len, char *err, size_t err_size)
{
	if (len == 0 || len >= sizeof(t->host)) {
		snprintf(err, err_size, "invalid host: '%.*s'", (int)(len > 64 ? 64 : len), host);
		return -1;
	}
	memcpy(t->host, host, len);
	t->host[len] = '\0';
	return 0;
}

static int set_port(struct target *t, const char *port, char *err, size_t err_size)
{
	if (!valid_port(port)) {
		snprintf(err, err_size, "invalid port: '%.16s' (must be 1..65535)", port);
		return -1;
	}
	snprintf(t->port, sizeof(t->port), "%s", port);
	return 0;
}

int target_parse(struct target *t, int argc, char **argv, const char *port, char *err,
		 size_t err_size)
{
	snprintf(t->host, sizeof(t->host), "%s", DEFAULT_HOST);
	snprintf(t->port, sizeof(t->port), "%s", port);
	if (argc == 0)
		return 0;
	if (argc > 2) {
		snprintf(err, err_size, "too many arguments");
		return -1;
	}
	const char *arg = argv[0];
	if (argc == 2) {
		/* HOST PORT; an IPv6 host may still come in brackets. */
		size_t len = strlen(arg);
		if (arg[0] == '[' && len > 2 && arg[len - 1] == ']')
			return set_host(t, arg + 1, len - 2, err, err_size) ?: set_port(t, argv[1], err, err_size);
		return set_host(t, arg, len, err, err_size) ?: set_port(t, argv[1], err, err_size);
	}
	if (arg[0] == '[') {
		const char *close = strchr(arg, ']');
		if (!close) {
			snprintf(err, err_size, "missing ']' in '%.64s'", arg);
			return -1;
		}
		if (set_host(t, arg + 1, (size_t)(close - arg - 1), err, err_size) < 0)
			return -1;
		if (close[1] == '\0')
			return 0;
		if (close[1] != ':') {
			snprintf(err, err_size, "expected ':PORT' after ']' in '%.64s'", arg);
			return -1;
		}
		return set_port(t, close + 2, err, err_size);
	}
	const char *colon = strchr(arg, ':');
	if (colon && strchr(colon + 1, ':'))
		return set_host(t, arg, strlen(arg), err, err_size); /* a bare IPv6 address */
	if (colon)
		return set_host(t, arg, (size_t)(colon - arg), err, err_size) ?:
		       set_port(t, colon + 1, err, err_size);
	return set_host(t, arg, strlen(arg), err, err_size);
}

void target_format(const struct target *t, char *buf, size_t size)
{
	if (strchr(t->host, ':'))
		snprintf(buf, size, "[%s]:%s", t->host, t->port);
	else
		snprintf(buf, size, "%s:%s", t->host, t->port);
}

int target_connect(const struct target *t, char *err, size_t err_size)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_ADDRCONFIG };
	struct addrinfo *res;
	int r = getaddrinfo(t->host, t->port, &hints, &res);
	if (r != 0) {
		snprintf(err, err_size, "%s", r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		return -1;
	}
	int fd = -1, last_errno = 0;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			last_errno = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		last_errno = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(err, err_size, "%s", strerror(last_errno));
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	return fd;
}
