/* Unit tests for src/framer.c: lines out of a byte stream however the reads
 * cut it, over-long lines dropped once, the partial buffer kept small and
 * freed. Run under valgrind to prove framer_reset() leaves nothing behind. */
#include "autoconf.h"

#include "src/proto/framer.h"
#include "unit.h"

#include <stdint.h>

/* ---- a recording handler ----------------------------------------------- */

/* Everything the handlers saw, as one printable transcript: "L<len>:<bytes>\n"
 * per line (bytes outside printable ASCII as \xNN) and "T\n" per too_long. */
struct rec {
	char *log;
	size_t log_len, log_cap;
	int lines, too_long;
	int stop_at_line;      /* return false from this line (1-based); 0: never */
	bool stop_on_too_long;
	const char *last_ptr;  /* where the last line pointed */
	size_t last_len;
};

static void rec_append(struct rec *r, const char *s, size_t len)
{
	if (r->log_len + len + 1 > r->log_cap) {
		size_t cap = r->log_cap ? r->log_cap : 256;
		while (r->log_len + len + 1 > cap)
			cap *= 2;
		r->log = realloc(r->log, cap);
		if (!r->log)
			abort();
		r->log_cap = cap;
	}
	memcpy(r->log + r->log_len, s, len);
	r->log_len += len;
	r->log[r->log_len] = '\0';
}

static bool rec_line(void *ctx, const char *line, size_t len)
{
	struct rec *r = ctx;
	char buf[32];
	r->lines++;
	r->last_ptr = line;
	r->last_len = len;
	snprintf(buf, sizeof(buf), "L%zu:", len);
	rec_append(r, buf, strlen(buf));
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			rec_append(r, (const char *)&c, 1);
		} else {
			snprintf(buf, sizeof(buf), "\\x%02X", c);
			rec_append(r, buf, 4);
		}
	}
	rec_append(r, "\n", 1);
	return r->stop_at_line != r->lines;
}

static bool rec_too_long(void *ctx)
{
	struct rec *r = ctx;
	r->too_long++;
	rec_append(r, "T\n", 2);
	return !r->stop_on_too_long;
}

static const struct framer_handler handler = { rec_line, rec_too_long };

static void rec_init(struct rec *r)
{
	memset(r, 0, sizeof(*r));
	rec_append(r, "", 0);
}

static void rec_free(struct rec *r)
{
	free(r->log);
	memset(r, 0, sizeof(*r));
}

/* Feeds LEN bytes through a heap copy of exactly that size, so valgrind
 * sees the framer reading past what it was given. */
static bool feed(struct framer *f, const char *data, size_t len, size_t max_line, struct rec *r)
{
	char *copy = calloc(len ? len : 1, 1);
	if (!copy)
		abort();
	memcpy(copy, data, len);
	bool ok = framer_feed(f, copy, len, max_line, &handler, r);
	free(copy);
	return ok;
}

#define FEED(f, s, max, r) feed((f), (s), sizeof(s) - 1, (max), (r))

/* ---- whole lines -------------------------------------------------------- */

static void test_whole_lines(void)
{
	struct framer f = { 0 };
	struct rec r;
	rec_init(&r);

	CHECK(!framer_has_partial(&f));
	CHECK(FEED(&f, "a\nbb\nccc\n", 100, &r));
	CHECK_STR(r.log, "L1:a\nL2:bb\nL3:ccc\n");
	CHECK_INT(r.lines, 3);
	CHECK_INT(r.too_long, 0);
	CHECK(!framer_has_partial(&f));
	CHECK(f.partial == NULL);  /* an idle connection holds no buffer */

	/* nothing fed, nothing happens */
	CHECK(framer_feed(&f, "x", 0, 100, &handler, &r));
	CHECK_INT(r.lines, 3);
	CHECK(!framer_has_partial(&f));

	framer_reset(&f);
	rec_free(&r);
}

