#include "autoconf.h"

#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

/* A failed write is warned about at most this often. */
#define WARN_INTERVAL_MS 60000
/* How much nicer than the rest of chatd the store thread runs: under a
 * burst that keeps every CPU busy, the workers (the chat) go first and the
 * store catches up after; with CPU to spare it runs at once. */
#define STORE_NICE 10

/* A queue this long wakes the store thread before its commit interval is
 * up: at a high rate it writes in transactions of about this many lines. */
#define STORE_WAKE_LINES 16384

/* Lines older than max_age are looked for this often (and at start). */
#define AGE_PRUNE_INTERVAL_MS (10 * 60 * 1000)
/* A room's lines beyond keep are deleted each time its line number passes
 * a multiple of this many (or of keep, when smaller): a room holds at
 * most keep + that many. */
#define KEEP_PRUNE_STEP 64

/* Each version's changes, applied in order from the file's
 * PRAGMA user_version + 1 up to STORE_SCHEMA_VERSION, in one
 * transaction. Never change one that has been released: add one. */
static const char *const migrations[STORE_SCHEMA_VERSION + 1] = {
	[1] = "CREATE TABLE lines ("
	      " room TEXT NOT NULL,"         /* the room's name in lower case */
	      " no INTEGER NOT NULL,"        /* the room's line number */
	      " time_ms INTEGER NOT NULL,"   /* ms since the epoch */
	      " msgid INTEGER NOT NULL,"
	      " kind INTEGER NOT NULL,"      /* enum hline_kind */
	      " nick TEXT NOT NULL,"
	      " user TEXT NOT NULL,"
	      " host TEXT NOT NULL,"
	      " text TEXT NOT NULL,"
	      " formatting INTEGER NOT NULL,"
	      " PRIMARY KEY (room, no)"
	      ") WITHOUT ROWID;",
	[2] = "CREATE TABLE accounts ("
	      " name TEXT PRIMARY KEY,"      /* the nick in lower case */
	      " display TEXT NOT NULL,"      /* as registered */
	      " hash TEXT NOT NULL,"         /* yescrypt, crypt(3)'s format */
	      " scram_salt BLOB NOT NULL,"   /* SCRAM-SHA-256 (RFC 5802, 7677) */
	      " scram_iterations INTEGER NOT NULL,"
	      " scram_stored_key BLOB NOT NULL,"
	      " scram_server_key BLOB NOT NULL,"
	      " created INTEGER NOT NULL,"   /* seconds since the epoch */
	      " last_login INTEGER NOT NULL"
	      ") WITHOUT ROWID;",
	[3] = "CREATE TABLE rooms ("
	      " name TEXT PRIMARY KEY,"      /* in lower case */
	      " display TEXT NOT NULL,"      /* as made */
	      " founder TEXT NOT NULL,"      /* the account that made it */
	      " topic TEXT NOT NULL,"
	      " topic_by TEXT NOT NULL,"
	      " topic_time INTEGER NOT NULL,"
	      " created INTEGER NOT NULL"
	      ") WITHOUT ROWID;",
	[4] = "CREATE TABLE bans ("
	      " mask TEXT PRIMARY KEY,"      /* an address, a network or a nick mask */
	      " reason TEXT NOT NULL,"
	      " actor TEXT NOT NULL,"        /* who set it */
	      " created INTEGER NOT NULL,"   /* seconds since the epoch */
	      " expires INTEGER NOT NULL"    /* 0: never */
	      ") WITHOUT ROWID;",
	[5] = "CREATE TABLE streams ("
	      " name TEXT PRIMARY KEY,"      /* a cluster's stream (CHATD) */
	      " seq INTEGER NOT NULL"        /* the newest of its lines written */
	      ") WITHOUT ROWID;",
};

/* The cluster's stream, as the streams table knows it. */
#define STORE_STREAM "CHATD"

#define LINE_COLUMNS "no, time_ms, msgid, kind, nick, user, host, text, formatting"

