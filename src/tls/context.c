#include "autoconf.h"

#include "tls/context.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/log.h"
#include "base/util.h"

/* OpenSSL's reason for the last failure, emptied from its error queue
 * (which is per thread and would otherwise show in the next report). */
static void openssl_reason(char *buf, size_t size)
{
	unsigned long e, last = 0;

	while ((e = ERR_get_error()) != 0)
		last = e;
	const char *reason = last ? ERR_reason_error_string(last) : NULL;
	if (reason)
		snprintf(buf, size, "%s", reason);
	else if (last)
		ERR_error_string_n(last, buf, size);
	else
		snprintf(buf, size, "unknown error");
}

/* NULL, or why PATH cannot be read as the daemon's user (malloc'd): a
 * clearer reason than OpenSSL's for the usual mistakes. */
static char *unreadable(const char *what, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return xasprintf("[tls] %s %s: %s", what, path, strerror(errno));
	struct stat st;
	char *err = NULL;
	if (fstat(fd, &st) < 0)
		err = xasprintf("[tls] %s %s: %s", what, path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		err = xasprintf("[tls] %s %s: not a regular file", what, path);
	close(fd);
	return err;
}

static char *failed(const char *what, const char *path)
{
	char reason[256];
	openssl_reason(reason, sizeof(reason));
	return xasprintf("[tls] %s %s: %s", what, path, reason);
}

SSL_CTX *tls_context_new(const struct config *cfg, char **err)
{
	*err = NULL;
	if (!cfg->tls_certificate) {
		*err = xasprintf("[tls] certificate is not set");
		return NULL;
	}
	if (!cfg->tls_key) {
		*err = xasprintf("[tls] key is not set, and chatd has no systemd credential %s "
				 "($CREDENTIALS_DIRECTORY/%s)", CONFIG_TLS_KEY_CREDENTIAL,
				 CONFIG_TLS_KEY_CREDENTIAL);
		return NULL;
	}
	if ((*err = unreadable("certificate", cfg->tls_certificate)) ||
	    (*err = unreadable("key", cfg->tls_key)) ||
	    (cfg->tls_client_ca && (*err = unreadable("client_ca", cfg->tls_client_ca))))
		return NULL;

	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		char reason[256];
		openssl_reason(reason, sizeof(reason));
		*err = xasprintf("cannot make a TLS context: %s", reason);
		return NULL;
	}
	/* TLS 1.2 and 1.3; the ciphers are OpenSSL's defaults as the
	 * system's configuration (its crypto policy) leaves them, in the
	 * client's order of preference (it knows whether its CPU has AES
	 * instructions). */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	/* Not SSL_MODE_RELEASE_BUFFERS, which frees the record buffers after
	 * every read and write: a stream frees them itself once it is idle
	 * (see stream.c), not between the records of one flush. */
	/* Resumption by tickets only: no server-side cache to bound, and a
	 * reload, which makes new ticket keys, simply ends resumption. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 1);
	static const unsigned char sid_ctx[] = "chatd";
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);

	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_certificate) != 1) {
		*err = failed("certificate", cfg->tls_certificate);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1) {
		unsigned long e = ERR_peek_last_error();
		if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
			goto mismatch;
		*err = failed("key", cfg->tls_key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
mismatch:;
		char reason[256];
		openssl_reason(reason, sizeof(reason));
		*err = xasprintf("[tls] key %s does not match the certificate %s (%s)", cfg->tls_key,
				 cfg->tls_certificate, reason);
		goto fail;
	}
	if (cfg->tls_client_ca) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->tls_client_ca);
		if (!names || SSL_CTX_load_verify_file(ctx, cfg->tls_client_ca) != 1) {
			if (names)
				sk_X509_NAME_pop_free(names, X509_NAME_free);
			*err = failed("client_ca", cfg->tls_client_ca);
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		/* Asked for, not required: a client without one is welcome; one
		 * that shows a certificate the CA did not sign is not. */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE, NULL);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void tls_fingerprint_hex(X509 *cert, char buf[TLS_FINGERPRINT_MAX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	buf[0] = '\0';
	if (X509_digest(cert, EVP_sha256(), md, &len) != 1)
		return;
	for (unsigned i = 0; i < len && i < (TLS_FINGERPRINT_MAX - 1) / 2; i++)
		sprintf(buf + 2 * i, "%02x", md[i]);
}

/* "CN=chat.example.org, O=..." in one line, control characters escaped. */
static void name_text(X509_NAME *name, char *buf, size_t size)
{
	buf[0] = '\0';
	BIO *b = BIO_new(BIO_s_mem());
	if (!b)
		return;
	X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
	int n = BIO_read(b, buf, (int)size - 1);
	buf[n > 0 ? n : 0] = '\0';
	BIO_free(b);
}

bool tls_context_cert_info(SSL_CTX *ctx, struct tls_cert_info *info)
{
	X509 *cert = SSL_CTX_get0_certificate(ctx);

	memset(info, 0, sizeof(*info));
	if (!cert)
		return false;
	name_text(X509_get_subject_name(cert), info->subject, sizeof(info->subject));
	name_text(X509_get_issuer_name(cert), info->issuer, sizeof(info->issuer));
	struct tm tm;
	if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1)
		info->not_after = timegm(&tm);
	tls_fingerprint_hex(cert, info->sha256);
	return true;
}

void tls_context_log(SSL_CTX *ctx, const char *when)
{
	struct tls_cert_info info;
	if (!tls_context_cert_info(ctx, &info))
		return;
	char expiry[32] = "unknown";
	struct tm tm;
	if (info.not_after && gmtime_r(&info.not_after, &tm))
		strftime(expiry, sizeof(expiry), "%Y-%m-%d %H:%M:%S UTC", &tm);
	log_event(LOG_INFO, LOG_FIELDS(.event = "tls_certificate"),
		  "TLS certificate %s: subject %s, issuer %s, expires %s, SHA-256 %s", when,
		  info.subject, info.issuer, expiry, info.sha256);
}

void tls_files_stamp_read(const struct config *cfg, struct tls_files_stamp *ret)
{
	const char *paths[3] = { cfg->tls_certificate, cfg->tls_key, cfg->tls_client_ca };

	memset(ret, 0, sizeof(*ret));
	for (int i = 0; i < 3; i++) {
		struct stat st;
		if (!paths[i])
			continue;
		if (stat(paths[i], &st) < 0) {
			ret->file[i].error = errno;
			continue;
		}
		ret->file[i].dev = st.st_dev;
		ret->file[i].ino = st.st_ino;
		ret->file[i].size = st.st_size;
		ret->file[i].ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
		ret->file[i].mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	}
}

bool tls_files_stamp_equal(const struct tls_files_stamp *a, const struct tls_files_stamp *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}
