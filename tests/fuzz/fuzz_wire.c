/* libFuzzer target: a message of the cluster's stream, as another node
 * (or anyone who can publish to NATS) could make it. Every record that
 * decodes must encode back to the same bytes (but its version: a version
 * 1 record is written as the current version), and decoding must stop at
 * the first that does not. */
#include "autoconf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0, before = 0;
	struct wire_record r;
	int k;
	while ((k = wire_decode(data, size, &off, &r)) > 0) {
		if (off <= before || off > size)
			abort(); /* no progress, or past the end */
		struct wire_buf b = { 0 };
		wire_encode(&b, &r);
		if (b.len != off - before || b.data[0] != WIRE_VERSION ||
		    (data[before] != WIRE_VERSION && data[before] != 1) ||
		    memcmp(b.data + 1, data + before + 1, b.len - 1) != 0)
			abort(); /* not what it decoded from */
		wire_buf_free(&b);
		before = off;
	}
	if (k < 0 && (k != -EBADMSG || off != before))
		abort();
	return 0;
}
