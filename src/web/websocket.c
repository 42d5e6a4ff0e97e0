#include "autoconf.h"

#include "web/websocket.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/text.h"
#include "base/util.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define CONTROL_MAX 125
#define HEADER_MAX 14 /* 2 + 8 (64-bit length) + 4 (mask) */

bool ws_accept_key(const char *key, size_t key_len, char ret[WS_ACCEPT_SIZE])
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool ok = md && EVP_DigestInit_ex(md, EVP_sha1(), NULL) == 1 &&
		  EVP_DigestUpdate(md, key, key_len) == 1 &&
		  EVP_DigestUpdate(md, WS_GUID, sizeof(WS_GUID) - 1) == 1 &&
		  EVP_DigestFinal_ex(md, digest, &digest_len) == 1 && digest_len == 20;
	EVP_MD_CTX_free(md);
	if (!ok)
		return false;
	/* 20 bytes are 28 characters of base64, and the NUL. */
	return EVP_EncodeBlock((unsigned char *)ret, digest, 20) == WS_ACCEPT_SIZE - 1;
}

/* ---- decoding ------------------------------------------------------------ */

void ws_decoder_init(struct ws_decoder *d, size_t max_message)
{
	*d = (struct ws_decoder){ .max_message = max_message };
}

void ws_decoder_free(struct ws_decoder *d)
{
	free(d->partial);
	free(d->message);
	d->partial = d->message = NULL;
	d->partial_len = d->partial_cap = d->message_len = d->message_cap = 0;
}

static enum ws_status fail(struct ws_decoder *d, enum ws_close_code code, const char *why)
{
	d->error_code = code;
	d->error = why;
	return WS_ERROR;
}

static void append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
	if (n == 0)
		return;
	if (*len + n > *cap) {
		size_t c = *cap ? *cap : 256;
		while (c < *len + n)
			c *= 2;
		*buf = xrealloc(*buf, c);
		*cap = c;
	}
	memcpy(*buf + *len, data, n);
	*len += n;
}

static void unmask(char *p, size_t n, const unsigned char key[4])
{
	for (size_t i = 0; i < n; i++)
		p[i] ^= (char)key[i & 3];
}

/* A whole message: checked, and handed over. */
static enum ws_status deliver(struct ws_decoder *d, uint8_t opcode, char *data, size_t len,
			      const struct ws_handler *h, void *ctx)
{
	if (opcode == WS_OP_TEXT && text_utf8_valid(data, len) != len)
		return fail(d, WS_CLOSE_BAD_DATA, "a text message that is not UTF-8");
	return h->message(ctx, opcode == WS_OP_BINARY, data, len) ? WS_OK : WS_STOPPED;
}

static enum ws_status control(struct ws_decoder *d, uint8_t opcode, char *data, size_t len,
			      const struct ws_handler *h, void *ctx)
{
	switch (opcode) {
	case WS_OP_PING:
		return h->ping(ctx, data, len) ? WS_OK : WS_STOPPED;
	case WS_OP_PONG:
		return WS_OK;
	case WS_OP_CLOSE: {
		unsigned code = WS_CLOSE_NO_STATUS;
		if (len == 1)
			return fail(d, WS_CLOSE_PROTOCOL, "a close frame with a 1-byte payload");
		if (len >= 2) {
			code = (unsigned)(unsigned char)data[0] << 8 | (unsigned char)data[1];
			/* 1000-1003, 1007-1011 and the registered and private
			 * ranges; 1004-1006 and 1015 are never sent. */
			bool valid = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
				     (code >= 3000 && code <= 4999);
			if (!valid)
				return fail(d, WS_CLOSE_PROTOCOL, "a close frame with an invalid code");
			if (text_utf8_valid(data + 2, len - 2) != len - 2)
				return fail(d, WS_CLOSE_BAD_DATA, "a close reason that is not UTF-8");
		}
		d->closed = true;
		h->close(ctx, code, len >= 2 ? data + 2 : "", len >= 2 ? len - 2 : 0);
		return WS_CLOSED;
	}
	default:
		return fail(d, WS_CLOSE_PROTOCOL, "an unknown opcode");
	}
}