static void test_in_place(void)
{
	/* complete lines inside the caller's buffer are handed over without a copy */
	struct framer f = { 0 };
	struct rec r;
	rec_init(&r);
	const char buf[] = "abc\ndef\n";
	CHECK(framer_feed(&f, buf, 4, 100, &handler, &r));
	CHECK(r.last_ptr == buf);
	CHECK_INT(r.last_len, 3);
	CHECK(framer_feed(&f, buf + 4, 4, 100, &handler, &r));
	CHECK(r.last_ptr == buf + 4);
	CHECK_STR(r.log, "L3:abc\nL3:def\n");
	framer_reset(&f);
	rec_free(&r);
}

static void test_endings_and_bytes(void)
{
	struct framer f = { 0 };
	struct rec r;
	rec_init(&r);

	/* "\r\n" stripped; a lone "\r" in the line is kept for the cleaner */
	CHECK(FEED(&f, "one\r\ntwo\n", 100, &r));
	CHECK(FEED(&f, "x\ry\n", 100, &r));
	CHECK(FEED(&f, "\rlead\n", 100, &r));
	CHECK(FEED(&f, "z\r\r\n", 100, &r));
	CHECK(FEED(&f, "\r\r\n", 100, &r));
	CHECK_STR(r.log,
		  "L3:one\nL3:two\nL3:x\\x0Dy\nL5:\\x0Dlead\nL2:z\\x0D\nL1:\\x0D\n");
	CHECK(!framer_has_partial(&f));

	/* empty lines are delivered with len 0 */
	rec_free(&r);
	rec_init(&r);
	CHECK(FEED(&f, "\n\r\n\n", 100, &r));
	CHECK_STR(r.log, "L0:\nL0:\nL0:\n");
	CHECK_INT(r.lines, 3);

	/* NUL bytes are part of the line */
	rec_free(&r);
	rec_init(&r);
	CHECK(FEED(&f, "a\0b\n\0\n", 100, &r));
	CHECK_STR(r.log, "L3:a\\x00b\nL1:\\x00\n");
	CHECK(FEED(&f, "x\0", 100, &r));
	CHECK(framer_has_partial(&f));
	CHECK(FEED(&f, "\0y\n", 100, &r));
	CHECK_STR(r.log, "L3:a\\x00b\nL1:\\x00\nL4:x\\x00\\x00y\n");

	/* a lone "\r" at the end of a read is not a line ending */
	rec_free(&r);
	rec_init(&r);
	CHECK(FEED(&f, "ab\r", 100, &r));
	CHECK_INT(r.lines, 0);
	CHECK(framer_has_partial(&f));
	CHECK(FEED(&f, "cd\n", 100, &r));
	CHECK_STR(r.log, "L5:ab\\x0Dcd\n");
	CHECK(FEED(&f, "ef\r", 100, &r));
	CHECK(FEED(&f, "\n", 100, &r));
	CHECK_STR(r.log, "L5:ab\\x0Dcd\nL2:ef\n");
	CHECK(!framer_has_partial(&f));
	CHECK(f.partial == NULL);

	framer_reset(&f);
	rec_free(&r);
}

/* ---- every way of cutting the stream ------------------------------------- */

#define SPLIT_MAX 8

static const char split_input[] =
	"hello\n"
	"world\r\n"
	"\n"
	"\r\n"
	"x\ry\n"
	"12345678\n"          /* exactly max_line */
	"123456789\n"         /* max_line + 1: too long */
	"after\n"
	"12345678\r\n"        /* max_line, the \r is not counted */
	"1234567\r\r\n"       /* max_line with a kept \r */
	"12345678\r\r\n"      /* max_line + 1 with a kept \r: too long */
	"12345678\rx\n"       /* too long */
	"a\0b\n"
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"  /* far too long */
	"\n"
	"aaaaaaaaaaaaaaaaa\r\n"  /* too long, ending in \r\n */
	"ok\r\n"
	"tail";               /* left partial */

static const char split_want[] =
	"L5:hello\n"
	"L5:world\n"
	"L0:\n"
	"L0:\n"
	"L3:x\\x0Dy\n"
	"L8:12345678\n"
	"T\n"
	"L5:after\n"
	"L8:12345678\n"
	"L8:1234567\\x0D\n"
	"T\n"
	"T\n"
	"L3:a\\x00b\n"
	"T\n"
	"L0:\n"
	"T\n"
	"L2:ok\n";

