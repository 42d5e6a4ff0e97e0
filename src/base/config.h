/* The daemon's configuration: an INI file read with inih, validated, and
 * shared read-only between threads through a reference count.
 *
 * A loaded config never changes; SIGHUP loads a new one and swaps it in. */
#ifndef CHATD_CONFIG_H
#define CHATD_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/log.h"

#define CONFIG_MAX_CLIENTS_LIMIT 1000000
#define CONFIG_MAX_THREADS 256
#define CONFIG_MAX_LINE_MIN 64
#define CONFIG_MAX_LINE_MAX (1024 * 1024)
#define CONFIG_MOTD_FILE_MAX (64 * 1024) /* bytes read from motd_file */
#define CONFIG_MOTD_LINES_MAX 100
/* What a client is sent on connecting besides the MOTD, at most. */
#define CONFIG_GREETING_MAX 256
#define CONFIG_IRC_PORT_DEFAULT 6667
#define CONFIG_IRC_SERVER_NAME_MAX 63 /* bytes; RFC 2812's limit on a server name */
#define CONFIG_IRC_NETWORK_MAX 32
#define CONFIG_IRC_PASSWORD_MAX 128
#define CONFIG_IRC_PING_TIMEOUT_MIN 10 /* besides 0, never */
#define CONFIG_IRC_PING_TIMEOUT_MAX 86400
/* The systemd credential (LoadCredential=) that is the TLS key when [tls]
 * key is not set. */
#define CONFIG_TLS_KEY_CREDENTIAL "chatd-tls-key"
#define CONFIG_HISTORY_KEEP_MAX 1000000
#define CONFIG_HISTORY_REPLAY_MAX 100
/* The database's file name in the state folder, when [store] path is not
 * set. */
#define CONFIG_STORE_FILE "chatd.db"
/* Entries of [web] allowed_origins and trusted_proxies, at most. */
#define CONFIG_WEB_LIST_MAX 64

/* The control socket's file name in the runtime folder (runtime_path()),
 * when [control] socket is not set; and who may use it by default. */
#define CONFIG_CONTROL_FILE "control.sock"
#define CONFIG_CONTROL_GROUP "chatd-admin"
#define CONFIG_SOCKET_PATH_MAX 108 /* sizeof(sun_path) */

#define CONFIG_CLUSTER_URLS_MAX 16
#define CONFIG_CLUSTER_NODE_MAX 32

/* IRC operators ([operators]: NAME = crypt(3) hash), at most. */
#define CONFIG_OPERATORS_MAX 64
#define CONFIG_OPERATOR_NAME_MAX 32

struct config_operator {
	char name[CONFIG_OPERATOR_NAME_MAX + 1];
	char *hash;        /* yescrypt ($y$), SHA-512 ($6$), ...: what crypt(3) checks */
};

/* An address or network: IPv4 as IPv4-mapped IPv6 (prefix + 96). */
struct config_cidr {
	uint8_t bytes[16];
	int prefix;
};

struct config {
	atomic_int refcount;
	char *path;        /* the file it was read from, as given */

	/* [server] */
	int port;          /* 0 = any free port */
	int tls_port;      /* the line protocol over TLS; 0 = off */
	char *bind;        /* numeric address or host name; "::" = all, v4 and v6 */
	int max_clients;
	int threads;       /* 0 = one per CPU; see config_worker_count() */
	bool io_uring;     /* write with io_uring when the kernel allows it */
	char **motd_lines; /* from motd, or motd_file when set; raw, not yet cleaned */
	size_t motd_count;
	char *motd_file;   /* as given; NULL when not set */

	/* [limits] */
	size_t max_line;   /* bytes of one received line, without the newline */
	size_t max_sendq;  /* bytes queued to one client before it is cut off */
	int rate;          /* lines per second a client may send; 0 = no limit */
	int burst;         /* lines a client may send at once, ahead of the rate */
	int max_per_ip;    /* connections from one address; 0 = no limit */
	int idle_timeout;  /* seconds without a line before a client is cut; 0 = never */
	int line_timeout;  /* seconds a started line may wait for its end */
	int keepalive;     /* seconds of silence before TCP keepalive probes; 0 = off */
	int announce_max;  /* rooms above this size hear no arrivals; 0 = no limit */
	int announce_rate; /* arrivals and departures a room hears per second; 0 = no limit */
	int connect_rate;  /* new connections a second from one address, as many at once; 0 = no limit */
	int handshake_timeout; /* seconds a TLS client may take to finish its handshake */

	/* [irc] */
	int irc_port;          /* 0 = no IRC listener (unlike port, not "any free port") */
	int irc_tls_port;      /* IRC over TLS; 0 = off */
	char *irc_bind;        /* NULL = the [server] bind */
	char *irc_server_name; /* in the server's prefix and numerics: 1..63 of [A-Za-z0-9.-];
				* the host name by default. NULL only from
				* config_new_default() on a host whose name is not usable;
				* a loaded config always has one */
	char *irc_password;    /* what PASS must give; NULL = no server password */
	char *irc_network;     /* NETWORK= in ISUPPORT: 1..32 of [A-Za-z0-9._-] */
	int irc_ping_timeout;  /* seconds: PING a client silent for half of it, drop it
				* when silent for all of it; 0 = never */
	int irc_sts_duration;  /* seconds an IRC client keeps to TLS once it saw it
				* offered (IRCv3 sts); 0 = it may stop */