enum stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_INSERT,
	ST_PRUNE_KEEP,
	ST_PRUNE_AGE,
	ST_FIND_MSGID,
	ST_FIND_TIME,
	ST_NEWEST,      /* no > ?2, newest first */
	ST_BEFORE,      /* no < ?2, newest first */
	ST_AFTER,       /* no > ?2, oldest first */
	ST_LAST_NO,
	ST_SAVE_ROOM,
	ST_SAVE_BAN,
	ST_DELETE_BAN,
	ST_PURGE_ROOM,
	ST_SAVE_SEQ,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_INSERT] = "INSERT OR REPLACE INTO lines (room, " LINE_COLUMNS ") "
		      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[ST_PRUNE_KEEP] = "DELETE FROM lines WHERE room = ?1 AND no <= ?2",
	[ST_PRUNE_AGE] = "DELETE FROM lines WHERE time_ms < ?1",
	[ST_FIND_MSGID] = "SELECT no FROM lines WHERE room = ?1 AND msgid = ?2",
	/* The first line at or after a time (a time between two lines points
	 * between them: BEFORE it is the older, AFTER it the newer). */
	[ST_FIND_TIME] = "SELECT no FROM lines WHERE room = ?1 AND time_ms >= ?2 ORDER BY no LIMIT 1",
	/* Lines beyond keep or max_age, not deleted yet, are not shown:
	 * ?4 is the oldest number kept, ?5 the oldest time. */
	[ST_NEWEST] = "SELECT " LINE_COLUMNS " FROM lines WHERE room = ?1 AND no > ?2 "
		      "AND no >= ?4 AND time_ms >= ?5 ORDER BY no DESC LIMIT ?3",
	[ST_BEFORE] = "SELECT " LINE_COLUMNS " FROM lines WHERE room = ?1 AND no < ?2 "
		      "AND no >= ?4 AND time_ms >= ?5 ORDER BY no DESC LIMIT ?3",
	[ST_AFTER] = "SELECT " LINE_COLUMNS " FROM lines WHERE room = ?1 AND no > ?2 "
		     "AND no >= ?4 AND time_ms >= ?5 ORDER BY no LIMIT ?3",
	[ST_LAST_NO] = "SELECT max(no) FROM lines WHERE room = ?1",
	[ST_SAVE_ROOM] = "INSERT INTO rooms (name, display, founder, topic, topic_by, topic_time, created) "
			 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (name) DO UPDATE SET "
			 "display = excluded.display, founder = excluded.founder, "
			 "topic = excluded.topic, topic_by = excluded.topic_by, "
			 "topic_time = excluded.topic_time",
	[ST_SAVE_BAN] = ("INSERT OR REPLACE INTO bans (mask, reason, actor, created, expires) "
			 "VALUES (?1, ?2, ?3, ?4, ?5)"),
	[ST_DELETE_BAN] = "DELETE FROM bans WHERE mask = ?1",
	[ST_SAVE_SEQ] = "INSERT INTO streams (name, seq) VALUES ('" STORE_STREAM "', ?1) "
			"ON CONFLICT (name) DO UPDATE SET seq = max(seq, excluded.seq)",
	[ST_PURGE_ROOM] = "DELETE FROM lines WHERE room = ?1",
};

/* An admin's change (ours to free). */
struct change {
	enum { CHANGE_SAVE_BAN, CHANGE_DELETE_BAN, CHANGE_PURGE_ROOM } kind;
	struct ban ban;                /* SAVE_BAN */
	char key[BAN_MASK_MAX];        /* DELETE_BAN: the mask; PURGE_ROOM: the room */
};

struct item {
	struct hline *line;        /* a line to write, or */
	struct store_query *query; /* a question, or */
	struct store_room *room;   /* a registered room to write (ours to free), or */
	struct change *change;
};

struct store {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *stmt[ST_COUNT];

	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Under the lock. */
	struct item *items;
	size_t count, cap;
	bool stopping;
	bool urgent;               /* wake the store thread now (see store_main) */
	struct store_policy policy;
	uint64_t queue_dropped;    /* not queued: the queue was full */

	/* The store thread's. */
	bool in_txn;
	size_t txn_lines;          /* written in the open transaction */
	uint64_t txn_seq;          /* the newest stream number among them */
	uint64_t last_age_prune_ms;
	uint64_t last_warn_ms;
	uint64_t unwarned;         /* lost since the last warning */
	bool failing;              /* the last commit failed */

	atomic_uint_least64_t written, dropped;
};

/* ---- opening ----------------------------------------------------------- */

static char *db_error(const char *path, sqlite3 *db, const char *what)
{
	return xasprintf("%s: %s%s%s", path, what ? what : "", what ? ": " : "",
			 db ? sqlite3_errmsg(db) : "out of memory");
}

/* Makes PATH's folder (and its parents) when missing, mode 0700. */
static int make_parent(const char *path)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	int r = 0;
	if (slash && slash != dir) {
		*slash = '\0';
		for (char *p = dir + 1; *p; p++) {
			if (*p != '/')
				continue;
			*p = '\0';
			if (mkdir(dir, 0700) < 0 && errno != EEXIST)
				r = -errno;
			*p = '/';
		}
		if (r == 0 && mkdir(dir, 0700) < 0 && errno != EEXIST)
			r = -errno;
	}
	free(dir);
	return r;
}

