/* libFuzzer target: what a browser (or anyone) sends to the web port.
 * The input is taken three ways: as an HTTP request, through the HTTP
 * parser; as a stream of WebSocket frames, cut between two feeds where the
 * first byte says, through the frame decoder; and as lines for a client,
 * framed by the encoder and read back. */
#include "autoconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"
#include "web/http.h"
#include "web/websocket.h"

#define MAX_MESSAGE 600

static bool on_message(void *ctx, bool binary, char *data, size_t len)
{
	(void)ctx;
	if (len > MAX_MESSAGE)
		abort(); /* the decoder let an over-long message through */
	if (!binary && text_utf8_valid(data, len) != len)
		abort(); /* text that is not UTF-8 */
	return true;
}

static bool on_ping(void *ctx, const char *data, size_t len)
{
	(void)ctx;
	(void)data;
	if (len > 125)
		abort();
	return true;
}

static void on_close(void *ctx, unsigned code, const char *reason, size_t len)
{
	(void)ctx;
	(void)reason;
	if (len > 123 || code < 1000 || code > 4999)
		abort();
}

static const struct ws_handler handler = { on_message, on_ping, on_close };

static void http(const char *data, size_t size)
{
	size_t len = http_request_length(data, size);
	if (!len)
		return;
	struct http_request r;
	int status = http_request_parse(data, len, &r);
	if (status == 0) {
		if (r.path[0] == '\0' || strlen(r.path) >= HTTP_PATH_MAX)
			abort();
		const struct http_value *v[] = { &r.host, &r.origin, &r.ws_key, &r.ws_version,
						 &r.forwarded_for, &r.if_none_match };
		for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
			if (v[i]->p && (v[i]->p < data || v[i]->p + v[i]->len > data + len))
				abort(); /* a value outside the request */
	} else if (status < 400 || status > 599 || !r.error) {
		abort();
	}
}

static void frames(const uint8_t *data, size_t size)
{
	char *copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	size_t cut = size ? data[0] % (size + 1) : 0;
	struct ws_decoder d;
	ws_decoder_init(&d, MAX_MESSAGE);
	size_t taken;
	enum ws_status st = ws_decode(&d, copy, cut, &handler, NULL, &taken);
	if (st == WS_OK)
		st = ws_decode(&d, copy + cut, size - cut, &handler, NULL, &taken);
	if (st == WS_ERROR && (d.error_code < 1000 || !d.error))
		abort();
	ws_decoder_free(&d);
	free(copy);
}

/* Reads back what ws_frame_lines made: whole unmasked frames, one per
 * non-empty line, text ones valid UTF-8. */
static void encode(const uint8_t *data, size_t size, bool binary)
{
	struct msg *lines = msg_new(size);
	lines = msg_append(lines, (const char *)data, size);
	struct msg *m = ws_frame_lines(lines, binary);
	const unsigned char *p = (const unsigned char *)m->data, *end = p + m->len;
	while (p < end) {
		if (end - p < 2 || p[0] != (0x80 | (binary ? 2 : 1)) || (p[1] & 0x80))
			abort();
		size_t n = p[1] & 0x7f, h = 2;
		if (n == 126) {
			n = (size_t)p[2] << 8 | p[3];
			h = 4;
		} else if (n == 127) {
			n = 0;
			for (int i = 2; i < 10; i++)
				n = n << 8 | p[i];
			h = 10;
		}
		if (n == 0 || (size_t)(end - p) < h + n)
			abort();
		if (memchr(p + h, '\n', n) || (!binary && text_utf8_valid((const char *)p + h, n) != n))
			abort();
		p += h + n;
	}
	msg_unref(m);
	msg_unref(lines);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	http((const char *)data, size);
	frames(data, size);
	encode(data, size, false);
	encode(data, size, true);
	return 0;
}
