/* The server's side of TLS as a whole: an OpenSSL context made from the
 * [tls] files (certificate chain, key, optional client CA), what the log
 * says of its certificate, and the files' identity, so that a renewal that
 * replaces them is noticed without a signal.
 *
 * A context is reference-counted by OpenSSL: each connection's TLS state
 * holds one, so a context replaced by a reload lives on for the sessions
 * made with it and goes with the last of them. */
#ifndef CHATD_TLS_CONTEXT_H
#define CHATD_TLS_CONTEXT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/ssl.h>

#include "base/config.h"

#define TLS_FINGERPRINT_MAX (32 * 2 + 1) /* SHA-256 in hex */

/* Makes a server context from CFG's [tls] files. Returns it, or NULL with
 * *ERR (malloc'd) saying which file and OpenSSL's reason. */
SSL_CTX *tls_context_new(const struct config *cfg, char **err);

/* A certificate as the log shows it. */
struct tls_cert_info {
	char subject[256];
	char issuer[256];
	time_t not_after;         /* 0 when unknown */
	char sha256[TLS_FINGERPRINT_MAX]; /* hex of the DER's SHA-256 */
};

/* The context's own certificate. Returns false if it has none. */
bool tls_context_cert_info(SSL_CTX *ctx, struct tls_cert_info *info);

/* Logs which certificate CTX serves (CHATD_EVENT=tls_certificate), with
 * WHEN ("in use", "reloaded") in the message. */
void tls_context_log(SSL_CTX *ctx, const char *when);

/* What identifies the [tls] files' contents without reading them: device,
 * inode, size and change time of each (a renewal that writes new files and
 * moves a symbolic link changes the inode; one that rewrites in place, the
 * change time). */
struct tls_files_stamp {
	struct {
		dev_t dev;
		ino_t ino;
		off_t size;
		int64_t ctime_ns, mtime_ns;
		int error; /* errno of stat(); 0 */
	} file[3];
};

void tls_files_stamp_read(const struct config *cfg, struct tls_files_stamp *ret);
bool tls_files_stamp_equal(const struct tls_files_stamp *a, const struct tls_files_stamp *b);

/* The SHA-256 fingerprint of CERT (of its DER form) as lower-case hex. */
void tls_fingerprint_hex(X509 *cert, char buf[TLS_FINGERPRINT_MAX]);

#endif
