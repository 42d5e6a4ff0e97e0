#include "autoconf.h"

#include "net/web.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/util.h"
#include "net/worker_impl.h"
#include "proto/irc.h"
#include "web/http.h"
#include "web/site.h"

struct web_conn *web_conn_new(void)
{
	return xcalloc(1, sizeof(struct web_conn));
}

void web_conn_free(struct web_conn *wc)
{
	if (!wc)
		return;
	free(wc->request);
	ws_decoder_free(&wc->decoder);
	free(wc);
}

static void send_msg(struct worker *w, struct conn *c, struct msg *m)
{
	worker_send(w, &c->s, m);
	msg_unref(m);
}

/* A request refused: its status, and the connection closed. */
static void refuse(struct worker *w, struct conn *c, int status, const char *why, bool head)
{
	struct log_note note;
	if (worker_log_allowed(w, &c->s, LOG_INFO, &note))
		log_event(LOG_INFO, LOG_FIELDS(.event = "http_refused", .peer = c->s.peer,
					       .reason = why, .suppressed = note.suppressed),
			  "%s: HTTP %d (%s)%s", c->s.peer, status, why, note.text);
	send_msg(w, c, http_error(status, why, head, true));
	lifecycle_drain(w, c, "http", NULL, 0);
}

/* ---- the WebSocket ------------------------------------------------------- */

/* What the decoder's handlers are called with. */
struct socket_ctx {
	struct worker *w;
	struct conn *c;
};

static bool on_message(void *ctx, bool binary, char *data, size_t len)
{
	(void)binary; /* either way, one IRC line */
	struct socket_ctx *sc = ctx;
	struct worker *w = sc->w;
	struct conn *c = sc->c;
	/* The line end is optional; one is added, so that the framer sees
	 * the message as the line it is (or the lines, if it holds several). */
	while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	if (len && !worker_feed(w, c, data, len))
		return false;
	return worker_feed(w, c, "\n", 1);
}

static bool on_ping(void *ctx, const char *data, size_t len)
{
	struct socket_ctx *sc = ctx;
	struct conn *c = sc->c;
	send_msg(sc->w, c, ws_control_frame(WS_OP_PONG, data, len));
	return lifecycle_reading(c);
}

static void on_close(void *ctx, unsigned code, const char *reason, size_t len)
{
	(void)reason;
	(void)len;
	struct socket_ctx *sc = ctx;
	struct worker *w = sc->w;
	struct conn *c = sc->c;
	/* The close handshake: the same code back (none if it sent none). */
	if (!c->web->close_sent) {
		c->web->close_sent = true;
		if (code == WS_CLOSE_NO_STATUS)
			send_msg(w, c, ws_control_frame(WS_OP_CLOSE, "", 0));
		else
			send_msg(w, c, ws_close_frame(code, ""));
	}
	lifecycle_drain(w, c, "closed", NULL, 0);
}

static const struct ws_handler ws_handler = { .message = on_message, .ping = on_ping,
					      .close = on_close };

static void socket_input(struct worker *w, struct conn *c, char *data, size_t len)
{
	struct web_conn *wc = c->web;
	size_t taken;
	struct socket_ctx sc = { w, c };
	enum ws_status st = ws_decode(&wc->decoder, data, len, &ws_handler, &sc, &taken);
	if (st != WS_ERROR)
		return;
	struct log_note note;
	if (worker_log_allowed(w, &c->s, LOG_INFO, &note))
		log_event(LOG_INFO, LOG_FIELDS(.event = "websocket_error", .peer = c->s.peer,
					       .nick = c->s.member.nick, .reason = wc->decoder.error,
					       .suppressed = note.suppressed),
			  "%s (%s): WebSocket error: %s; closing with %u%s", c->s.peer,
			  c->s.member.nick[0] ? c->s.member.nick : "-", wc->decoder.error,
			  (unsigned)wc->decoder.error_code, note.text);
	if (!wc->close_sent) {
		wc->close_sent = true;
		send_msg(w, c, ws_close_frame(wc->decoder.error_code, wc->decoder.error));
	}
	lifecycle_drain(w, c, "websocket", NULL, 0);
}

