/* Unit tests for src/text.c: text_clean, text_is_blank, text_is_valid_name.
 *
 * text_clean follows the Unicode "maximal subpart" practice for invalid
 * UTF-8: a truncated but otherwise valid prefix becomes one U+FFFD, and each
 * byte that can neither start nor continue a sequence becomes its own. The
 * explicit cases below are checked against hand-written expectations; the
 * exhaustive and random cases against a small reference implementation.
 * Invisible and direction-changing code points (ZERO WIDTH SPACE, RLO and
 * the other BiDi controls, tags) are removed like controls; the tests name
 * them by their own list, not text.c's, so a slip in either shows. */
#include "autoconf.h"

#include "src/base/text.h"
#include "unit.h"

#include <stdint.h>

#define FFFD "\xEF\xBF\xBD"

static void report_mismatch(const char *file, int line, const char *what,
			    const char *in, size_t in_len,
			    const char *got, size_t got_len,
			    const char *want, size_t want_len)
{
	fprintf(stderr, "%s:%d: %s(\"", file, line, what);
	unit_print_bytes(in, in_len);
	fprintf(stderr, "\") is \"");
	unit_print_bytes(got, got_len);
	fprintf(stderr, "\" (%zu bytes), want \"", got_len);
	unit_print_bytes(want, want_len);
	fprintf(stderr, "\" (%zu bytes)\n", want_len);
}

#define CANARY_LEN 16
#define CANARY_BYTE 0xA5

/* Cleans IN (copied to a heap buffer of exactly IN_LEN bytes, so valgrind
 * sees any read past the end) into a buffer of exactly TEXT_CLEAN_MAX(in_len)
 * bytes followed by canary bytes, and compares with WANT. */
static void check_clean_at(const char *file, int line, const char *in, size_t in_len,
			   const char *want, size_t want_len)
{
	size_t room = TEXT_CLEAN_MAX(in_len);
	char *src = calloc(in_len ? in_len : 1, 1);
	unsigned char *dst = malloc(room + CANARY_LEN);
	if (!src || !dst)
		abort();
	memcpy(src, in, in_len);
	memset(dst, CANARY_BYTE, room + CANARY_LEN);

	size_t got = text_clean((char *)dst, src, in_len);

	unit_checks++;
	if (got > room) {
		unit_failures++;
		fprintf(stderr, "%s:%d: text_clean(\"", file, line);
		unit_print_bytes(in, in_len);
		fprintf(stderr, "\") returned %zu > TEXT_CLEAN_MAX = %zu\n", got, room);
	} else if (got != want_len || memcmp(dst, want, want_len) != 0) {
		unit_failures++;
		report_mismatch(file, line, "text_clean", in, in_len, (char *)dst, got, want, want_len);
	}

	unit_checks++;
	for (size_t i = room; i < room + CANARY_LEN; i++) {
		if (dst[i] != CANARY_BYTE) {
			unit_failures++;
			fprintf(stderr, "%s:%d: text_clean(\"", file, line);
			unit_print_bytes(in, in_len);
			fprintf(stderr, "\") wrote past TEXT_CLEAN_MAX(%zu) = %zu (byte %zu)\n",
				in_len, room, i);
			break;
		}
	}
	free(src);
	free(dst);
}

/* For string literals (which may hold NULs): lengths from sizeof. */
#define CHECK_CLEAN(in, want) \
	check_clean_at(__FILE__, __LINE__, (in), sizeof(in) - 1, (want), sizeof(want) - 1)

/* ---- reference implementation ---------------------------------------- */

/* What text_clean must remove besides controls, as issue 16 lists it. */
static bool ref_invisible(uint32_t cp)
{
	return (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) ||
	       (cp >= 0x2066 && cp <= 0x2069) || cp == 0xFEFF || cp == 0x2028 ||
	       cp == 0x2029 || (cp >= 0xE0000 && cp <= 0xE007F);
}

