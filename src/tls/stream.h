/* One connection's TLS: OpenSSL's record layer over memory, with no
 * system call of its own. The worker hands in the ciphertext it read;
 * plaintext comes out to a handler; what OpenSSL writes (handshake
 * messages, records, alerts) collects in an output buffer that the
 * worker's writer sends with everyone else's output. Encryption happens
 * when a connection's queue is written (see conn.c), one record per 16 KiB
 * of queued lines, so the lines stay shared until then.
 *
 * A stream belongs to its connection's worker thread. */
#ifndef CHATD_TLS_STREAM_H
#define CHATD_TLS_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

/* The most plaintext sealed into one record. */
#define TLS_RECORD_MAX 16384

struct tls_stream;

struct tls_stream_handler {
	/* The handshake is done. Return false to stop reading. */
	bool (*established)(void *ctx);
	/* Plaintext from the peer, in a buffer the handler may change (a
	 * WebSocket payload is unmasked in place). Return false to stop
	 * reading. */
	bool (*data)(void *ctx, char *data, size_t len);
};

enum tls_status {
	TLS_OK,      /* all input taken; more may come */
	TLS_STOPPED, /* a handler returned false */
	TLS_CLOSED,  /* the peer said close_notify */
	TLS_FAILED,  /* a handshake or record error: see tls_stream_reason() */
};

/* A stream for a server-side connection, with a reference to CTX. */
struct tls_stream *tls_stream_new(SSL_CTX *ctx);
void tls_stream_free(struct tls_stream *t);

/* Takes LEN bytes read from the peer: handshake first, then records,
 * calling H with what they carry. */
enum tls_status tls_stream_input(struct tls_stream *t, const char *data, size_t len,
				 const struct tls_stream_handler *h, void *ctx);

/* After TLS_FAILED: OpenSSL's reason ("wrong version number", ...), or
 * what else went wrong; a static string. */
const char *tls_stream_reason(const struct tls_stream *t);

/* Whether the handshake is done. */
bool tls_stream_established(const struct tls_stream *t);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384": for the log. */
void tls_stream_describe(const struct tls_stream *t, char *buf, size_t size);

/* The SHA-256 of the client's certificate as hex, in BUF of
 * TLS_FINGERPRINT_MAX bytes (tls/context.h), or "" when it showed none. */
void tls_stream_peer_fingerprint(const struct tls_stream *t, char *buf);

/* Makes room in the output for PLAINTEXT bytes about to be sealed, at
 * once rather than record by record. */
void tls_stream_reserve(struct tls_stream *t, size_t plaintext);

/* Encrypts LEN bytes (at most TLS_RECORD_MAX) into one record in the
 * output. Returns false if OpenSSL failed (the connection must go). */
bool tls_stream_seal(struct tls_stream *t, const char *data, size_t len);

/* Puts close_notify in the output, once. */
void tls_stream_close(struct tls_stream *t);

/* The output not yet written: *DATA and the length. */
size_t tls_stream_output(const struct tls_stream *t, const char **data);

/* Its length alone. */
size_t tls_stream_pending(const struct tls_stream *t);

/* N bytes of the output were written; an emptied buffer is freed (an idle
 * connection holds none). */
void tls_stream_written(struct tls_stream *t, size_t n);

/* Once a second: a stream that neither read nor sealed anything since the
 * last call gives OpenSSL's record buffers back, if it kept them through a
 * burst (see stream.c): an idle connection holds little more than its
 * keys. */
void tls_stream_idle(struct tls_stream *t);

#endif
