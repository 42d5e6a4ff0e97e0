#include "autoconf.h"

#include "base/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static NORETURN void out_of_memory(size_t size)
{
	fprintf(stderr, "chatd: out of memory (allocating %zu bytes)\n", size);
	abort();
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (!p)
		out_of_memory(size);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		out_of_memory(n * size);
	return p;
}

void *xrealloc(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);
	if (!q)
		out_of_memory(size);
	return q;
}

void *xgrow(void *p, size_t *cap, size_t need, size_t initial)
{
	if (need <= *cap)
		return p;
	size_t n = *cap ? *cap : initial;
	while (n < need)
		n *= 2;
	*cap = n;
	return xrealloc(p, n);
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		out_of_memory(strlen(fmt));
	return s;
}

bool ascii_equal_nocase(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

void ascii_lower(char *dst, const char *src, size_t dst_size)
{
	size_t i;

	if (dst_size == 0)
		return;
	for (i = 0; src[i] && i + 1 < dst_size; i++)
		dst[i] = (src[i] >= 'A' && src[i] <= 'Z') ? (char)(src[i] - 'A' + 'a') : src[i];
	dst[i] = '\0';
}

size_t hash_bytes(const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t h = 14695981039346656037ULL;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

bool parse_long(const char *s, long *ret)
{
	char *end;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return false;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end)
		return false;
	*ret = v;
	return true;
}

uint64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int64_t wall_clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

char *runtime_path(const char *file)
{
	/* systemd may give several folders, separated by colons: the first. */
	const char *dir = getenv("RUNTIME_DIRECTORY");
	if (dir && *dir == '/')
		return xasprintf("%.*s/%s", (int)strcspn(dir, ":"), dir, file);
	if (geteuid() == 0)
		return xasprintf("/run/chatd/%s", file);
	dir = getenv("XDG_RUNTIME_DIR");
	if (dir && *dir == '/')
		return xasprintf("%s/chatd/%s", dir, file);
	return NULL;
}

void peer_host(const char *peer, char *ret, size_t size)
{
	const char *start = peer, *end = strrchr(peer, ':');
	size_t at = 0;

	if (size == 0)
		return;
	if (peer[0] == '[') {
		start = peer + 1;
		end = strchr(start, ']');
	}
	size_t len = end && end > start ? (size_t)(end - start) : strlen(start);
	if (start[0] == ':' && size > 1)
		ret[at++] = '0';
	if (len > size - 1 - at)
		len = size - 1 - at;
	memcpy(ret + at, start, len);
	ret[at + len] = '\0';
}

size_t str_join(char *dst, size_t size, ...)
{
	va_list ap;
	size_t n = 0;

	if (size == 0)
		return 0;
	va_start(ap, size);
	for (const char *p; (p = va_arg(ap, const char *));) {
		size_t len = strlen(p);
		if (len > size - 1 - n)
			len = size - 1 - n;
		memcpy(dst + n, p, len);
		n += len;
	}
	va_end(ap);
	dst[n] = '\0';
	return n;
}
