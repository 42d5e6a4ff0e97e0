/* Where chatc connects: parsing HOST[:PORT], [V6]:PORT or HOST PORT, and
 * connecting to the first address that answers. */
#ifndef CHATC_TARGET_H
#define CHATC_TARGET_H

#include <stddef.h>

#define DEFAULT_HOST "localhost"
#define DEFAULT_PORT "7777"
#define DEFAULT_TLS_PORT "7778" /* chatd has none: the example config's tls_port */

struct target {
	char host[256];
	char port[16];
};

/* Fills T from the 0, 1 or 2 operands, with PORT when they give none.
 * Returns 0, or -1 with a message in ERR (for the usage error). */
int target_parse(struct target *t, int argc, char **argv, const char *port, char *err,
		 size_t err_size);

/* "host:port", or "[v6]:port". */
void target_format(const struct target *t, char *buf, size_t size);

/* A connected, non-blocking TCP socket, or -1 with the reason in ERR. */
int target_connect(const struct target *t, char *err, size_t err_size);

#endif
