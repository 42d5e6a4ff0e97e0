#include "autoconf.h"

#include "core/bans.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

bool ban_parse_mask(const char *mask, struct ban *ret, const char **err)
{
	size_t len = strlen(mask);
	if (len == 0 || len >= BAN_MASK_MAX) {
		*err = "a mask is 1 to 63 characters";
		return false;
	}
	if (config_cidr_parse(mask, &ret->net)) {
		ret->kind = BAN_ADDRESS;
		snprintf(ret->mask, sizeof(ret->mask), "%s", mask);
		return true;
	}
	/* A nick's characters (text_is_valid_name()'s), and the wildcards. */
	bool wild = false, plain = false;
	for (size_t i = 0; i < len; i++) {
		char c = mask[i];
		if (c == '*' || c == '?') {
			wild = true;
			continue;
		}
		bool nick_char = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				 (c >= '0' && c <= '9') || c == '_' || c == '-';
		if (!nick_char) {
			*err = "not an address, a network (192.0.2.0/24, 2001:db8::/32) or a nick mask "
			       "(a nick's characters, * and ?)";
			return false;
		}
		plain = true;
	}
	if (wild && !plain) {
		*err = "a mask of wildcards alone would ban everyone";
		return false;
	}
	ret->kind = BAN_NICK;
	ascii_lower(ret->mask, mask, sizeof(ret->mask));
	return true;
}

bool ban_parse_duration(const char *text, int64_t *ret)
{
	static const char units[] = "smhdw";
	static const int64_t seconds[] = { 1, 60, 3600, 86400, 7 * 86400 };
	size_t len = strlen(text);
	if (len == 0 || len > 12)
		return false;
	int64_t scale = 1;
	const char *unit = strchr(units, text[len - 1]);
	if (unit && *unit) {
		scale = seconds[unit - units];
		len--;
	}
	if (len == 0)
		return false;
	int64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return false;
		v = v * 10 + (text[i] - '0');
	}
	if (v <= 0 || v > 3650LL * 86400 / scale)
		return false;
	*ret = v * scale;
	return true;
}

static struct ban_list *list_alloc(size_t count)
{
	struct ban_list *l = xmalloc(sizeof(*l) + (count ? count : 1) * sizeof(struct ban));
	atomic_init(&l->refs, 1);
	l->count = 0;
	return l;
}

struct ban_list *ban_list_new(void)
{
	return list_alloc(0);
}

struct ban_list *ban_list_ref(struct ban_list *l)
{
	atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
	return l;
}

void ban_list_unref(struct ban_list *l)
{
	if (l && atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) == 1)
		free(l);
}

struct ban_list *ban_list_of(const struct ban *b, size_t n)
{
	struct ban_list *l = list_alloc(n);
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;
		while (k < l->count && strcmp(l->bans[k].mask, b[i].mask) != 0)
			k++;
		l->bans[k] = b[i];
		if (k == l->count)
			l->count++;
	}
	return l;
}

struct ban_list *ban_list_with(const struct ban_list *l, const struct ban *b)
{
	struct ban_list *n = list_alloc(l->count + 1);
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->bans[i].mask, b->mask) != 0)
			n->bans[n->count++] = l->bans[i];
	n->bans[n->count++] = *b;
	return n;
}

struct ban_list *ban_list_without(const struct ban_list *l, const char *mask)
{
	struct ban_list *n = list_alloc(l->count);
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->bans[i].mask, mask) != 0)
			n->bans[n->count++] = l->bans[i];
	if (n->count == l->count) {
		free(n);
		return NULL;
	}
	return n;
}

static bool in_force(const struct ban *b, int64_t now)
{
	return b->expires == 0 || b->expires > now;
}

struct ban_list *ban_list_expired(const struct ban_list *l, int64_t now)
{
	struct ban_list *n = list_alloc(l->count);
	for (size_t i = 0; i < l->count; i++)
		if (in_force(&l->bans[i], now))
			n->bans[n->count++] = l->bans[i];
	if (n->count == l->count) {
		free(n);
		return NULL;
	}
	return n;
}

const struct ban *ban_list_address(const struct ban_list *l, const uint8_t addr[16], int64_t now)
{
	for (size_t i = 0; l && i < l->count; i++) {
		const struct ban *b = &l->bans[i];
		if (b->kind == BAN_ADDRESS && in_force(b, now) && config_cidr_contains(&b->net, addr))
			return b;
	}
	return NULL;
}

const struct ban *ban_list_nick(const struct ban_list *l, const char *nick, int64_t now)
{
	for (size_t i = 0; l && nick && *nick && i < l->count; i++) {
		const struct ban *b = &l->bans[i];
		if (b->kind == BAN_NICK && in_force(b, now) &&
		    fnmatch(b->mask, nick, FNM_CASEFOLD | FNM_NOESCAPE) == 0)
			return b;
	}
	return NULL;
}

bool ban_peer_address(const char *peer, uint8_t ret[16])
{
	char host[80];
	struct config_cidr c;
	peer_host(peer, host, sizeof(host));
	char *scope = strchr(host, '%');
	if (scope)
		*scope = '\0';
	if (!config_cidr_parse(host, &c))
		return false;
	memcpy(ret, c.bytes, 16);
	return true;
}

void ban_message(const struct ban *b, char *buf, size_t size)
{
	if (b->reason[0])
		snprintf(buf, size, "banned: %s", b->reason);
	else
		snprintf(buf, size, "banned");
}