	/* [tls]: paths, resolved against the config file's folder; NULL = not set */
	char *tls_certificate; /* PEM: the leaf, then its chain */
	char *tls_key;         /* PEM; or the credential CONFIG_TLS_KEY_CREDENTIAL */
	char *tls_client_ca;   /* PEM: CAs whose client certificates are asked for */

	/* [store] */
	char *store_path;          /* NULL: CONFIG_STORE_FILE in the state folder
				    * (config_store_path()) */
	int store_commit_interval; /* ms a written line may wait for its commit */

	/* [history] */
	int history_keep;          /* lines kept per room; 0 = no history */
	int history_max_age;       /* seconds a line is kept; 0 = no limit */
	int history_replay;        /* lines shown on joining a room */

	/* [accounts] */
	int accounts_grace;        /* seconds to identify for a registered nick */

	/* [web] */
	int web_port;              /* the page and IRC over WebSocket; 0 = off */
	int web_tls_port;          /* the same over TLS (HTTPS, WSS); 0 = off */
	char *web_bind;            /* NULL = the [server] bind */
	char *web_root;            /* the page's files; NULL = the installed ones */
	char **web_origins;        /* Origins allowed to open /ws ("*": any), lower
				    * case; none: the page's own */
	size_t web_origin_count;
	struct config_cidr *web_proxies; /* whose X-Forwarded-For is believed */
	size_t web_proxy_count;

	/* [operators] */
	struct config_operator *operators;
	size_t operator_count;

	/* [control] */
	char *control_socket;      /* NULL: the default (config_control_path()); "": off */
	char *control_group;       /* who may use it besides root; "": root alone */

	/* [metrics] */
	char *metrics_address;     /* NULL: no metrics */
	int metrics_port;          /* 0: any free one */

	/* [cluster] */
	char **cluster_urls;       /* NATS servers; none: no cluster */
	size_t cluster_url_count;
	char *cluster_node;        /* this node's name (a loaded config always has one) */
	char *cluster_credentials; /* a NATS .creds file; NULL: none */
	char *cluster_ca;          /* CAs for tls:// servers; NULL: the system's */
	int cluster_replicas;      /* copies the stream keeps, on as many servers */

	/* [log] */
	int log_level;     /* syslog priority */
	enum log_target log_target;
	int log_per_address_burst; /* lines about one address at once, then 1 a second; 0 = all */
};

/* Errors found while loading, each "FILE:LINE: message" (or "FILE: message"
 * when no line applies). */
struct config_errors {
	char **messages;
	size_t count;
};

/* Loads and validates PATH. On success returns 0 and a config with one
 * reference in *ret; on failure returns -1, *ret is NULL and errors holds at
 * least one message. Every error in the file is reported, not just the first. */
int config_load(const char *path, struct config **ret, struct config_errors *errors);

/* A config with every default, not read from any file (for tests). */
struct config *config_new_default(void);

struct config *config_ref(struct config *cfg);
void config_unref(struct config *cfg);

void config_errors_free(struct config_errors *errors);

/* The CPUs this process may run on. */
int config_cpu_count(void);

/* Threads to start: cfg->threads, or the CPUs we may run on when it is 0. */
int config_worker_count(const struct config *cfg);

/* Where the database is: [store] path, or CONFIG_STORE_FILE in
 * $STATE_DIRECTORY (systemd's StateDirectory=), else in
 * $XDG_STATE_HOME/chatd, else in ~/.local/state/chatd (malloc'd; NULL when
 * none of those is known). */
char *config_store_path(const struct config *cfg);

/* Where the control socket is: [control] socket, or CONFIG_CONTROL_FILE
 * in the runtime folder (malloc'd); NULL: none (off, or no folder known). */
char *config_control_path(const struct config *cfg);

/* The hash of operator NAME (ignoring case); NULL: no such operator. */
const char *config_operator_hash(const struct config *cfg, const char *name);

/* Whether A and B name the same control socket. */
bool config_same_control(const struct config *a, const struct config *b);

/* The address IRC listens on: [irc] bind, or the [server] bind when unset. */
const char *config_irc_bind(const struct config *cfg);

/* The address the web port listens on: [web] bind, or the [server] bind. */
const char *config_web_bind(const struct config *cfg);

/* TEXT ("10.0.0.0/8", "::1", "192.0.2.7") into RET; false if it is not one. */
bool config_cidr_parse(const char *text, struct config_cidr *ret);

/* Whether ADDR (16 bytes, IPv4 mapped into IPv6) is in C. */
bool config_cidr_contains(const struct config_cidr *c, const uint8_t addr[16]);

#endif
