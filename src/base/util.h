/* Small helpers every file may use: allocation that never returns NULL,
 * and a few string helpers. */
#ifndef CHATD_UTIL_H
#define CHATD_UTIL_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define NORETURN __attribute__((noreturn))

/* Out of memory is not a condition a chat server can recover from in a
 * useful way; these print a message and abort instead of returning NULL. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
/* Grows P (with *CAP bytes) to hold at least NEED, doubling from INITIAL;
 * returns the buffer, *CAP updated. */
void *xgrow(void *p, size_t *cap, size_t need, size_t initial);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* Case-insensitive ASCII comparison, as nick and room names are ASCII. */
bool ascii_equal_nocase(const char *a, const char *b);
void ascii_lower(char *dst, const char *src, size_t dst_size);

/* Joins the strings up to a NULL into DST (SIZE bytes, cut to fit,
 * NUL-terminated); returns the length. For hot paths, without printf. */
size_t str_join(char *dst, size_t size, ...);

/* The address part of a peer "1.2.3.4:5" or "[::1]:5", as a host name
 * (IRC's user@host): "0::1" for "::1", since a leading ':' would start an
 * IRC parameter. */
void peer_host(const char *peer, char *ret, size_t size);

/* FNV-1a over LEN bytes, for the hash tables. */
size_t hash_bytes(const void *data, size_t len);

/* Parses a whole decimal number into *ret; false on junk, sign or overflow. */
bool parse_long(const char *s, long *ret);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t monotonic_ms(void);
/* The wall clock in ms since the epoch, to a few ms (the coarse clock,
 * which costs next to nothing). */
int64_t wall_clock_ms(void);
uint64_t monotonic_ns(void);

/* FILE in chatd's runtime folder: $RUNTIME_DIRECTORY (systemd's
 * RuntimeDirectory=), else /run/chatd for root, else
 * $XDG_RUNTIME_DIR/chatd (malloc'd); NULL when none of those is known. */
char *runtime_path(const char *file);

#endif
