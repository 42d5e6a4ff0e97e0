/* TLS handshakes that fail, in the log: a port scanner or a client
 * speaking plaintext to a TLS port fails every time, so each reason is
 * logged at most once a second, with a count of those not logged. */
#ifndef CHATD_TLS_FAILURES_H
#define CHATD_TLS_FAILURES_H

#include <stdint.h>

/* Logs that the handshake with PEER failed for REASON (a static string:
 * OpenSSL's reason, or one of ours), unless that reason was logged less
 * than a second before NOW_MS. Any thread. */
void tls_failure_log(const char *peer, const char *reason, uint64_t now_ms);

#endif
