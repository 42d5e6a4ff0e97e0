#include "autoconf.h"

#include "store/accounts.h"

#include <crypt.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"

/* Failures remembered at most, per kind (accounts, addresses): the oldest
 * window is forgotten first. */
#define FAIL_TABLE_MAX 4096

enum stmt {
	ST_FIND,
	ST_INSERT,
	ST_SET_PASSWORD,
	ST_LOGGED_IN,
	ST_NAMES,
	ST_DELETE,
	ST_DELETE_ROOMS,
	ST_LIST,
	ST_KEEP_ROW,
	ST_CREATED,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_FIND] = "SELECT display, hash, scram_salt, scram_iterations, scram_stored_key, "
		    "scram_server_key FROM accounts WHERE name = ?1",
	[ST_INSERT] = "INSERT INTO accounts (name, display, hash, scram_salt, scram_iterations, "
		      "scram_stored_key, scram_server_key, created, last_login) "
		      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
	[ST_SET_PASSWORD] = "UPDATE accounts SET hash = ?2, scram_salt = ?3, scram_iterations = ?4, "
			    "scram_stored_key = ?5, scram_server_key = ?6 WHERE name = ?1",
	[ST_LOGGED_IN] = "UPDATE accounts SET last_login = ?2 WHERE name = ?1",
	[ST_NAMES] = "SELECT name FROM accounts ORDER BY name",
	[ST_DELETE] = "DELETE FROM accounts WHERE name = ?1",
	/* Its rooms' registration goes with it: whoever registers the name
	 * again is not their founder. */
	[ST_DELETE_ROOMS] = "DELETE FROM rooms WHERE lower(founder) = ?1",
	[ST_LIST] = "SELECT display, created, last_login FROM accounts ORDER BY name",
	[ST_CREATED] = "SELECT created FROM accounts WHERE name = ?1",
	/* Another copy's row: its last login here stays this node's. */
	[ST_KEEP_ROW] = "INSERT INTO accounts (name, display, hash, scram_salt, scram_iterations, "
			"scram_stored_key, scram_server_key, created, last_login) "
			"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0) ON CONFLICT (name) DO UPDATE SET "
			"display = excluded.display, hash = excluded.hash, "
			"scram_salt = excluded.scram_salt, scram_iterations = excluded.scram_iterations, "
			"scram_stored_key = excluded.scram_stored_key, "
			"scram_server_key = excluded.scram_server_key, created = excluded.created",
};

/* Failed logins of one account or from one address, in one window. */
struct failures {
	char key[64];
	int64_t since_s;   /* the window's start */
	unsigned count;
	unsigned refused;  /* attempts refused in the window (only the first is logged) */
};

struct fail_table {
	struct failures *items;
	size_t count;
};

struct accounts {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *stmt[ST_COUNT];

	/* The registered names, in lower case, sorted (bsearch): read by any
	 * thread, added to by the accounts thread. */
	pthread_rwlock_t names_lock;
	char (*names)[NAME_MAX_LEN + 1];
	size_t name_count, name_cap;

	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct account_request **queue; /* under the lock */
	size_t count, cap;
	bool stopping;

	/* The thread's. */
	struct fail_table by_account, by_address;
	struct accounts_replica replica; /* create NULL: none */
};

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

/* ---- the names in memory ------------------------------------------------- */

static int name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

bool accounts_registered(struct accounts *a, const char *nick)
{
	char key[NAME_MAX_LEN + 1];
	ascii_lower(key, nick, sizeof(key));
	pthread_rwlock_rdlock(&a->names_lock);
	bool found = a->name_count &&
		     bsearch(key, a->names, a->name_count, sizeof(*a->names), name_cmp) != NULL;
	pthread_rwlock_unlock(&a->names_lock);
	return found;
}

size_t accounts_count(struct accounts *a)
{
	pthread_rwlock_rdlock(&a->names_lock);
	size_t n = a->name_count;
	pthread_rwlock_unlock(&a->names_lock);
	return n;
}

