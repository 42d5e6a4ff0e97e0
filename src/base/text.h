/* Text rules of the protocol: cleaning what clients send before anyone sees
 * it, and the shape of nick and room names. Pure functions, no state. */
#ifndef CHATD_TEXT_H
#define CHATD_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#define NAME_MAX_LEN 32

/* Worst case growth of text_clean(): every byte an invalid sequence that
 * becomes the 3-byte U+FFFD. */
#define TEXT_CLEAN_MAX(len) ((len) * 3)

/* Copies src to dst (room for TEXT_CLEAN_MAX(len) bytes) without control
 * characters (C0 but TAB, DEL, and C1 U+0080..U+009F), without invisible
 * and direction-changing code points (U+200B..U+200F, U+2028, U+2029,
 * U+202A..U+202E, U+2066..U+2069, U+FEFF, tags U+E0000..U+E007F: see
 * text.c), and with each invalid UTF-8 sequence (stray continuation,
 * overlong form, surrogate, beyond U+10FFFF, truncated) replaced by U+FFFD.
 * What is removed leaves nothing behind, so a line of only such characters
 * cleans to nothing. Returns the bytes written; dst is not NUL-terminated. */
size_t text_clean(char *dst, const char *src, size_t len);

/* As text_clean, but IRC's formatting bytes stay (CTCP's \x01, bold,
 * colours, italic, ...: see text_is_formatting): what users say to each
 * other, which IRC clients show formatted and line clients read with
 * text_strip_formatting() applied. */
size_t text_clean_chat(char *dst, const char *src, size_t len);

/* Whether C is one of IRC's formatting bytes: \x01 (CTCP), \x02 bold,
 * \x03 colour, \x04 hex colour, \x0f reset, \x11 monospace, \x16
 * reverse, \x1d italic, \x1e strikethrough, \x1f underline. */
bool text_is_formatting(char c);
bool text_has_formatting(const char *s, size_t len);

/* Copies SRC to DST (room for LEN) without formatting bytes and the
 * colour numbers after \x03 and \x04. Returns the bytes written. */
size_t text_strip_formatting(char *dst, const char *src, size_t len);

/* Client text cleaned into a buffer of its own: on the stack for a line of
 * up to a few KiB, else allocated. */
struct text_buf {
	char *text;
	size_t len;
	bool formatting;   /* IRC formatting was kept (text_buf_clean_chat) */
	char stack[8192];
};

void text_buf_clean(struct text_buf *b, const char *src, size_t len);
void text_buf_clean_chat(struct text_buf *b, const char *src, size_t len);
/* Nothing but spaces, tabs and formatting bytes (or nothing) was left. */
bool text_buf_blank(const struct text_buf *b);
void text_buf_free(struct text_buf *b);

/* The length of the valid UTF-8 sequence at s (at most len bytes), or 0
 * when the bytes there are not one. */
size_t text_utf8_length(const char *s, size_t len);

/* The length of the longest start of S (LEN bytes) that is valid UTF-8:
 * LEN when all of it is. */
size_t text_utf8_valid(const char *s, size_t len);

/* SRC with each invalid UTF-8 sequence replaced by U+FFFD, and nothing
 * else changed, into DST (room for 3 * LEN bytes); returns its length. */
size_t text_utf8_fix(char *dst, const char *src, size_t len);

/* The longest start of S (LEN bytes of valid UTF-8, as cleaned) of at
 * most MAX bytes that ends between two characters. */
size_t text_utf8_prefix(const char *s, size_t len, size_t max);

/* True when the bytes are only spaces and tabs (or there are none). */
bool text_is_blank(const char *s, size_t len);

/* Nick and room names: 1..NAME_MAX_LEN of A-Z a-z 0-9 _ -, first a letter. */
bool text_is_valid_name(const char *s, size_t len);

#endif
