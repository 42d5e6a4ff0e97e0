#include "autoconf.h"

#include "proto/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

size_t scram_base64(const unsigned char *in, size_t len, char *out, size_t size)
{
	size_t need = 4 * ((len + 2) / 3) + 1;
	if (need > size)
		return 0;
	return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

long scram_unbase64(const char *in, size_t len, unsigned char *out, size_t size)
{
	/* EVP_DecodeBlock writes the padding's zero bytes too: into a buffer
	 * of its own, then what is real is copied. */
	unsigned char buf[3 * 1024];
	if (len % 4 != 0 || 3 * (len / 4) > sizeof(buf))
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		bool pad = c == '=' && i >= len - 2 && (i == len - 1 || in[len - 1] == '=');
		if (!pad && !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			      c == '+' || c == '/'))
			return -1;
	}
	int n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)len);
	if (n < 0)
		return -1;
	if (len >= 1 && in[len - 1] == '=')
		n--;
	if (len >= 2 && in[len - 2] == '=')
		n--;
	if ((size_t)n > size)
		return -1;
	memcpy(out, buf, (size_t)n);
	OPENSSL_cleanse(buf, sizeof(buf));
	return n;
}

/* The value of attribute NAME ("n", "r", ...) at *P, up to the next comma,
 * unescaped (=2C, =3D) into OUT when UNESCAPE; *P moves past it and its
 * comma. False when *P does not start with "NAME=" or it does not fit. */