/* The frame at the start of P (N bytes): its size in *RET_SIZE, 0 when it
 * is not all there yet; then handled. */
static enum ws_status frame(struct ws_decoder *d, char *p, size_t n, size_t *ret_size,
			    const struct ws_handler *h, void *ctx)
{
	*ret_size = 0;
	if (n < 2)
		return WS_OK;
	const unsigned char *u = (const unsigned char *)p;
	bool fin = u[0] & 0x80;
	uint8_t opcode = u[0] & 0x0F;
	if (u[0] & 0x70)
		return fail(d, WS_CLOSE_PROTOCOL, "reserved bits set (no extension was agreed)");
	if (!(u[1] & 0x80))
		return fail(d, WS_CLOSE_PROTOCOL, "an unmasked frame from a client");
	uint64_t payload = u[1] & 0x7F;
	size_t header = 2;
	if (payload == 126) {
		if (n < 4)
			return WS_OK;
		payload = (uint64_t)u[2] << 8 | u[3];
		header = 4;
	} else if (payload == 127) {
		if (n < 10)
			return WS_OK;
		payload = 0;
		for (int i = 2; i < 10; i++)
			payload = payload << 8 | u[i];
		header = 10;
		if (payload >> 63)
			return fail(d, WS_CLOSE_PROTOCOL, "a length with its top bit set");
	}
	bool is_control = opcode & 0x8;
	if (is_control && (payload > CONTROL_MAX || !fin))
		return fail(d, WS_CLOSE_PROTOCOL, "a control frame fragmented or over 125 bytes");
	/* Known too big from its header: no need to wait for it. */
	if (!is_control && payload > d->max_message - (opcode ? 0 : d->message_len))
		return fail(d, WS_CLOSE_TOO_BIG, "a message over the limit");
	if (n - header < 4 || n - header - 4 < payload)
		return WS_OK;
	unsigned char key[4];
	memcpy(key, p + header, 4);
	char *data = p + header + 4;
	unmask(data, (size_t)payload, key);
	*ret_size = header + 4 + (size_t)payload;

	if (is_control)
		return control(d, opcode, data, (size_t)payload, h, ctx);
	switch (opcode) {
	case WS_OP_TEXT:
	case WS_OP_BINARY:
		if (d->message_opcode)
			return fail(d, WS_CLOSE_PROTOCOL, "a new message inside a fragmented one");
		if (fin)
			return deliver(d, opcode, data, (size_t)payload, h, ctx);
		d->message_opcode = opcode;
		d->message_len = 0;
		append(&d->message, &d->message_len, &d->message_cap, data, (size_t)payload);
		return WS_OK;
	case WS_OP_CONTINUATION: {
		if (!d->message_opcode)
			return fail(d, WS_CLOSE_PROTOCOL, "a continuation with no message to continue");
		append(&d->message, &d->message_len, &d->message_cap, data, (size_t)payload);
		if (!fin)
			return WS_OK;
		uint8_t op = d->message_opcode;
		d->message_opcode = 0;
		enum ws_status st = deliver(d, op, d->message, d->message_len, h, ctx);
		/* A fragmented message is rare: its buffer does not stay. */
		free(d->message);
		d->message = NULL;
		d->message_len = d->message_cap = 0;
		return st;
	}
	default:
		return fail(d, WS_CLOSE_PROTOCOL, "an unknown opcode");
	}
}

/* Frames at the start of P (N bytes), up to the first incomplete one. */
static enum ws_status frames(struct ws_decoder *d, char *p, size_t n, size_t *ret_used,
			     const struct ws_handler *h, void *ctx)
{
	size_t used = 0;
	enum ws_status st = WS_OK;
	while (used < n && !d->closed) {
		size_t size;
		st = frame(d, p + used, n - used, &size, h, ctx);
		used += size;
		if (st != WS_OK || size == 0)
			break;
	}
	*ret_used = used;
	return st;
}

