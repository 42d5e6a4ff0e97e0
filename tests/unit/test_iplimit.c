/* The per-address table: connections, the connect rate, the log throttle,
 * expiry and the bound, driven by a clock the test owns. */
#include "autoconf.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "src/net/iplimit.h"
#include "src/base/log.h"
#include "src/base/util.h"
#include "unit.h"

static struct ip_key v4(const char *text)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct ip_key k;
	inet_pton(AF_INET, text, &sa.sin_addr);
	ip_key_from_sockaddr((struct sockaddr *)&sa, &k);
	return k;
}

static struct ip_key v6(const char *text)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };
	struct ip_key k;
	inet_pton(AF_INET6, text, &sa.sin6_addr);
	ip_key_from_sockaddr((struct sockaddr *)&sa, &k);
	return k;
}

static void check_key_text(const struct ip_key *k, const char *want)
{
	char text[IP_KEY_TEXT_MAX];
	ip_key_format(k, text);
	CHECK_STR(text, want);
}

static bool same(struct ip_key a, struct ip_key b)
{
	return memcmp(&a, &b, sizeof(a)) == 0;
}

static void test_keys(void)
{
	/* IPv4 over IPv4 or mapped into IPv6 is the same address. */
	struct ip_key a = v4("192.0.2.1");
	CHECK(same(a, v6("::ffff:192.0.2.1")));
	CHECK(!same(a, v4("192.0.2.2")));
	check_key_text(&a, "192.0.2.1");
	/* IPv6 by its /64: privacy addresses of one host are one address. */
	struct ip_key b = v6("2001:db8:1:2:aaaa:bbbb:cccc:dddd");
	CHECK(same(b, v6("2001:db8:1:2::1")));
	CHECK(!same(b, v6("2001:db8:1:3::1")));
	check_key_text(&b, "2001:db8:1:2::/64");
	struct ip_key lo = v6("::1");
	check_key_text(&lo, "::/64");
}

static const struct ip_limit_policy NO_LIMITS = { 0 };

static void test_max_per_ip(void)
{
	struct ip_limit_policy p = { .max_per_ip = 2 };
	struct ip_limit *l = ip_limit_new(&p, 16);
	struct ip_key a = v4("192.0.2.1"), b = v4("192.0.2.2");

	CHECK_INT(ip_limit_acquire(l, &a, 0), IP_OK);
	CHECK_INT(ip_limit_acquire(l, &a, 0), IP_OK);
	CHECK_INT(ip_limit_acquire(l, &a, 0), IP_TOO_MANY);
	CHECK_INT(ip_limit_acquire(l, &b, 0), IP_OK);
	ip_limit_release(l, &a, 0);
	CHECK_INT(ip_limit_acquire(l, &a, 0), IP_OK);
	/* Without rate or log limits, an address with no connection is gone. */
	ip_limit_release(l, &a, 0);
	ip_limit_release(l, &a, 0);
	ip_limit_release(l, &b, 0);
	CHECK_INT(ip_limit_addresses(l), 0);
	ip_limit_release(l, &b, 0); /* one too many: ignored */
	CHECK_INT(ip_limit_addresses(l), 0);

	/* A reload lifts the limit. */
	ip_limit_set_policy(l, &NO_LIMITS);
	for (int i = 0; i < 100; i++)
		CHECK_INT(ip_limit_acquire(l, &a, 0), IP_OK);
	ip_limit_free(l);
}