/* Feeds split_input cut at the given offsets, checks the transcript, then
 * ends the partial line and checks it arrives. */
static int check_cuts(const size_t *cuts, size_t ncuts)
{
	struct framer f = { 0 };
	struct rec r;
	rec_init(&r);
	size_t len = sizeof(split_input) - 1, at = 0;
	bool ok = true;
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len;
		ok = feed(&f, split_input + at, end - at, SPLIT_MAX, &r) && ok;
		at = end;
	}
	int bad = 0;
	if (!ok || strcmp(r.log, split_want) != 0 || !framer_has_partial(&f)) {
		bad = 1;
	} else {
		ok = feed(&f, "\n", 1, SPLIT_MAX, &r);
		if (!ok || strcmp(r.log + sizeof(split_want) - 1, "L4:tail\n") != 0 ||
		    framer_has_partial(&f))
			bad = 1;
	}
	if (bad) {
		fprintf(stderr, "%s:%d: cut at", __FILE__, __LINE__);
		for (size_t i = 0; i < ncuts; i++)
			fprintf(stderr, " %zu", cuts[i]);
		fprintf(stderr, ": feed %s, has_partial %d, transcript:\n%s--- want:\n%sL4:tail\n",
			ok ? "true" : "false", framer_has_partial(&f), r.log, split_want);
	}
	framer_reset(&f);
	rec_free(&r);
	return bad;
}

static void test_splits(void)
{
	size_t len = sizeof(split_input) - 1;
	size_t cuts[sizeof(split_input)];

	/* in one piece */
	unit_checks++;
	unit_failures += check_cuts(NULL, 0);

	/* byte by byte */
	for (size_t i = 0; i + 1 < len; i++)
		cuts[i] = i + 1;
	unit_checks++;
	unit_failures += check_cuts(cuts, len - 1);

	/* all 2-way splits, empty pieces included */
	int bad = 0;
	for (size_t a = 0; a <= len && bad < 3; a++) {
		cuts[0] = a;
		bad += check_cuts(cuts, 1);
	}
	unit_checks++;
	if (bad)
		unit_failures++;

	/* all 3-way splits */
	bad = 0;
	for (size_t a = 1; a < len && bad < 3; a++)
		for (size_t b = a + 1; b < len && bad < 3; b++) {
			cuts[0] = a;
			cuts[1] = b;
			bad += check_cuts(cuts, 2);
		}
	unit_checks++;
	if (bad)
		unit_failures++;

	/* random cuts into many pieces */
	uint32_t seed = 12345;
	bad = 0;
	for (int iter = 0; iter < 2000 && bad < 3; iter++) {
		size_t n = 0;
		for (size_t at = 0; ; ) {
			seed = seed * 1103515245u + 12345u;
			at += 1 + (seed >> 16) % 7;
			if (at >= len)
				break;
			cuts[n++] = at;
		}
		bad += check_cuts(cuts, n);
	}
	unit_checks++;
	if (bad)
		unit_failures++;
}

/* ---- over-long lines ---------------------------------------------------- */

