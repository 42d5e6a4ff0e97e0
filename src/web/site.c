#include "autoconf.h"

#include "web/site.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/util.h"
#include "web/http.h"

struct site {
	atomic_uint refs;
	char *root;
	size_t count;
	struct site_file files[SITE_FILES_MAX];
};

static const struct {
	const char *ext;
	const char *type;
} types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".json", "application/json" },
	{ ".webmanifest", "application/manifest+json" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ ".ico", "image/x-icon" },
	{ ".txt", "text/plain; charset=utf-8" },
};

static const char *type_of(const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		size_t e = strlen(types[i].ext);
		if (n > e && strcmp(name + n - e, types[i].ext) == 0)
			return types[i].type;
	}
	return "application/octet-stream";
}

/* Names served: letters, digits, '.', '-' and '_', not starting with '.'. */
static bool name_ok(const char *name)
{
	if (!name[0] || name[0] == '.' || strlen(name) >= sizeof(((struct site_file *)0)->name))
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '-' || *p == '_'))
			return false;
	return true;
}

/* The file NAME of the folder DIRFD, whole, into *RET (the caller's to
 * free); -errno, or -EFBIG. 0 with *RET NULL: not a regular file. */
static int read_file(int dirfd, const char *name, char **ret, size_t *ret_len)
{
	*ret = NULL;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return errno == ELOOP ? 0 : -errno; /* a symlink is not served */
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int err = errno;
		close(fd);
		return -err;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return 0;
	}
	if (st.st_size > SITE_FILE_MAX) {
		close(fd);
		return -EFBIG;
	}
	size_t size = (size_t)st.st_size, got = 0;
	char *buf = xmalloc(size ? size : 1);
	while (got < size) {
		ssize_t n = read(fd, buf + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? errno : EIO;
			free(buf);
			close(fd);
			return -err;
		}
		got += (size_t)n;
	}
	close(fd);
	*ret = buf;
	*ret_len = size;
	return 0;
}

static void make_file(struct site_file *f, const char *name, const char *body, size_t len)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	snprintf(f->name, sizeof(f->name), "%s", name);
	if (EVP_Digest(body, len, digest, &dlen, EVP_sha256(), NULL) != 1 || dlen < 8)
		memset(digest, 0, 8);
	snprintf(f->etag, sizeof(f->etag), "\"%02x%02x%02x%02x%02x%02x%02x%02x\"", digest[0],
		 digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7]);

	/* Always asked again (no-cache), answered 304 while unchanged: an
	 * upgrade of the package shows at the next load. */
	char headers[1024];
	str_join(headers, sizeof(headers), "Cache-Control: no-cache\r\nETag: ", f->etag, "\r\n",
		 http_security_headers, NULL);
	const char *type = type_of(name);
	f->get = http_response(200, headers, type, body, len, false, false);
	f->head = http_response(200, headers, type, body, len, true, false);
	char short_headers[128];
	str_join(short_headers, sizeof(short_headers), "Cache-Control: no-cache\r\nETag: ", f->etag,
		 "\r\n", NULL);
	/* A 304 has no body, and says no Content-Length of its own. */
	f->not_modified = msg_printf("HTTP/1.1 304 Not Modified\r\n%s\r\n", short_headers);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct site_file *)a)->name, ((const struct site_file *)b)->name);
}

struct site *site_load(const char *root, char **ret_err)
{
	*ret_err = NULL;
	DIR *dir = opendir(root);
	if (!dir) {
		*ret_err = xasprintf("%s: %s", root, strerror(errno));
		return NULL;
	}
	struct site *s = xcalloc(1, sizeof(*s));
	atomic_init(&s->refs, 1);
	s->root = xstrdup(root);
	size_t total = 0;
	struct dirent *de;
	while ((de = readdir(dir))) {
		if (!name_ok(de->d_name))
			continue;
		char *body;
		size_t len;
		int r = read_file(dirfd(dir), de->d_name, &body, &len);
		if (r < 0) {
			*ret_err = xasprintf("%s/%s: %s", root, de->d_name,
				  r == -EFBIG ? "over 4 MiB" : strerror(-r));
			break;
		}
		if (!body)
			continue;
		if (s->count == SITE_FILES_MAX || total + len > 4 * (size_t)SITE_FILE_MAX) {
			*ret_err = xasprintf("%s: more than %d files or 16 MiB", root, SITE_FILES_MAX);
			free(body);
			break;
		}
		total += len;
		make_file(&s->files[s->count++], de->d_name, body, len);
		free(body);
	}
	closedir(dir);
	if (!*ret_err) {
		qsort(s->files, s->count, sizeof(s->files[0]), by_name);
		if (!site_find(s, "/"))
			*ret_err = xasprintf("%s: no index.html", root);
	}
	if (*ret_err) {
		site_unref(s);
		return NULL;
	}
	return s;
}

struct site *site_ref(struct site *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void site_unref(struct site *s)
{
	if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < s->count; i++) {
		msg_unref(s->files[i].get);
		msg_unref(s->files[i].head);
		msg_unref(s->files[i].not_modified);
	}
	free(s->root);
	free(s);
}

const struct site_file *site_find(const struct site *s, const char *path)
{
	if (path[0] != '/')
		return NULL;
	const char *name = path[1] ? path + 1 : "index.html";
	/* Names hold no '/': "/a/b", "/../x" and their %-encoded forms
	 * name nothing here. */
	struct site_file key;
	if (strlen(name) >= sizeof(key.name))
		return NULL;
	snprintf(key.name, sizeof(key.name), "%s", name);
	return bsearch(&key, s->files, s->count, sizeof(s->files[0]), by_name);
}

size_t site_file_count(const struct site *s)
{
	return s->count;
}

const char *site_root(const struct site *s)
{
	return s->root;
}
