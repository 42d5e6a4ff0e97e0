/* The web page's files, read once from [web] root (at start and at each
 * reload) into ready responses: serving a file is queueing a shared msg,
 * with no disk access and no copy on a worker. Only the regular files
 * found there are served, by their names: nothing else on the disk can be
 * reached, whatever the path asked for. A site is shared by every worker
 * through a reference count. */
#ifndef CHATD_WEB_SITE_H
#define CHATD_WEB_SITE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/msg.h"

#define SITE_FILES_MAX 64
#define SITE_FILE_MAX (4 * 1024 * 1024)

struct site_file {
	char name[64];       /* "index.html"; served at "/" too */
	char etag[24];       /* "\"<16 hex of its SHA-256>\"" */
	struct msg *get;     /* the whole 200 response */
	struct msg *head;    /* its headers alone */
	struct msg *not_modified; /* the 304 */
};

struct site;

/* Reads the files of ROOT (not its subfolders, nor names starting with
 * '.'). NULL with *RET_ERR (the caller's to free) when ROOT cannot be
 * read; a folder without index.html is an error too. */
struct site *site_load(const char *root, char **ret_err);
struct site *site_ref(struct site *s);
void site_unref(struct site *s);

/* The file PATH ("/", "/chatd.js") names, or NULL. */
const struct site_file *site_find(const struct site *s, const char *path);

size_t site_file_count(const struct site *s);
const char *site_root(const struct site *s);

#endif
