#include "autoconf.h"

#include "tls/stream.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "base/util.h"
#include "tls/context.h"

struct tls_stream {
	SSL *ssl;
	BIO *bio;             /* ours (see below); the SSL owns it */
	const char *in;       /* ciphertext being handed in */
	size_t in_len;
	char *out;            /* ciphertext to write: out[out_off..out_len) */
	size_t out_len, out_off, out_cap;
	const char *reason;   /* of the last failure */
	size_t sealed;        /* plaintext sealed since the output was last empty */
	bool busy;            /* read or sealed since the last tls_stream_idle() */
	bool established;
	bool closed;          /* close_notify put in the output */
};

/* ---- the output buffer and OpenSSL's --------------------------------------- */

/* Room for N more bytes of output. */
static void out_reserve(struct tls_stream *t, size_t n)
{
	if (t->out_len + n <= t->out_cap)
		return;
	size_t cap = t->out_cap ? t->out_cap : n > 4096 ? n : 4096;
	while (cap < t->out_len + n)
		cap *= 2;
	t->out = xrealloc(t->out, cap);
	t->out_cap = cap;
}

/* OpenSSL's record buffers (17 KiB each way) are given back, unless a
 * record is half read: an idle connection holds little more than its
 * keys. */
static void release_buffers(struct tls_stream *t)
{
	if (!t->out)
		SSL_free_buffers(t->ssl); /* refuses, harmlessly, if a record is half read */
}

/* Past this much plaintext in one flush, a stream keeps OpenSSL's buffers
 * (see tls_stream_written()): freed and taken again at every flush of a
 * burst (500 connections, a few KiB each per loop iteration), they cost
 * a tenth of the server's CPU. */
#define KEEP_BUFFERS_AFTER (4 * 1024)

static void out_release(struct tls_stream *t)
{
	free(t->out);
	t->out = NULL;
	t->out_len = t->out_off = t->out_cap = 0;
}

/* ---- a BIO over the stream's memory ------------------------------------
 * OpenSSL reads from and writes to this BIO only; it never blocks: a read
 * with nothing handed in says "retry", and a write always fits. */

static int bio_write(BIO *b, const char *data, int len)
{
	struct tls_stream *t = BIO_get_data(b);
	if (len <= 0)
		return 0;
	out_reserve(t, (size_t)len);
	memcpy(t->out + t->out_len, data, (size_t)len);
	t->out_len += (size_t)len;
	return len;
}

static int bio_read(BIO *b, char *buf, int len)
{
	struct tls_stream *t = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	if (t->in_len == 0) {
		BIO_set_retry_read(b);
		return -1;
	}
	size_t n = (size_t)len < t->in_len ? (size_t)len : t->in_len;
	memcpy(buf, t->in, n);
	t->in += n;
	t->in_len -= n;
	return (int)n;
}

/* Only a flush succeeds (its bytes go when the worker writes); nothing
 * else is asked of a BIO like this one. */
static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b, (void)num, (void)ptr;
	return cmd == BIO_CTRL_FLUSH;
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static void bio_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "chatd stream");
	if (!m || !BIO_meth_set_write(m, bio_write) || !BIO_meth_set_read(m, bio_read) ||
	    !BIO_meth_set_ctrl(m, bio_ctrl) || !BIO_meth_set_create(m, bio_create))
		abort(); /* out of memory, as in xmalloc() */
	bio_method = m;
}

/* ---- the stream ---------------------------------------------------------- */

struct tls_stream *tls_stream_new(SSL_CTX *ctx)
{
	pthread_once(&bio_once, bio_method_init);
	struct tls_stream *t = xcalloc(1, sizeof(*t));
	t->ssl = SSL_new(ctx);
	t->bio = BIO_new(bio_method);
	if (!t->ssl || !t->bio)
		abort(); /* out of memory */
	BIO_set_data(t->bio, t);
	SSL_set_bio(t->ssl, t->bio, t->bio);
	SSL_set_accept_state(t->ssl);
	return t;
}

void tls_stream_free(struct tls_stream *t)
{
	if (!t)
		return;
	SSL_free(t->ssl);
	out_release(t);
	free(t);
}

