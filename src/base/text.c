#include "autoconf.h"

#include "base/text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */

/* Code points that are invisible or change the direction of the text
 * around them, removed by text_clean, which chatd and chatc both clean
 * with. A terminal that implements BiDi shows what follows an embedding,
 * override or isolate reordered, so others read another text than was sent
 * ("invoice_<RLO>fdp.exe" as "invoice_exe.pdf"); the zero-width ones and
 * tags hide text or make two strings look alike, and where a terminal
 * breaks the line at a separator, what follows could pose as a line of
 * its own. */
static const struct {
	uint32_t first, last;
} invisible[] = {
	{ 0x200B, 0x200F },   /* zero width space, non-joiner, joiner; LRM, RLM */
	{ 0x2028, 0x2029 },   /* line and paragraph separators */
	{ 0x202A, 0x202E },   /* embeddings LRE, RLE, PDF; overrides LRO, RLO */
	{ 0x2066, 0x2069 },   /* isolates LRI, RLI, FSI, PDI */
	{ 0xFEFF, 0xFEFF },   /* zero width no-break space (BOM) */
	{ 0xE0000, 0xE007F }, /* tags: an invisible copy of ASCII */
};

static bool is_invisible(uint32_t cp)
{
	for (size_t i = 0; i < ARRAY_SIZE(invisible); i++)
		if (cp >= invisible[i].first && cp <= invisible[i].last)
			return true;
	return false;
}

/* Length of the valid UTF-8 sequence at s (at most len bytes), or, when
 * invalid, 0 with *ret_skip = bytes making up its maximal invalid subpart
 * (one U+FFFD each, as Unicode recommends). */
static size_t utf8_sequence(const unsigned char *s, size_t len, size_t *ret_skip)
{
	unsigned char c = s[0];
	size_t need;
	unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the 2nd byte */

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		need = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		need = 3;
		if (c == 0xE0)
			lo = 0xA0; /* overlong */
		else if (c == 0xED)
			hi = 0x9F; /* surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 4;
		if (c == 0xF0)
			lo = 0x90; /* overlong */
		else if (c == 0xF4)
			hi = 0x8F; /* beyond U+10FFFF */
	} else {
		*ret_skip = 1; /* C0, C1, F5..FF, stray continuation: never valid */
		return 0;
	}
	for (size_t i = 1; i < need; i++) {
		unsigned char min = i == 1 ? lo : 0x80, max = i == 1 ? hi : 0xBF;
		if (i >= len || s[i] < min || s[i] > max) {
			*ret_skip = i; /* the valid prefix counts as one error */
			return 0;
		}
	}
	return need;
}

/* The code point of the valid N-byte sequence at s (N >= 2). */
static uint32_t utf8_decode(const unsigned char *s, size_t n)
{
	uint32_t cp = s[0] & (0x7F >> n);
	for (size_t i = 1; i < n; i++)
		cp = (cp << 6) | (s[i] & 0x3F);
	return cp;
}

size_t text_utf8_length(const char *s, size_t len)
{
	size_t skip;
	return len ? utf8_sequence((const unsigned char *)s, len, &skip) : 0;
}

size_t text_utf8_valid(const char *s, size_t len)
{
	size_t i = 0, skip;
	while (i < len) {
		if ((unsigned char)s[i] < 0x80) {
			i++;
			continue;
		}
		size_t n = utf8_sequence((const unsigned char *)s + i, len - i, &skip);
		if (n == 0)
			break;
		i += n;
	}
	return i;
}

size_t text_utf8_fix(char *dst, const char *src, size_t len)
{
	size_t in = 0, out = 0;
	while (in < len) {
		size_t skip = 0, n = utf8_sequence((const unsigned char *)src + in, len - in, &skip);
		if (n == 0) {
			memcpy(dst + out, replacement, 3);
			out += 3;
			in += skip;
			continue;
		}
		memcpy(dst + out, src + in, n);
		out += n;
		in += n;
	}
	return out;
}

bool text_is_formatting(char c)
{
	switch (c) {
	case '\x01': /* CTCP */
	case '\x02': /* bold */
	case '\x03': /* colour */
	case '\x04': /* hex colour */
	case '\x0f': /* reset */
	case '\x11': /* monospace */
	case '\x16': /* reverse */
	case '\x1d': /* italic */
	case '\x1e': /* strikethrough */
	case '\x1f': /* underline */
		return true;
	default:
		return false;
	}
}