/* KEY (lower case) among the names, in order. */
static void add_name(struct accounts *a, const char *key)
{
	pthread_rwlock_wrlock(&a->names_lock);
	if (a->name_count == a->name_cap) {
		a->name_cap = a->name_cap ? a->name_cap * 2 : 64;
		a->names = xrealloc(a->names, a->name_cap * sizeof(*a->names));
	}
	size_t i = a->name_count;
	while (i > 0 && strcmp(a->names[i - 1], key) > 0)
		i--;
	memmove(&a->names[i + 1], &a->names[i], (a->name_count - i) * sizeof(*a->names));
	snprintf(a->names[i], sizeof(a->names[i]), "%s", key);
	a->name_count++;
	pthread_rwlock_unlock(&a->names_lock);
}

/* ---- failed logins ----------------------------------------------------------- */

static struct failures *failures_of(struct fail_table *t, const char *key, int64_t now)
{
	struct failures *oldest = NULL;
	for (size_t i = 0; i < t->count; i++) {
		struct failures *f = &t->items[i];
		if (strcmp(f->key, key) == 0) {
			if (now - f->since_s >= ACCOUNTS_FAIL_WINDOW_S) {
				f->since_s = now;
				f->count = 0;
				f->refused = 0;
			}
			return f;
		}
		if (!oldest || f->since_s < oldest->since_s)
			oldest = f;
	}
	if (t->count < FAIL_TABLE_MAX) {
		t->items = xrealloc(t->items, (t->count + 1) * sizeof(*t->items));
		oldest = &t->items[t->count++];
	}
	snprintf(oldest->key, sizeof(oldest->key), "%s", key);
	oldest->since_s = now;
	oldest->count = 0;
	oldest->refused = 0;
	return oldest;
}

/* Whether a login to account KEY from ADDRESS may be tried now; else the
 * seconds until it may, in *RETRY_S, and the first refusal of the window
 * is logged (an attacker's every try would flood the log). */
static bool may_try(struct accounts *a, const char *key, const char *address, int *retry_s)
{
	int64_t now = now_s();
	struct failures *fa = failures_of(&a->by_account, key, now);
	struct failures *fd = failures_of(&a->by_address, address, now);
	int64_t until = 0;
	if (fa->count >= ACCOUNTS_FAIL_ACCOUNT)
		until = fa->since_s + ACCOUNTS_FAIL_WINDOW_S;
	if (fd->count >= ACCOUNTS_FAIL_ADDRESS && fd->since_s + ACCOUNTS_FAIL_WINDOW_S > until)
		until = fd->since_s + ACCOUNTS_FAIL_WINDOW_S;
	*retry_s = until > now ? (int)(until - now) : 0;
	if (until <= now)
		return true;
	struct failures *f = fa->count >= ACCOUNTS_FAIL_ACCOUNT ? fa : fd;
	if (f->refused++ == 0)
		log_event(LOG_NOTICE, LOG_FIELDS(.event = "login_refused", .nick = key, .peer = address),
			  "logins to account %s from %s refused: too many failures (for %d s more; "
			  "further refusals not logged)", key, address, *retry_s);
	return false;
}

static void failed(struct accounts *a, const char *key, const char *address, const char *how)
{
	int64_t now = now_s();
	struct failures *fa = failures_of(&a->by_account, key, now);
	struct failures *fd = failures_of(&a->by_address, address, now);
	fa->count++;
	fd->count++;
	log_event(LOG_NOTICE, LOG_FIELDS(.event = "login_failed", .nick = key, .peer = address,
					 .count = fa->count),
		  "failed login to account %s from %s (%s; %u for the account and %u from the "
		  "address in %d minutes)", key, address, how, fa->count, fd->count,
		  ACCOUNTS_FAIL_WINDOW_S / 60);
}

/* ---- hashing ------------------------------------------------------------------ */

/* PASSWORD hashed with yescrypt into HASH (CRYPT_OUTPUT_SIZE): false when
 * libcrypt fails. */
