/* IRC's side of accounts: SASL (IRCv3 sasl, mechanisms PLAIN and
 * SCRAM-SHA-256) with AUTHENTICATE, the IRCv3 draft/account-registration
 * REGISTER command, and NickServ, the service clients without SASL talk to
 * (/msg NickServ IDENTIFY|REGISTER|PASSWORD|HELP). Passwords are checked
 * by the accounts thread (store/accounts.h); the answers come back through
 * irc_account(). */
#include "autoconf.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/chat.h"
#include "proto/irc_impl.h"
#include "proto/scram.h"

/* An AUTHENTICATE payload, decoded, at most (PLAIN: two names and a
 * password; SCRAM's messages). */
#define SASL_MAX 1024
/* AUTHENTICATE's chunks of base64. */
#define SASL_CHUNK 400

/* SASL's state on a connection (irc_state.sasl): which step is next. */
enum sasl_step {
	SASL_IDLE,
	SASL_PLAIN,        /* waiting for PLAIN's payload */
	SASL_SCRAM_FIRST,  /* waiting for the client-first message */
	SASL_SCRAM_FINAL,  /* waiting for the client-final message */
	SASL_SCRAM_ACK,    /* the server-final message sent: waiting for "+" */
	SASL_CHECKING,     /* the accounts thread has it */
};

struct irc_sasl {
	enum sasl_step step;
	char buf[4 * (SASL_MAX / 3) + 8]; /* base64 gathered from chunks */
	size_t len;
	struct scram scram;
};

static const char *nickserv_prefix(struct worker *w)
{
	static __thread char prefix[CONFIG_IRC_SERVER_NAME_MAX + 32];
	snprintf(prefix, sizeof(prefix), "NickServ!NickServ@%s", irc_server(w));
	return prefix;
}

static void nickserv_say(struct worker *w, struct session *s, const char *fmt, ...)
	PRINTF_LIKE(3, 4);