static size_t clean(char *dst, const char *src, size_t len, bool keep_formatting,
		    bool *ret_formatting)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t in = 0, out = 0;
	bool formatting = false;

	while (in < len) {
		unsigned char c = s[in];
		if (c >= 0x20 && c < 0x7F) {
			dst[out++] = (char)c;
			in++;
			continue;
		}
		if (c < 0x80) {
			if (c == '\t') {
				dst[out++] = (char)c;
			} else if (keep_formatting && text_is_formatting((char)c)) {
				dst[out++] = (char)c;
				formatting = true;
			}
			in++; /* other C0 controls and DEL */
			continue;
		}
		size_t skip = 0, n = utf8_sequence(s + in, len - in, &skip);
		if (n == 0) {
			memcpy(dst + out, replacement, 3);
			out += 3;
			in += skip;
			continue;
		}
		uint32_t cp = utf8_decode(s + in, n);
		if (cp <= 0x9F || is_invisible(cp)) {
			in += n; /* C1 control (U+0080..U+009F), or invisible */
			continue;
		}
		memcpy(dst + out, s + in, n);
		out += n;
		in += n;
	}
	if (ret_formatting)
		*ret_formatting = formatting;
	return out;
}

size_t text_clean(char *dst, const char *src, size_t len)
{
	return clean(dst, src, len, false, NULL);
}

size_t text_clean_chat(char *dst, const char *src, size_t len)
{
	return clean(dst, src, len, true, NULL);
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The colour code's arguments after s[i] (\x03: "N[N][,N[N]]"; \x04:
 * "RRGGBB[,RRGGBB]"): how many bytes they take. */
static size_t colour_args(const char *s, size_t len, size_t i, bool hex)
{
	size_t j = i, max = hex ? 6 : 2, k;
	for (k = 0; k < max && j < len && (hex ? is_hex(s[j]) : is_digit(s[j])); k++)
		j++;
	if (k == 0 || (hex && k < 6))
		return hex ? 0 : j - i;
	if (j + 1 < len && s[j] == ',' && (hex ? is_hex(s[j + 1]) : is_digit(s[j + 1]))) {
		size_t m = j + 1;
		for (k = 0; k < max && m < len && (hex ? is_hex(s[m]) : is_digit(s[m])); k++)
			m++;
		if (!hex || k == 6)
			j = m;
	}
	return j - i;
}

size_t text_strip_formatting(char *dst, const char *src, size_t len)
{
	size_t out = 0;

	for (size_t i = 0; i < len; i++) {
		char c = src[i];
		if (!text_is_formatting(c)) {
			dst[out++] = c;
			continue;
		}
		if (c == '\x03' || c == '\x04')
			i += colour_args(src, len, i + 1, c == '\x04');
	}
	return out;
}

bool text_has_formatting(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 && text_is_formatting(s[i]))
			return true;
	return false;
}

bool text_is_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return false;
	return true;
}

static bool is_letter(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool text_is_valid_name(const char *s, size_t len)
{
	if (len == 0 || len > NAME_MAX_LEN || !is_letter(s[0]))
		return false;
	for (size_t i = 1; i < len; i++) {
		char c = s[i];
		if (!is_letter(c) && !(c >= '0' && c <= '9') && c != '_' && c != '-')
			return false;
	}
	return true;
}

void text_buf_clean(struct text_buf *b, const char *src, size_t len)
{
	b->text = TEXT_CLEAN_MAX(len) <= sizeof(b->stack) ? b->stack : xmalloc(TEXT_CLEAN_MAX(len));
	b->len = text_clean(b->text, src, len);
	b->formatting = false;
}

void text_buf_clean_chat(struct text_buf *b, const char *src, size_t len)
{
	b->text = TEXT_CLEAN_MAX(len) <= sizeof(b->stack) ? b->stack : xmalloc(TEXT_CLEAN_MAX(len));
	b->len = clean(b->text, src, len, true, &b->formatting);
}

bool text_buf_blank(const struct text_buf *b)
{
	for (size_t i = 0; i < b->len; i++)
		if (b->text[i] != ' ' && b->text[i] != '\t' && !text_is_formatting(b->text[i]))
			return false;
	return true;
}

void text_buf_free(struct text_buf *b)
{
	if (b->text != b->stack)
		free(b->text);
}

size_t text_utf8_prefix(const char *s, size_t len, size_t max)
{
	size_t i = 0;

	if (len <= max)
		return len;
	while (i < len) {
		size_t n = text_utf8_length(s + i, len - i);
		if (n == 0)
			n = 1;
		if (i + n > max)
			break;
		i += n;
	}
	return i;
}
