#include "autoconf.h"

#include "web/http.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "base/util.h"

const char http_security_headers[] =
	"X-Content-Type-Options: nosniff\r\n"
	"Referrer-Policy: no-referrer\r\n"
	"Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "
	"img-src 'self' data:; connect-src 'self'; manifest-src 'self'; base-uri 'none'; "
	"form-action 'none'; frame-ancestors 'none'\r\n";

size_t http_request_length(const char *buf, size_t len)
{
	/* A blank line: "\r\n\r\n", or with bare line feeds ("\n\n"). */
	for (size_t i = 1; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i - 1] == '\n' || (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n'))
			return i + 1;
	}
	return 0;
}

struct parse {
	struct http_request *r;
	const char *url;
	size_t url_len;
	const char *field;
	size_t field_len;
	int status;
	bool upgrade_websocket, connection_upgrade;
};

static bool name_is(const struct parse *ps, const char *name)
{
	return ps->field_len == strlen(name) && strncasecmp(ps->field, name, ps->field_len) == 0;
}

/* Whether the comma-separated list P (LEN bytes) holds TOKEN (any case). */
static bool has_token(const char *p, size_t len, const char *token)
{
	size_t tlen = strlen(token), i = 0;
	while (i < len) {
		while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == ','))
			i++;
		size_t start = i;
		while (i < len && p[i] != ',')
			i++;
		size_t end = i;
		while (end > start && (p[end - 1] == ' ' || p[end - 1] == '\t'))
			end--;
		if (end - start == tlen && strncasecmp(p + start, token, tlen) == 0)
			return true;
	}
	return false;
}

/* The first of the IRCv3 subprotocols in the list P, in its order. */
static const char *pick_protocol(const char *p, size_t len)
{
	static const char *const known[] = { "text.ircv3.net", "binary.ircv3.net" };
	size_t i = 0;
	while (i < len) {
		while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == ','))
			i++;
		size_t start = i;
		while (i < len && p[i] != ',' && p[i] != ' ' && p[i] != '\t')
			i++;
		for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (i - start == strlen(known[k]) && memcmp(p + start, known[k], i - start) == 0)
				return known[k];
	}
	return NULL;
}

static int refuse(struct parse *ps, int status, const char *why)
{
	if (!ps->status) {
		ps->status = status;
		ps->r->error = why;
	}
	return 1; /* stops the parser */
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct parse *ps = p->data;
	ps->url = at;
	ps->url_len = len;
	return 0;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
	struct parse *ps = p->data;
	ps->field = at;
	ps->field_len = len;
	return 0;
}

/* Stores a header that must come once. */
static int once(struct parse *ps, struct http_value *v, const char *at, size_t len)
{
	if (v->p)
		return refuse(ps, 400, "a header sent twice");
	v->p = at;
	v->len = len;
	return 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
	struct parse *ps = p->data;
	struct http_request *r = ps->r;

	if (name_is(ps, "Host"))
		return once(ps, &r->host, at, len);
	if (name_is(ps, "Origin"))
		return once(ps, &r->origin, at, len);
	if (name_is(ps, "Sec-WebSocket-Key"))
		return once(ps, &r->ws_key, at, len);
	if (name_is(ps, "Sec-WebSocket-Version"))
		return once(ps, &r->ws_version, at, len);
	if (name_is(ps, "If-None-Match"))
		return once(ps, &r->if_none_match, at, len);
	if (name_is(ps, "X-Forwarded-For")) {
		/* Proxies in a row may each add a header: the last one is the
		 * nearest's. */
		r->forwarded_for = (struct http_value){ at, len };
		return 0;
	}
	if (name_is(ps, "Sec-WebSocket-Protocol")) {
		r->ws_protocol_offered = true;
		if (!r->ws_protocol)
			r->ws_protocol = pick_protocol(at, len);
		return 0;
	}
	if (name_is(ps, "Upgrade"))
		ps->upgrade_websocket |= has_token(at, len, "websocket");
	else if (name_is(ps, "Connection"))
		ps->connection_upgrade |= has_token(at, len, "upgrade");
	return 0;
}