static int exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static int migrate(struct store *st, char **err)
{
	sqlite3_stmt *q;
	int version = -1;
	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW)
		version = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	if (version < 0) {
		*err = db_error(st->path, st->db, "cannot read the schema version");
		return -1;
	}
	if (version > STORE_SCHEMA_VERSION) {
		*err = xasprintf("%s: made by a newer chatd (schema version %d; this one knows up "
				 "to %d)", st->path, version, STORE_SCHEMA_VERSION);
		return -1;
	}
	if (version == STORE_SCHEMA_VERSION)
		return 0;
	if (exec(st->db, "BEGIN IMMEDIATE") != SQLITE_OK) {
		*err = db_error(st->path, st->db, "cannot update the schema");
		return -1;
	}
	for (int v = version + 1; v <= STORE_SCHEMA_VERSION; v++) {
		char pragma[48];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v);
		if (exec(st->db, migrations[v]) != SQLITE_OK || exec(st->db, pragma) != SQLITE_OK) {
			*err = xasprintf("%s: cannot update the schema to version %d: %s", st->path, v,
					 sqlite3_errmsg(st->db));
			exec(st->db, "ROLLBACK");
			return -1;
		}
	}
	if (exec(st->db, "COMMIT") != SQLITE_OK) {
		*err = db_error(st->path, st->db, "cannot update the schema");
		exec(st->db, "ROLLBACK");
		return -1;
	}
	if (version > 0)
		log_info("%s: schema updated from version %d to %d", st->path, version,
			 STORE_SCHEMA_VERSION);
	return 0;
}

struct store *store_open(const char *path, char **err)
{
	struct store *st = xcalloc(1, sizeof(*st));
	st->path = xstrdup(path);
	pthread_mutex_init(&st->lock, NULL);
	/* Its waits are timed on CLOCK_MONOTONIC (see store_main). */
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&st->cond, &attr);
	pthread_condattr_destroy(&attr);

	int r = make_parent(path);
	if (r < 0) {
		*err = xasprintf("%s: cannot make its folder: %s", path, strerror(-r));
		goto fail;
	}
	/* Made private before SQLite makes it (0644), and its -wal and -shm
	 * files take its mode: the history is people's words. */
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		*err = xasprintf("%s: %s", path, strerror(errno));
		goto fail;
	}
	close(fd);
	/* One connection, used by one thread at a time (the main thread
	 * until store_start, then the store thread). */
	if (sqlite3_open_v2(path, &st->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
				    SQLITE_OPEN_EXRESCODE,
			    NULL) != SQLITE_OK) {
		*err = db_error(path, st->db, NULL);
		goto fail;
	}
	/* WAL: readers (a backup) do not block the writer. synchronous =
	 * NORMAL: a commit is in the file as soon as written (a crash of
	 * chatd loses nothing committed; a power cut may lose the last
	 * commits, never the file). A backup holding the lock is waited for. */
	sqlite3_busy_timeout(st->db, 5000);
	sqlite3_stmt *q;
	const char *mode = NULL;
	if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW)
		mode = (const char *)sqlite3_column_text(q, 0);
	bool wal = mode && strcmp(mode, "wal") == 0;
	sqlite3_finalize(q);
	if (!wal) {
		*err = db_error(path, st->db, "cannot use it (WAL mode)");
		goto fail;
	}
	if (exec(st->db, "PRAGMA synchronous = NORMAL") != SQLITE_OK) {
		*err = db_error(path, st->db, NULL);
		goto fail;
	}
	if (migrate(st, err) < 0)
		goto fail;
	for (int i = 0; i < ST_COUNT; i++)
		if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &st->stmt[i], NULL) != SQLITE_OK) {
			*err = db_error(path, st->db, "cannot prepare a statement");
			goto fail;
		}
	return st;
fail:
	store_close(st);
	return NULL;
}

/* ---- reading ----------------------------------------------------------- */

static struct hline *row_line(sqlite3_stmt *q, const char *room)
{
	const char *text = (const char *)sqlite3_column_text(q, 7);
	size_t len = (size_t)sqlite3_column_bytes(q, 7);
	const char *nick = (const char *)sqlite3_column_text(q, 4);
	const char *user = (const char *)sqlite3_column_text(q, 5);
	const char *host = (const char *)sqlite3_column_text(q, 6);
	int kind = sqlite3_column_int(q, 3);
	if (kind < 0 || kind >= HLINE_KIND_COUNT)
		kind = HLINE_SAID;
	return hline_new(room, sqlite3_column_int64(q, 0), sqlite3_column_int64(q, 1),
			 (uint64_t)sqlite3_column_int64(q, 2), (enum hline_kind)kind,
			 nick ? nick : "", user ? user : "", host ? host : "", text ? text : "",
			 text ? len : 0, sqlite3_column_int(q, 8) != 0);
}

/* What may be shown of a room: from line number NO, and time TIME_MS. */
struct floor {
	int64_t no, time_ms;
};

/* Runs statement S (ROOM, FROM, LIMIT, above FL) into *LINES (appended at
 * *N, of room ROOM): SQLITE_DONE or the error. */