static void test_max_line_edges(void)
{
	struct framer f = { 0 };
	struct rec r;

	/* exactly max_line accepted, max_line + 1 rejected once, next line fine */
	rec_init(&r);
	CHECK(FEED(&f, "12345678\n123456789\nnext\n", 8, &r));
	CHECK_STR(r.log, "L8:12345678\nT\nL4:next\n");
	CHECK_INT(r.too_long, 1);
	CHECK(!framer_has_partial(&f));
	CHECK(f.partial == NULL);
	rec_free(&r);

	/* the same, a byte per feed */
	{
		static const char s[] = "12345678\n123456789\nnext\n";
		rec_init(&r);
		bool ok = true;
		for (size_t i = 0; i < sizeof(s) - 1; i++)
			ok = feed(&f, s + i, 1, 8, &r) && ok;
		CHECK(ok);
		CHECK_STR(r.log, "L8:12345678\nT\nL4:next\n");
		CHECK_INT(r.too_long, 1);
		CHECK(!framer_has_partial(&f));
		CHECK(f.partial == NULL);
		rec_free(&r);
	}

	/* max_line bytes then "\r" at the end of a read: not yet too long */
	rec_init(&r);
	CHECK(FEED(&f, "12345678\r", 8, &r));
	CHECK_INT(r.too_long, 0);
	CHECK(FEED(&f, "\n", 8, &r));
	CHECK_STR(r.log, "L8:12345678\n");
	rec_free(&r);

	rec_init(&r);
	CHECK(FEED(&f, "12345678\r", 8, &r));
	CHECK(FEED(&f, "x\nok\n", 8, &r));
	CHECK_STR(r.log, "T\nL2:ok\n");
	rec_free(&r);

	rec_init(&r);
	CHECK(FEED(&f, "12345678\r", 8, &r));
	CHECK(FEED(&f, "\r\nok\n", 8, &r));
	CHECK_STR(r.log, "T\nL2:ok\n");
	rec_free(&r);

	/* too_long comes as soon as it is known, before the newline */
	rec_init(&r);
	CHECK(FEED(&f, "1234567890ab", 8, &r));
	CHECK_INT(r.too_long, 1);
	CHECK(FEED(&f, "cdef", 8, &r));
	CHECK(FEED(&f, "gh\r\nok\n", 8, &r));
	CHECK_STR(r.log, "T\nL2:ok\n");
	rec_free(&r);

	/* max_line + 1 bytes, the last not a "\r": already known too long */
	rec_init(&r);
	CHECK(FEED(&f, "123456789", 8, &r));
	CHECK_INT(r.too_long, 1);
	CHECK(FEED(&f, "\nok\n", 8, &r));
	CHECK_STR(r.log, "T\nL2:ok\n");
	rec_free(&r);

	/* a line of max_line assembled from pieces */
	rec_init(&r);
	CHECK(FEED(&f, "123", 8, &r));
	CHECK(FEED(&f, "45", 8, &r));
	CHECK(FEED(&f, "678", 8, &r));
	CHECK(FEED(&f, "\r\n", 8, &r));
	CHECK_STR(r.log, "L8:12345678\n");
	rec_free(&r);

	/* and of max_line + 1 */
	rec_init(&r);
	CHECK(FEED(&f, "123", 8, &r));
	CHECK(FEED(&f, "456", 8, &r));
	CHECK(FEED(&f, "789", 8, &r));
	CHECK(FEED(&f, "\n", 8, &r));
	CHECK(FEED(&f, "next\n", 8, &r));
	CHECK_STR(r.log, "T\nL4:next\n");
	rec_free(&r);

	/* two too-long lines in a row: one call each */
	rec_init(&r);
	CHECK(FEED(&f, "aaaaaaaaaaaaaaaaaaaa\nbbbbbbbbbbbbbbbbbbbbbbb\nc\n", 8, &r));
	CHECK_STR(r.log, "T\nT\nL1:c\n");
	rec_free(&r);

	CHECK(!framer_has_partial(&f));
	framer_reset(&f);
}

/* The most the partial buffer may hold: a line of max_line bytes plus its
 * "\r" (the "\n" is never stored), and a byte to spare. A small fixed
 * minimum allocation is fine; growing past the line limit is not. */
#define PARTIAL_CAP_LIMIT(max_line) ((max_line) + 2 < 256 ? 256 : (max_line) + 2)

/* A big line fed in pieces: exactly one too_long, the partial buffer never
 * grows past about max_line, the next line arrives whole. */
