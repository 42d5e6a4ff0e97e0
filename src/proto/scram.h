/* SCRAM-SHA-256 (RFC 5802, RFC 7677), the server's side of one exchange:
 * the client's two messages parsed and its proof checked against the
 * account's StoredKey, and the server's two messages made. No I/O, no
 * channel binding (the GS2 header is "n" or "y"). Base64 is OpenSSL's. */
#ifndef CHATD_PROTO_SCRAM_H
#define CHATD_PROTO_SCRAM_H

#include <stdbool.h>
#include <stddef.h>

#include "base/text.h"

#define SCRAM_KEY 32
#define SCRAM_MESSAGE_MAX 512

struct scram {
	char gs2[16];                         /* the client's GS2 header, "n,," */
	char client_first_bare[SCRAM_MESSAGE_MAX];
	char server_first[SCRAM_MESSAGE_MAX];
	char nonce[2 * 128 + 2];              /* the client's and the server's */
	char user[NAME_MAX_LEN + 1];
	unsigned char stored_key[SCRAM_KEY];
	unsigned char server_key[SCRAM_KEY];
};

/* The client-first message MSG (LEN bytes, decoded): true with the user
 * name in SC->user; false when malformed, or asks for channel binding or
 * for another identity than its own. */
bool scram_client_first(struct scram *sc, const char *msg, size_t len);

/* The server-first message into OUT (SIZE bytes, NUL-terminated), with
 * SERVER_NONCE (printable, no comma) after the client's, and the account's
 * SALT, ITERATIONS and keys kept for the proof. False when it does not fit. */
bool scram_server_first(struct scram *sc, const char *server_nonce, const unsigned char *salt,
			size_t salt_len, unsigned iterations,
			const unsigned char stored_key[SCRAM_KEY],
			const unsigned char server_key[SCRAM_KEY], char *out, size_t size);

/* The client-final message MSG: 1 when its proof is right (the
 * server-final message, "v=...", in OUT), 0 when it is wrong, -1 when the
 * message is malformed (a wrong nonce or channel binding). */
int scram_client_final(struct scram *sc, const char *msg, size_t len, char *out, size_t size);

/* Base64 of LEN bytes into OUT (SIZE bytes, NUL-terminated): its length,
 * or 0 when it does not fit. */
size_t scram_base64(const unsigned char *in, size_t len, char *out, size_t size);

/* Decodes base64 IN (LEN bytes) into OUT (SIZE bytes): the decoded length,
 * or -1 when it is not base64 or does not fit. */
long scram_unbase64(const char *in, size_t len, unsigned char *out, size_t size);

#endif
