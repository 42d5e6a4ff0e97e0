/* Accounts: a registered nick, its password (hashed with yescrypt) and its
 * SCRAM-SHA-256 keys, in the database's accounts table, run by one thread
 * of their own with its own connection to the file, so that hashing (tens
 * of milliseconds a password, on purpose) never holds up a worker or the
 * store thread's history.
 *
 * Requests come from workers and their answers go back through a callback
 * on the accounts thread. Which nicks are registered is also kept in
 * memory, for any thread to ask at once (nick protection). Failed logins
 * are limited per account and per address (ACCOUNTS_FAIL_*), and logged;
 * a password is never logged and is wiped from memory once used. */
#ifndef CHATD_STORE_ACCOUNTS_H
#define CHATD_STORE_ACCOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/text.h"

#define ACCOUNTS_PASSWORD_MIN 8
#define ACCOUNTS_PASSWORD_MAX 128
/* Failed logins: at most this many for one account, and this many from
 * one address, in ACCOUNTS_FAIL_WINDOW_S; beyond, attempts are refused
 * without a look at the password until the window has passed. */
#define ACCOUNTS_FAIL_ACCOUNT 5
#define ACCOUNTS_FAIL_ADDRESS 10
#define ACCOUNTS_FAIL_WINDOW_S 600
/* SCRAM-SHA-256: iterations of PBKDF2 (RFC 7677's minimum) and salt size. */
#define ACCOUNTS_SCRAM_ITERATIONS 4096
#define ACCOUNTS_SCRAM_SALT 16
#define ACCOUNTS_SCRAM_KEY 32

struct accounts;

/* An account as it is kept, for another copy of the accounts (a
 * cluster's shared bucket). */
struct account_row {
	char name[NAME_MAX_LEN + 1];       /* lower case */
	char display[NAME_MAX_LEN + 1];    /* as registered */
	char hash[384];                    /* crypt(3)'s: CRYPT_OUTPUT_SIZE */
	unsigned char salt[ACCOUNTS_SCRAM_SALT];
	unsigned iterations;
	unsigned char stored_key[ACCOUNTS_SCRAM_KEY];
	unsigned char server_key[ACCOUNTS_SCRAM_KEY];
	int64_t created;                   /* seconds since the epoch */
	bool deleted;                      /* it is no more */
};

/* Where the accounts are copied to, with a say on new names (in a
 * cluster: the other nodes'). Called on the accounts thread. */
struct accounts_replica {
	void *ctx;
	/* Before a new account is kept: 0, or -EEXIST when the name is
	 * another copy's already. */
	int (*create)(void *ctx, const struct account_row *row);
	/* After a change was kept here: a new password, or deleted. */
	void (*changed)(void *ctx, const struct account_row *row);
	/* An account kept here, offered by accounts_offer() (NULL: none):
	 * the replica takes it if the name was never its own. */
	void (*offer)(void *ctx, const struct account_row *row);
};

enum account_op {
	ACCOUNT_REGISTER, /* name, password: a new account, logged in */
	ACCOUNT_LOGIN,    /* name, password */
	ACCOUNT_PASSWORD, /* name, password (the old), new_password */
	ACCOUNT_SCRAM,    /* name: its SCRAM keys, for a SCRAM exchange */
	ACCOUNT_SCRAM_DONE, /* name, ok: how a SCRAM exchange ended (counted as a
			     * login, or a failed one) */
	/* An admin's (chatctl), for actor; no login limits: */
	ACCOUNT_ADD,      /* name, password: a new account */
	ACCOUNT_SET_PASSWORD, /* name, new_password */
	ACCOUNT_DELETE,   /* name: the account and the registration of its rooms */
	ACCOUNT_LIST,     /* every account, in list */
	/* An IRC client's OPER: name (the operator's), password, checked
	 * against oper_hash (from the config), with the login limits. */
	ACCOUNT_OPER,
	/* accounts_apply(): row, another copy's (no answer). */
	ACCOUNT_REPLICA,
	/* accounts_offer(): every account, to the replica's offer() (no
	 * answer). */
	ACCOUNT_OFFER,
};

/* An account as ACCOUNT_LIST tells it. */
struct account_info {
	char name[NAME_MAX_LEN + 1];
	int64_t created, last_login;   /* seconds since the epoch */
};

struct account_request {
	enum account_op op;
	char name[NAME_MAX_LEN + 1];       /* the nick, as typed */
	char password[ACCOUNTS_PASSWORD_MAX + 1];
	char new_password[ACCOUNTS_PASSWORD_MAX + 1];
	char address[64];                  /* the client's, for the limits and the log */
	char actor[96];                    /* ACCOUNT_ADD and later: the admin, for the log */
	char oper_hash[384];               /* ACCOUNT_OPER: CRYPT_OUTPUT_SIZE */
	bool ok;                           /* ACCOUNT_SCRAM_DONE */

	/* The answer: 0, or -EEXIST (already registered), -ENOENT (no such
	 * account), -EACCES (wrong password), -EAGAIN (too many failures:
	 * retry_s), -EINVAL (a password too short or too long), -EIO (the
	 * database). */
	int result;
	int retry_s;
	char account[NAME_MAX_LEN + 1];    /* the account's name as registered */
	/* ACCOUNT_SCRAM */
	unsigned char salt[ACCOUNTS_SCRAM_SALT];
	unsigned iterations;
	unsigned char stored_key[ACCOUNTS_SCRAM_KEY];
	unsigned char server_key[ACCOUNTS_SCRAM_KEY];
	/* ACCOUNT_REPLICA (freed with the request) */
	struct account_row *row;
	/* ACCOUNT_LIST (freed with the request) */
	struct account_info *list;
	size_t list_count;

	/* Called on the accounts thread with the answer; owns the request
	 * from then (account_request_free). */
	void (*done)(struct account_request *r);
	/* The asker's, untouched here. */
	void *ctx;
	int fd;
	uint64_t conn_id;
	int tag;
};

/* Opens PATH (whose schema store_open brought up to date) for accounts and
 * loads the registered names. NULL and *ERR on failure. */
struct accounts *accounts_open(const char *path, char **err);

/* Before accounts_start: changes are copied to REP (copied), which has a
 * say on new names. */
void accounts_set_replica(struct accounts *a, const struct accounts_replica *rep);

/* Starts the thread: 0 or -errno. */
int accounts_start(struct accounts *a);

/* Any thread: ROW as another copy has it now (or deleted), to be kept
 * here too, after what was asked before. */
void accounts_apply(struct accounts *a, const struct account_row *row);

/* Any thread: every account kept here, to the replica's offer(), after
 * what was asked before (in a cluster: the accounts a node had before it
 * joined become the others' too). */
void accounts_offer(struct accounts *a);

/* Queues R (taken). Any thread. */
void accounts_request(struct accounts *a, struct account_request *r);

/* Whether NICK is a registered account (ignoring case). Any thread. */
bool accounts_registered(struct accounts *a, const char *nick);

/* How many accounts are registered. Any thread. */
size_t accounts_count(struct accounts *a);

/* Wipes R's passwords and frees it. */
void account_request_free(struct account_request *r);

/* Answers what is queued, stops the thread, closes, frees A. */
void accounts_close(struct accounts *a);

#endif