static void test_connect_rate(void)
{
	struct ip_limit_policy p = { .connect_rate = 10 };
	struct ip_limit *l = ip_limit_new(&p, 16);
	struct ip_key a = v4("192.0.2.1"), b = v4("192.0.2.2");
	uint64_t t = 5000;

	/* A connect/close loop: the count is 0 between connections, yet the
	 * address is remembered, and after 10 at once the 11th is refused. */
	for (int i = 0; i < 10; i++) {
		CHECK_INT(ip_limit_acquire(l, &a, t), IP_OK);
		ip_limit_release(l, &a, t);
	}
	CHECK_INT(ip_limit_acquire(l, &a, t), IP_TOO_FAST);
	CHECK_INT(ip_limit_acquire(l, &a, t + 50), IP_TOO_FAST);
	/* Refused connections take no token: a tenth of a second earns one. */
	CHECK_INT(ip_limit_acquire(l, &a, t + 100), IP_OK);
	CHECK_INT(ip_limit_acquire(l, &a, t + 100), IP_TOO_FAST);
	/* Another address has its own bucket. */
	CHECK_INT(ip_limit_acquire(l, &b, t + 100), IP_OK);

	/* Hammering for 10 s at 1000 a second lets 10 a second in, after the
	 * 9 tokens left. */
	int ok = 0;
	for (uint64_t ms = 0; ms < 10000; ms++)
		ok += ip_limit_acquire(l, &b, t + 101 + ms) == IP_OK;
	CHECK(ok >= 108 && ok <= 110);

	/* A second of rest fills the bucket, and no more than that. */
	t += 20000;
	for (int i = 0; i < 10; i++)
		CHECK_INT(ip_limit_acquire(l, &a, t), IP_OK);
	CHECK_INT(ip_limit_acquire(l, &a, t), IP_TOO_FAST);

	/* max_per_ip is checked first, and its refusals take no token. */
	p.max_per_ip = 11;
	ip_limit_set_policy(l, &p);
	t += 1000;
	CHECK_INT(ip_limit_acquire(l, &a, t), IP_TOO_MANY); /* 11 open */
	ip_limit_release(l, &a, t);
	for (int i = 0; i < 10; i++)
		CHECK_INT(ip_limit_acquire(l, &a, t), i == 0 ? IP_OK : IP_TOO_MANY);

	/* A reload to a lower rate caps what the bucket holds. */
	p = (struct ip_limit_policy){ .connect_rate = 2 };
	ip_limit_set_policy(l, &p);
	t += 10000;
	CHECK_INT(ip_limit_acquire(l, &a, t), IP_OK);
	CHECK_INT(ip_limit_acquire(l, &a, t), IP_OK);
	CHECK_INT(ip_limit_acquire(l, &a, t), IP_TOO_FAST);
	/* ... and 0 means no limit. */
	ip_limit_set_policy(l, &NO_LIMITS);
	for (int i = 0; i < 100; i++)
		CHECK_INT(ip_limit_acquire(l, &a, t), IP_OK);
	/* Back to a limit: addresses seen meanwhile start with a full bucket. */
	struct ip_key c = v4("192.0.2.3");
	CHECK_INT(ip_limit_acquire(l, &c, t), IP_OK);
	p.connect_rate = 10;
	ip_limit_set_policy(l, &p);
	for (int i = 0; i < 10; i++)
		CHECK_INT(ip_limit_acquire(l, &c, t + 1), IP_OK);
	CHECK_INT(ip_limit_acquire(l, &c, t + 1), IP_TOO_FAST);
	ip_limit_free(l);
}

/* An idle address is forgotten once its buckets are full again, and the
 * table never holds more idle addresses than its bound. */
static void test_expiry_and_bound(void)
{
	struct ip_limit_policy p = { .connect_rate = 10 };
	struct ip_limit *l = ip_limit_new(&p, 4);
	struct ip_key a = v4("192.0.2.1"), other = v4("198.51.100.1");
	uint64_t t = 1000;

	CHECK_INT(ip_limit_acquire(l, &a, t), IP_OK);
	ip_limit_release(l, &a, t);
	CHECK_INT(ip_limit_addresses(l), 1);
	/* A tenth of a second later its token is back; the next call drops it. */
	ip_limit_release(l, &other, t + 99); /* a call that finds nothing */
	CHECK_INT(ip_limit_addresses(l), 1);
	ip_limit_release(l, &other, t + 100);
	CHECK_INT(ip_limit_addresses(l), 0);

	/* Open connections keep an address whatever its buckets say. */
	CHECK_INT(ip_limit_acquire(l, &a, t), IP_OK);
	ip_limit_release(l, &other, t + 60000);
	CHECK_INT(ip_limit_addresses(l), 1);
	ip_limit_release(l, &a, t + 60000); /* full again: gone at once */
	CHECK_INT(ip_limit_addresses(l), 0);

	/* Many addresses, each looping: at most 4 idle ones are kept; the one
	 * idle longest is forgotten first and starts again with a full bucket. */
	t = 100000;
	struct ip_key keys[6];
	for (int i = 0; i < 6; i++) {
		char text[32];
		snprintf(text, sizeof(text), "2001:db8:0:%d::1", i);
		keys[i] = v6(text);
		for (int j = 0; j < 10; j++) {
			CHECK_INT(ip_limit_acquire(l, &keys[i], t), IP_OK);
			ip_limit_release(l, &keys[i], t);
		}
		CHECK(ip_limit_addresses(l) <= 4);
	}
	CHECK_INT(ip_limit_addresses(l), 4);
	CHECK_INT(ip_limit_acquire(l, &keys[5], t), IP_TOO_FAST); /* remembered */
	CHECK_INT(ip_limit_acquire(l, &keys[0], t), IP_OK);       /* forgotten */
	/* Busy addresses are not idle ones: 4 idle plus this one. */
	CHECK_INT(ip_limit_addresses(l), 5);
	ip_limit_free(l);
}

