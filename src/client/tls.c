#include "autoconf.h"

#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void openssl_reason(char *buf, size_t size)
{
	unsigned long e, last = 0;
	while ((e = ERR_get_error()) != 0)
		last = e;
	const char *reason = last ? ERR_reason_error_string(last) : NULL;
	snprintf(buf, size, "%s", reason ? reason : "the connection was closed");
}

/* "AB:CD:..." of the certificate's SHA-256, as browsers and openssl show it. */
static void fingerprint(X509 *cert, char *buf, size_t size)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	size_t n = 0;

	buf[0] = '\0';
	if (!cert || X509_digest(cert, EVP_sha256(), md, &len) != 1)
		return;
	for (unsigned i = 0; i < len && n + 4 <= size; i++)
		n += (size_t)snprintf(buf + n, size - n, i ? ":%02X" : "%02X", md[i]);
}

static bool is_ip_literal(const char *host)
{
	unsigned char addr[16];
	return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

static SSL_CTX *make_context(const struct tls_client_options *o, char *err, size_t err_size)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		openssl_reason(err, err_size);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	int ok = o->ca_file ? SSL_CTX_load_verify_file(ctx, o->ca_file)
			    : SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		char reason[200];
		openssl_reason(reason, sizeof(reason));
		snprintf(err, err_size, "cannot load the CA certificates%s%s: %s",
			 o->ca_file ? " from " : "", o->ca_file ? o->ca_file : "", reason);
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* Verified after the handshake (see below), so that a failure can say
	 * which certificate the server showed. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}

SSL *client_tls_connect(int fd, const char *host, const struct tls_client_options *o,
			int timeout_ms, char *err, size_t err_size)
{
	SSL_CTX *ctx = make_context(o, err, err_size);
	if (!ctx)
		return NULL;
	SSL *ssl = SSL_new(ctx);
	SSL_CTX_free(ctx); /* the SSL holds its own reference */
	if (!ssl || SSL_set_fd(ssl, fd) != 1) {
		openssl_reason(err, err_size);
		SSL_free(ssl);
		return NULL;
	}
	bool ip = is_ip_literal(host);
	if (!ip)
		SSL_set_tlsext_host_name(ssl, host); /* SNI: names only */
	X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
	if (ip)
		X509_VERIFY_PARAM_set1_ip_asc(param, host);
	else
		SSL_set1_host(ssl, host);

	long long deadline = now_ms() + timeout_ms;
	for (;;) {
		ERR_clear_error();
		int r = SSL_connect(ssl);
		if (r == 1)
			break;
		int e = SSL_get_error(ssl, r);
		long long left = deadline - now_ms();
		if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && left > 0) {
			struct pollfd p = { .fd = fd, .events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT };
			if (poll(&p, 1, (int)left) >= 0 || errno == EINTR)
				continue;
		}
		if (left <= 0)
			snprintf(err, err_size, "TLS handshake timed out");
		else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
			snprintf(err, err_size, "TLS handshake failed: the server closed the connection "
				 "(is this its TLS port?)");
		else {
			char reason[200];
			openssl_reason(reason, sizeof(reason));
			snprintf(err, err_size, "TLS handshake failed: %s", reason);
		}
		SSL_free(ssl);
		return NULL;
	}
	if (o->insecure)
		return ssl;

	X509 *cert = SSL_get0_peer_certificate(ssl);
	long v = cert ? SSL_get_verify_result(ssl) : X509_V_ERR_UNSPECIFIED;
	if (v != X509_V_OK) {
		char fp[3 * EVP_MAX_MD_SIZE + 1];
		fingerprint(cert, fp, sizeof(fp));
		bool other_host = v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH;
		snprintf(err, err_size,
			 "the server's certificate is not trusted: %s%s (its SHA-256 fingerprint: %s)%s",
			 !cert ? "it showed none" : other_host ? "it is not for " :
			 X509_verify_cert_error_string(v), other_host ? host : "", fp[0] ? fp : "none",
			 o->ca_file || other_host ? "" :
			 "; for a private CA, give its certificate with --ca FILE");
		client_tls_close(ssl);
		return NULL;
	}
	return ssl;
}

void client_tls_close(SSL *ssl)
{
	if (!ssl)
		return;
	SSL_shutdown(ssl);
	SSL_free(ssl);
}
