/* WebSocket (RFC 6455) as a server speaks it: the handshake's accept key,
 * a decoder for what clients send and the framing of what they are sent.
 * No I/O: the worker hands the decoder the bytes it read and queues the
 * frames built here like any other output. A frame of server output is
 * built once and shared by every recipient (see ws_frame_lines()).
 *
 * The IRCv3 WebSocket transport puts one IRC line in each message, without
 * its line end, in text frames (subprotocol text.ircv3.net, valid UTF-8)
 * or binary ones (binary.ircv3.net). */
#ifndef CHATD_WEB_WEBSOCKET_H
#define CHATD_WEB_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/msg.h"

/* The base64 of a SHA-1: the Sec-WebSocket-Accept value, NUL included. */
#define WS_ACCEPT_SIZE 29

/* Close codes (RFC 6455, 7.4.1). */
enum ws_close_code {
	WS_CLOSE_NORMAL = 1000,
	WS_CLOSE_GOING_AWAY = 1001,
	WS_CLOSE_PROTOCOL = 1002,
	WS_CLOSE_NO_STATUS = 1005,   /* received without a code; never sent */
	WS_CLOSE_BAD_DATA = 1007,    /* a text message that is not UTF-8 */
	WS_CLOSE_POLICY = 1008,
	WS_CLOSE_TOO_BIG = 1009,
	WS_CLOSE_ERROR = 1011,
};

enum ws_opcode {
	WS_OP_CONTINUATION = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xA,
};

/* Sec-WebSocket-Accept for the client's Sec-WebSocket-Key (KEY_LEN bytes):
 * base64(SHA-1(key + the RFC's GUID)). False if libcrypto failed. */
bool ws_accept_key(const char *key, size_t key_len, char ret[WS_ACCEPT_SIZE]);

/* ---- decoding what a client sends ---------------------------------------- */

struct ws_decoder {
	size_t max_message;     /* the longest message taken; beyond: 1009 */
	/* An incomplete frame left at the end of a feed (its header, or
	 * header and part of its payload), and the payload of a fragmented
	 * message so far. Each exists only while needed. */
	char *partial;
	size_t partial_len, partial_cap;
	char *message;
	size_t message_len, message_cap;
	uint8_t message_opcode; /* WS_OP_TEXT or WS_OP_BINARY while one is
				 * fragmented; 0: none */
	bool closed;            /* a close frame came: nothing after it is read */
	/* After WS_ERROR: the close code to send, and why, for the log. */
	enum ws_close_code error_code;
	const char *error;
};

struct ws_handler {
	/* A whole message (its fragments joined), unmasked. Return false to
	 * stop decoding; the rest of the feed is not looked at. */
	bool (*message)(void *ctx, bool binary, char *data, size_t len);
	/* A ping, whose payload (at most 125 bytes) the pong must carry. */
	bool (*ping)(void *ctx, const char *data, size_t len);
	/* A close frame: its code (WS_CLOSE_NO_STATUS when it had none) and
	 * reason. Decoding stops after it. */
	void (*close)(void *ctx, unsigned code, const char *reason, size_t len);
};

enum ws_status {
	WS_OK,      /* everything taken; more may come */
	WS_STOPPED, /* a handler returned false: *ret_taken bytes were looked at */
	WS_CLOSED,  /* a close frame came */
	WS_ERROR,   /* the client broke the protocol: see error_code, error */
};

void ws_decoder_init(struct ws_decoder *d, size_t max_message);
/* Frees the buffers. */
void ws_decoder_free(struct ws_decoder *d);

/* Decodes LEN bytes, unmasking payloads in place. Client frames must be
 * masked (1002), control frames short and whole (1002), fragments in
 * order (1002), text valid UTF-8 (1007), and a message at most
 * max_message bytes (1009). *RET_TAKEN: the bytes looked at (LEN unless
 * WS_STOPPED). */
enum ws_status ws_decode(struct ws_decoder *d, char *data, size_t len,
			 const struct ws_handler *h, void *ctx, size_t *ret_taken);

/* ---- framing what a client is sent ----------------------------------------- */

/* LINES (one or more lines, each ending in "\n" or "\r\n") as one
 * unmasked frame per line, without its line end, in a new msg marked
 * framed: text frames (BINARY false; invalid UTF-8 replaced by U+FFFD) or
 * binary ones. */
struct msg *ws_frame_lines(const struct msg *lines, bool binary);

/* A control frame: OPCODE with LEN (at most 125) bytes of payload. */
struct msg *ws_control_frame(enum ws_opcode opcode, const char *data, size_t len);

/* A close frame with CODE and REASON (cut to fit 125 bytes). */
struct msg *ws_close_frame(unsigned code, const char *reason);

#endif