void web_closing(struct worker *w, struct conn *c, const char *reason)
{
	struct web_conn *wc = c->web;
	if (!wc || wc->phase != WEB_SOCKET || wc->close_sent)
		return;
	wc->close_sent = true;
	bool away = reason && strcmp(reason, "shutdown") == 0;
	send_msg(w, c, ws_close_frame(away ? WS_CLOSE_GOING_AWAY : WS_CLOSE_NORMAL,
				      away ? "server shutting down" : ""));
}

/* ---- the upgrade ----------------------------------------------------------- */

/* The authority of ORIGIN ("https://host:port" -> "host:port"). */
static struct http_value origin_authority(struct http_value origin)
{
	const char *p = memmem(origin.p, origin.len, "://", 3);
	if (!p)
		return (struct http_value){ origin.p, 0 };
	p += 3;
	return (struct http_value){ p, origin.len - (size_t)(p - origin.p) };
}

/* A browser page may open /ws from the page's own origin (its host as the
 * Host header names it), or from one of [web] allowed_origins. Clients
 * that are not browsers send no Origin, and need no leave. */
static bool origin_allowed(const struct config *cfg, const struct http_request *r)
{
	if (!r->origin.p)
		return true;
	struct http_value a = origin_authority(r->origin);
	if (r->host.p && a.len && a.len == r->host.len && strncasecmp(a.p, r->host.p, a.len) == 0)
		return true;
	for (size_t i = 0; i < cfg->web_origin_count; i++) {
		const char *o = cfg->web_origins[i];
		if (strcmp(o, "*") == 0 ||
		    (strlen(o) == r->origin.len && strncasecmp(o, r->origin.p, r->origin.len) == 0))
			return true;
	}
	return false;
}

static bool trusted_proxy(const struct config *cfg, const struct ip_key *raw)
{
	for (size_t i = 0; i < cfg->web_proxy_count; i++)
		if (config_cidr_contains(&cfg->web_proxies[i], raw->bytes))
			return true;
	return false;
}

bool web_from_trusted_proxy(const struct config *cfg, const struct sockaddr *sa)
{
	struct ip_key raw = { 0 };
	if (cfg->web_proxy_count == 0)
		return false;
	if (sa->sa_family == AF_INET) {
		raw.bytes[10] = raw.bytes[11] = 0xff;
		memcpy(raw.bytes + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(raw.bytes, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	} else {
		return false;
	}
	return trusted_proxy(cfg, &raw);
}

/* TEXT (an address, as X-Forwarded-For lists them: "192.0.2.7", "::1",
 * "[2001:db8::1]", with a ":port" after some proxies') into RAW (16 bytes,
 * IPv4 mapped) and PEER (its text, as a peer is written). */
static bool parse_address(const char *p, size_t len, struct ip_key *raw, char peer[PEER_MAX])
{
	char text[INET6_ADDRSTRLEN + 2];
	const char *close = p[0] == '[' ? memchr(p, ']', len) : NULL;
	if (close) {
		len = (size_t)(close - p) - 1; /* "[v6]" or "[v6]:port" */
		p++;
	} else {
		const char *colon = memchr(p, ':', len);
		if (colon && !memchr(colon + 1, ':', len - (size_t)(colon + 1 - p)))
			len = (size_t)(colon - p); /* "v4:port": one colon only */
	}
	if (len == 0 || len >= sizeof(text) - 1)
		return false;
	memcpy(text, p, len);
	text[len] = '\0';
	/* An address, as the config's networks are read (not a network). */
	struct config_cidr one;
	if (strchr(text, '/') || !config_cidr_parse(text, &one))
		return false;
	memcpy(raw->bytes, one.bytes, sizeof(raw->bytes));
	snprintf(peer, PEER_MAX, strchr(text, ':') ? "[%s]" : "%s", text);
	return true;
}

/* Behind a trusted proxy, the client is the nearest address of
 * X-Forwarded-For that is not itself a trusted proxy: the list's right
 * end is what our proxy saw, anything further left is the client's say. */
static bool forwarded_client(const struct config *cfg, struct http_value xff, struct ip_key *raw,
			     char peer[PEER_MAX])
{
	size_t end = xff.len;
	while (end > 0) {
		size_t start = end;
		while (start > 0 && xff.p[start - 1] != ',')
			start--;
		size_t a = start, b = end;
		while (a < b && (xff.p[a] == ' ' || xff.p[a] == '\t'))
			a++;
		while (b > a && (xff.p[b - 1] == ' ' || xff.p[b - 1] == '\t'))
			b--;
		if (!parse_address(xff.p + a, b - a, raw, peer))
			return false;
		if (!trusted_proxy(cfg, raw))
			return true;
		end = start ? start - 1 : 0;
	}
	return false;
}

/* C's peer is the client X-Forwarded-For names, counted against its own
 * address's limits. False (C refused and closing) when over them. */
static bool take_forwarded(struct worker *w, struct conn *c, const struct http_request *r)
{
	struct ip_key raw, key;
	char peer[PEER_MAX];
	const struct config *cfg = w->cfg;

	bool named = r->forwarded_for.p && forwarded_client(cfg, r->forwarded_for, &raw, peer);
	if (named) {
		struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };
		memcpy(&sa.sin6_addr, raw.bytes, 16);
		ip_key_from_sockaddr((const struct sockaddr *)&sa, &key);
	} else {
		/* No client named that we can read: it counts as the proxy's
		 * own, limits and all, rather than as nobody's. */
		key = c->ip;
	}
	switch (ip_limit_acquire(w->pool->ip_limit, &key, w->now_ms)) {
	case IP_OK:
		break;
	case IP_TOO_MANY:
		refuse(w, c, 429, "too many connections from your address", false);
		return false;
	case IP_TOO_FAST:
		refuse(w, c, 429, "too many new connections from your address", false);
		return false;
	}
	c->ip = key;
	c->ip_counted = true;
	if (named) {
		log_debug("%s: WebSocket for %s (X-Forwarded-For)", c->s.peer, peer);
		snprintf(c->s.peer, sizeof(c->s.peer), "%s", peer);
	}
	return true;
}

/* The key is the base64 of 16 bytes: 22 characters and "==". */
static bool key_valid(struct http_value key)
{
	if (key.len != 24 || key.p[22] != '=' || key.p[23] != '=')
		return false;
	for (size_t i = 0; i < 22; i++) {
		char ch = key.p[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '+' || ch == '/'))
			return false;
	}
	return true;
}

