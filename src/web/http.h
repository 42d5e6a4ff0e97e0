/* HTTP/1.1 requests as chatd's web port takes them: a GET or HEAD of a
 * page file, or the upgrade of /ws to WebSocket. Nothing else: no body,
 * no chunks, no ranges. The request line and headers are checked by
 * libhttp-parser; this file picks out what chatd needs and builds the
 * responses. No I/O. */
#ifndef CHATD_WEB_HTTP_H
#define CHATD_WEB_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "core/msg.h"

/* The most a request's line and headers may take; beyond it: 431. */
#define HTTP_HEADER_MAX 8192
/* The longest path (decoded) taken; beyond it: 414. */
#define HTTP_PATH_MAX 256

/* A header's value: points into the request's buffer; NULL when absent. */
struct http_value {
	const char *p;
	size_t len;
};

struct http_request {
	bool head;              /* HEAD: the response without its body */
	bool keep_alive;        /* the client keeps the connection after it
				 * (HTTP/1.1 without Connection: close) */
	bool websocket;         /* Upgrade: websocket, Connection: upgrade */
	char path[HTTP_PATH_MAX]; /* the target's path, %-decoded, without query */
	struct http_value host, origin, ws_key, ws_version, forwarded_for, if_none_match;
	/* The first subprotocol of Sec-WebSocket-Protocol, in the client's
	 * order, that is one of the IRCv3 two; NULL when none is. */
	const char *ws_protocol;
	bool ws_protocol_offered; /* Sec-WebSocket-Protocol was sent at all */
	const char *error;        /* why the request was refused, for the log */
};

/* The length of the request at the start of BUF (LEN bytes), up to and
 * including the blank line that ends its headers (CRLF or bare LF); 0 when
 * that is not in yet. */
size_t http_request_length(const char *buf, size_t len);

/* Parses the LEN bytes of one whole request (http_request_length) in BUF,
 * which must outlive RET. Returns 0, or the status to answer with (400,
 * 405, 414, 431, 505, ...) with ret->error saying why. */
int http_request_parse(const char *buf, size_t len, struct http_request *ret);

/* "Not Found" for 404. */
const char *http_reason(int status);

/* A complete response: the status line, HEADERS (each line ending in
 * "\r\n", may be empty), Content-Type and Content-Length, and BODY unless
 * HEAD. CLOSE adds "Connection: close". */
struct msg *http_response(int status, const char *headers, const char *content_type,
			  const char *body, size_t body_len, bool head, bool close);

/* An error page for STATUS: a line of text saying WHY. */
struct msg *http_error(int status, const char *why, bool head, bool close);

/* The headers every page response carries: no sniffing, no framing by
 * other sites, nothing loaded from elsewhere. */
extern const char http_security_headers[];

#endif