static void check_big_line(int line, size_t max_line, size_t total, size_t piece)
{
	struct framer f = { 0 };
	struct rec r;
	rec_init(&r);
	char *buf = malloc(piece);
	if (!buf)
		abort();
	memset(buf, 'x', piece);

	bool ok = true;
	size_t max_cap = 0, fed = 0;
	int early = -1;
	while (fed < total) {
		size_t n = total - fed < piece ? total - fed : piece;
		ok = framer_feed(&f, buf, n, max_line, &handler, &r) && ok;
		fed += n;
		if (f.partial_cap > max_cap)
			max_cap = f.partial_cap;
		if (early < 0 && fed > max_line + 1)
			early = r.too_long;
	}
	unit_checks++;
	if (!ok || r.too_long != 1 || r.lines != 0 || early != 1) {
		unit_failures++;
		fprintf(stderr, "%s:%d: %zu-byte line in %zu-byte feeds (max %zu): feed %s, "
			"%d too_long (%d right after passing max_line + 1), %d lines\n",
			__FILE__, line, total, piece, max_line, ok ? "true" : "false",
			r.too_long, early, r.lines);
	}
	unit_checks++;
	if (max_cap > PARTIAL_CAP_LIMIT(max_line)) {
		unit_failures++;
		fprintf(stderr, "%s:%d: %zu-byte line in %zu-byte feeds (max %zu): "
			"partial_cap grew to %zu\n", __FILE__, line, total, piece, max_line, max_cap);
	}

	ok = FEED(&f, "\r\nnext\n", max_line, &r);
	unit_checks++;
	if (!ok || strcmp(r.log, "T\nL4:next\n") != 0 || framer_has_partial(&f) || f.partial) {
		unit_failures++;
		fprintf(stderr, "%s:%d: after the big line: feed %s, has_partial %d, transcript:\n%s",
			__FILE__, line, ok ? "true" : "false", framer_has_partial(&f), r.log);
	}
	free(buf);
	framer_reset(&f);
	rec_free(&r);
}

static void test_big_lines(void)
{
	check_big_line(__LINE__, 2048, 1 << 20, 4096);
	check_big_line(__LINE__, 2048, 1 << 20, 1000);
	check_big_line(__LINE__, 2048, 100000, 1);
	check_big_line(__LINE__, 2048, 2049 + 10, 2049);
	check_big_line(__LINE__, 2048, 1 << 20, 1 << 20);
	check_big_line(__LINE__, 8, 100000, 3);

	/* a line of exactly max_line = 2048 in pieces, then one of 2049 */
	struct framer f = { 0 };
	struct rec r;
	rec_init(&r);
	char *line = malloc(2050);
	if (!line)
		abort();
	for (size_t i = 0; i < 2048; i++)
		line[i] = (char)('a' + i % 26);
	line[2048] = '\r';
	line[2049] = '\n';
	bool ok = true;
	for (size_t at = 0; at < 2050; at += 100) {
		size_t n = 2050 - at < 100 ? 2050 - at : 100;
		ok = framer_feed(&f, line + at, n, 2048, &handler, &r) && ok;
		CHECK(f.partial_cap <= PARTIAL_CAP_LIMIT(2048));
	}
	CHECK(ok);
	CHECK_INT(r.lines, 1);
	CHECK_INT(r.too_long, 0);
	CHECK_INT(r.last_len, 2048);
	CHECK(strncmp(r.log, "L2048:abcdefghijklmnopqrstuvwxyzabc", 35) == 0);
	CHECK(r.log_len == 6 + 2048 + 1);
	CHECK(r.log_len >= 6 + 2048 && memcmp(r.log + 6, line, 2048) == 0);
	CHECK(!framer_has_partial(&f));
	rec_free(&r);

	rec_init(&r);
	line[2048] = 'z';
	line[2049] = '\n';
	ok = true;
	for (size_t at = 0; at < 2050; at += 100) {
		size_t n = 2050 - at < 100 ? 2050 - at : 100;
		ok = framer_feed(&f, line + at, n, 2048, &handler, &r) && ok;
		CHECK(f.partial_cap <= PARTIAL_CAP_LIMIT(2048));
	}
	CHECK(ok);
	CHECK_STR(r.log, "T\n");
	free(line);
	framer_reset(&f);
	rec_free(&r);
}

/* ---- handlers stopping the framer --------------------------------------- */