static int select_lines(struct store *st, enum stmt s, const char *room, int64_t from,
			unsigned limit, const struct floor *fl, struct hline ***lines, size_t *n)
{
	sqlite3_stmt *q = st->stmt[s];
	sqlite3_bind_text(q, 1, room, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, from);
	sqlite3_bind_int64(q, 3, limit);
	sqlite3_bind_int64(q, 4, fl->no);
	sqlite3_bind_int64(q, 5, fl->time_ms);
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		*lines = xrealloc(*lines, (*n + 1) * sizeof(**lines));
		(*lines)[(*n)++] = row_line(q, room);
	}
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return rc;
}

static void reverse(struct hline **lines, size_t n)
{
	for (size_t i = 0; i < n / 2; i++) {
		struct hline *t = lines[i];
		lines[i] = lines[n - 1 - i];
		lines[n - 1 - i] = t;
	}
}

int store_load_recent(struct store *st, unsigned n, int64_t since_ms,
		      void (*fn)(void *ctx, const char *room, int64_t last_no,
				 struct hline **lines, size_t count),
		      void *ctx, char **err)
{
	sqlite3_stmt *rooms;
	if (sqlite3_prepare_v2(st->db, "SELECT room, max(no), max(time_ms) FROM lines GROUP BY room",
			       -1, &rooms, NULL) != SQLITE_OK) {
		*err = db_error(st->path, st->db, "cannot read the history");
		return -1;
	}
	int rc;
	while ((rc = sqlite3_step(rooms)) == SQLITE_ROW) {
		const char *room = (const char *)sqlite3_column_text(rooms, 0);
		int64_t last_no = sqlite3_column_int64(rooms, 1);
		if (!room || sqlite3_column_int64(rooms, 2) < since_ms)
			continue;
		struct hline **lines = NULL;
		size_t count = 0;
		struct floor fl = { .no = 0, .time_ms = since_ms };
		if (n && select_lines(st, ST_NEWEST, room, 0, n, &fl, &lines, &count) != SQLITE_DONE) {
			hline_array_free(lines, count);
			break;
		}
		reverse(lines, count);
		fn(ctx, room, last_no, lines, count);
	}
	/* SQLITE_ROW here: a room's lines could not be read. */
	if (rc != SQLITE_DONE) {
		*err = db_error(st->path, st->db, "cannot read the history");
		sqlite3_finalize(rooms);
		return -1;
	}
	sqlite3_finalize(rooms);
	return 0;
}

/* The line number REF points at in ROOM, for a query going DOWN (before)
 * or up: 0 with it in *RET, -ENOENT, or -EIO. */
static int resolve(struct store *st, const char *room, const struct store_ref *ref, int64_t *ret)
{
	sqlite3_stmt *q;
	switch (ref->kind) {
	case STORE_REF_NONE:
		*ret = 0;
		return 0;
	case STORE_REF_NO:
		*ret = ref->value;
		return 0;
	case STORE_REF_MSGID:
		q = st->stmt[ST_FIND_MSGID];
		break;
	case STORE_REF_TIME:
		q = st->stmt[ST_FIND_TIME];
		break;
	default:
		return -ENOENT;
	}
	sqlite3_bind_text(q, 1, room, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, ref->value);
	int rc = sqlite3_step(q), r;
	if (rc == SQLITE_ROW) {
		*ret = sqlite3_column_int64(q, 0);
		r = 0;
	} else if (rc == SQLITE_DONE && ref->kind == STORE_REF_TIME) {
		*ret = INT64_MAX; /* after every line */
		r = 0;
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : -EIO;
	}
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return r;
}

