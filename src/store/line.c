#include "autoconf.h"

#include "store/line.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

struct hline *hline_new(const char *room, int64_t no, int64_t time_ms, uint64_t msgid,
			enum hline_kind kind, const char *nick, const char *user,
			const char *host, const char *text, size_t text_len, bool formatting)
{
	size_t rl = strlen(room) + 1, nl = strlen(nick) + 1, ul = strlen(user) + 1,
	       hl = strlen(host) + 1;
	struct hline *l = xmalloc(sizeof(*l) + rl + nl + ul + hl + text_len + 1);
	atomic_init(&l->refs, 1);
	l->no = no;
	l->time_ms = time_ms;
	l->msgid = msgid;
	l->kind = kind;
	l->formatting = formatting;
	char *p = l->data;
	l->room = memcpy(p, room, rl);
	p += rl;
	l->nick = memcpy(p, nick, nl);
	p += nl;
	l->user = memcpy(p, user, ul);
	p += ul;
	l->host = memcpy(p, host, hl);
	p += hl;
	memcpy(p, text, text_len);
	p[text_len] = '\0';
	l->text = p;
	l->text_len = text_len;
	return l;
}

void hline_unref(struct hline *l)
{
	if (l && atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) == 1)
		free(l);
}

void hline_array_free(struct hline **lines, size_t n)
{
	for (size_t i = 0; i < n; i++)
		hline_unref(lines[i]);
	free(lines);
}