static bool hash_password(const char *password, char *hash)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data data;
	memset(&data, 0, sizeof(data));
	if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)))
		return false;
	const char *h = crypt_r(password, salt, &data);
	bool ok = h && h[0] == '$';
	if (ok)
		snprintf(hash, CRYPT_OUTPUT_SIZE, "%s", h);
	OPENSSL_cleanse(&data, sizeof(data));
	return ok;
}

/* Whether PASSWORD is the one HASH was made from, in time that does not
 * depend on where they differ. */
static bool check_password(const char *password, const char *hash)
{
	struct crypt_data data;
	memset(&data, 0, sizeof(data));
	const char *h = crypt_r(password, hash, &data);
	size_t n = strlen(hash);
	bool ok = h && h[0] == '$' && strlen(h) == n && CRYPTO_memcmp(h, hash, n) == 0;
	OPENSSL_cleanse(&data, sizeof(data));
	return ok;
}

struct scram_keys {
	unsigned char salt[ACCOUNTS_SCRAM_SALT];
	unsigned iterations;
	unsigned char stored_key[ACCOUNTS_SCRAM_KEY];
	unsigned char server_key[ACCOUNTS_SCRAM_KEY];
};

/* RFC 5802's StoredKey and ServerKey of PASSWORD, with a new salt. */
static bool scram_keys(const char *password, struct scram_keys *k)
{
	unsigned char salted[ACCOUNTS_SCRAM_KEY], client_key[ACCOUNTS_SCRAM_KEY];
	unsigned len = 0;
	k->iterations = ACCOUNTS_SCRAM_ITERATIONS;
	bool ok = RAND_bytes(k->salt, sizeof(k->salt)) == 1 &&
		  PKCS5_PBKDF2_HMAC(password, (int)strlen(password), k->salt, sizeof(k->salt),
				    (int)k->iterations, EVP_sha256(), sizeof(salted), salted) == 1 &&
		  HMAC(EVP_sha256(), salted, sizeof(salted), (const unsigned char *)"Client Key", 10,
		       client_key, &len) && len == sizeof(client_key) &&
		  SHA256(client_key, sizeof(client_key), k->stored_key) &&
		  HMAC(EVP_sha256(), salted, sizeof(salted), (const unsigned char *)"Server Key", 10,
		       k->server_key, &len) && len == sizeof(k->server_key);
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	return ok;
}

/* ---- the requests ----------------------------------------------------------- */

static bool step_done(sqlite3_stmt *q)
{
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return rc == SQLITE_DONE;
}

/* Account KEY's row: 1 found (HASH, DISPLAY and the SCRAM keys filled), 0
 * not, -1 error. */
static int find(struct accounts *a, const char *key, char *display, char *hash,
		struct scram_keys *k)
{
	sqlite3_stmt *q = a->stmt[ST_FIND];
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(q), r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
	if (r == 1) {
		snprintf(display, NAME_MAX_LEN + 1, "%s", (const char *)sqlite3_column_text(q, 0));
		snprintf(hash, CRYPT_OUTPUT_SIZE, "%s", (const char *)sqlite3_column_text(q, 1));
		if (k) {
			int sl = sqlite3_column_bytes(q, 2), kl = sqlite3_column_bytes(q, 4),
			    vl = sqlite3_column_bytes(q, 5);
			if (sl == ACCOUNTS_SCRAM_SALT && kl == ACCOUNTS_SCRAM_KEY && vl == ACCOUNTS_SCRAM_KEY) {
				memcpy(k->salt, sqlite3_column_blob(q, 2), sizeof(k->salt));
				memcpy(k->stored_key, sqlite3_column_blob(q, 4), sizeof(k->stored_key));
				memcpy(k->server_key, sqlite3_column_blob(q, 5), sizeof(k->server_key));
				k->iterations = (unsigned)sqlite3_column_int(q, 3);
			} else {
				r = -1;
			}
		}
	}
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return r;
}

