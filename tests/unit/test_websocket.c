/* The WebSocket codec and the HTTP request parser of the web port: the
 * RFC's own handshake example, frames fed whole and a byte at a time,
 * the framing of server lines, and requests good and bad. */
#include "autoconf.h"

#include <stdbool.h>
#include <string.h>

#include "base/util.h"
#include "unit.h"
#include "web/http.h"
#include "web/websocket.h"

/* What the decoder handed over, one message per line of got[]. */
struct seen {
	char got[2048];
	size_t len;
	unsigned pings, close_code;
};

static bool on_message(void *ctx, bool binary, char *data, size_t len)
{
	struct seen *s = ctx;
	s->len += (size_t)snprintf(s->got + s->len, sizeof(s->got) - s->len, "%s:%.*s|",
				   binary ? "b" : "t", (int)len, data);
	return true;
}

static bool on_ping(void *ctx, const char *data, size_t len)
{
	struct seen *s = ctx;
	(void)data;
	(void)len;
	s->pings++;
	return true;
}

static void on_close(void *ctx, unsigned code, const char *reason, size_t len)
{
	struct seen *s = ctx;
	(void)reason;
	(void)len;
	s->close_code = code;
}

static const struct ws_handler handler = { on_message, on_ping, on_close };

/* A client frame, masked with a fixed key, into BUF; returns its size. */
static size_t client_frame(unsigned char *buf, unsigned first, const char *payload, size_t n)
{
	static const unsigned char key[4] = { 0x37, 0xfa, 0x21, 0x3d };
	size_t h = 0;
	buf[h++] = (unsigned char)first;
	if (n < 126) {
		buf[h++] = (unsigned char)(0x80 | n);
	} else {
		buf[h++] = 0x80 | 126;
		buf[h++] = (unsigned char)(n >> 8);
		buf[h++] = (unsigned char)n;
	}
	memcpy(buf + h, key, 4);
	h += 4;
	for (size_t i = 0; i < n; i++)
		buf[h + i] = (unsigned char)payload[i] ^ key[i & 3];
	return h + n;
}