static void test_stop(void)
{
	struct framer f = { 0 };
	struct rec r;

	/* line() returning false: feed returns false, the rest is not looked at */
	rec_init(&r);
	r.stop_at_line = 2;
	CHECK(!FEED(&f, "a\nb\nc\n", 100, &r));
	CHECK_STR(r.log, "L1:a\nL1:b\n");
	CHECK_INT(f.taken, 4); /* "a\nb\n": "c\n" may be fed again */
	framer_reset(&f);
	CHECK(!framer_has_partial(&f));
	rec_free(&r);

	/* on a line finished from the partial buffer */
	rec_init(&r);
	r.stop_at_line = 1;
	CHECK(FEED(&f, "ab", 100, &r));
	CHECK(!FEED(&f, "c\nd\ne", 100, &r));
	CHECK_STR(r.log, "L3:abc\n");
	CHECK_INT(f.taken, 2);
	framer_reset(&f);   /* valgrind: whatever was buffered is freed */
	CHECK(!framer_has_partial(&f));
	CHECK(f.partial == NULL);
	rec_free(&r);

	/* too_long() returning false */
	rec_init(&r);
	r.stop_on_too_long = true;
	CHECK(!FEED(&f, "123456789\nok\n", 8, &r));
	CHECK_STR(r.log, "T\n");
	framer_reset(&f);
	rec_free(&r);

	/* ... found out before the newline */
	rec_init(&r);
	r.stop_on_too_long = true;
	CHECK(FEED(&f, "1234", 8, &r));
	CHECK(!FEED(&f, "567890abcdef", 8, &r));
	CHECK_STR(r.log, "T\n");
	CHECK_INT(f.taken, 12);
	framer_reset(&f);
	rec_free(&r);

	/* a line stopping the framer in a byte-by-byte stream */
	rec_init(&r);
	r.stop_at_line = 1;
	CHECK(FEED(&f, "x", 100, &r));
	CHECK_INT(f.taken, 1);
	CHECK(!FEED(&f, "\n", 100, &r));
	CHECK_STR(r.log, "L1:x\n");
	CHECK_INT(f.taken, 1);
	framer_reset(&f);
	rec_free(&r);
}

/* ---- has_partial and reset ---------------------------------------------- */

static void test_partial_and_reset(void)
{
	struct framer f = { 0 };
	struct rec r;
	rec_init(&r);

	/* reset of an idle framer is harmless, twice too */
	framer_reset(&f);
	framer_reset(&f);
	CHECK(!framer_has_partial(&f));

	CHECK(FEED(&f, "abc", 100, &r));
	CHECK(framer_has_partial(&f));
	CHECK(f.partial != NULL);
	CHECK_INT(f.partial_len, 3);
	CHECK(FEED(&f, "\n", 100, &r));
	CHECK(!framer_has_partial(&f));
	CHECK(f.partial == NULL);

	CHECK(FEED(&f, "x\ny", 100, &r));
	CHECK(framer_has_partial(&f));
	CHECK_STR(r.log, "L3:abc\nL1:x\n");

	/* reset drops the partial line and frees its buffer */
	framer_reset(&f);
	CHECK(!framer_has_partial(&f));
	CHECK(f.partial == NULL);
	CHECK_INT(f.partial_len, 0);
	CHECK(!f.discarding);
	CHECK(FEED(&f, "z\n", 100, &r));
	CHECK_STR(r.log, "L3:abc\nL1:x\nL1:z\n");

	/* reset in the middle of an over-long line: back to normal lines */
	CHECK(FEED(&f, "1234567890abc", 8, &r));
	CHECK_INT(r.too_long, 1);
	framer_reset(&f);
	CHECK(!framer_has_partial(&f));
	CHECK(!f.discarding);
	CHECK(FEED(&f, "ok\n", 8, &r));
	CHECK_STR(r.log, "L3:abc\nL1:x\nL1:z\nT\nL2:ok\n");

	/* reset with a partial line near max_line */
	CHECK(FEED(&f, "1234567", 8, &r));
	framer_reset(&f);
	CHECK(f.partial == NULL);

	/* many partial lines in turn: no buffer left behind */
	for (int i = 0; i < 100; i++) {
		CHECK(FEED(&f, "part", 100, &r));
		CHECK(FEED(&f, "ial\nnext", 100, &r));
		framer_reset(&f);
	}
	CHECK_INT(r.lines, 4 + 100);
	CHECK(f.partial == NULL);
	rec_free(&r);
}

/* ---- partial_is_new: where a stall timeout counts from ----------------- */