static int hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The target's path, %-decoded, into r->path. */
static int take_path(struct parse *ps)
{
	struct http_parser_url u;
	http_parser_url_init(&u);
	if (!ps->url || http_parser_parse_url(ps->url, ps->url_len, 0, &u) != 0 ||
	    !(u.field_set & (1 << UF_PATH)))
		return refuse(ps, 400, "a malformed request target");
	const char *p = ps->url + u.field_data[UF_PATH].off;
	size_t len = u.field_data[UF_PATH].len, n = 0;
	char *out = ps->r->path;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];
		if (c == '%') {
			int hi = i + 2 < len ? hex(p[i + 1]) : -1, lo = i + 2 < len ? hex(p[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return refuse(ps, 400, "a malformed %-escape in the path");
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (c == '\0')
			return refuse(ps, 400, "a NUL in the path");
		if (n + 1 >= HTTP_PATH_MAX)
			return refuse(ps, 414, "a path over the limit");
		out[n++] = c;
	}
	out[n] = '\0';
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct parse *ps = p->data;
	struct http_request *r = ps->r;

	if (ps->status)
		return 1;
	if (p->http_major != 1)
		return refuse(ps, 505, "an HTTP version other than 1.x");
	if (p->method != HTTP_GET && p->method != HTTP_HEAD)
		return refuse(ps, 405, "a method other than GET and HEAD");
	if ((p->flags & F_CHUNKED) || (p->content_length > 0 && p->content_length != ULLONG_MAX))
		return refuse(ps, 400, "a request with a body");
	if (p->http_minor >= 1 && !r->host.p)
		return refuse(ps, 400, "an HTTP/1.1 request without Host");
	r->head = p->method == HTTP_HEAD;
	/* HTTP/1.0 closes: its keep-alive would need a header of its own in
	 * the shared responses. */
	r->keep_alive = p->http_minor >= 1 && http_should_keep_alive(p);
	r->websocket = ps->upgrade_websocket && ps->connection_upgrade && !r->head;
	take_path(ps);
	return 1; /* no body: the request ends here (and on a refusal, stops) */
}

int http_request_parse(const char *buf, size_t len, struct http_request *ret)
{
	static const http_parser_settings settings = {
		.on_url = on_url,
		.on_header_field = on_field,
		.on_header_value = on_value,
		.on_headers_complete = on_headers_complete,
	};
	http_parser parser;
	struct parse ps = { .r = ret };

	*ret = (struct http_request){ 0 };
	if (len > HTTP_HEADER_MAX) {
		ret->error = "headers over the limit";
		return 431;
	}
	http_parser_init(&parser, HTTP_REQUEST);
	parser.data = &ps;
	size_t n = http_parser_execute(&parser, &settings, buf, len);
	if (ps.status)
		return ps.status;
	enum http_errno err = HTTP_PARSER_ERRNO(&parser);
	/* A callback's 1 from on_headers_complete is "no body", not an error. */
	if (err != HPE_OK && err != HPE_CB_headers_complete) {
		ret->error = http_errno_description(err);
		return err == HPE_INVALID_VERSION ? 505 : 400;
	}
	if (n == 0 || !ret->path[0]) {
		ret->error = "an incomplete request";
		return 400;
	}
	return 0;
}

const char *http_reason(int status)
{
	switch (status) {
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 414: return "URI Too Long";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	}
	return "Error";
}

struct msg *http_response(int status, const char *headers, const char *content_type,
			  const char *body, size_t body_len, bool head, bool close)
{
	struct msg *m = msg_printf("HTTP/1.1 %d %s\r\n%s%s%s%sContent-Length: %zu\r\n%s\r\n", status,
				   http_reason(status), headers, content_type ? "Content-Type: " : "",
				   content_type ? content_type : "", content_type ? "\r\n" : "",
				   body_len, close ? "Connection: close\r\n" : "");
	if (!head && body_len)
		m = msg_append(m, body, body_len);
	return msg_trim(m);
}

struct msg *http_error(int status, const char *why, bool head, bool close)
{
	char body[256];
	int n = snprintf(body, sizeof(body), "%d %s: %s\n", status, http_reason(status), why);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(body))
		n = sizeof(body) - 1;
	const char *extra = status == 405 ? "Allow: GET, HEAD\r\n" :
			    status == 426 ? "Upgrade: websocket\r\n" : "";
	char headers[512];
	str_join(headers, sizeof(headers), extra, http_security_headers, "Cache-Control: no-store\r\n",
		 NULL);
	return http_response(status, headers, "text/plain; charset=utf-8", body, (size_t)n, head,
			     close);
}
