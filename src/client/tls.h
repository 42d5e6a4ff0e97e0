/* chatc over TLS: the handshake on a connected socket, verifying the
 * server's certificate against the system's CA store (or a CA file) and
 * the host name chatc was given. */
#ifndef CHATC_TLS_H
#define CHATC_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

struct tls_client_options {
	const char *ca_file; /* NULL: the system's CA store */
	bool insecure;       /* no verification at all (said on stderr) */
};

/* Makes the TLS session on FD (connected, non-blocking) with HOST and
 * checks the certificate, waiting at most TIMEOUT_MS. Returns the SSL, or
 * NULL with the reason in ERR (with the certificate's fingerprint when it
 * did not verify). */
SSL *client_tls_connect(int fd, const char *host, const struct tls_client_options *o,
			int timeout_ms, char *err, size_t err_size);

/* Sends close_notify (not waiting for the server's) and frees. */
void client_tls_close(SSL *ssl);

#endif