/* Why OpenSSL failed, its error queue emptied (it is per thread). */
static enum tls_status failure(struct tls_stream *t, int ssl_error)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e ? ERR_reason_error_string(e) : NULL;
	ERR_clear_error();
	if (reason)
		t->reason = reason;
	else if (ssl_error == SSL_ERROR_SYSCALL)
		t->reason = "unexpected end of input";
	else
		t->reason = "protocol error";
	return TLS_FAILED;
}

enum tls_status tls_stream_input(struct tls_stream *t, const char *data, size_t len,
				 const struct tls_stream_handler *h, void *ctx)
{
	char plain[TLS_RECORD_MAX];
	enum tls_status status = TLS_OK;

	t->in = data;
	t->in_len = len;
	if (!t->established) {
		int r = SSL_do_handshake(t->ssl);
		if (r != 1) {
			int e = SSL_get_error(t->ssl, r);
			status = e == SSL_ERROR_WANT_READ ? TLS_OK : failure(t, e);
			goto out;
		}
		t->established = true;
		if (!h->established(ctx)) {
			status = TLS_STOPPED;
			goto out;
		}
	}
	for (;;) {
		size_t n = 0;
		if (SSL_read_ex(t->ssl, plain, sizeof(plain), &n) == 1) {
			if (!h->data(ctx, plain, n)) {
				status = TLS_STOPPED;
				break;
			}
			continue;
		}
		int e = SSL_get_error(t->ssl, 0);
		if (e == SSL_ERROR_WANT_READ)
			break;
		status = e == SSL_ERROR_ZERO_RETURN ? TLS_CLOSED : failure(t, e);
		break;
	}
out:
	/* What was not taken is of no use: a stopped or failed stream
	 * reads no more. */
	t->in = NULL;
	t->in_len = 0;
	t->busy = true;
	if (!t->out) /* nothing to send back: nothing more is coming soon */
		release_buffers(t);
	return status;
}

const char *tls_stream_reason(const struct tls_stream *t)
{
	return t->reason ? t->reason : "no error";
}

bool tls_stream_established(const struct tls_stream *t)
{
	return t->established;
}

void tls_stream_describe(const struct tls_stream *t, char *buf, size_t size)
{
	snprintf(buf, size, "%s %s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl));
}

void tls_stream_peer_fingerprint(const struct tls_stream *t, char *buf)
{
	X509 *cert = SSL_get0_peer_certificate(t->ssl);
	buf[0] = '\0';
	if (cert)
		tls_fingerprint_hex(cert, buf);
}

/* A record's header, tag and padding, at most (TLS 1.3 AEAD: 5 + 16 + 1;
 * TLS 1.2 GCM: 5 + 8 + 16). */
#define RECORD_OVERHEAD 64

void tls_stream_reserve(struct tls_stream *t, size_t plaintext)
{
	out_reserve(t, plaintext + (plaintext / TLS_RECORD_MAX + 1) * RECORD_OVERHEAD);
}

bool tls_stream_seal(struct tls_stream *t, const char *data, size_t len)
{
	size_t written = 0;
	t->busy = true;
	t->sealed += len;
	if (SSL_write_ex(t->ssl, data, len, &written) == 1 && written == len)
		return true;
	failure(t, SSL_get_error(t->ssl, 0));
	return false;
}

void tls_stream_close(struct tls_stream *t)
{
	if (t->closed || !t->established)
		return;
	t->closed = true;
	SSL_shutdown(t->ssl); /* 0: ours sent, theirs not awaited */
	ERR_clear_error();
}

size_t tls_stream_output(const struct tls_stream *t, const char **data)
{
	*data = t->out ? t->out + t->out_off : NULL;
	return tls_stream_pending(t);
}

size_t tls_stream_pending(const struct tls_stream *t)
{
	return t->out_len - t->out_off;
}

void tls_stream_written(struct tls_stream *t, size_t n)
{
	t->out_off += n;
	if (t->out_off < t->out_len)
		return;
	out_release(t);
	/* A line now and then, a reply: the record buffers go now. A
	 * flush of more than a few records' worth means a burst, whose next
	 * flush would take them again at once: they stay, until the tick
	 * finds the stream quiet (tls_stream_idle()). */
	if (t->sealed < KEEP_BUFFERS_AFTER)
		release_buffers(t);
	t->sealed = 0;
}

void tls_stream_idle(struct tls_stream *t)
{
	if (!t->busy)
		release_buffers(t);
	t->busy = false;
}
