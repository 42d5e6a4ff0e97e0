/* Nicks unique across the cluster: each node claims its members' nicks in
 * a JetStream key-value bucket (create-only), from a thread of its own,
 * after the member took the nick here (which checked it against every
 * member this node knows of). A claim that finds the nick another node's
 * is refused (host->nick_refused()), and the member is renamed. The value
 * names the owner's node and incarnation: the lease lasts as long as that
 * node is heard (its heartbeats), and a claim takes over the nick of a
 * node that is gone. */
#ifndef CHATD_CLUSTER_NICKS_H
#define CHATD_CLUSTER_NICKS_H

#include <stdint.h>

#include "cluster/cluster.h"

struct nicks;

struct nicks *nicks_start(struct cluster *c, const struct cluster_host *host, int replicas,
			  char **ret_err);
void nicks_stop(struct nicks *n);

/* NICK for the session SESSION (on worker WORKER, socket FD). */
void nicks_claim(struct nicks *n, const char *nick, uint64_t session, int worker, int fd);
/* NICK is SESSION's no more. */
void nicks_release(struct nicks *n, const char *nick, uint64_t session);

#endif
