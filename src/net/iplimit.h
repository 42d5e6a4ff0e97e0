/* What chatd keeps per client address: the connections open from it
 * ([limits] max_per_ip), a token bucket of new connections ([limits]
 * connect_rate) and one of log lines about it ([log] per_address_burst).
 *
 * The accepting thread takes a count, the worker that closes the connection
 * gives it back; workers and the accepting thread ask before logging about
 * an address. One mutex guards the table (held for a hash look-up and a
 * few list moves). An address without connections is kept while one of
 * its buckets is not full again (a connect/close loop must not start from a
 * full bucket each time), but at most IP_LIMIT_IDLE_MAX of them: beyond
 * that the one idle longest is forgotten first. Every call takes the time,
 * so the logic is tested with a clock the test owns. */
#ifndef CHATD_IPLIMIT_H
#define CHATD_IPLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/log.h"

/* Addresses without connections kept for their buckets (about 100 bytes each). */
#define IP_LIMIT_IDLE_MAX 65536
/* Log lines about one address: per_address_burst at once, then this many a second. */
#define IP_LIMIT_LOG_RATE 1
/* "ffff:ffff:ffff:ffff::/64" or "255.255.255.255", with room to spare. */
#define IP_KEY_TEXT_MAX 56

/* An address as a limit sees it, in 16 bytes: IPv4 (mapped into IPv6, so a
 * client counts the same over either) or an IPv6 /64 network, the least a
 * site is given: one host can use all 2^64 addresses of its own. */
struct ip_key {
	uint8_t bytes[16];
};

void ip_key_from_sockaddr(const struct sockaddr *sa, struct ip_key *ret);
/* "192.0.2.1" or "2001:db8:1:2::/64". */
void ip_key_format(const struct ip_key *key, char ret[IP_KEY_TEXT_MAX]);

/* From the config; 0 turns each off. */
struct ip_limit_policy {
	int max_per_ip;   /* connections open at once */
	int connect_rate; /* new connections a second, and as many at once */
	int log_burst;    /* log lines at once, then IP_LIMIT_LOG_RATE a second */
};

struct ip_limit;

/* IDLE_MAX: IP_LIMIT_IDLE_MAX, or fewer for tests. */
struct ip_limit *ip_limit_new(const struct ip_limit_policy *policy, size_t idle_max);
void ip_limit_free(struct ip_limit *l);

/* A reload: applies to what happens next; buckets keep their tokens, up to
 * the new burst. */
void ip_limit_set_policy(struct ip_limit *l, const struct ip_limit_policy *policy);

enum ip_verdict {
	IP_OK,       /* counted: give it back with ip_limit_release() */
	IP_TOO_MANY, /* max_per_ip are open already */
	IP_TOO_FAST, /* over connect_rate; a refused connection takes no token */
};

enum ip_verdict ip_limit_acquire(struct ip_limit *l, const struct ip_key *key, uint64_t now_ms);
void ip_limit_release(struct ip_limit *l, const struct ip_key *key, uint64_t now_ms);


/* Whether a line of PRIORITY about KEY may be logged now (a token of its
 * log bucket); when it may, *RET says what was held back since the last
 * one. A line the log level leaves out anyway takes no token and is not
 * counted. Lines held back and never followed by another are logged as a
 * count on their own when the address is forgotten. */
bool ip_limit_log_allowed(struct ip_limit *l, const struct ip_key *key, int priority,
			  uint64_t now_ms, struct log_note *ret);

/* Addresses in the table, with connections or not (for tests). */
size_t ip_limit_addresses(struct ip_limit *l);

#endif
