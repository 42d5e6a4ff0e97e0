#include "autoconf.h"

#include "text.h"

#include <string.h>

static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */

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

size_t text_utf8_length(const char *s, size_t len)
{
	size_t skip;
	return len ? utf8_sequence((const unsigned char *)s, len, &skip) : 0;
}

size_t text_clean(char *dst, const char *src, size_t len)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t in = 0, out = 0;

	while (in < len) {
		unsigned char c = s[in];
		if (c >= 0x20 && c < 0x7F) {
			dst[out++] = (char)c;
			in++;
			continue;
		}
		if (c < 0x80) {
			if (c == '\t')
				dst[out++] = '\t';
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
		if (n == 2 && c == 0xC2 && s[in + 1] < 0xA0) {
			in += 2; /* C1 control U+0080..U+009F */
			continue;
		}
		memcpy(dst + out, s + in, n);
		out += n;
		in += n;
	}
	return out;
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