static void bind_keys(sqlite3_stmt *q, int first, const struct scram_keys *k)
{
	sqlite3_bind_blob(q, first, k->salt, sizeof(k->salt), SQLITE_STATIC);
	sqlite3_bind_int(q, first + 1, (int)k->iterations);
	sqlite3_bind_blob(q, first + 2, k->stored_key, sizeof(k->stored_key), SQLITE_STATIC);
	sqlite3_bind_blob(q, first + 3, k->server_key, sizeof(k->server_key), SQLITE_STATIC);
}

static bool password_fits(const char *p)
{
	size_t n = strlen(p);
	return n >= ACCOUNTS_PASSWORD_MIN && n <= ACCOUNTS_PASSWORD_MAX;
}

static void row_of(struct account_row *row, const char *key, const char *display, const char *hash,
		   const struct scram_keys *k, int64_t created)
{
	memset(row, 0, sizeof(*row));
	snprintf(row->name, sizeof(row->name), "%s", key);
	snprintf(row->display, sizeof(row->display), "%s", display);
	snprintf(row->hash, sizeof(row->hash), "%s", hash);
	memcpy(row->salt, k->salt, sizeof(row->salt));
	row->iterations = k->iterations;
	memcpy(row->stored_key, k->stored_key, sizeof(row->stored_key));
	memcpy(row->server_key, k->server_key, sizeof(row->server_key));
	row->created = created;
}

static int64_t find_created(struct accounts *a, const char *key)
{
	sqlite3_stmt *q = a->stmt[ST_CREATED];
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	int64_t created = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return created;
}

static void remove_name(struct accounts *a, const char *key);

/* KEY's row as kept, in *ROW: false when there is none (or the database
 * failed). */
static bool load_row(struct accounts *a, const char *key, struct account_row *row)
{
	char display[NAME_MAX_LEN + 1], hash[CRYPT_OUTPUT_SIZE];
	struct scram_keys k;
	bool found = find(a, key, display, hash, &k) > 0;
	if (found)
		row_of(row, key, display, hash, &k, find_created(a, key));
	OPENSSL_cleanse(&k, sizeof(k));
	OPENSSL_cleanse(hash, sizeof(hash));
	return found;
}

/* KEY's row, as kept, to the replica (deleted: only its name). */
static void tell_replica(struct accounts *a, const char *key, bool deleted)
{
	if (!a->replica.changed)
		return;
	struct account_row row = { .deleted = deleted };
	snprintf(row.name, sizeof(row.name), "%s", key);
	if (!deleted && !load_row(a, key, &row))
		return;
	a->replica.changed(a->replica.ctx, &row);
	OPENSSL_cleanse(&row, sizeof(row));
}

/* Every account, to the replica's offer(). The names first: offering
 * reads each row with statements of its own. */
static void offer_all(struct accounts *a)
{
	if (!a->replica.offer)
		return;
	char (*keys)[NAME_MAX_LEN + 1] = NULL;
	size_t count = 0, cap = 0;
	sqlite3_stmt *q = a->stmt[ST_NAMES];
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap ? 2 * cap : 64;
			keys = xrealloc(keys, cap * sizeof(*keys));
		}
		snprintf(keys[count++], sizeof(*keys), "%s", (const char *)sqlite3_column_text(q, 0));
	}
	sqlite3_reset(q);
	if (rc != SQLITE_DONE)
		log_event(LOG_WARNING, LOG_FIELDS(.event = "store_failed"),
			  "%s: cannot read the accounts to share them: %s", a->path,
			  sqlite3_errmsg(a->db));
	for (size_t i = 0; i < count; i++) {
		struct account_row row;
		if (load_row(a, keys[i], &row))
			a->replica.offer(a->replica.ctx, &row);
		OPENSSL_cleanse(&row, sizeof(row));
	}
	free(keys);
}