static bool attribute(const char **p, const char *end, char name, bool unescape, char *out,
		      size_t size)
{
	const char *s = *p;
	if (end - s < 2 || s[0] != name || s[1] != '=')
		return false;
	s += 2;
	size_t n = 0;
	while (s < end && *s != ',') {
		char c = *s++;
		if (unescape && c == '=') {
			if (end - s >= 2 && s[0] == '2' && s[1] == 'C')
				c = ',';
			else if (end - s >= 2 && s[0] == '3' && s[1] == 'D')
				c = '=';
			else
				return false;
			s += 2;
		}
		if (c == '\0' || n + 1 >= size)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	*p = s < end ? s + 1 : s;
	return true;
}

bool scram_client_first(struct scram *sc, const char *msg, size_t len)
{
	const char *end = msg + len, *p = msg;
	memset(sc, 0, sizeof(*sc));
	/* GS2 header: no channel binding ("p=" is refused), and an authzid,
	 * if any, that is the user itself (checked below). */
	if (len < 3 || (msg[0] != 'n' && msg[0] != 'y') || msg[1] != ',')
		return false;
	p = msg + 2;
	char authzid[NAME_MAX_LEN + 1] = "";
	if (p < end && *p == 'a') {
		if (!attribute(&p, end, 'a', true, authzid, sizeof(authzid)))
			return false;
	} else if (p < end && *p == ',') {
		p++;
	} else {
		return false;
	}
	size_t gs2_len = (size_t)(p - msg);
	if (gs2_len >= sizeof(sc->gs2))
		return false;
	memcpy(sc->gs2, msg, gs2_len);
	size_t bare_len = (size_t)(end - p);
	if (bare_len >= sizeof(sc->client_first_bare))
		return false;
	memcpy(sc->client_first_bare, p, bare_len);
	if (p < end && *p == 'm') /* a mandatory extension: none known */
		return false;
	char nonce[129];
	if (!attribute(&p, end, 'n', true, sc->user, sizeof(sc->user)) ||
	    !attribute(&p, end, 'r', false, nonce, sizeof(nonce)) || !sc->user[0] || !nonce[0])
		return false;
	if (authzid[0] && strcmp(authzid, sc->user) != 0)
		return false;
	for (const char *c = nonce; *c; c++)
		if (*c < 0x21 || *c > 0x7e)
			return false;
	snprintf(sc->nonce, sizeof(sc->nonce), "%s", nonce);
	return true;
}

bool scram_server_first(struct scram *sc, const char *server_nonce, const unsigned char *salt,
			size_t salt_len, unsigned iterations,
			const unsigned char stored_key[SCRAM_KEY],
			const unsigned char server_key[SCRAM_KEY], char *out, size_t size)
{
	char salt64[128];
	size_t n = strlen(sc->nonce);
	if (n + strlen(server_nonce) + 1 > sizeof(sc->nonce) ||
	    !scram_base64(salt, salt_len, salt64, sizeof(salt64)))
		return false;
	snprintf(sc->nonce + n, sizeof(sc->nonce) - n, "%s", server_nonce);
	int len = snprintf(sc->server_first, sizeof(sc->server_first), "r=%s,s=%s,i=%u", sc->nonce,
			   salt64, iterations);
	if (len < 0 || (size_t)len >= sizeof(sc->server_first) || (size_t)len >= size)
		return false;
	memcpy(sc->stored_key, stored_key, SCRAM_KEY);
	memcpy(sc->server_key, server_key, SCRAM_KEY);
	memcpy(out, sc->server_first, (size_t)len + 1);
	return true;
}

int scram_client_final(struct scram *sc, const char *msg, size_t len, char *out, size_t size)
{
	const char *end = msg + len, *p = msg;
	char binding[64], nonce[sizeof(sc->nonce)];
	if (!attribute(&p, end, 'c', false, binding, sizeof(binding)) ||
	    !attribute(&p, end, 'r', false, nonce, sizeof(nonce)))
		return -1;
	/* Extensions may come before the proof, which is last. */
	const char *proof_at = NULL;
	for (const char *q = msg; q + 3 <= end; q++)
		if (q[0] == ',' && q[1] == 'p' && q[2] == '=')
			proof_at = q;
	if (!proof_at || proof_at < p - 1)
		return -1;
	/* c= is the GS2 header in base64 (no channel binding data). */
	unsigned char gs2[sizeof(sc->gs2)];
	long gl = scram_unbase64(binding, strlen(binding), gs2, sizeof(gs2));
	if (gl < 0 || (size_t)gl != strlen(sc->gs2) || memcmp(gs2, sc->gs2, (size_t)gl) != 0 ||
	    strcmp(nonce, sc->nonce) != 0)
		return -1;
	unsigned char proof[SCRAM_KEY + 4];
	long pl = scram_unbase64(proof_at + 3, (size_t)(end - proof_at - 3), proof, sizeof(proof));
	if (pl != SCRAM_KEY)
		return -1;

	char auth[3 * SCRAM_MESSAGE_MAX];
	int al = snprintf(auth, sizeof(auth), "%s,%s,%.*s", sc->client_first_bare, sc->server_first,
			  (int)(proof_at - msg), msg);
	if (al < 0 || (size_t)al >= sizeof(auth))
		return -1;
	unsigned char signature[SCRAM_KEY], client_key[SCRAM_KEY], stored[SCRAM_KEY];
	unsigned sl = 0;
	if (!HMAC(EVP_sha256(), sc->stored_key, SCRAM_KEY, (unsigned char *)auth, (size_t)al, signature,
		  &sl) || sl != SCRAM_KEY)
		return -1;
	for (int i = 0; i < SCRAM_KEY; i++)
		client_key[i] = proof[i] ^ signature[i];
	SHA256(client_key, SCRAM_KEY, stored);
	int ok = CRYPTO_memcmp(stored, sc->stored_key, SCRAM_KEY) == 0;
	OPENSSL_cleanse(client_key, sizeof(client_key));
	if (!ok)
		return 0;
	unsigned char server_signature[SCRAM_KEY];
	if (!HMAC(EVP_sha256(), sc->server_key, SCRAM_KEY, (unsigned char *)auth, (size_t)al,
		  server_signature, &sl) || sl != SCRAM_KEY || size < 3)
		return -1;
	memcpy(out, "v=", 2);
	if (!scram_base64(server_signature, SCRAM_KEY, out + 2, size - 2))
		return -1;
	return 1;
}