/* What POLICY lets ROOM show: its newest keep lines within max_age. */
static int floor_of(struct store *st, const char *room, const struct store_policy *policy,
		    struct floor *ret)
{
	sqlite3_stmt *q = st->stmt[ST_LAST_NO];
	sqlite3_bind_text(q, 1, room, -1, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	int64_t last = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -EIO;
	ret->no = last - (int64_t)policy->keep + 1;
	ret->time_ms = policy->max_age_ms ? wall_clock_ms() - policy->max_age_ms : 0;
	return 0;
}

/* A time points at the first line at or after it (see ST_FIND_TIME):
 * lines "after" a time start with that one. */
static int answer(struct store *st, struct store_query *q, const struct store_policy *policy)
{
	char room[64];
	ascii_lower(room, q->room, sizeof(room));
	unsigned limit = q->limit == 0 ? 1 : q->limit > STORE_QUERY_MAX ? STORE_QUERY_MAX : q->limit;
	int64_t a, b;
	struct floor fl;
	int r = floor_of(st, room, policy, &fl);
	if (r == 0)
		r = resolve(st, room, &q->a, &a);
	if (r == 0)
		r = resolve(st, room, &q->b, &b);
	if (r < 0)
		return r;
	int rc = SQLITE_DONE;
	switch (q->kind) {
	case STORE_LATEST:
		if (q->a.kind == STORE_REF_TIME)
			a--;
		rc = select_lines(st, ST_NEWEST, room, a, limit, &fl, &q->lines, &q->count);
		reverse(q->lines, q->count);
		break;
	case STORE_BEFORE:
		rc = select_lines(st, ST_BEFORE, room, a, limit, &fl, &q->lines, &q->count);
		reverse(q->lines, q->count);
		break;
	case STORE_AFTER:
		if (q->a.kind == STORE_REF_TIME)
			a--;
		rc = select_lines(st, ST_AFTER, room, a, limit, &fl, &q->lines, &q->count);
		break;
	case STORE_AROUND: {
		unsigned before = limit / 2;
		rc = select_lines(st, ST_BEFORE, room, a, before, &fl, &q->lines, &q->count);
		reverse(q->lines, q->count);
		if (rc == SQLITE_DONE)
			rc = select_lines(st, ST_AFTER, room, a - 1, limit - (unsigned)q->count,
					  &fl, &q->lines, &q->count);
		break;
	}
	case STORE_BETWEEN: {
		/* Exclusive of both ends, from A's side towards B. */
		if (q->a.kind == STORE_REF_TIME && a <= b)
			a--;
		if (q->b.kind == STORE_REF_TIME && b < a)
			b--;
		if (a <= b) {
			rc = select_lines(st, ST_AFTER, room, a, limit, &fl, &q->lines, &q->count);
			while (q->count && q->lines[q->count - 1]->no >= b)
				hline_unref(q->lines[--q->count]);
		} else {
			rc = select_lines(st, ST_BEFORE, room, a, limit, &fl, &q->lines, &q->count);
			while (q->count && q->lines[q->count - 1]->no <= b)
				hline_unref(q->lines[--q->count]);
			reverse(q->lines, q->count);
		}
		break;
	}
	}
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* ---- writing ----------------------------------------------------------- */

static bool step_done(sqlite3_stmt *q)
{
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	return rc == SQLITE_DONE;
}

/* Counts N lines lost, and warns about it at most once a minute. */
static void lost(struct store *st, uint64_t n, const char *why)
{
	atomic_fetch_add(&st->dropped, n);
	st->unwarned += n;
	uint64_t now = monotonic_ms();
	if (st->unwarned && (st->last_warn_ms == 0 || now - st->last_warn_ms >= WARN_INTERVAL_MS)) {
		log_event(LOG_WARNING, LOG_FIELDS(.event = "history_dropped", .count = st->unwarned),
			  "%s: %llu history line%s not written: %s (chat goes on; writing is tried "
			  "again with the next lines)", st->path, (unsigned long long)st->unwarned,
			  st->unwarned == 1 ? "" : "s", why);
		st->last_warn_ms = now;
		st->unwarned = 0;
	}
}

static void rollback(struct store *st, const char *why)
{
	step_done(st->stmt[ST_ROLLBACK]);
	st->in_txn = false;
	lost(st, st->txn_lines, why);
	st->txn_lines = 0;
	st->txn_seq = 0;
	st->failing = true;
}

static bool begin(struct store *st)
{
	if (st->in_txn)
		return true;
	if (!step_done(st->stmt[ST_BEGIN]))
		return false;
	st->in_txn = true;
	st->txn_lines = 0;
	st->txn_seq = 0;
	return true;
}

static void commit(struct store *st)
{
	if (!st->in_txn)
		return;
	if (st->txn_seq) {
		/* With the lines: a restart reads the stream from the next. */
		sqlite3_stmt *q = st->stmt[ST_SAVE_SEQ];
		sqlite3_bind_int64(q, 1, (int64_t)st->txn_seq);
		step_done(q);
		sqlite3_clear_bindings(q);
		st->txn_seq = 0;
	}
	if (!step_done(st->stmt[ST_COMMIT])) {
		char why[256];
		snprintf(why, sizeof(why), "%s", sqlite3_errmsg(st->db));
		rollback(st, why);
		return;
	}
	atomic_fetch_add(&st->written, st->txn_lines);
	st->in_txn = false;
	st->txn_lines = 0;
	if (st->failing) {
		st->failing = false;
		log_event(LOG_NOTICE, LOG_FIELDS(.event = "history_resumed"),
			  "%s: history lines are written again", st->path);
	}
}

static void prune_keep(struct store *st, const char *room, int64_t no, unsigned keep)
{
	unsigned step = keep < KEEP_PRUNE_STEP ? keep : KEEP_PRUNE_STEP;
	if (no <= (int64_t)keep || no % step != 0)
		return;
	sqlite3_stmt *q = st->stmt[ST_PRUNE_KEEP];
	sqlite3_bind_text(q, 1, room, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, no - keep);
	step_done(q);
	sqlite3_clear_bindings(q);
}

static void prune_age(struct store *st, int64_t max_age_ms)
{
	sqlite3_stmt *q = st->stmt[ST_PRUNE_AGE];
	sqlite3_bind_int64(q, 1, wall_clock_ms() - max_age_ms);
	step_done(q);
	sqlite3_clear_bindings(q);
}

static void write_line(struct store *st, const struct hline *l, const struct store_policy *policy)
{
	if (!begin(st)) {
		char why[256];
		snprintf(why, sizeof(why), "%s", sqlite3_errmsg(st->db));
		lost(st, 1, why);
		return;
	}
	char room[64];
	ascii_lower(room, l->room, sizeof(room));
	sqlite3_stmt *q = st->stmt[ST_INSERT];
	sqlite3_bind_text(q, 1, room, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, l->no);
	sqlite3_bind_int64(q, 3, l->time_ms);
	sqlite3_bind_int64(q, 4, (int64_t)l->msgid);
	sqlite3_bind_int(q, 5, (int)l->kind);
	sqlite3_bind_text(q, 6, l->nick, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 7, l->user, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 8, l->host, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 9, l->text, (int)l->text_len, SQLITE_STATIC);
	sqlite3_bind_int(q, 10, l->formatting);
	if (step_done(q)) {
		st->txn_lines++;
		if (l->stream_seq > st->txn_seq)
			st->txn_seq = l->stream_seq;
		prune_keep(st, room, l->no, policy->keep);
	} else {
		/* A full disk fails the statement and may end the transaction. */
		char why[256];
		snprintf(why, sizeof(why), "%s", sqlite3_errmsg(st->db));
		if (sqlite3_get_autocommit(st->db))
			st->in_txn = false;
		if (st->in_txn)
			rollback(st, why);
		else {
			lost(st, st->txn_lines + 1, why);
			st->txn_lines = 0;
			st->failing = true;
		}
	}
	sqlite3_clear_bindings(q);
}

static void save_room(struct store *st, const struct store_room *room)
{
	if (!begin(st)) {
		log_warning("%s: cannot save the room %s: %s", st->path, room->name, sqlite3_errmsg(st->db));
		return;
	}
	char key[64];
	ascii_lower(key, room->name, sizeof(key));
	sqlite3_stmt *q = st->stmt[ST_SAVE_ROOM];
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, room->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, room->founder, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, room->topic, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, room->topic_by, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 6, room->topic_time);
	sqlite3_bind_int64(q, 7, room->created);
	if (!step_done(q))
		log_warning("%s: cannot save the room %s: %s", st->path, room->name, sqlite3_errmsg(st->db));
	sqlite3_clear_bindings(q);
}

static void apply_change(struct store *st, const struct change *c)
{
	if (!begin(st)) {
		log_warning("%s: cannot write an admin's change: %s", st->path, sqlite3_errmsg(st->db));
		return;
	}
	char key[BAN_MASK_MAX];
	sqlite3_stmt *q;
	switch (c->kind) {
	case CHANGE_SAVE_BAN:
		q = st->stmt[ST_SAVE_BAN];
		sqlite3_bind_text(q, 1, c->ban.mask, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, c->ban.reason, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 3, c->ban.actor, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 4, c->ban.created);
		sqlite3_bind_int64(q, 5, c->ban.expires);
		break;
	case CHANGE_DELETE_BAN:
		q = st->stmt[ST_DELETE_BAN];
		sqlite3_bind_text(q, 1, c->key, -1, SQLITE_STATIC);
		break;
	case CHANGE_PURGE_ROOM:
	default:
		q = st->stmt[ST_PURGE_ROOM];
		ascii_lower(key, c->key, sizeof(key));
		sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
		break;
	}
	if (!step_done(q))
		log_warning("%s: cannot write an admin's change: %s", st->path, sqlite3_errmsg(st->db));
	sqlite3_clear_bindings(q);
}

int store_load_stream_seq(struct store *st, uint64_t *ret, char **err)
{
	sqlite3_stmt *q = NULL;
	*ret = 0;
	if (sqlite3_prepare_v2(st->db, "SELECT seq FROM streams WHERE name = '" STORE_STREAM "'", -1, &q,
			       NULL) != SQLITE_OK) {
		*err = db_error(st->path, st->db, "reading the stream's position");
		return -1;
	}
	int r = sqlite3_step(q);
	if (r == SQLITE_ROW)
		*ret = (uint64_t)sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	if (r != SQLITE_ROW && r != SQLITE_DONE) {
		*err = db_error(st->path, st->db, "reading the stream's position");
		return -1;
	}
	return 0;
}

int store_load_bans(struct store *st, void (*fn)(void *ctx, const struct ban *b), void *ctx,
		    char **err)
{
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(st->db, "SELECT mask, reason, actor, created, expires FROM bans", -1,
			       &q, NULL) != SQLITE_OK) {
		*err = db_error(st->path, st->db, "cannot read the bans");
		return -1;
	}
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct ban b = { .created = sqlite3_column_int64(q, 3),
				 .expires = sqlite3_column_int64(q, 4) };
		const char *mask = (const char *)sqlite3_column_text(q, 0), *why;
		const char *reason = (const char *)sqlite3_column_text(q, 1);
		const char *actor = (const char *)sqlite3_column_text(q, 2);
		if (!mask || !ban_parse_mask(mask, &b, &why)) {
			log_warning("%s: a ban of %s cannot be used: %s", st->path, mask ? mask : "NULL",
				    mask ? why : "no mask");
			continue;
		}
		snprintf(b.reason, sizeof(b.reason), "%s", reason ? reason : "");
		snprintf(b.actor, sizeof(b.actor), "%s", actor ? actor : "");
		fn(ctx, &b);
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE) {
		*err = db_error(st->path, st->db, "cannot read the bans");
		return -1;
	}
	return 0;
}

