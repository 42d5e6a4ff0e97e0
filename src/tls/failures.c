#include "autoconf.h"

#include "tls/failures.h"

#include <pthread.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

#define REASONS_MAX 16 /* reasons remembered; the oldest makes room */
#define INTERVAL_MS 1000

static struct {
	const char *reason;
	uint64_t logged_ms;
	unsigned long suppressed;
} reasons[REASONS_MAX];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void tls_failure_log(const char *peer, const char *reason, uint64_t now_ms)
{
	unsigned long suppressed = 0;
	bool log = true;

	pthread_mutex_lock(&lock);
	size_t slot = REASONS_MAX, oldest = 0;
	for (size_t i = 0; i < REASONS_MAX && slot == REASONS_MAX; i++) {
		if (reasons[i].reason && strcmp(reasons[i].reason, reason) == 0)
			slot = i;
		else if (reasons[i].logged_ms < reasons[oldest].logged_ms) /* empty: 0 */
			oldest = i;
	}
	if (slot == REASONS_MAX) {
		slot = oldest;
		reasons[slot].reason = reason;
		reasons[slot].logged_ms = now_ms;
		reasons[slot].suppressed = 0;
	} else if (now_ms - reasons[slot].logged_ms < INTERVAL_MS) {
		reasons[slot].suppressed++;
		log = false;
	} else {
		suppressed = reasons[slot].suppressed;
		reasons[slot].logged_ms = now_ms;
		reasons[slot].suppressed = 0;
	}
	pthread_mutex_unlock(&lock);
	if (!log)
		return;
	if (suppressed)
		log_event(LOG_NOTICE, LOG_FIELDS(.event = "tls_failed", .peer = peer, .reason = reason,
						 .suppressed = suppressed),
			  "TLS handshake with %s failed: %s (and %lu more for the same reason not logged)",
			  peer, reason, suppressed);
	else
		log_event(LOG_NOTICE, LOG_FIELDS(.event = "tls_failed", .peer = peer, .reason = reason),
			  "TLS handshake with %s failed: %s", peer, reason);
}