static void test_accept_key(void)
{
	char accept[WS_ACCEPT_SIZE];
	/* RFC 6455, section 1.3. */
	CHECK(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, accept));
	CHECK_STR(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_decoding_whatever_the_cuts(void)
{
	unsigned char stream[1024];
	size_t n = 0;
	char big[300];
	memset(big, 'x', sizeof(big));
	n += client_frame(stream + n, 0x81, "PRIVMSG #a :hi", 14);
	n += client_frame(stream + n, 0x01, "NICK ", 5);           /* a fragment */
	n += client_frame(stream + n, 0x89, "ping", 4);            /* between them */
	n += client_frame(stream + n, 0x80, "bob", 3);             /* the last one */
	n += client_frame(stream + n, 0x82, big, sizeof(big));     /* 16-bit length */
	n += client_frame(stream + n, 0x88, "\x03\xe8" "bye", 5);
	const char *want_prefix = "t:PRIVMSG #a :hi|t:NICK bob|b:xxx";

	/* Fed whole, and cut at each point into two feeds. */
	for (size_t cut = 0; cut <= n; cut++) {
		unsigned char copy[1024];
		memcpy(copy, stream, n);
		struct seen s = { 0 };
		struct ws_decoder d;
		size_t taken;
		ws_decoder_init(&d, 512);
		enum ws_status st = ws_decode(&d, (char *)copy, cut, &handler, &s, &taken);
		if (st == WS_OK)
			st = ws_decode(&d, (char *)copy + cut, n - cut, &handler, &s, &taken);
		CHECK_INT(st, WS_CLOSED);
		CHECK(strncmp(s.got, want_prefix, strlen(want_prefix)) == 0);
		CHECK_INT(s.len, strlen("t:PRIVMSG #a :hi|t:NICK bob|b:|") + sizeof(big));
		CHECK_INT(s.pings, 1);
		CHECK_INT(s.close_code, 1000);
		ws_decoder_free(&d);
	}

	/* A byte at a time. */
	unsigned char copy[1024];
	memcpy(copy, stream, n);
	struct seen s = { 0 };
	struct ws_decoder d;
	size_t taken;
	enum ws_status st = WS_OK;
	ws_decoder_init(&d, 512);
	for (size_t i = 0; i < n && st == WS_OK; i++)
		st = ws_decode(&d, (char *)copy + i, 1, &handler, &s, &taken);
	CHECK_INT(st, WS_CLOSED);
	CHECK_INT(s.pings, 1);
	CHECK(strncmp(s.got, want_prefix, strlen(want_prefix)) == 0);
	ws_decoder_free(&d);
}

static void expect_error(int line, const unsigned char *data, size_t n, size_t max,
			 enum ws_close_code code)
{
	unsigned char copy[70000];
	memcpy(copy, data, n);
	struct seen s = { 0 };
	struct ws_decoder d;
	size_t taken;
	ws_decoder_init(&d, max);
	enum ws_status st = ws_decode(&d, (char *)copy, n, &handler, &s, &taken);
	if (st != WS_ERROR || d.error_code != code) {
		unit_failures++;
		fprintf(stderr, "%s:%d: status %d code %d, want an error with %d\n", __FILE__, line,
			st, d.error_code, code);
	}
	unit_checks++;
	ws_decoder_free(&d);
}

static void test_errors(void)
{
	unsigned char f[300];
	size_t n;
	static const unsigned char unmasked[] = { 0x81, 0x02, 'h', 'i' };
	expect_error(__LINE__, unmasked, sizeof(unmasked), 512, WS_CLOSE_PROTOCOL);
	n = client_frame(f, 0x81, "\xff", 1);
	expect_error(__LINE__, f, n, 512, WS_CLOSE_BAD_DATA);
	char big[200];
	memset(big, 'a', sizeof(big));
	n = client_frame(f, 0x81, big, sizeof(big));
	expect_error(__LINE__, f, n, 100, WS_CLOSE_TOO_BIG);
	/* Too big is known from the header: nothing more needs to come. */
	expect_error(__LINE__, f, 4, 100, WS_CLOSE_TOO_BIG);
	n = client_frame(f, 0x80, "x", 1);
	expect_error(__LINE__, f, n, 512, WS_CLOSE_PROTOCOL);
	n = client_frame(f, 0xC1, "x", 1);  /* RSV1 */
	expect_error(__LINE__, f, n, 512, WS_CLOSE_PROTOCOL);
	n = client_frame(f, 0x09, "x", 1);  /* a fragmented ping */
	expect_error(__LINE__, f, n, 512, WS_CLOSE_PROTOCOL);
	n = client_frame(f, 0x88, "\x03\xed", 2);  /* 1005 is never sent */
	expect_error(__LINE__, f, n, 512, WS_CLOSE_PROTOCOL);
	n = client_frame(f, 0x8B, "", 0);   /* a reserved control opcode */
	expect_error(__LINE__, f, n, 512, WS_CLOSE_PROTOCOL);
}

static void test_framing(void)
{
	struct msg *lines = msg_printf("a\r\nbb\n\r\nc");
	struct msg *m = ws_frame_lines(lines, false);
	CHECK(m->flags & MSG_FRAMED);
	CHECK_INT(m->len, 3 + 4 + 3);
	CHECK(memcmp(m->data, "\x81\x01" "a\x81\x02" "bb\x81\x01" "c", m->len) == 0);
	msg_unref(m);
	msg_unref(lines);

	/* Text frames carry UTF-8: anything else becomes U+FFFD. */
	lines = msg_printf("caf\xe9\r\n");
	m = ws_frame_lines(lines, false);
	CHECK_INT(m->len, 2 + 6);
	CHECK(memcmp(m->data, "\x81\x06" "caf\xef\xbf\xbd", m->len) == 0);
	msg_unref(m);
	m = ws_frame_lines(lines, true);
	CHECK(memcmp(m->data, "\x82\x04" "caf\xe9", m->len) == 0);
	msg_unref(m);
	msg_unref(lines);

	/* 126 bytes and more: a 16-bit length. */
	char line[301];
	memset(line, 'z', 300);
	line[300] = '\n';
	lines = msg_new(301);
	lines = msg_append(lines, line, 301);
	m = ws_frame_lines(lines, true);
	CHECK_INT(m->len, 4 + 300);
	CHECK(memcmp(m->data, "\x82\x7e\x01\x2c", 4) == 0);
	msg_unref(m);
	msg_unref(lines);

	m = ws_close_frame(1001, "going");
	CHECK(memcmp(m->data, "\x88\x07\x03\xe9going", m->len) == 0);
	msg_unref(m);
}

static void test_http(void)
{
	static const char req[] = "GET /ws?x=1 HTTP/1.1\r\nHost: chat:8080\r\nUpgrade: WebSocket\r\n"
				  "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: k\r\n"
				  "Sec-WebSocket-Protocol: chat, binary.ircv3.net, text.ircv3.net\r\n"
				  "Origin: http://chat:8080\r\n\r\nleft over";
	size_t len = http_request_length(req, sizeof(req) - 1);
	CHECK_INT(len, sizeof(req) - 1 - strlen("left over"));
	CHECK_INT(http_request_length(req, len - 1), 0);
	struct http_request r;
	CHECK_INT(http_request_parse(req, len, &r), 0);
	CHECK_STR(r.path, "/ws");
	CHECK(r.websocket);
	CHECK(r.keep_alive);
	CHECK_STR(r.ws_protocol, "binary.ircv3.net");
	CHECK(r.host.len == 9 && memcmp(r.host.p, "chat:8080", 9) == 0);

	static const char encoded[] = "GET /a%20b%2F..%2fc HTTP/1.0\r\n\r\n";
	CHECK_INT(http_request_parse(encoded, sizeof(encoded) - 1, &r), 0);
	CHECK_STR(r.path, "/a b/../c");
	CHECK(!r.keep_alive);

	static const char *const bad[] = {
		"GET / HTTP/1.1\r\n\r\n",                        /* no Host */
		"PUT / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/3.0\r\nHost: a\r\n\r\n",
		"GET /%0 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nOrigin: x\r\nOrigin: y\r\n\r\n",
		"\x01\x02\x03\r\n\r\n",
	};
	static const int status[] = { 400, 405, 505, 400, 400, 400 };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CHECK_INT(http_request_parse(bad[i], strlen(bad[i]), &r), status[i]);
		CHECK(r.error != NULL);
	}
}

int main(void)
{
	test_accept_key();
	test_decoding_whatever_the_cuts();
	test_errors();
	test_framing();
	test_http();
	return unit_finish("test_websocket");
}