enum ws_status ws_decode(struct ws_decoder *d, char *data, size_t len,
			 const struct ws_handler *h, void *ctx, size_t *ret_taken)
{
	*ret_taken = len;
	if (d->closed)
		return WS_CLOSED;
	if (d->partial_len == 0) {
		size_t used;
		enum ws_status st = frames(d, data, len, &used, h, ctx);
		if (st == WS_STOPPED) {
			*ret_taken = used;
			return st;
		}
		if (st == WS_OK && used < len)
			append(&d->partial, &d->partial_len, &d->partial_cap, data + used, len - used);
		return st;
	}
	/* The rest of a frame cut by the last read: joined in the buffer,
	 * whose frames are then taken; what follows the first whole one is
	 * read in place again. Bounded: a frame over the limit fails as soon
	 * as its header is in. */
	size_t before = d->partial_len;
	append(&d->partial, &d->partial_len, &d->partial_cap, data, len);
	size_t size;
	enum ws_status st = frame(d, d->partial, d->partial_len, &size, h, ctx);
	if (st != WS_OK && st != WS_STOPPED) {
		d->partial_len = 0;
		return st;
	}
	if (size == 0)
		return st; /* still incomplete (or stopped before it: cannot be) */
	/* The frame ended SIZE - BEFORE bytes into DATA. */
	size_t consumed = size - before;
	free(d->partial);
	d->partial = NULL;
	d->partial_len = d->partial_cap = 0;
	if (st == WS_STOPPED || d->closed) {
		*ret_taken = consumed;
		return d->closed ? WS_CLOSED : st;
	}
	size_t taken;
	st = ws_decode(d, data + consumed, len - consumed, h, ctx, &taken);
	*ret_taken = consumed + taken;
	return st;
}

/* ---- framing --------------------------------------------------------------- */

static size_t put_header(char *p, uint8_t first, size_t len)
{
	p[0] = (char)first;
	if (len < 126) {
		p[1] = (char)len;
		return 2;
	}
	if (len <= 0xFFFF) {
		p[1] = 126;
		p[2] = (char)(len >> 8);
		p[3] = (char)len;
		return 4;
	}
	p[1] = 127;
	for (int i = 0; i < 8; i++)
		p[2 + i] = (char)((uint64_t)len >> (56 - 8 * i));
	return 10;
}

struct msg *ws_frame_lines(const struct msg *lines, bool binary)
{
	uint8_t first = 0x80 | (binary ? WS_OP_BINARY : WS_OP_TEXT);
	const char *p = lines->data, *end = lines->data + lines->len;
	/* Headers are at most 10 bytes a line (a line is under 64 KiB: 4);
	 * a text line with invalid UTF-8 may triple. */
	size_t count = 0;
	for (const char *q = p; q < end; q++)
		count += *q == '\n';
	if (end > p && end[-1] != '\n')
		count++;
	struct msg *m = msg_new((size_t)lines->len + count * 10);
	m->flags |= MSG_FRAMED;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl ? nl : end;
		size_t len = (size_t)(line_end - p);
		if (len && p[len - 1] == '\r')
			len--;
		if (len) {
			/* Text frames carry UTF-8: a line that is not is mended. */
			char *fixed = NULL;
			if (!binary && text_utf8_valid(p, len) != len) {
				fixed = xmalloc(3 * len);
				len = text_utf8_fix(fixed, p, len);
			}
			char header[10];
			m = msg_append(m, header, put_header(header, first, len));
			m = msg_append(m, fixed ? fixed : p, len);
			free(fixed);
		}
		p = nl ? nl + 1 : end;
	}
	return msg_trim(m);
}

struct msg *ws_control_frame(enum ws_opcode opcode, const char *data, size_t len)
{
	if (len > CONTROL_MAX)
		len = CONTROL_MAX;
	struct msg *m = msg_new(2 + len);
	m->flags |= MSG_FRAMED;
	m->data[0] = (char)(0x80 | opcode);
	m->data[1] = (char)len;
	memcpy(m->data + 2, data, len);
	m->len = (uint32_t)(2 + len);
	return m;
}

struct msg *ws_close_frame(unsigned code, const char *reason)
{
	char payload[CONTROL_MAX];
	size_t n = strlen(reason);
	n = text_utf8_prefix(reason, n, CONTROL_MAX - 2);
	payload[0] = (char)(code >> 8);
	payload[1] = (char)code;
	memcpy(payload + 2, reason, n);
	return ws_control_frame(WS_OP_CLOSE, payload, 2 + n);
}