static void upgrade(struct worker *w, struct conn *c, const struct http_request *r)
{
	char accept[WS_ACCEPT_SIZE];

	if (!r->ws_version.p || r->ws_version.len != 2 || memcmp(r->ws_version.p, "13", 2) != 0) {
		send_msg(w, c, http_response(426, "Sec-WebSocket-Version: 13\r\n", "text/plain",
					     "WebSocket version 13 only\n", 26, false, true));
		lifecycle_drain(w, c, "http", NULL, 0);
		return;
	}
	if (!key_valid(r->ws_key)) {
		refuse(w, c, 400, "a missing or malformed Sec-WebSocket-Key", false);
		return;
	}
	if (!origin_allowed(w->cfg, r)) {
		refuse(w, c, 403, "an origin not in [web] allowed_origins", false);
		return;
	}
	if (r->ws_protocol_offered && !r->ws_protocol) {
		refuse(w, c, 400, "no subprotocol chatd speaks (text.ircv3.net, binary.ircv3.net)",
		       false);
		return;
	}
	if (!c->ip_counted && !take_forwarded(w, c, r))
		return;
	if (worker_refuse_banned(w, c)) {
		refuse(w, c, 403, "banned", false);
		return;
	}
	if (!ws_accept_key(r->ws_key.p, r->ws_key.len, accept)) {
		refuse(w, c, 500, "the accept key could not be computed", false);
		return;
	}
	char protocol[64] = "";
	if (r->ws_protocol)
		snprintf(protocol, sizeof(protocol), "Sec-WebSocket-Protocol: %s\r\n", r->ws_protocol);
	send_msg(w, c, msg_printf("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
				  "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
				  accept, protocol));

	struct web_conn *wc = c->web;
	free(wc->request);
	wc->request = NULL;
	wc->request_len = 0;
	wc->phase = WEB_SOCKET;
	/* Its IRC life starts now (the ping timer, the line timer). */
	c->last_line_ms = w->now_ms;
	c->partial_since_ms = 0;
	/* A message is a line: the longest IRC takes, and its line end. */
	ws_decoder_init(&wc->decoder, IRC_INPUT_MAX + 2);
	c->s.proto = PROTO_IRC;
	c->s.framing = r->ws_protocol && strcmp(r->ws_protocol, "binary.ircv3.net") == 0
			       ? FRAMING_WS_BINARY : FRAMING_WS_TEXT;
	lifecycle_open(w, c);
}

