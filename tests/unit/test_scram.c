/* SCRAM-SHA-256's server side against RFC 7677's example exchange, and
 * the messages it must refuse. */
#include "autoconf.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <string.h>

#include "proto/scram.h"
#include "unit.h"

static const char client_first[] = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
static const char server_nonce[] = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
static const char server_first[] =
	"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
static const char client_final[] =
	"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
	"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
static const char server_final[] = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

static unsigned char salt[16], stored_key[SCRAM_KEY], server_key[SCRAM_KEY];

/* The account's keys for password "pencil" (as accounts.c derives them). */
static void derive(void)
{
	unsigned char salted[SCRAM_KEY], client_key[SCRAM_KEY];
	unsigned len;
	CHECK_INT(scram_unbase64("W22ZaJ0SNY7soEsUEjb6gQ==", 24, salt, sizeof(salt)), 16);
	CHECK(PKCS5_PBKDF2_HMAC("pencil", 6, salt, 16, 4096, EVP_sha256(), SCRAM_KEY, salted) == 1);
	HMAC(EVP_sha256(), salted, SCRAM_KEY, (const unsigned char *)"Client Key", 10, client_key, &len);
	SHA256(client_key, SCRAM_KEY, stored_key);
	HMAC(EVP_sha256(), salted, SCRAM_KEY, (const unsigned char *)"Server Key", 10, server_key, &len);
}

static void start(struct scram *sc, char *out)
{
	CHECK(scram_client_first(sc, client_first, strlen(client_first)));
	CHECK_STR(sc->user, "user");
	CHECK(scram_server_first(sc, server_nonce, salt, 16, 4096, stored_key, server_key, out,
				 SCRAM_MESSAGE_MAX));
}

static void test_rfc7677(void)
{
	struct scram sc;
	char out[SCRAM_MESSAGE_MAX];
	start(&sc, out);
	CHECK_STR(out, server_first);
	CHECK_INT(scram_client_final(&sc, client_final, strlen(client_final), out, sizeof(out)), 1);
	CHECK_STR(out, server_final);
}

static void test_wrong_proof(void)
{
	struct scram sc;
	char out[SCRAM_MESSAGE_MAX], bad[sizeof(client_final)];
	start(&sc, out);
	memcpy(bad, client_final, sizeof(bad));
	bad[sizeof(bad) - 3] = bad[sizeof(bad) - 3] == 'A' ? 'B' : 'A'; /* the proof's last byte */
	CHECK_INT(scram_client_final(&sc, bad, strlen(bad), out, sizeof(out)), 0);
}

static void test_malformed(void)
{
	static const char *const firsts[] = {
		"p=tls-unique,,n=user,r=abc", /* channel binding */
		"n,a=other,n=user,r=abc",     /* someone else's identity */
		"n,,r=abc",                   /* no user */
		"n,,n=user",                  /* no nonce */
		"x,,n=user,r=abc",
		"n,,m=ext,n=user,r=abc",      /* a mandatory extension */
		"n,,n=us=3Fer,r=abc",         /* a bad escape */
		"",
	};
	struct scram sc;
	for (size_t i = 0; i < sizeof(firsts) / sizeof(*firsts); i++)
		CHECK(!scram_client_first(&sc, firsts[i], strlen(firsts[i])));
	CHECK(scram_client_first(&sc, "y,a=user,n=user,r=abc", 21));
	CHECK(scram_client_first(&sc, "n,,n=a=2Cb=3Dc,r=abc", 20));
	CHECK_STR(sc.user, "a,b=c");

	static const char *const finals[] = {
		"c=biws,r=wrongnonce,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
		"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", /* "y,," is not what was said */
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",  /* no proof */
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=short",
	};
	char out[SCRAM_MESSAGE_MAX];
	for (size_t i = 0; i < sizeof(finals) / sizeof(*finals); i++) {
		start(&sc, out);
		CHECK_INT(scram_client_final(&sc, finals[i], strlen(finals[i]), out, sizeof(out)), -1);
	}
}

static void test_base64(void)
{
	unsigned char buf[16];
	char out[32];
	CHECK_INT(scram_unbase64("Zm9v", 4, buf, sizeof(buf)), 3);
	CHECK_INT(scram_unbase64("Zm8=", 4, buf, sizeof(buf)), 2);
	CHECK_INT(scram_unbase64("Zg==", 4, buf, sizeof(buf)), 1);
	CHECK_INT(scram_unbase64("Zg=", 3, buf, sizeof(buf)), -1);
	CHECK_INT(scram_unbase64("Z=g=", 4, buf, sizeof(buf)), -1);
	CHECK_INT(scram_unbase64("Zm9v!", 5, buf, sizeof(buf)), -1);
	CHECK_INT(scram_base64((const unsigned char *)"foo", 3, out, sizeof(out)), 4);
	CHECK_STR(out, "Zm9v");
	CHECK_INT(scram_base64((const unsigned char *)"foo", 3, out, 4), 0);
}

int main(void)
{
	derive();
	test_rfc7677();
	test_wrong_proof();
	test_malformed();
	test_base64();
	return unit_finish("test_scram");
}