static size_t ref_clean(char *dst_, const char *src_, size_t len)
{
	const unsigned char *s = (const unsigned char *)src_;
	unsigned char *dst = (unsigned char *)dst_;
	size_t i = 0, o = 0;

	while (i < len) {
		unsigned c = s[i];
		if (c < 0x80) {
			if (c == '\t' || (c >= 0x20 && c != 0x7f))
				dst[o++] = (unsigned char)c;
			i++;
			continue;
		}
		size_t need;
		unsigned lo = 0x80, hi = 0xBF;
		uint32_t cp;
		if (c >= 0xC2 && c <= 0xDF) {
			need = 1;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			need = 2;
			cp = c & 0x0F;
			if (c == 0xE0)
				lo = 0xA0;
			else if (c == 0xED)
				hi = 0x9F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			need = 3;
			cp = c & 0x07;
			if (c == 0xF0)
				lo = 0x90;
			else if (c == 0xF4)
				hi = 0x8F;
		} else {
			/* 80..BF, C0, C1, F5..FF: never start a sequence */
			memcpy(dst + o, FFFD, 3);
			o += 3;
			i++;
			continue;
		}
		size_t j = 1;
		while (j <= need && i + j < len) {
			unsigned b = s[i + j];
			unsigned blo = j == 1 ? lo : 0x80, bhi = j == 1 ? hi : 0xBF;
			if (b < blo || b > bhi)
				break;
			cp = (cp << 6) | (b & 0x3F);
			j++;
		}
		if (j <= need) {
			/* maximal subpart of j bytes */
			memcpy(dst + o, FFFD, 3);
			o += 3;
			i += j;
			continue;
		}
		if (!(cp >= 0x80 && cp <= 0x9F) && !ref_invisible(cp)) {
			memcpy(dst + o, s + i, need + 1);
			o += need + 1;
		}
		i += need + 1;
	}
	return o;
}

/* Compares text_clean with the reference on one input; quiet unless it
 * differs. Uses exact-size heap buffers so valgrind sees overruns. */
static void check_against_ref(const char *file, int line, const char *in, size_t in_len)
{
	size_t room = TEXT_CLEAN_MAX(in_len);
	char *want = malloc(room + 1);
	char *src = calloc(in_len ? in_len : 1, 1);
	char *dst = malloc(room ? room : 1);
	if (!want || !src || !dst)
		abort();
	memcpy(src, in, in_len);
	size_t want_len = ref_clean(want, in, in_len);
	size_t got = text_clean(dst, src, in_len);
	unit_checks++;
	if (got > room || got != want_len || memcmp(dst, want, want_len) != 0) {
		unit_failures++;
		report_mismatch(file, line, "text_clean", in, in_len, dst,
				got > room ? room : got, want, want_len);
	}
	free(want);
	free(src);
	free(dst);
}

/* True when S is valid UTF-8 without C0 (but TAB), DEL, C1 or invisible
 * code points. */