/* ---- HTTP ------------------------------------------------------------------ */

static bool etag_matches(struct http_value inm, const char *etag)
{
	size_t n = strlen(etag);
	if (inm.len == 1 && inm.p[0] == '*')
		return true;
	for (size_t i = 0; i + n <= inm.len; i++)
		if (memcmp(inm.p + i, etag, n) == 0)
			return true;
	return false;
}

/* The whole request REQ (LEN bytes): answered. */
static void serve(struct worker *w, struct conn *c, const char *req, size_t len)
{
	struct http_request r;
	int status = http_request_parse(req, len, &r);
	struct web_conn *wc = c->web;

	c->opened_ms = w->now_ms; /* the next request's time starts now */
	if (status) {
		refuse(w, c, status, r.error, r.head);
		return;
	}
	if (strcmp(r.path, "/ws") == 0) {
		if (r.websocket)
			upgrade(w, c, &r);
		else
			refuse(w, c, 426, "/ws is a WebSocket: ask for an upgrade", r.head);
		return;
	}
	bool close = !r.keep_alive || w->shutting_down;
	const struct site_file *f = w->site ? site_find(w->site, r.path) : NULL;
	if (!f) {
		send_msg(w, c, http_error(404, "no such page", r.head, close));
	} else if (r.if_none_match.p && etag_matches(r.if_none_match, f->etag)) {
		worker_send(w, &c->s, f->not_modified);
	} else {
		worker_send(w, &c->s, r.head ? f->head : f->get);
	}
	if (close)
		wc->close_when_written = true;
}

static void http_input(struct worker *w, struct conn *c, char *data, size_t len)
{
	struct web_conn *wc = c->web;

	while (len > 0 && c->state == CONN_NEW && wc->phase == WEB_HTTP && !wc->close_when_written) {
		if (wc->request_len == 0) {
			size_t end = http_request_length(data, len);
			if (end) {
				serve(w, c, data, end);
				data += end;
				len -= end;
				continue;
			}
		}
		/* Part of a request: kept, up to the limit (one byte beyond
		 * it tells it is over). */
		size_t before = wc->request_len;
		size_t take = len < HTTP_HEADER_MAX + 1 - before ? len : HTTP_HEADER_MAX + 1 - before;
		wc->request = xrealloc(wc->request, before + take);
		memcpy(wc->request + before, data, take);
		wc->request_len += take;
		size_t end = http_request_length(wc->request, wc->request_len);
		if (!end) {
			if (wc->request_len > HTTP_HEADER_MAX)
				refuse(w, c, 431, "headers over the limit", false);
			return;
		}
		char *req = wc->request;
		wc->request = NULL;
		wc->request_len = 0;
		serve(w, c, req, end);
		free(req);
		data += end - before;
		len -= end - before;
	}
	if (len > 0 && c->state == CONN_OPEN && wc->phase == WEB_SOCKET)
		socket_input(w, c, data, len); /* frames sent right behind the upgrade */
}

void web_input(struct worker *w, struct conn *c, char *data, size_t len)
{
	if (c->web->phase == WEB_SOCKET)
		socket_input(w, c, data, len);
	else
		http_input(w, c, data, len);
}

void web_tick(struct worker *w, struct conn *c, uint64_t timeout_ms)
{
	struct web_conn *wc = c->web;
	if (c->out_bytes && c->written_total != wc->tick_written) {
		wc->tick_written = c->written_total;
		c->opened_ms = w->now_ms; /* a file being read: time runs from here */
		return;
	}
	if (w->now_ms - c->opened_ms < timeout_ms)
		return;
	if (wc->request_len) {
		refuse(w, c, 408, "the request took too long", false);
		return;
	}
	/* Kept alive and not used again, or not reading what it was sent. */
	lifecycle_kill(w, c, c->out_bytes ? "slow" : "idle");
}

bool web_written(struct worker *w, struct conn *c)
{
	if (c->state != CONN_NEW || !c->web || !c->web->close_when_written)
		return false;
	lifecycle_drain(w, c, "http", NULL, 0);
	return true;
}
