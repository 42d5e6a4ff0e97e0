/* What the files of IRC's codec share (proto/irc.c: sessions,
 * registration, dispatch; irc_channels.c: the commands on channels and
 * users; irc_encode.c: events as IRC messages), and nothing else includes. */
#ifndef CHATD_PROTO_IRC_IMPL_H
#define CHATD_PROTO_IRC_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/text.h"
#include "base/util.h"
#include "core/history.h"
#include "core/host.h"
#include "proto/irc.h"
#include "proto/irc_message.h"

#define MAX_TARGETS 4   /* PRIVMSG/NOTICE/KICK targets, ISUPPORT MAXTARGETS */
#define USERHOST_MAX 5
#define ISON_MAX 64
#define WHO_MAX 200     /* users a WHO mask lists at most */
#define MODES_MAX 3     /* ISUPPORT MODES: changes with a parameter a MODE */

/* The capabilities a client may ask for (CAP REQ). */
enum {
	CAP_MULTI_PREFIX = 1 << 0,
	CAP_MESSAGE_TAGS = 1 << 1,
	CAP_SERVER_TIME = 1 << 2,
	CAP_ECHO_MESSAGE = 1 << 3,
	CAP_USERHOST_IN_NAMES = 1 << 4,
	CAP_BATCH = 1 << 5,
	CAP_CHATHISTORY = 1 << 6, /* draft/chathistory: no replay on JOIN */
	CAP_SASL = 1 << 7,
	CAP_ACCOUNT_REGISTRATION = 1 << 8, /* draft/account-registration */
};

struct irc_sasl;

/* Lines one CHATHISTORY may ask for (ISUPPORT CHATHISTORY). */
#define IRC_CHATHISTORY_MAX 100

/* What an IRC session is, beyond what the core knows. */
struct irc_state {
	bool cap_negotiating;  /* registration waits for CAP END */
	bool pass_ok;          /* PASS matched [irc] password (or none is asked) */
	bool have_user;
	bool ping_sent;        /* a PING of ours is unanswered */
	unsigned caps;
	uint64_t opened_ms;    /* when it connected */
	size_t budget;         /* bytes of listing the line being handled may get */
	bool cut;              /* and it was told it got no more */
	char nick[NAME_MAX_LEN + 1]; /* asked for before registration; "" none */
	struct irc_sasl *sasl;  /* an AUTHENTICATE exchange under way (irc_accounts.c) */
};

struct irc_state *irc_state_of(struct session *s);

/* ---- parameters ---- */

/* Copies LEN bytes at P into BUF (SIZE bytes), cut to fit, NUL-terminated. */
void irc_copy(char *buf, size_t size, const char *p, size_t len);
/* "#name" as a room name in RET; false when it is not one. */
bool irc_room_name(const char *p, size_t len, char ret[NAME_MAX_LEN + 1]);
/* A nick in RET; false when it is not one. */
bool irc_nick_name(const char *p, size_t len, char ret[NAME_MAX_LEN + 1]);

/* A parameter echoed back in a numeric: cleaned and bounded. */
struct irc_echo {
	char text[MAX_TARGETS * (NAME_MAX_LEN + 2) + 1];
};
const char *irc_echo(struct irc_echo *e, const char *p, size_t len);

/* ---- replies ---- */

/* The server's name ([irc] server_name). */
const char *irc_server(struct worker *w);
/* Who numerics are addressed to: the nick, or "*" before there is one. */
const char *irc_me(struct session *s);
/* TEXT (LEN bytes) and CRLF, to S. */
void irc_send_text(struct worker *w, struct session *s, const char *text, size_t len);
/* One message, as formatted (CRLF added), cut to 512 bytes. */
void irc_raw(struct worker *w, struct session *s, const char *fmt, ...) PRINTF_LIKE(3, 4);
/* ":server CODE target " + the formatted rest. */
void irc_num(struct worker *w, struct session *s, const char *code, const char *fmt, ...)
	PRINTF_LIKE(4, 5);
void irc_need_more_params(struct worker *w, struct session *s, const char *command);
/* ERROR :Closing Link: host (WHY), and S is let go for REASON. */
void irc_closing(struct worker *w, struct session *s, const char *reason, const char *why);
/* 251-266. */
void irc_send_lusers(struct worker *w, struct session *s);
/* 375/372/376, or 422. */
void irc_send_motd(struct worker *w, struct session *s);
/* "@+" (multi-prefix), "@", "+" or "", as S asked. */
const char *irc_prefixes(struct session *s, bool op, bool voice);
/* Whether one more line of LEN bytes of a listing (NAMES, WHO, LIST) fits
 * what one command may get back: half of max_sendq, so that no reply the
 * server chooses makes its reader look slow. The first time not, S is
 * told its reply was cut. */
bool irc_bulk_ok(struct worker *w, struct session *s, size_t len);
#define WHO_LINE_EST (2 * NAME_MAX_LEN + USER_MAX_LEN + HOST_MAX_LEN + REALNAME_MAX_LEN + 40)

/* A room's 353s and its 366. */
void irc_send_names(struct worker *w, struct session *s, const char *name);

/* ---- irc_history.c ---- */

/* What S is shown of ROOM's past on JOIN (SNAP, then released). */
void irc_replay(struct worker *w, struct session *s, const char *room, struct history_snapshot *snap);

/* Who asked the accounts thread (account_request.tag). */
enum {
	ASKED_BY_SASL,
	ASKED_BY_REGISTER,
	ASKED_BY_NICKSERV,
	ASKED_BY_OPER,
};

/* ---- irc_oper.c ---- */

/* The answer to OPER's password check. */
void irc_oper_answer(struct worker *w, struct session *s, const struct account_request *r);

/* ---- irc_accounts.c ---- */

/* A PRIVMSG to NickServ: TEXT (LEN bytes), its command. */
void irc_nickserv(struct worker *w, struct session *s, const char *text, size_t len);
/* Frees ST's SASL exchange, its secrets wiped. */
void irc_sasl_free(struct irc_state *st);

/* ---- the commands of irc_channels.c, irc_history.c and irc_accounts.c (the table is in irc.c) ---- */

typedef void irc_handler(struct worker *w, struct session *s, const struct irc_message *msg);
irc_handler irc_cmd_join, irc_cmd_part, irc_cmd_privmsg, irc_cmd_notice, irc_cmd_names,
	irc_cmd_who, irc_cmd_whois, irc_cmd_topic, irc_cmd_list, irc_cmd_kick, irc_cmd_mode,
	irc_cmd_away, irc_cmd_ison, irc_cmd_userhost, irc_cmd_chathistory, irc_cmd_authenticate,
	irc_cmd_register, irc_cmd_oper, irc_cmd_kill, irc_cmd_wallops, irc_cmd_rehash;

#endif