static bool clean_output_ok(const unsigned char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		unsigned c = s[i];
		if (c < 0x80) {
			if (!(c == '\t' || (c >= 0x20 && c != 0x7f)))
				return false;
			i++;
			continue;
		}
		size_t need;
		uint32_t cp, min;
		if (c >= 0xC2 && c <= 0xDF) {
			need = 1; cp = c & 0x1F; min = 0x80;
		} else if (c >= 0xE0 && c <= 0xEF) {
			need = 2; cp = c & 0x0F; min = 0x800;
		} else if (c >= 0xF0 && c <= 0xF4) {
			need = 3; cp = c & 0x07; min = 0x10000;
		} else {
			return false;
		}
		if (i + need >= len)
			return false;
		for (size_t j = 1; j <= need; j++) {
			unsigned b = s[i + j];
			if ((b & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (b & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ||
		    (cp >= 0x80 && cp <= 0x9F) || ref_invisible(cp))
			return false;
		i += need + 1;
	}
	return true;
}

/* Encodes code point CP as UTF-8 (no validity checks), returns the length. */
static size_t encode(char *out, uint32_t cp)
{
	unsigned char *o = (unsigned char *)out;
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	} else if (cp < 0x800) {
		o[0] = (unsigned char)(0xC0 | (cp >> 6));
		o[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	} else if (cp < 0x10000) {
		o[0] = (unsigned char)(0xE0 | (cp >> 12));
		o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (unsigned char)(0xF0 | (cp >> 18));
	o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

/* xorshift: deterministic, so a failure can be reproduced. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 11);
}

/* ---- text_clean: hand-written cases ----------------------------------- */

static void test_clean_ascii(void)
{
	CHECK_CLEAN("", "");
	CHECK_CLEAN("hello", "hello");
	CHECK_CLEAN("Hello, World! 123 ~{}|", "Hello, World! 123 ~{}|");

	/* every printable ASCII byte passes unchanged */
	char all[95];
	for (int i = 0; i < 95; i++)
		all[i] = (char)(0x20 + i);
	check_clean_at(__FILE__, __LINE__, all, sizeof(all), all, sizeof(all));

	/* the whole of the input is looked at, not just up to a NUL */
	CHECK_CLEAN("a\0b", "ab");
	/* and nothing beyond LEN */
	char buf[8];
	memcpy(buf, "abcdef", 6);
	check_clean_at(__FILE__, __LINE__, buf, 3, "abc", 3);
}

static void test_clean_controls(void)
{
	CHECK_CLEAN("a\tb", "a\tb");
	CHECK_CLEAN("\t", "\t");
	CHECK_CLEAN("\t\t x \t", "\t\t x \t");

	/* every C0 control but TAB is removed, anywhere in the line */
	for (int c = 0; c < 0x20; c++) {
		if (c == '\t')
			continue;
		char in[5] = { 'a', (char)c, 'b', (char)c, 'c' };
		check_clean_at(__FILE__, __LINE__, in, sizeof(in), "abc", 3);
		char alone[1] = { (char)c };
		check_clean_at(__FILE__, __LINE__, alone, 1, "", 0);
	}
	CHECK_CLEAN("one\rtwo", "onetwo");
	CHECK_CLEAN("bell\a", "bell");
	CHECK_CLEAN("\x1b", "");
	CHECK_CLEAN("x\x1by", "xy");
	CHECK_CLEAN("\n\r\v\f\b", "");

	/* DEL */
	CHECK_CLEAN("\x7f", "");
	CHECK_CLEAN("de\x7fl", "del");

	/* C1: U+0080..U+009F as C2 80..C2 9F */
	for (int c = 0x80; c <= 0x9F; c++) {
		char in[4] = { 'a', (char)0xC2, (char)c, 'b' };
		check_clean_at(__FILE__, __LINE__, in, sizeof(in), "ab", 2);
	}
	CHECK_CLEAN("\xC2\x9B" "31m", "31m");  /* CSI */
	CHECK_CLEAN("\xC2\x9D" "0;t\xC2\x9C", "0;t");  /* OSC ... ST */
	/* U+00A0 (just after C1) and U+007E (just before DEL) are kept */
	CHECK_CLEAN("\xC2\xA0", "\xC2\xA0");
	CHECK_CLEAN("~", "~");
	/* a raw C1 byte is no UTF-8: U+FFFD, not silently dropped */
	CHECK_CLEAN("\x85", FFFD);
	CHECK_CLEAN("\x9b" "31m", FFFD "31m");

	/* terminal escape sequences lose their ESC/BEL and become harmless text */
	CHECK_CLEAN("\x1b[31mred\x1b[0m", "[31mred[0m");
	CHECK_CLEAN("\x1b]0;title\x07", "]0;title");
	CHECK_CLEAN("\x1b]0;title\x1b\\", "]0;title\\");
	CHECK_CLEAN("\x1b[2J\x1b[H", "[2J[H");
}

static void test_clean_valid_utf8(void)
{
	CHECK_CLEAN("caf\xC3\xA9", "caf\xC3\xA9");                   /* é */
	CHECK_CLEAN("\xE2\x82\xAC 5", "\xE2\x82\xAC 5");             /* € */
	CHECK_CLEAN("\xF0\x9F\x98\x80!", "\xF0\x9F\x98\x80!");       /* 😀 */
	CHECK_CLEAN("\xF4\x8F\xBF\xBF", "\xF4\x8F\xBF\xBF");         /* U+10FFFF */
	CHECK_CLEAN("\xC2\xA9\xDF\xBF", "\xC2\xA9\xDF\xBF");         /* U+00A9, U+07FF */
	CHECK_CLEAN("\xE0\xA0\x80", "\xE0\xA0\x80");                 /* U+0800 */
	CHECK_CLEAN("\xED\x9F\xBF", "\xED\x9F\xBF");                 /* U+D7FF */
	CHECK_CLEAN("\xEE\x80\x80", "\xEE\x80\x80");                 /* U+E000 */
	CHECK_CLEAN("\xEF\xBF\xBD", "\xEF\xBF\xBD");                 /* U+FFFD itself */
	CHECK_CLEAN("\xEF\xBF\xBF", "\xEF\xBF\xBF");                 /* U+FFFF */
	CHECK_CLEAN("\xF0\x90\x80\x80", "\xF0\x90\x80\x80");         /* U+10000 */
	CHECK_CLEAN("\xF3\xBF\xBF\xBF", "\xF3\xBF\xBF\xBF");         /* U+FFFFF */
	CHECK_CLEAN("\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82",
		    "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82");  /* Привет */
	CHECK_CLEAN("\xE6\x97\xA5\xE6\x9C\xAC", "\xE6\x97\xA5\xE6\x9C\xAC");  /* 日本 */
}

static void test_clean_invalid_utf8(void)
{
	/* lone continuation bytes: one U+FFFD each */
	CHECK_CLEAN("\x80", FFFD);
	CHECK_CLEAN("\xBF", FFFD);
	CHECK_CLEAN("a\x80z", "a" FFFD "z");
	CHECK_CLEAN("\x80\x80", FFFD FFFD);
	CHECK_CLEAN("\xC3\xA9\xA9", "\xC3\xA9" FFFD);  /* one too many */

	/* overlong forms: the lead byte can never start a valid sequence (C0,
	 * C1) or its second byte is out of range (E0 80..9F, F0 80..8F) */
	CHECK_CLEAN("\xC0\xAF", FFFD FFFD);
	CHECK_CLEAN("\xC1\xBF", FFFD FFFD);
	CHECK_CLEAN("\xC0\x80", FFFD FFFD);                 /* "modified UTF-8" NUL */
	CHECK_CLEAN("\xE0\x80\xAF", FFFD FFFD FFFD);
	CHECK_CLEAN("\xE0\x9F\xBF", FFFD FFFD FFFD);
	CHECK_CLEAN("\xF0\x80\x80\xAF", FFFD FFFD FFFD FFFD);
	CHECK_CLEAN("\xF0\x8F\xBF\xBF", FFFD FFFD FFFD FFFD);

	/* surrogates */
	CHECK_CLEAN("\xED\xA0\x80", FFFD FFFD FFFD);
	CHECK_CLEAN("\xED\xBF\xBF", FFFD FFFD FFFD);
	CHECK_CLEAN("\xED\xA0\xBD\xED\xB8\x80", FFFD FFFD FFFD FFFD FFFD FFFD);  /* CESU-8 😀 */

	/* beyond U+10FFFF */
	CHECK_CLEAN("\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD);
	CHECK_CLEAN("\xF5\x80\x80\x80", FFFD FFFD FFFD FFFD);
	CHECK_CLEAN("\xF7\xBF\xBF\xBF", FFFD FFFD FFFD FFFD);
	CHECK_CLEAN("\xF8\x88\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD);  /* old 5-byte form */

	/* bytes that never appear in UTF-8 */
	CHECK_CLEAN("\xFE", FFFD);
	CHECK_CLEAN("\xFF", FFFD);
	CHECK_CLEAN("\xFE\xFF", FFFD FFFD);
	CHECK_CLEAN("a\xFF" "b", "a" FFFD "b");

	/* truncated at the end: one U+FFFD for the valid prefix */
	CHECK_CLEAN("\xC3", FFFD);
	CHECK_CLEAN("\xE2", FFFD);
	CHECK_CLEAN("\xE2\x82", FFFD);
	CHECK_CLEAN("x\xE2\x82", "x" FFFD);
	CHECK_CLEAN("\xF0\x9F", FFFD);
	CHECK_CLEAN("\xF0\x9F\x98", FFFD);

	/* truncated in the middle: the byte that breaks the sequence is not
	 * eaten, it is looked at again on its own */
	CHECK_CLEAN("\xE2\x82" "A", FFFD "A");
	CHECK_CLEAN("\xC3" "A", FFFD "A");
	CHECK_CLEAN("\xF0\x9F\x98" "A", FFFD "A");
	CHECK_CLEAN("\xF0\x9F" " ok", FFFD " ok");
	CHECK_CLEAN("\xE2\x82\t", FFFD "\t");
	CHECK_CLEAN("\xE2\x82\x1b[1m", FFFD "[1m");        /* and ESC still removed */
	CHECK_CLEAN("\xE2\x82\xE2\x82\xAC", FFFD "\xE2\x82\xAC");  /* € after a cut one */
	CHECK_CLEAN("\xC3\xC3\xA9", FFFD "\xC3\xA9");
	CHECK_CLEAN("\xF0\x9F\x98\xF0\x9F\x98\x80", FFFD "\xF0\x9F\x98\x80");
	CHECK_CLEAN("\xE2\xFF", FFFD FFFD);
	CHECK_CLEAN("\xE2\x82\xC0", FFFD FFFD);
	CHECK_CLEAN("\xC2\xC2\x80", FFFD);                 /* cut lead, then C1 */

	/* a mixed line */
	CHECK_CLEAN("ok \xC3\xA9 \x80 \xE2\x82\xAC \xED\xA0\x80 \x1b[0m end",
		    "ok \xC3\xA9 " FFFD " \xE2\x82\xAC " FFFD FFFD FFFD " [0m end");
}

static void test_clean_worst_case(void)
{
	/* every byte an invalid sequence: output exactly TEXT_CLEAN_MAX(len) */
	static const unsigned char bad[] = { 0x80, 0xBF, 0xC0, 0xC1, 0xF5, 0xF8, 0xFE, 0xFF };
	for (size_t b = 0; b < sizeof(bad); b++) {
		for (size_t len = 1; len <= 64; len *= 2) {
			char in[64], want[64 * 3];
			memset(in, bad[b], len);
			for (size_t i = 0; i < len; i++)
				memcpy(want + 3 * i, FFFD, 3);
			check_clean_at(__FILE__, __LINE__, in, len, want, 3 * len);
		}
	}
	/* alternating cut leads */
	{
		char in[60], want[180];
		for (size_t i = 0; i < sizeof(in); i++) {
			in[i] = (char)(i % 2 ? 0xE2 : 0xC3);
			memcpy(want + 3 * i, FFFD, 3);
		}
		check_clean_at(__FILE__, __LINE__, in, sizeof(in), want, sizeof(want));
	}
	/* a long line with growth */
	{
		size_t len = 100000;
		char *in = malloc(len), *want = malloc(3 * len);
		if (!in || !want)
			abort();
		for (size_t i = 0; i < len; i++) {
			in[i] = (char)0xFF;
			memcpy(want + 3 * i, FFFD, 3);
		}
		check_clean_at(__FILE__, __LINE__, in, len, want, 3 * len);
		free(in);
		free(want);
	}
}

/* U+202E and friends: a terminal that implements BiDi shows the text after
 * them reordered, so what others read is not what was sent; zero-width
 * characters and tags hide text or make two strings look alike. */
static void test_clean_invisible(void)
{
	static const struct {
		uint32_t first, last;
	} removed[] = {
		{ 0x200B, 0x200F },   /* ZWSP, ZWNJ, ZWJ, LRM, RLM */
		{ 0x2028, 0x2029 },   /* line and paragraph separators */
		{ 0x202A, 0x202E },   /* LRE, RLE, PDF, LRO, RLO */
		{ 0x2066, 0x2069 },   /* LRI, RLI, FSI, PDI */
		{ 0xFEFF, 0xFEFF },   /* ZERO WIDTH NO-BREAK SPACE (BOM) */
		{ 0xE0000, 0xE007F }, /* tags */
	};
	/* the neighbours just outside, none of them in another range */
	static const uint32_t kept[] = {
		0x200A, 0x2010, 0x2027, 0x202F, 0x2065, 0x206A, 0xFEFE, 0xFF00, 0xDFFFF, 0xE0080,
	};
	char in[8], want[8];

	for (size_t i = 0; i < sizeof(removed) / sizeof(removed[0]); i++) {
		uint32_t edges[2] = { removed[i].first, removed[i].last };
		for (int e = 0; e < 2; e++) {
			in[0] = 'a';
			size_t n = 1 + encode(in + 1, edges[e]);
			in[n++] = 'b';
			check_clean_at(__FILE__, __LINE__, in, n, "ab", 2);
			check_clean_at(__FILE__, __LINE__, in + 1, n - 2, "", 0);
		}
	}
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		in[0] = 'a';
		size_t n = 1 + encode(in + 1, kept[i]);
		in[n++] = 'b';
		memcpy(want, in, n);
		check_clean_at(__FILE__, __LINE__, in, n, want, n);
	}

	/* the line of the issue, and the classic spoof of a file name */
	CHECK_CLEAN("abc\xE2\x80\xAE" "def\xE2\x81\xA6x\xE2\x80\x8By\xEF\xBB\xBFz\xF3\xA0\x81\x81",
		    "abcdefxyz");
	CHECK_CLEAN("invoice_\xE2\x80\xAE" "fdp.exe", "invoice_fdp.exe");
	/* removing one does not join what was around it into something else */
	CHECK_CLEAN("\xE2\x80\xE2\x80\x8B\x8B", FFFD FFFD);
	CHECK_CLEAN("\xE2\xE2\x80\xAE\x80\xAE", FFFD FFFD FFFD);
	/* truncated, they are invalid UTF-8 like any other cut sequence */
	CHECK_CLEAN("\xE2\x80", FFFD);
	CHECK_CLEAN("\xF3\xA0\x81", FFFD);

	/* a line of nothing else cleans to nothing, so it is blank and the
	 * server does not relay it, as for a line of controls */
	static const char only[] = "\xE2\x80\x8B\xE2\x80\xAE\xEF\xBB\xBF\xE2\x80\xA8\xF3\xA0\x80\x81";
	CHECK_CLEAN(only, "");
	CHECK_CLEAN(" \xE2\x80\x8B\t\xE2\x80\x8F ", " \t ");
	char out[TEXT_CLEAN_MAX(sizeof(only))];
	CHECK(text_is_blank(out, text_clean(out, only, sizeof(only) - 1)));
}

/* ---- text_clean: exhaustive and random --------------------------------- */

static void test_clean_every_code_point(void)
{
	/* each scalar value, encoded alone and between ASCII: kept unless a
	 * control or invisible; the encoding of surrogates (not scalar values)
	 * is 3 bad bytes */
	int failures = 0;
	char in[8], dst[3 * 8], want[32];
	for (uint32_t cp = 0; cp <= 0x10FFFF && failures < 10; cp++) {
		in[0] = '<';
		size_t n = 1 + encode(in + 1, cp);
		in[n++] = '>';
		size_t want_len;
		want[0] = '<';
		if ((cp == '\t' || (cp >= 0x20 && cp < 0x7F) || cp >= 0xA0) && !ref_invisible(cp)) {
			memcpy(want + 1, in + 1, n - 2);
			want_len = n - 1;
		} else {
			want_len = 1;
		}
		if (cp >= 0xD800 && cp <= 0xDFFF) {
			memcpy(want + 1, FFFD FFFD FFFD, 9);
			want_len = 10;
		}
		want[want_len++] = '>';
		size_t got = text_clean(dst, in, n);
		if (got != want_len || memcmp(dst, want, want_len) != 0) {
			failures++;
			report_mismatch(__FILE__, __LINE__, "text_clean", in, n, dst,
					got > sizeof(dst) ? sizeof(dst) : got, want, want_len);
		}
	}
	unit_checks++;
	if (failures)
		unit_failures++;
}

static void test_clean_exhaustive_short(void)
{
	char in[3];
	/* all 1- and 2-byte inputs */
	for (int a = 0; a < 256; a++) {
		in[0] = (char)a;
		check_against_ref(__FILE__, __LINE__, in, 1);
	}
	int before = unit_failures;
	for (int a = 0; a < 256 && unit_failures - before < 10; a++) {
		for (int b = 0; b < 256; b++) {
			in[0] = (char)a;
			in[1] = (char)b;
			check_against_ref(__FILE__, __LINE__, in, 2);
		}
	}
	/* 3-byte inputs starting with a multi-byte lead, with the interesting
	 * values for the other two bytes */
	static const unsigned char pick[] = {
		0x00, 0x09, 0x1B, 'A', 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF,
		0xC0, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF,
	};
	for (int a = 0xC0; a < 256; a++)
		for (size_t b = 0; b < sizeof(pick); b++)
			for (size_t c = 0; c < sizeof(pick); c++) {
				in[0] = (char)a;
				in[1] = (char)pick[b];
				in[2] = (char)pick[c];
				check_against_ref(__FILE__, __LINE__, in, 3);
			}
}

static void test_clean_random(void)
{
	/* random lines drawn mostly from bytes that matter to the decoder */
	static const unsigned char alphabet[] = {
		0x00, 0x07, 0x09, 0x0A, 0x0D, 0x1B, ' ', 'a', '[', 0x7E, 0x7F,
		0x80, 0x85, 0x8F, 0x90, 0x9B, 0x9F, 0xA0, 0xAF, 0xBF,
		0xC0, 0xC1, 0xC2, 0xC3, 0xDF, 0xE0, 0xE1, 0xE2, 0xEC, 0xED, 0xEE, 0xEF,
		0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF7, 0xF8, 0xFE, 0xFF,
		/* second and third bytes of U+200B, U+202E, U+2066, U+FEFF, tags */
		0x81, 0x8B, 0xA6, 0xAE, 0xBB,
	};
	char in[48];
	int before = unit_failures;
	for (int iter = 0; iter < 100000 && unit_failures - before < 10; iter++) {
		size_t len = rng() % sizeof(in);
		for (size_t i = 0; i < len; i++) {
			uint32_t r = rng();
			in[i] = (char)(r & 0x100 ? (r & 0xFF) : alphabet[(r & 0xFF) % sizeof(alphabet)]);
		}
		check_against_ref(__FILE__, __LINE__, in, len);
	}
}

static void test_clean_properties(void)
{
	/* the output is clean, and cleaning it again changes nothing */
	char in[64], once[3 * 64], twice[3 * 3 * 64];
	int bad_output = 0, not_idempotent = 0;
	for (int iter = 0; iter < 20000; iter++) {
		size_t len = rng() % sizeof(in);
		for (size_t i = 0; i < len; i++)
			in[i] = (char)rng();
		size_t n1 = text_clean(once, in, len);
		if (n1 > TEXT_CLEAN_MAX(len) || !clean_output_ok((unsigned char *)once, n1)) {
			if (bad_output++ < 5) {
				fprintf(stderr, "%s:%d: text_clean(\"", __FILE__, __LINE__);
				unit_print_bytes(in, len);
				fprintf(stderr, "\") gave unclean output\n");
			}
			continue;
		}
		size_t n2 = text_clean(twice, once, n1);
		if (n2 != n1 || memcmp(once, twice, n1) != 0) {
			if (not_idempotent++ < 5)
				report_mismatch(__FILE__, __LINE__, "text_clean", once, n1, twice, n2, once, n1);
		}
	}
	CHECK_INT(bad_output, 0);
	CHECK_INT(not_idempotent, 0);
}

/* ---- text_is_blank ---------------------------------------------------- */

#define BLANK(s) text_is_blank((s), sizeof(s) - 1)

static void test_is_blank(void)
{
	CHECK(BLANK(""));
	CHECK(text_is_blank("x", 0));
	CHECK(BLANK(" "));
	CHECK(BLANK("\t"));
	CHECK(BLANK("   \t  \t"));
	CHECK(!BLANK("x"));
	CHECK(!BLANK("  x  "));
	CHECK(!BLANK(" \tx"));
	CHECK(!BLANK("x\t "));
	CHECK(!BLANK("\r"));
	CHECK(!BLANK(" \n"));
	CHECK(!BLANK("\v"));
	CHECK(!BLANK("\f"));
	CHECK(!BLANK("\0"));
	CHECK(!BLANK("\xC2\xA0"));  /* NBSP is not a space here */
	CHECK(!BLANK("\xFF"));
	/* only LEN bytes are looked at */
	CHECK(text_is_blank("  x", 2));
	CHECK(!text_is_blank("  x", 3));
}

/* ---- text_is_valid_name ----------------------------------------------- */

#define NAME(s) text_is_valid_name((s), sizeof(s) - 1)

static void test_is_valid_name(void)
{
	CHECK(NAME("a"));
	CHECK(NAME("Z"));
	CHECK(NAME("alice"));
	CHECK(NAME("Alice"));
	CHECK(NAME("a-b_c9"));
	CHECK(NAME("guest1"));
	CHECK(NAME("x-"));
	CHECK(NAME("x_"));
	CHECK(NAME("ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
	CHECK(NAME("abcdefghijklmnopqrstuvwxyz"));
	CHECK(NAME("a0123456789"));

	CHECK(!NAME(""));
	CHECK(!text_is_valid_name("alice", 0));
	CHECK(!NAME("1abc"));
	CHECK(!NAME("9"));
	CHECK(!NAME("_a"));
	CHECK(!NAME("-a"));
	CHECK(!NAME("_"));
	CHECK(!NAME("a b"));
	CHECK(!NAME(" a"));
	CHECK(!NAME("a "));
	CHECK(!NAME("a\t"));
	CHECK(!NAME("a.b"));
	CHECK(!NAME("a/b"));
	CHECK(!NAME("a!"));
	CHECK(!NAME("a@b"));
	CHECK(!NAME("a\nb"));
	CHECK(!NAME("a\0b"));
	CHECK(!NAME("caf\xC3\xA9"));
	CHECK(!NAME("\xC3\xA9t\xC3\xA9"));
	CHECK(!NAME("a\x80"));
	CHECK(!NAME("a\xFF"));
	/* invisible and direction-changing characters: two nicks that look
	 * the same, or one shown reversed */
	CHECK(!NAME("al\xE2\x80\xAEice"));   /* U+202E */
	CHECK(!NAME("alice\xE2\x80\x8B"));   /* U+200B */
	CHECK(!NAME("\xE2\x80\x8B" "alice"));
	CHECK(!NAME("\xE2\x80\xAE"));
	CHECK(!NAME("bob\xEF\xBB\xBF"));      /* U+FEFF */
	CHECK(!NAME("bob\xF3\xA0\x81\x81")); /* U+E0041 */

	/* every byte outside the allowed set, as first and as later char */
	for (int c = 0; c < 256; c++) {
		bool letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
		bool later = letter || (c >= '0' && c <= '9') || c == '_' || c == '-';
		char first[1] = { (char)c };
		char second[2] = { 'a', (char)c };
		CHECK_INT(text_is_valid_name(first, 1), letter);
		CHECK_INT(text_is_valid_name(second, 2), later);
	}

	/* length limits */
	char name[10240];
	memset(name, 'a', sizeof(name));
	CHECK_INT(NAME_MAX_LEN, 32);
	CHECK(text_is_valid_name(name, 1));
	CHECK(text_is_valid_name(name, 31));
	CHECK(text_is_valid_name(name, 32));
	CHECK(!text_is_valid_name(name, 33));
	CHECK(!text_is_valid_name(name, 64));
	CHECK(!text_is_valid_name(name, sizeof(name)));
	CHECK(NAME("Abcdefghij-klmnopqrst_uvwxyz0123"));   /* 32 */
	CHECK(!NAME("Abcdefghij-klmnopqrst_uvwxyz01234")); /* 33 */

	/* only LEN bytes are looked at */
	CHECK(text_is_valid_name("bob!", 3));
	CHECK(!text_is_valid_name("bob!", 4));
}

int main(void)
{
	test_clean_ascii();
	test_clean_controls();
	test_clean_valid_utf8();
	test_clean_invalid_utf8();
	test_clean_worst_case();
	test_clean_invisible();
	test_clean_every_code_point();
	test_clean_exhaustive_short();
	test_clean_random();
	test_clean_properties();
	test_is_blank();
	test_is_valid_name();
	return unit_finish("test_text");
}
