/* Connections per client address, for [limits] max_per_ip. The accepting
 * thread takes a count, the worker that closes the connection gives it
 * back; one mutex guards the table (held for a hash look-up). */
#ifndef CHATD_IPLIMIT_H
#define CHATD_IPLIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* An address as 16 bytes: IPv6, or IPv4 mapped into IPv6, so a client
 * counts the same over either. */
struct ip_key {
	uint8_t bytes[16];
};

void ip_key_from_sockaddr(const struct sockaddr *sa, struct ip_key *ret);

struct ip_limit;

struct ip_limit *ip_limit_new(void);
void ip_limit_free(struct ip_limit *l);

/* Counts one more connection from KEY, unless MAX (0: no limit) are open
 * already; returns whether it was counted. */
bool ip_limit_acquire(struct ip_limit *l, const struct ip_key *key, int max);
void ip_limit_release(struct ip_limit *l, const struct ip_key *key);

#endif