int store_load_rooms(struct store *st, void (*fn)(void *ctx, const struct store_room *room),
		     void *ctx, char **err)
{
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(st->db, "SELECT display, founder, topic, topic_by, topic_time, created "
			       "FROM rooms", -1, &q, NULL) != SQLITE_OK) {
		*err = db_error(st->path, st->db, "cannot read the rooms");
		return -1;
	}
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct store_room room = { .topic_time = sqlite3_column_int64(q, 4),
					   .created = sqlite3_column_int64(q, 5) };
		const char *cols[4];
		for (int i = 0; i < 4; i++)
			cols[i] = (const char *)sqlite3_column_text(q, i);
		snprintf(room.name, sizeof(room.name), "%s", cols[0] ? cols[0] : "");
		snprintf(room.founder, sizeof(room.founder), "%s", cols[1] ? cols[1] : "");
		snprintf(room.topic, sizeof(room.topic), "%s", cols[2] ? cols[2] : "");
		snprintf(room.topic_by, sizeof(room.topic_by), "%s", cols[3] ? cols[3] : "");
		if (room.name[0] && room.founder[0])
			fn(ctx, &room);
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE) {
		*err = db_error(st->path, st->db, "cannot read the rooms");
		return -1;
	}
	return 0;
}

static void *store_main(void *arg)
{
	struct store *st = arg;
	struct item *batch = NULL;
	size_t batch_cap = 0;

	/* Nice is per thread on Linux; lowering one's own priority needs no
	 * privilege. */
	pid_t tid = gettid();
	errno = 0;
	int nice = getpriority(PRIO_PROCESS, (id_t)tid);
	if (errno == 0 && setpriority(PRIO_PROCESS, (id_t)tid, nice + STORE_NICE) < 0)
		log_debug("store thread: cannot lower its priority: %s", strerror(errno));

	pthread_mutex_lock(&st->lock);
	for (;;) {
		/* Wakes once every commit interval, or at once for a question,
		 * a long queue or the end: workers do not wake it per batch, which
		 * under load cost more than the writing. */
		uint64_t wake = monotonic_ms() + (uint64_t)st->policy.commit_interval_ms;
		while (!st->urgent && !st->stopping) {
			uint64_t now = monotonic_ms();
			if (now >= wake)
				break;
			struct timespec until;
			clock_gettime(CLOCK_MONOTONIC, &until);
			uint64_t wait = wake - now;
			until.tv_sec += (time_t)(wait / 1000);
			until.tv_nsec += (long)(wait % 1000) * 1000000;
			if (until.tv_nsec >= 1000000000) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&st->cond, &st->lock, &until);
		}
		st->urgent = false;
		/* Take the queue whole; the lock is not held while writing. */
		struct item *items = st->items;
		size_t n = st->count;
		size_t cap = st->cap;
		st->items = batch;
		st->cap = batch_cap;
		st->count = 0;
		batch = items;
		batch_cap = cap;
		struct store_policy policy = st->policy;
		bool stopping = st->stopping;
		uint64_t queue_dropped = st->queue_dropped;
		st->queue_dropped = 0;
		pthread_mutex_unlock(&st->lock);

		if (queue_dropped)
			lost(st, queue_dropped, "more were waiting than the store takes");
		for (size_t i = 0; i < n; i++) {
			if (batch[i].line) {
				if (policy.keep)
					write_line(st, batch[i].line, &policy);
				hline_unref(batch[i].line);
			} else if (batch[i].room) {
				save_room(st, batch[i].room);
				free(batch[i].room);
			} else if (batch[i].change) {
				apply_change(st, batch[i].change);
				free(batch[i].change);
			} else {
				struct store_query *q = batch[i].query;
				q->error = answer(st, q, &policy);
				q->done(q);
			}
		}
		/* Everything taken is committed before the next wait. */
		uint64_t now = monotonic_ms();
		commit(st);
		if (!st->in_txn && policy.max_age_ms > 0 &&
		    (st->last_age_prune_ms == 0 || now - st->last_age_prune_ms >= AGE_PRUNE_INTERVAL_MS)) {
			st->last_age_prune_ms = now;
			prune_age(st, policy.max_age_ms);
		}
		pthread_mutex_lock(&st->lock);
		if (stopping && !st->count)
			break;
	}
	pthread_mutex_unlock(&st->lock);
	free(batch);
	if (st->unwarned) {
		st->last_warn_ms = 0;
		lost(st, 0, "the store stopped");
	}
	return NULL;
}