/* Another copy's ROW, kept here. */
static void keep_row(struct accounts *a, const struct account_row *row)
{
	if (row->deleted) {
		sqlite3_stmt *q = a->stmt[ST_DELETE];
		sqlite3_bind_text(q, 1, row->name, -1, SQLITE_STATIC);
		if (step_done(q))
			remove_name(a, row->name);
		sqlite3_clear_bindings(q);
		return;
	}
	sqlite3_stmt *q = a->stmt[ST_KEEP_ROW];
	sqlite3_bind_text(q, 1, row->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, row->display, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, row->hash, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 4, row->salt, sizeof(row->salt), SQLITE_STATIC);
	sqlite3_bind_int(q, 5, (int)row->iterations);
	sqlite3_bind_blob(q, 6, row->stored_key, sizeof(row->stored_key), SQLITE_STATIC);
	sqlite3_bind_blob(q, 7, row->server_key, sizeof(row->server_key), SQLITE_STATIC);
	sqlite3_bind_int64(q, 8, row->created);
	bool done = step_done(q);
	sqlite3_clear_bindings(q);
	if (!done) {
		log_warning("%s: cannot keep the account %s of another node: %s", a->path, row->name,
			    sqlite3_errmsg(a->db));
		return;
	}
	if (!accounts_registered(a, row->name))
		add_name(a, row->name);
}

static int do_register(struct accounts *a, struct account_request *r, const char *key)
{
	if (!password_fits(r->password))
		return -EINVAL;
	char display[NAME_MAX_LEN + 1], hash[CRYPT_OUTPUT_SIZE];
	int found = find(a, key, display, hash, NULL);
	if (found != 0)
		return found > 0 ? -EEXIST : -EIO;
	struct scram_keys k;
	if (!hash_password(r->password, hash) || !scram_keys(r->password, &k))
		return -EIO;
	if (a->replica.create) {
		struct account_row row;
		row_of(&row, key, r->name, hash, &k, now_s());
		int taken = a->replica.create(a->replica.ctx, &row);
		OPENSSL_cleanse(&row, sizeof(row));
		if (taken) {
			OPENSSL_cleanse(&k, sizeof(k));
			return taken;
		}
	}
	sqlite3_stmt *q = a->stmt[ST_INSERT];
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, r->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, hash, -1, SQLITE_STATIC);
	bind_keys(q, 4, &k);
	sqlite3_bind_int64(q, 8, now_s());
	if (!step_done(q)) {
		log_warning("%s: cannot register the account %s: %s", a->path, key,
			    sqlite3_errmsg(a->db));
		return sqlite3_errcode(a->db) == SQLITE_CONSTRAINT ? -EEXIST : -EIO;
	}
	add_name(a, key);
	snprintf(r->account, sizeof(r->account), "%s", r->name);
	if (r->actor[0])
		log_event(LOG_NOTICE, LOG_FIELDS(.event = "account_registered", .nick = r->name,
						 .actor = r->actor),
			  "account %s registered by an admin", r->name);
	else
		log_event(LOG_INFO, LOG_FIELDS(.event = "account_registered", .nick = r->name,
					       .peer = r->address),
			  "account %s registered from %s", r->name, r->address);
	return 0;
}

/* Writes the password of R (new_password: SET_PASSWORD) for KEY. */
static int set_password(struct accounts *a, const char *key, const char *password)
{
	char hash[CRYPT_OUTPUT_SIZE];
	struct scram_keys k;
	if (!hash_password(password, hash) || !scram_keys(password, &k))
		return -EIO;
	sqlite3_stmt *q = a->stmt[ST_SET_PASSWORD];
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, hash, -1, SQLITE_STATIC);
	bind_keys(q, 3, &k);
	bool done = step_done(q);
	OPENSSL_cleanse(&k, sizeof(k));
	return done ? 0 : -EIO;
}

static int do_set_password(struct accounts *a, struct account_request *r, const char *key)
{
	if (!password_fits(r->new_password))
		return -EINVAL;
	char display[NAME_MAX_LEN + 1], hash[CRYPT_OUTPUT_SIZE];
	int found = find(a, key, display, hash, NULL);
	if (found <= 0)
		return found == 0 ? -ENOENT : -EIO;
	int err = set_password(a, key, r->new_password);
	if (err)
		return err;
	tell_replica(a, key, false);
	snprintf(r->account, sizeof(r->account), "%s", display);
	log_event(LOG_NOTICE, LOG_FIELDS(.event = "password_changed", .nick = display,
					 .actor = r->actor),
		  "account %s: password set by an admin", display);
	return 0;
}

