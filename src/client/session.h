/* chatc's connection to the server: lines out through a buffer (the socket
 * is non-blocking, so a busy server never freezes the terminal), lines in
 * through the same framer the server uses. */
#ifndef CHATC_SESSION_H
#define CHATC_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "proto/framer.h"

/* Longest server line chatc shows; longer ones (a /who of a huge room) are
 * cut with a note rather than buffered without bound. */
#define SESSION_MAX_LINE (256 * 1024)

struct session {
	int fd;
	SSL *ssl;           /* over TLS (see tls.h); NULL: plaintext */
	struct framer framer;
	char *out;
	size_t out_len, out_cap;
	bool closed;        /* the server closed the connection */
	bool quit_sent;     /* the user sent /quit: a close is expected */
	/* Called for each line the server sends, without "\n". */
	void (*on_line)(void *ctx, const char *line, size_t len);
	void *ctx;
};

/* FD, and SSL when over TLS: the session owns both. */
void session_init(struct session *s, int fd, SSL *ssl,
		  void (*on_line)(void *ctx, const char *line, size_t len), void *ctx);
void session_close(struct session *s);

/* Queues one line (the "\n" is added) and tries to send it. */
void session_send_line(struct session *s, const char *line, size_t len);

/* Sends what is queued as far as the socket takes it; -errno on error. */
int session_flush(struct session *s);

/* Sends what is queued, waiting for the socket up to TIMEOUT_MS. */
void session_flush_blocking(struct session *s, int timeout_ms);

/* Reads what the server sent and calls on_line for each line. Returns 0,
 * or -errno; sets closed on EOF. */
int session_read(struct session *s);

static inline bool session_has_output(const struct session *s)
{
	return s->out_len > 0;
}

#endif