/* ---- the other threads' side ---------------------------------------------- */

int store_start(struct store *st, const struct store_policy *policy)
{
	st->policy = *policy;
	int r = pthread_create(&st->thread, NULL, store_main, st);
	if (r != 0)
		return -r;
	pthread_setname_np(st->thread, "chatd-store"); /* for top -H, ps -L */
	st->started = true;
	return 0;
}

void store_set_policy(struct store *st, const struct store_policy *policy)
{
	pthread_mutex_lock(&st->lock);
	st->policy = *policy;
	pthread_mutex_unlock(&st->lock);
}

/* Appends to the queue (the lock held): false when it is full. */
static bool push(struct store *st, struct item item)
{
	if (item.line && st->count >= STORE_QUEUE_MAX)
		return false;
	if (st->count == st->cap) {
		st->cap = st->cap ? st->cap * 2 : 256;
		st->items = xrealloc(st->items, st->cap * sizeof(*st->items));
	}
	st->items[st->count++] = item;
	return true;
}

void store_add(struct store *st, struct hline *const *lines, size_t n)
{
	if (n == 0)
		return;
	pthread_mutex_lock(&st->lock);
	bool was_short = st->count < STORE_WAKE_LINES;
	for (size_t i = 0; i < n; i++)
		if (!push(st, (struct item){ .line = lines[i] })) {
			st->queue_dropped++;
			hline_unref(lines[i]);
		}
	if (was_short && st->count >= STORE_WAKE_LINES) {
		st->urgent = true;
		pthread_cond_signal(&st->cond);
	}
	pthread_mutex_unlock(&st->lock);
}

