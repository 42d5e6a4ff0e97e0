#include "autoconf.h"

#include "session.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "tls.h"

void session_init(struct session *s, int fd, SSL *ssl,
		  void (*on_line)(void *ctx, const char *line, size_t len), void *ctx)
{
	*s = (struct session){ .fd = fd, .ssl = ssl, .on_line = on_line, .ctx = ctx };
}

void session_close(struct session *s)
{
	client_tls_close(s->ssl);
	s->ssl = NULL;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	framer_reset(&s->framer);
	free(s->out);
	s->out = NULL;
	s->out_len = s->out_cap = 0;
}

void session_send_line(struct session *s, const char *line, size_t len)
{
	s->out = xgrow(s->out, &s->out_cap, s->out_len + len + 1, 1024);
	memcpy(s->out + s->out_len, line, len);
	s->out[s->out_len + len] = '\n';
	s->out_len += len + 1;
	session_flush(s);
}

/* As send() does: bytes, or -1 with errno (EAGAIN: try again later). */
static ssize_t tls_send(struct session *s)
{
	size_t n = 0;
	errno = 0;
	if (SSL_write_ex(s->ssl, s->out, s->out_len, &n) == 1)
		return (ssize_t)n;
	int e = SSL_get_error(s->ssl, 0);
	errno = e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? EAGAIN
		: e == SSL_ERROR_SYSCALL && errno ? errno : EPROTO;
	return -1;
}

/* As read() does: bytes, 0 at the end, or -1 with errno. */
static ssize_t tls_read(struct session *s, char *buf, size_t size)
{
	size_t n = 0;
	if (SSL_read_ex(s->ssl, buf, size, &n) == 1)
		return (ssize_t)n;
	int e = SSL_get_error(s->ssl, 0);
	if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
		return 0; /* close_notify, or the end without one */
	errno = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? EAGAIN
		: e == SSL_ERROR_SYSCALL && errno ? errno : EPROTO;
	return -1;
}

int session_flush(struct session *s)
{
	while (s->out_len > 0) {
		ssize_t n = s->ssl ? tls_send(s) : send(s->fd, s->out, s->out_len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		memmove(s->out, s->out + n, s->out_len - (size_t)n);
		s->out_len -= (size_t)n;
	}
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void session_flush_blocking(struct session *s, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	while (s->out_len > 0 && session_flush(s) == 0 && s->out_len > 0) {
		long long left = deadline - now_ms();
		if (left <= 0)
			return;
		struct pollfd p = { .fd = s->fd, .events = POLLOUT };
		if (poll(&p, 1, (int)left) <= 0)
			return;
	}
}

static bool deliver(void *ctx, const char *line, size_t len)
{
	struct session *s = ctx;
	s->on_line(s->ctx, line, len);
	return true;
}

static bool too_long(void *ctx)
{
	static const char note[] = "! (chatc: a line from the server was too long to show)";
	struct session *s = ctx;
	s->on_line(s->ctx, note, sizeof(note) - 1);
	return true;
}

static const struct framer_handler handler = { .line = deliver, .too_long = too_long };

int session_read(struct session *s)
{
	char buf[16384];

	for (;;) {
		errno = 0;
		ssize_t n = s->ssl ? tls_read(s, buf, sizeof(buf)) : read(s->fd, buf, sizeof(buf));
		if (n > 0) {
			framer_feed(&s->framer, buf, (size_t)n, SESSION_MAX_LINE, &handler, s);
			continue;
		}
		if (n == 0) {
			s->closed = true;
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		if (errno == ECONNRESET) {
			s->closed = true;
			return 0;
		}
		return -errno;
	}
}