static void test_partial_is_new(void)
{
	struct framer f = { 0 };
	struct rec r;
	rec_init(&r);

	CHECK(FEED(&f, "abc", 100, &r)); /* a line begins */
	CHECK(framer_partial_is_new(&f));
	CHECK(FEED(&f, "d", 100, &r)); /* and goes on: not new */
	CHECK(framer_has_partial(&f));
	CHECK(!framer_partial_is_new(&f));
	CHECK(FEED(&f, "e\nxy", 100, &r)); /* "xy" began after the line it ended */
	CHECK(framer_partial_is_new(&f));
	CHECK(FEED(&f, "z\n1234567890", 8, &r)); /* an over-long line begins */
	CHECK(framer_partial_is_new(&f));
	CHECK(FEED(&f, "abc", 8, &r)); /* and goes on, dropped */
	CHECK(framer_has_partial(&f));
	CHECK(!framer_partial_is_new(&f));
	CHECK(FEED(&f, "\nq", 8, &r)); /* "q" began after it */
	CHECK(framer_partial_is_new(&f));
	CHECK_STR(r.log, "L5:abcde\nL3:xyz\nT\n");
	framer_reset(&f);
	rec_free(&r);
}

/* ---- dropped bytes are reported, all of them --------------------------- */

struct drop_rec {
	struct rec rec;
	size_t dropped;
	size_t stop_after; /* return false once this many were reported; 0: never */
};

static bool drop_line(void *ctx, const char *line, size_t len)
{
	return rec_line(&((struct drop_rec *)ctx)->rec, line, len);
}

static bool drop_too_long(void *ctx)
{
	return rec_too_long(&((struct drop_rec *)ctx)->rec);
}

static bool drop_bytes(void *ctx, size_t bytes)
{
	struct drop_rec *d = ctx;
	d->dropped += bytes;
	return !d->stop_after || d->dropped < d->stop_after;
}

static const struct framer_handler drop_handler = { drop_line, drop_too_long, drop_bytes };

/* Feeds TEXT in PIECE-byte reads (max_line 10); returns the bytes reported
 * dropped, and the transcript in D. */
static size_t feed_dropping(struct drop_rec *d, const char *text, size_t piece)
{
	struct framer f = { 0 };
	size_t len = strlen(text);
	free(d->rec.log);
	memset(d, 0, sizeof(*d));
	rec_init(&d->rec);
	for (size_t at = 0; at < len; at += piece)
		framer_feed(&f, text + at, len - at < piece ? len - at : piece, 10, &drop_handler, d);
	framer_reset(&f);
	return d->dropped;
}

static void test_dropped(void)
{
	struct drop_rec d = { 0 };
	/* Every byte of an over-long line, its newline included, however the
	 * reads cut it; none of a line that fits. */
	for (size_t piece = 1; piece <= 20; piece++) {
		CHECK_INT(feed_dropping(&d, "0123456789AB\nok\n", piece), 13);
		CHECK_STR(d.rec.log, "T\nL2:ok\n");
		CHECK_INT(feed_dropping(&d, "0123456789A\r\nok\n", piece), 13);
		CHECK_INT(feed_dropping(&d, "0123456789\r\nok\n", piece), 0);
	}
	/* An endless line: reported as it is read, long before any newline. */
	char endless[1001];
	memset(endless, 'y', 1000);
	endless[1000] = '\0';
	CHECK_INT(feed_dropping(&d, endless, 7), 1000);
	CHECK_INT(d.rec.too_long, 1);
	/* The handler can stop it. */
	struct framer f = { 0 };
	free(d.rec.log);
	memset(&d, 0, sizeof(d));
	rec_init(&d.rec);
	d.stop_after = 20;
	CHECK(!framer_feed(&f, endless, 1000, 10, &drop_handler, &d));
	framer_reset(&f);
	free(d.rec.log);
}

int main(void)
{
	test_whole_lines();
	test_in_place();
	test_endings_and_bytes();
	test_splits();
	test_max_line_edges();
	test_big_lines();
	test_stop();
	test_partial_and_reset();
	test_partial_is_new();
	test_dropped();
	return unit_finish("test_framer");
}