void store_save_room(struct store *st, const struct store_room *room)
{
	struct store_room *copy = xmalloc(sizeof(*copy));
	*copy = *room;
	pthread_mutex_lock(&st->lock);
	push(st, (struct item){ .room = copy });
	pthread_mutex_unlock(&st->lock);
}

static void push_change(struct store *st, struct change *c)
{
	pthread_mutex_lock(&st->lock);
	push(st, (struct item){ .change = c });
	pthread_mutex_unlock(&st->lock);
}

void store_save_ban(struct store *st, const struct ban *b)
{
	struct change *c = xcalloc(1, sizeof(*c));
	c->kind = CHANGE_SAVE_BAN;
	c->ban = *b;
	push_change(st, c);
}

void store_delete_ban(struct store *st, const char *mask)
{
	struct change *c = xcalloc(1, sizeof(*c));
	c->kind = CHANGE_DELETE_BAN;
	snprintf(c->key, sizeof(c->key), "%s", mask);
	push_change(st, c);
}

void store_purge_room(struct store *st, const char *name)
{
	struct change *c = xcalloc(1, sizeof(*c));
	c->kind = CHANGE_PURGE_ROOM;
	snprintf(c->key, sizeof(c->key), "%s", name);
	push_change(st, c);
}

void store_query(struct store *st, struct store_query *q)
{
	pthread_mutex_lock(&st->lock);
	push(st, (struct item){ .query = q });
	st->urgent = true;
	pthread_cond_signal(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

void store_query_free(struct store_query *q)
{
	if (q) {
		hline_array_free(q->lines, q->count);
		free(q);
	}
}

void store_get_stats(struct store *st, struct store_stats *ret)
{
	ret->written = atomic_load(&st->written);
	ret->dropped = atomic_load(&st->dropped);
}

void store_close(struct store *st)
{
	if (!st)
		return;
	if (st->started) {
		pthread_mutex_lock(&st->lock);
		st->stopping = true;
		pthread_cond_signal(&st->cond);
		pthread_mutex_unlock(&st->lock);
		pthread_join(st->thread, NULL);
	}
	for (size_t i = 0; i < st->count; i++) {
		if (st->items[i].line)
			hline_unref(st->items[i].line);
		else if (st->items[i].room)
			free(st->items[i].room);
		else if (st->items[i].change)
			free(st->items[i].change);
		else
			store_query_free(st->items[i].query);
	}
	free(st->items);
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	if (st->db && sqlite3_close(st->db) != SQLITE_OK)
		log_warning("%s: closing: %s", st->path, sqlite3_errmsg(st->db));
	pthread_mutex_destroy(&st->lock);
	pthread_cond_destroy(&st->cond);
	free(st->path);
	free(st);
}