/* A notice from NickServ to S. */
static void nickserv_say(struct worker *w, struct session *s, const char *fmt, ...)
{
	char text[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	irc_raw(w, s, ":%s NOTICE %s :%s", nickserv_prefix(w), irc_me(s), text);
}

static struct irc_sasl *sasl_of(struct session *s)
{
	struct irc_state *st = irc_state_of(s);
	if (!st->sasl)
		st->sasl = xcalloc(1, sizeof(*st->sasl));
	return st->sasl;
}

void irc_sasl_free(struct irc_state *st)
{
	if (st->sasl) {
		OPENSSL_cleanse(st->sasl, sizeof(*st->sasl));
		free(st->sasl);
		st->sasl = NULL;
	}
}

static void sasl_reset(struct session *s)
{
	irc_sasl_free(irc_state_of(s));
}

/* 900: S is logged in to ACCOUNT. */
static void logged_in(struct worker *w, struct session *s, const char *account)
{
	chat_logged_in(w, s, account);
	irc_num(w, s, "900", "%s!%s@%s %s :You are now logged in as %s", irc_me(s),
		s->member.user[0] ? s->member.user : "*", s->member.host, account, account);
}

static void sasl_fail(struct worker *w, struct session *s)
{
	sasl_reset(s);
	irc_num(w, s, "904", ":SASL authentication failed");
}

static struct account_request *request(enum account_op op, const char *name, int tag)
{
	struct account_request *r = xcalloc(1, sizeof(*r));
	r->op = op;
	r->tag = tag;
	snprintf(r->name, sizeof(r->name), "%s", name);
	return r;
}

/* PLAIN: "authzid\0authcid\0password". */
static void sasl_plain(struct worker *w, struct session *s, const unsigned char *data, size_t len)
{
	const char *authzid = (const char *)data;
	const char *z1 = memchr(data, '\0', len);
	const char *authcid = z1 ? z1 + 1 : NULL;
	const char *z2 = authcid ? memchr(authcid, '\0', len - (size_t)(authcid - authzid)) : NULL;
	const char *password = z2 ? z2 + 1 : NULL;
	size_t pass_len = password ? len - (size_t)(password - authzid) : 0;
	char name[NAME_MAX_LEN + 1];
	if (!password || !irc_nick_name(authcid, (size_t)(z2 - authcid), name) ||
	    (z1 != authzid && strncasecmp(authzid, name, (size_t)(z1 - authzid) + 1) != 0) ||
	    pass_len == 0 || pass_len > ACCOUNTS_PASSWORD_MAX || memchr(password, '\0', pass_len)) {
		sasl_fail(w, s);
		return;
	}
	struct account_request *r = request(ACCOUNT_LOGIN, name, ASKED_BY_SASL);
	memcpy(r->password, password, pass_len);
	r->password[pass_len] = '\0';
	sasl_of(s)->step = SASL_CHECKING;
	worker_account_request(w, s, r);
}

static void sasl_send(struct worker *w, struct session *s, const char *msg)
{
	char b64[2 * SCRAM_MESSAGE_MAX];
	size_t n = scram_base64((const unsigned char *)msg, strlen(msg), b64, sizeof(b64));
	/* In chunks of 400, the last shorter (an empty "+" after a full one). */
	for (size_t at = 0;; at += SASL_CHUNK) {
		size_t left = n - at;
		irc_raw(w, s, "AUTHENTICATE %.*s", (int)(left < SASL_CHUNK ? left : SASL_CHUNK), b64 + at);
		if (left < SASL_CHUNK)
			break;
		if (left == SASL_CHUNK) {
			irc_raw(w, s, "AUTHENTICATE +");
			break;
		}
	}
}

/* A whole payload of the step S is at. */
static void sasl_payload(struct worker *w, struct session *s, const unsigned char *data, size_t len)
{
	struct irc_sasl *sa = sasl_of(s);
	switch (sa->step) {
	case SASL_PLAIN:
		sasl_plain(w, s, data, len);
		break;
	case SASL_SCRAM_FIRST: {
		char name[NAME_MAX_LEN + 1];
		if (!scram_client_first(&sa->scram, (const char *)data, len) ||
		    !irc_nick_name(sa->scram.user, strlen(sa->scram.user), name)) {
			sasl_fail(w, s);
			return;
		}
		sa->step = SASL_CHECKING;
		worker_account_request(w, s, request(ACCOUNT_SCRAM, name, ASKED_BY_SASL));
		break;
	}
	case SASL_SCRAM_FINAL: {
		char final[SCRAM_MESSAGE_MAX];
		int ok = scram_client_final(&sa->scram, (const char *)data, len, final, sizeof(final));
		if (ok < 0) {
			sasl_fail(w, s);
			return;
		}
		/* Counted by the accounts thread, as a login or a failure. */
		struct account_request *r = request(ACCOUNT_SCRAM_DONE, sa->scram.user, ASKED_BY_SASL);
		r->ok = ok == 1;
		worker_account_request(w, s, r);
		if (!ok) {
			sasl_fail(w, s);
			return;
		}
		sa->step = SASL_SCRAM_ACK;
		sasl_send(w, s, final);
		break;
	}
	case SASL_SCRAM_ACK: {
		/* The account's name as registered came with its keys. */
		char account[NAME_MAX_LEN + 1];
		snprintf(account, sizeof(account), "%s", sa->scram.user);
		sasl_reset(s);
		logged_in(w, s, account);
		irc_num(w, s, "903", ":SASL authentication successful");
		break;
	}
	case SASL_IDLE:
	case SASL_CHECKING:
		break;
	}
}

void irc_cmd_authenticate(struct worker *w, struct session *s, const struct irc_message *msg)
{
	if (msg->count < 1 || msg->param_len[0] == 0) {
		irc_need_more_params(w, s, "AUTHENTICATE");
		return;
	}
	const char *p = msg->params[0];
	size_t len = msg->param_len[0];
	struct irc_sasl *sa = irc_state_of(s)->sasl;
	if (len == 1 && p[0] == '*') {
		if (sa && sa->step != SASL_IDLE) {
			sasl_reset(s);
			irc_num(w, s, "906", ":SASL authentication aborted");
		} else {
			irc_num(w, s, "904", ":SASL authentication failed");
		}
		return;
	}
	if (!sa || sa->step == SASL_IDLE) {
		if (s->member.account[0]) {
			irc_num(w, s, "907", ":You have already authenticated using SASL");
			return;
		}
		enum sasl_step step = len == 5 && strncasecmp(p, "PLAIN", 5) == 0 ? SASL_PLAIN
				      : len == 13 && strncasecmp(p, "SCRAM-SHA-256", 13) == 0
					      ? SASL_SCRAM_FIRST
					      : SASL_IDLE;
		if (step == SASL_IDLE) {
			irc_num(w, s, "908", "PLAIN,SCRAM-SHA-256 :are available SASL mechanisms");
			irc_num(w, s, "904", ":SASL authentication failed");
			return;
		}
		sa = sasl_of(s);
		sa->step = step;
		sa->len = 0;
		irc_raw(w, s, "AUTHENTICATE +");
		return;
	}
	if (sa->step == SASL_CHECKING)
		return; /* the answer comes; nothing else is taken meanwhile */
	if (len > SASL_CHUNK) {
		sasl_reset(s);
		irc_num(w, s, "905", ":SASL message too long");
		return;
	}
	bool empty = len == 1 && p[0] == '+';
	if (!empty) {
		if (sa->len + len >= sizeof(sa->buf)) {
			sasl_reset(s);
			irc_num(w, s, "905", ":SASL message too long");
			return;
		}
		memcpy(sa->buf + sa->len, p, len);
		sa->len += len;
	}
	if (len == SASL_CHUNK)
		return; /* more to come */
	unsigned char data[SASL_MAX + 4];
	long n = sa->len ? scram_unbase64(sa->buf, sa->len, data, sizeof(data) - 1) : 0;
	sa->len = 0;
	if (n < 0) {
		sasl_fail(w, s);
		return;
	}
	data[n] = '\0';
	sasl_payload(w, s, data, (size_t)n);
	OPENSSL_cleanse(data, sizeof(data));
}

/* ---- REGISTER (draft/account-registration) ----------------------------------- */

static void register_fail(struct worker *w, struct session *s, const char *code, const char *account,
			  const char *why)
{
	irc_raw(w, s, ":%s FAIL REGISTER %s %s :%s", irc_server(w), code, account, why);
}

void irc_cmd_register(struct worker *w, struct session *s, const struct irc_message *msg)
{
	struct irc_echo e;
	if (msg->count < 3) {
		irc_raw(w, s, ":%s FAIL REGISTER NEED_MORE_PARAMS * :REGISTER <account> {<email>|*} "
			"<password>", irc_server(w));
		return;
	}
	const char *account = irc_echo(&e, msg->params[0], msg->param_len[0]);
	if (!chat_joined(s)) {
		register_fail(w, s, "COMPLETE_CONNECTION_REQUIRED", account,
			      "Register once connected");
		return;
	}
	if (s->member.account[0]) {
		register_fail(w, s, "ALREADY_AUTHENTICATED", account, "You are logged in already");
		return;
	}
	if (!(msg->param_len[0] == 1 && msg->params[0][0] == '*') &&
	    (msg->param_len[0] != strlen(s->member.nick) ||
	     strncasecmp(msg->params[0], s->member.nick, msg->param_len[0]) != 0)) {
		register_fail(w, s, "ACCOUNT_NAME_MUST_BE_NICK", account,
			      "The account's name is your nick");
		return;
	}
	size_t pl = msg->param_len[2];
	if (pl < ACCOUNTS_PASSWORD_MIN || pl > ACCOUNTS_PASSWORD_MAX) {
		register_fail(w, s, pl < ACCOUNTS_PASSWORD_MIN ? "WEAK_PASSWORD" : "UNACCEPTABLE_PASSWORD",
			      s->member.nick, "A password is 8-128 bytes");
		return;
	}
	struct account_request *r = request(ACCOUNT_REGISTER, s->member.nick, ASKED_BY_REGISTER);
	memcpy(r->password, msg->params[2], pl);
	r->password[pl] = '\0';
	worker_account_request(w, s, r);
}

/* ---- NickServ ---------------------------------------------------------------- */

/* The words of TEXT (LEN bytes): up to MAX, each NUL-terminated in BUF. */
static size_t words(const char *text, size_t len, char *buf, size_t size, char **ret, size_t max)
{
	size_t n = 0, at = 0;
	for (size_t i = 0; i < len && n < max;) {
		while (i < len && text[i] == ' ')
			i++;
		if (i == len)
			break;
		size_t start = i;
		while (i < len && text[i] != ' ')
			i++;
		if (at + (i - start) + 1 > size)
			break;
		ret[n++] = memcpy(buf + at, text + start, i - start);
		buf[at + (i - start)] = '\0';
		at += i - start + 1;
	}
	return n;
}

void irc_nickserv(struct worker *w, struct session *s, const char *text, size_t len)
{
	char buf[2 * ACCOUNTS_PASSWORD_MAX + 64], *word[4];
	size_t n = words(text, len, buf, sizeof(buf), word, 4);
	if (n == 0 || strcasecmp(word[0], "HELP") == 0) {
		nickserv_say(w, s, "IDENTIFY [nick] <password>: log in to your account (and take its nick)");
		nickserv_say(w, s, "REGISTER <password> [email]: register your nick (8-128 bytes of password)");
		nickserv_say(w, s, "PASSWORD <old> <new>: change your password");
		nickserv_say(w, s, "SASL (PLAIN, SCRAM-SHA-256) logs in as you connect.");
	} else if (strcasecmp(word[0], "IDENTIFY") == 0 && (n == 2 || n == 3)) {
		char name[NAME_MAX_LEN + 1];
		const char *who = n == 3 ? word[1] : s->member.nick, *pass = word[n - 1];
		if (!irc_nick_name(who, strlen(who), name) || strlen(pass) > ACCOUNTS_PASSWORD_MAX) {
			nickserv_say(w, s, "Invalid password for %s.", n == 3 ? "that account" : who);
		} else {
			struct account_request *r = request(ACCOUNT_LOGIN, name, ASKED_BY_NICKSERV);
			snprintf(r->password, sizeof(r->password), "%s", pass);
			worker_account_request(w, s, r);
		}
	} else if (strcasecmp(word[0], "REGISTER") == 0 && (n == 2 || n == 3)) {
		size_t pl = strlen(word[1]);
		if (s->member.account[0]) {
			nickserv_say(w, s, "You are logged in as %s already.", s->member.account);
		} else if (pl < ACCOUNTS_PASSWORD_MIN || pl > ACCOUNTS_PASSWORD_MAX) {
			nickserv_say(w, s, "A password is %d-%d bytes.", ACCOUNTS_PASSWORD_MIN,
				     ACCOUNTS_PASSWORD_MAX);
		} else {
			struct account_request *r = request(ACCOUNT_REGISTER, s->member.nick,
							    ASKED_BY_NICKSERV);
			snprintf(r->password, sizeof(r->password), "%s", word[1]);
			worker_account_request(w, s, r);
		}
	} else if (strcasecmp(word[0], "PASSWORD") == 0 && n == 3) {
		size_t pl = strlen(word[2]);
		if (!s->member.account[0]) {
			nickserv_say(w, s, "You are not logged in: IDENTIFY first.");
		} else if (pl < ACCOUNTS_PASSWORD_MIN || pl > ACCOUNTS_PASSWORD_MAX ||
			   strlen(word[1]) > ACCOUNTS_PASSWORD_MAX) {
			nickserv_say(w, s, "A password is %d-%d bytes.", ACCOUNTS_PASSWORD_MIN,
				     ACCOUNTS_PASSWORD_MAX);
		} else {
			struct account_request *r = request(ACCOUNT_PASSWORD, s->member.account,
							    ASKED_BY_NICKSERV);
			snprintf(r->password, sizeof(r->password), "%s", word[1]);
			snprintf(r->new_password, sizeof(r->new_password), "%s", word[2]);
			worker_account_request(w, s, r);
		}
	} else {
		struct irc_echo e;
		nickserv_say(w, s, "Unknown command %s (or its parameters): /msg NickServ HELP",
			     irc_echo(&e, word[0], strlen(word[0])));
	}
	OPENSSL_cleanse(buf, sizeof(buf));
}

/* ---- the answers --------------------------------------------------------------- */

static void sasl_answer(struct worker *w, struct session *s, const struct account_request *r)
{
	struct irc_sasl *sa = irc_state_of(s)->sasl;
	if (r->op == ACCOUNT_SCRAM_DONE)
		return;
	if (!sa || sa->step != SASL_CHECKING)
		return; /* aborted meanwhile */
	if (r->result) {
		sasl_fail(w, s);
		return;
	}
	if (r->op == ACCOUNT_LOGIN) {
		sasl_reset(s);
		logged_in(w, s, r->account);
		irc_num(w, s, "903", ":SASL authentication successful");
		return;
	}
	/* ACCOUNT_SCRAM: the keys; the server-first message. */
	unsigned char raw[18];
	char nonce[25], first[SCRAM_MESSAGE_MAX];
	if (RAND_bytes(raw, sizeof(raw)) != 1 || !scram_base64(raw, sizeof(raw), nonce, sizeof(nonce)) ||
	    !scram_server_first(&sa->scram, nonce, r->salt, sizeof(r->salt), r->iterations,
				r->stored_key, r->server_key, first, sizeof(first))) {
		sasl_fail(w, s);
		return;
	}
	/* From here the name is the account's as registered. */
	snprintf(sa->scram.user, sizeof(sa->scram.user), "%s", r->account);
	sa->step = SASL_SCRAM_FINAL;
	sasl_send(w, s, first);
}

static void register_answer(struct worker *w, struct session *s, const struct account_request *r)
{
	switch (r->result) {
	case 0:
		irc_raw(w, s, ":%s REGISTER SUCCESS %s :Account created", irc_server(w), r->account);
		logged_in(w, s, r->account);
		break;
	case -EEXIST:
		register_fail(w, s, "ACCOUNT_EXISTS", r->name, "That account is registered already");
		break;
	case -EINVAL:
		register_fail(w, s, "WEAK_PASSWORD", r->name, "A password is 8-128 bytes");
		break;
	default:
		register_fail(w, s, "TEMPORARILY_UNAVAILABLE", r->name, "Try again later");
		break;
	}
}

static void nickserv_answer(struct worker *w, struct session *s, const struct account_request *r)
{
	switch (r->result) {
	case 0:
		break;
	case -EACCES:
		nickserv_say(w, s, "Invalid password for %s.", r->name);
		return;
	case -ENOENT:
		nickserv_say(w, s, "%s is not registered (REGISTER <password> registers your nick).", r->name);
		return;
	case -EEXIST:
		nickserv_say(w, s, "%s is registered already: IDENTIFY <password>.", r->name);
		return;
	case -EAGAIN:
		nickserv_say(w, s, "Too many failed logins for %s or from your address: try again in %d "
			     "seconds.", r->name, r->retry_s);
		return;
	case -EINVAL:
		nickserv_say(w, s, "A password is %d-%d bytes.", ACCOUNTS_PASSWORD_MIN, ACCOUNTS_PASSWORD_MAX);
		return;
	default:
		nickserv_say(w, s, "Accounts are not available right now; try again later.");
		return;
	}
	switch (r->op) {
	case ACCOUNT_REGISTER:
		nickserv_say(w, s, "%s is now registered to you.", r->account);
		logged_in(w, s, r->account);
		break;
	case ACCOUNT_LOGIN:
		nickserv_say(w, s, "You are now identified for %s.", r->account);
		logged_in(w, s, r->account);
		if (chat_rename(w, s, r->account) == -EEXIST)
			nickserv_say(w, s, "%s is in use by another connection: /nick %s once it is free "
				     "(one not logged in to %s is renamed within %d seconds).", r->account,
				     r->account, r->account, worker_config(w)->accounts_grace);
		break;
	case ACCOUNT_PASSWORD:
		nickserv_say(w, s, "Your password is changed.");
		break;
	default: /* SCRAM's are SASL's; the rest are an admin's or OPER's */
		break;
	}
}

void irc_account(struct worker *w, struct session *s, const struct account_request *r)
{
	switch (r->tag) {
	case ASKED_BY_SASL:
		sasl_answer(w, s, r);
		break;
	case ASKED_BY_REGISTER:
		register_answer(w, s, r);
		break;
	case ASKED_BY_OPER:
		irc_oper_answer(w, s, r);
		break;
	default:
		nickserv_answer(w, s, r);
		break;
	}
}