static void remove_name(struct accounts *a, const char *key)
{
	pthread_rwlock_wrlock(&a->names_lock);
	char (*found)[NAME_MAX_LEN + 1] =
		a->name_count ? bsearch(key, a->names, a->name_count, sizeof(*a->names), name_cmp) : NULL;
	if (found) {
		size_t i = (size_t)(found - a->names);
		memmove(a->names + i, a->names + i + 1, (a->name_count - i - 1) * sizeof(*a->names));
		a->name_count--;
	}
	pthread_rwlock_unlock(&a->names_lock);
}

static int do_delete(struct accounts *a, struct account_request *r, const char *key)
{
	char display[NAME_MAX_LEN + 1], hash[CRYPT_OUTPUT_SIZE];
	int found = find(a, key, display, hash, NULL);
	if (found <= 0)
		return found == 0 ? -ENOENT : -EIO;
	sqlite3_stmt *q = a->stmt[ST_DELETE];
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	bool done = step_done(q);
	sqlite3_clear_bindings(q);
	if (!done)
		return -EIO;
	q = a->stmt[ST_DELETE_ROOMS];
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	if (!step_done(q))
		log_warning("%s: the rooms of the account %s stay registered: %s", a->path, key,
			    sqlite3_errmsg(a->db));
	sqlite3_clear_bindings(q);
	remove_name(a, key);
	tell_replica(a, key, true);
	snprintf(r->account, sizeof(r->account), "%s", display);
	log_event(LOG_NOTICE, LOG_FIELDS(.event = "account_deleted", .nick = display,
					 .actor = r->actor),
		  "account %s deleted", display);
	return 0;
}

static int do_list(struct accounts *a, struct account_request *r)
{
	sqlite3_stmt *q = a->stmt[ST_LIST];
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (r->list_count == cap) {
			cap = cap ? 2 * cap : 64;
			r->list = xrealloc(r->list, cap * sizeof(*r->list));
		}
		struct account_info *i = &r->list[r->list_count++];
		const char *name = (const char *)sqlite3_column_text(q, 0);
		snprintf(i->name, sizeof(i->name), "%s", name ? name : "");
		i->created = sqlite3_column_int64(q, 1);
		i->last_login = sqlite3_column_int64(q, 2);
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* An operator's password, with the login limits (an operator's name
 * counts apart from the account of the same name). */
static int do_oper(struct accounts *a, struct account_request *r)
{
	char key[NAME_MAX_LEN + 8];
	snprintf(key, sizeof(key), "oper:%s", r->name);
	ascii_lower(key, key, sizeof(key));
	if (!may_try(a, key, r->address, &r->retry_s))
		return -EAGAIN;
	if (!check_password(r->password, r->oper_hash)) {
		failed(a, key, r->address, "wrong operator password");
		return -EACCES;
	}
	return 0;
}

static void logged_in(struct accounts *a, const char *key)
{
	sqlite3_stmt *q = a->stmt[ST_LOGGED_IN];
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, now_s());
	step_done(q);
}

/* The password check of LOGIN and PASSWORD, with the limits. */
static int do_check(struct accounts *a, struct account_request *r, const char *key)
{
	if (!may_try(a, key, r->address, &r->retry_s))
		return -EAGAIN;
	char display[NAME_MAX_LEN + 1], hash[CRYPT_OUTPUT_SIZE];
	int found = find(a, key, display, hash, NULL);
	if (found < 0)
		return -EIO;
	if (found == 0) {
		failed(a, key, r->address, "no such account");
		return -ENOENT;
	}
	if (!check_password(r->password, hash)) {
		failed(a, key, r->address, "wrong password");
		return -EACCES;
	}
	snprintf(r->account, sizeof(r->account), "%s", display);
	return 0;
}