static void test_log_throttle(void)
{
	struct ip_limit_policy p = { .log_burst = 3 };
	struct ip_limit *l = ip_limit_new(&p, 16);
	struct ip_key a = v4("192.0.2.1"), b = v6("2001:db8::7");
	struct log_note note;
	uint64_t t = 1000;

	/* The burst, then nothing until a second has passed. */
	for (int i = 0; i < 3; i++) {
		CHECK(ip_limit_log_allowed(l, &a, LOG_NOTICE, t, &note));
		CHECK_INT(note.suppressed, 0);
		CHECK_STR(note.text, "");
	}
	for (int i = 0; i < 37; i++)
		CHECK(!ip_limit_log_allowed(l, &a, LOG_NOTICE, t + 500, &note));
	/* Another address is logged as usual. */
	CHECK(ip_limit_log_allowed(l, &b, LOG_NOTICE, t + 500, &note));
	CHECK_INT(note.suppressed, 0);
	/* A second later, one line, with the count of those held back. */
	CHECK(ip_limit_log_allowed(l, &a, LOG_NOTICE, t + 1000, &note));
	CHECK_INT(note.suppressed, 37);
	CHECK_STR(note.text, " (37 more messages about 192.0.2.1 not logged)");
	CHECK(!ip_limit_log_allowed(l, &a, LOG_NOTICE, t + 1000, &note));
	CHECK(ip_limit_log_allowed(l, &a, LOG_NOTICE, t + 2000, &note));
	CHECK_STR(note.text, " (1 more message about 192.0.2.1 not logged)");

	/* IPv6 by its /64, whatever the host part. */
	struct ip_key b2 = v6("2001:db8::8");
	for (int i = 0; i < 3; i++)
		CHECK(ip_limit_log_allowed(l, i ? &b2 : &b, LOG_NOTICE, t + 2000, &note));
	CHECK(!ip_limit_log_allowed(l, &b2, LOG_NOTICE, t + 2000, &note));
	CHECK(ip_limit_log_allowed(l, &b, LOG_NOTICE, t + 3000, &note));
	CHECK_STR(note.text, " (1 more message about 2001:db8::/64 not logged)");

	/* An address logged about is remembered without any connection (a
	 * rejection for max_clients); the others, their buckets full again,
	 * are forgotten. */
	CHECK_INT(ip_limit_addresses(l), 2);
	t += 100000;
	struct ip_key c = v4("203.0.113.9");
	CHECK(ip_limit_log_allowed(l, &c, LOG_NOTICE, t, &note));
	CHECK_INT(ip_limit_addresses(l), 1);

	/* A reload to 0: everything is logged. An address with an open
	 * connection says what was held back with its next line; an idle one
	 * is forgotten, its count logged on its own line. */
	CHECK_INT(ip_limit_acquire(l, &a, t), IP_OK);
	for (int i = 0; i < 4; i++)
		ip_limit_log_allowed(l, &a, LOG_NOTICE, t, &note);
	CHECK_INT(note.suppressed, 0);
	CHECK(!ip_limit_log_allowed(l, &a, LOG_NOTICE, t, &note));
	p.log_burst = 0;
	ip_limit_set_policy(l, &p);
	CHECK(ip_limit_log_allowed(l, &a, LOG_NOTICE, t, &note));
	CHECK_INT(note.suppressed, 2);
	for (int i = 0; i < 100; i++)
		CHECK(ip_limit_log_allowed(l, &a, LOG_NOTICE, t, &note));
	CHECK_INT(note.suppressed, 0);
	CHECK_INT(ip_limit_addresses(l), 1); /* c is gone, a stays */

	/* Lines the log level leaves out take no token and are not counted. */
	p.log_burst = 1;
	ip_limit_set_policy(l, &p);
	log_set_level(LOG_NOTICE);
	t += 10000;
	for (int i = 0; i < 10; i++)
		CHECK(!ip_limit_log_allowed(l, &a, LOG_INFO, t, &note));
	CHECK(ip_limit_log_allowed(l, &a, LOG_NOTICE, t, &note));
	CHECK_INT(note.suppressed, 0);
	log_set_level(LOG_INFO);
	ip_limit_free(l);
}

/* The log bucket keeps an idle address as long as it is not full. */
static void test_log_keeps_address(void)
{
	struct ip_limit_policy p = { .connect_rate = 10, .log_burst = 3 };
	struct ip_limit *l = ip_limit_new(&p, 16);
	struct ip_key a = v4("192.0.2.1"), other = v4("198.51.100.1");
	struct log_note note;
	uint64_t t = 1000;

	CHECK_INT(ip_limit_acquire(l, &a, t), IP_OK);
	CHECK(ip_limit_log_allowed(l, &a, LOG_NOTICE, t, &note));
	CHECK(ip_limit_log_allowed(l, &a, LOG_NOTICE, t, &note));
	ip_limit_release(l, &a, t);
	/* The connect bucket is full after 0.1 s, the log bucket after 2 s. */
	ip_limit_release(l, &other, t + 1999);
	CHECK_INT(ip_limit_addresses(l), 1);
	ip_limit_release(l, &other, t + 2000);
	CHECK_INT(ip_limit_addresses(l), 0);
	ip_limit_free(l);
}

int main(void)
{
	test_keys();
	test_max_per_ip();
	test_connect_rate();
	test_expiry_and_bound();
	test_log_throttle();
	test_log_keeps_address();
	return unit_finish("test_iplimit");
}
