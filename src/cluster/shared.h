/* Accounts and bans shared by every node of a cluster: each kept in a
 * JetStream key-value bucket (CLUSTER_ACCOUNTS: by name; CLUSTER_BANS: by
 * mask), which every node watches from a thread of its own and copies into
 * its own database and ban list (host->account(), host->ban()). A node's
 * own changes go to the buckets: a new account's name is created there
 * first (create-only), so that two nodes cannot both register it; its
 * other changes, and bans, are put there after they are kept here. While
 * NATS is away, a node's changes wait (bounded) and go when it is back. */
#ifndef CHATD_CLUSTER_SHARED_H
#define CHATD_CLUSTER_SHARED_H

#include "cluster/cluster.h"
#include "core/bans.h"
#include "store/accounts.h"

struct shared;

struct shared *shared_start(struct cluster *c, const struct cluster_host *host, int replicas,
			    char **ret_err);
/* No more host calls: the thread stops (changes are still taken, and
 * dropped at shared_stop()). */
void shared_halt(struct shared *s);
void shared_stop(struct shared *s);

/* On the accounts thread: 0, or -EEXIST when another node has the name. */
int shared_account_create(struct shared *s, const struct account_row *row);
void shared_account_changed(struct shared *s, const struct account_row *row);
void shared_ban_added(struct shared *s, const struct ban *b);
void shared_ban_removed(struct shared *s, const char *mask);
/* What a node had before it joined (or while it ran alone): put in the
 * bucket unless the key ever was there (a differing value is logged, and
 * the bucket's kept). */
void shared_account_offer(struct shared *s, const struct account_row *row);
void shared_ban_offer(struct shared *s, const struct ban *b);

#endif