static int do_password(struct accounts *a, struct account_request *r, const char *key)
{
	if (!password_fits(r->new_password))
		return -EINVAL;
	int err = do_check(a, r, key);
	if (err)
		return err;
	if (set_password(a, key, r->new_password) < 0)
		return -EIO;
	tell_replica(a, key, false);
	log_event(LOG_INFO, LOG_FIELDS(.event = "password_changed", .nick = r->account,
				       .peer = r->address),
		  "account %s: password changed from %s", r->account, r->address);
	return 0;
}

static int do_scram(struct accounts *a, struct account_request *r, const char *key)
{
	if (!may_try(a, key, r->address, &r->retry_s))
		return -EAGAIN;
	char display[NAME_MAX_LEN + 1], hash[CRYPT_OUTPUT_SIZE];
	struct scram_keys k;
	int found = find(a, key, display, hash, &k);
	if (found <= 0) {
		/* An unknown account is a failure now; a known one's is
		 * counted when the exchange ends (ACCOUNT_SCRAM_DONE). */
		if (found == 0)
			failed(a, key, r->address, "no such account");
		return found == 0 ? -ENOENT : -EIO;
	}
	snprintf(r->account, sizeof(r->account), "%s", display);
	memcpy(r->salt, k.salt, sizeof(r->salt));
	r->iterations = k.iterations;
	memcpy(r->stored_key, k.stored_key, sizeof(r->stored_key));
	memcpy(r->server_key, k.server_key, sizeof(r->server_key));
	OPENSSL_cleanse(&k, sizeof(k));
	return 0;
}

static void handle(struct accounts *a, struct account_request *r)
{
	char key[NAME_MAX_LEN + 1];
	ascii_lower(key, r->name, sizeof(key));
	switch (r->op) {
	case ACCOUNT_REGISTER:
		r->result = do_register(a, r, key);
		break;
	case ACCOUNT_LOGIN:
		r->result = do_check(a, r, key);
		if (r->result == 0) {
			logged_in(a, key);
			log_event(LOG_INFO, LOG_FIELDS(.event = "login", .nick = r->account,
						       .peer = r->address),
				  "login to account %s from %s", r->account, r->address);
		}
		break;
	case ACCOUNT_PASSWORD:
		r->result = do_password(a, r, key);
		break;
	case ACCOUNT_SCRAM:
		r->result = do_scram(a, r, key);
		break;
	case ACCOUNT_SCRAM_DONE:
		if (r->ok) {
			logged_in(a, key);
			log_event(LOG_INFO, LOG_FIELDS(.event = "login", .nick = r->name,
						       .peer = r->address),
				  "login to account %s from %s (SCRAM-SHA-256)", r->name, r->address);
		} else {
			failed(a, key, r->address, "wrong password (SCRAM-SHA-256)");
		}
		r->result = 0;
		break;
	case ACCOUNT_ADD:
		r->result = do_register(a, r, key);
		break;
	case ACCOUNT_SET_PASSWORD:
		r->result = do_set_password(a, r, key);
		break;
	case ACCOUNT_DELETE:
		r->result = do_delete(a, r, key);
		break;
	case ACCOUNT_LIST:
		r->result = do_list(a, r);
		break;
	case ACCOUNT_OPER:
		r->result = do_oper(a, r);
		break;
	case ACCOUNT_REPLICA:
		keep_row(a, r->row);
		r->result = 0;
		break;
	case ACCOUNT_OFFER:
		offer_all(a);
		r->result = 0;
		break;
	}
	OPENSSL_cleanse(r->password, sizeof(r->password));
	OPENSSL_cleanse(r->new_password, sizeof(r->new_password));
}

