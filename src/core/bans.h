/* Bans: addresses and networks, and nick masks, kept out of the chat, for
 * a time or until lifted (chatctl ban). A list is a snapshot that never
 * changes once made and is shared by reference: the main thread makes a
 * new one at each change and hands it to the workers, who check new
 * connections, nicks and, at once, everyone they hold against it. No I/O;
 * the store keeps them (store/store.h). */
#ifndef CHATD_CORE_BANS_H
#define CHATD_CORE_BANS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/config.h"
#include "base/text.h"

#define BAN_MASK_MAX 64
#define BAN_REASON_MAX 256
#define BAN_ACTOR_MAX 96
#define BANS_MAX 10000

enum ban_kind {
	BAN_ADDRESS, /* an address or network */
	BAN_NICK,    /* a nick mask: * and ? as in fnmatch(3), ignoring case */
};

struct ban {
	enum ban_kind kind;
	char mask[BAN_MASK_MAX];     /* as shown and kept: "192.0.2.0/24", "spam*" */
	struct config_cidr net;      /* BAN_ADDRESS */
	int64_t created, expires;    /* seconds since the epoch; expires 0: never */
	char reason[BAN_REASON_MAX]; /* may be empty */
	char actor[BAN_ACTOR_MAX];   /* who set it */
};

struct ban_list {
	atomic_int refs;
	size_t count;
	struct ban bans[];
};

/* MASK as a ban: an address or network, else a nick mask (the
 * characters of a nick, * and ?). False with *ERR (static) when it is
 * neither. Sets kind, mask and net. */
bool ban_parse_mask(const char *mask, struct ban *ret, const char **err);

/* "30m", "12h", "7d", "90s", "3600": seconds in *RET. */
bool ban_parse_duration(const char *text, int64_t *ret);

struct ban_list *ban_list_new(void);
struct ban_list *ban_list_ref(struct ban_list *l);
void ban_list_unref(struct ban_list *l);

/* A list of the N bans B (a mask twice: the later one). */
struct ban_list *ban_list_of(const struct ban *b, size_t n);
/* A new list: L with B (in the place of a ban of the same mask). */
struct ban_list *ban_list_with(const struct ban_list *l, const struct ban *b);
/* A new list: L without the ban of MASK (as kept: ban_parse_mask()'s);
 * NULL when L has none. */
struct ban_list *ban_list_without(const struct ban_list *l, const char *mask);
/* A new list: L without the bans expired at NOW; NULL when none did. */
struct ban_list *ban_list_expired(const struct ban_list *l, int64_t now);

/* The ban in force at NOW on ADDR (16 bytes, IPv4 mapped) or on NICK;
 * NULL: none. L may be NULL. */
const struct ban *ban_list_address(const struct ban_list *l, const uint8_t addr[16], int64_t now);
const struct ban *ban_list_nick(const struct ban_list *l, const char *nick, int64_t now);

/* The address of PEER ("192.0.2.7:5000", "[2001:db8::1]:5000") into RET
 * (IPv4 mapped); false when it is none (a Unix socket's). */
bool ban_peer_address(const char *peer, uint8_t ret[16]);

/* What a banned client is told: "banned: REASON" or "banned". */
void ban_message(const struct ban *b, char *buf, size_t size);

#endif