static void *accounts_main(void *arg)
{
	struct accounts *a = arg;
	pthread_mutex_lock(&a->lock);
	for (;;) {
		while (!a->count && !a->stopping)
			pthread_cond_wait(&a->cond, &a->lock);
		if (!a->count)
			break;
		struct account_request *r = a->queue[0];
		memmove(a->queue, a->queue + 1, --a->count * sizeof(*a->queue));
		pthread_mutex_unlock(&a->lock);
		handle(a, r);
		if (r->done)
			r->done(r);
		else
			account_request_free(r);
		pthread_mutex_lock(&a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* ---- the other threads' side ---------------------------------------------------- */

struct accounts *accounts_open(const char *path, char **err)
{
	struct accounts *a = xcalloc(1, sizeof(*a));
	a->path = xstrdup(path);
	pthread_rwlock_init(&a->names_lock, NULL);
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	if (sqlite3_open_v2(path, &a->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		*err = xasprintf("%s: %s", path, a->db ? sqlite3_errmsg(a->db) : "out of memory");
		goto fail;
	}
	/* The store thread's commits hold the file briefly. */
	sqlite3_busy_timeout(a->db, 5000);
	for (int i = 0; i < ST_COUNT; i++)
		if (sqlite3_prepare_v3(a->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &a->stmt[i],
				       NULL) != SQLITE_OK) {
			*err = xasprintf("%s: %s", path, sqlite3_errmsg(a->db));
			goto fail;
		}
	sqlite3_stmt *q = a->stmt[ST_NAMES];
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (a->name_count == a->name_cap) {
			a->name_cap = a->name_cap ? a->name_cap * 2 : 64;
			a->names = xrealloc(a->names, a->name_cap * sizeof(*a->names));
		}
		snprintf(a->names[a->name_count++], sizeof(*a->names), "%s",
			 (const char *)sqlite3_column_text(q, 0));
	}
	sqlite3_reset(q);
	if (rc != SQLITE_DONE) {
		*err = xasprintf("%s: cannot read the accounts: %s", path, sqlite3_errmsg(a->db));
		goto fail;
	}
	return a;
fail:
	accounts_close(a);
	return NULL;
}

void accounts_set_replica(struct accounts *a, const struct accounts_replica *rep)
{
	a->replica = *rep;
}

void accounts_apply(struct accounts *a, const struct account_row *row)
{
	struct account_request *r = xcalloc(1, sizeof(*r));
	r->op = ACCOUNT_REPLICA;
	snprintf(r->name, sizeof(r->name), "%s", row->name);
	r->row = xmalloc(sizeof(*r->row));
	*r->row = *row;
	accounts_request(a, r);
}

void accounts_offer(struct accounts *a)
{
	struct account_request *r = xcalloc(1, sizeof(*r));
	r->op = ACCOUNT_OFFER;
	accounts_request(a, r);
}

int accounts_start(struct accounts *a)
{
	int r = pthread_create(&a->thread, NULL, accounts_main, a);
	if (r != 0)
		return -r;
	pthread_setname_np(a->thread, "chatd-accounts");
	a->started = true;
	return 0;
}

void accounts_request(struct accounts *a, struct account_request *r)
{
	pthread_mutex_lock(&a->lock);
	if (a->count == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 16;
		a->queue = xrealloc(a->queue, a->cap * sizeof(*a->queue));
	}
	a->queue[a->count++] = r;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

void account_request_free(struct account_request *r)
{
	if (r) {
		free(r->list);
		if (r->row) {
			OPENSSL_cleanse(r->row, sizeof(*r->row));
			free(r->row);
		}
		OPENSSL_cleanse(r, sizeof(*r));
		free(r);
	}
}

void accounts_close(struct accounts *a)
{
	if (!a)
		return;
	if (a->started) {
		pthread_mutex_lock(&a->lock);
		a->stopping = true;
		pthread_cond_signal(&a->cond);
		pthread_mutex_unlock(&a->lock);
		pthread_join(a->thread, NULL);
	}
	for (size_t i = 0; i < a->count; i++)
		account_request_free(a->queue[i]);
	free(a->queue);
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(a->stmt[i]);
	if (a->db)
		sqlite3_close(a->db);
	free(a->names);
	free(a->by_account.items);
	free(a->by_address.items);
	pthread_rwlock_destroy(&a->names_lock);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cond);
	free(a->path);
	free(a);
}
