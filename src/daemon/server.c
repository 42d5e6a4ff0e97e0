#include "autoconf.h"

#include "daemon/server.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "admin/control.h"
#include "admin/metrics.h"
#include "cluster/cluster.h"
#include "core/remote.h"
#include "daemon/daemonize.h"
#include "net/iplimit.h"
#include "net/listener.h"
#include "net/web.h"
#include "base/log.h"
#include "daemon/notify.h"
#include "core/bans.h"
#include "core/rooms.h"
#include "net/worker.h"
#include "net/writer.h"
#include "proto/codec.h"
#include "store/accounts.h"
#include "store/store.h"
#include "tls/context.h"
#include "web/site.h"

#define ACCEPT_BATCH 64 /* per wake-up, so signals are never starved */
/* How often the [tls] files are looked at for a renewal (three stat()s),
 * and the certificate's expiry checked. */
#define TLS_WATCH_SECONDS 2
#define TLS_EXPIRY_WARN_DAYS 14
#define DAY_SECONDS (24 * 60 * 60)

/* epoll tags of the main loop's fds; listeners are tagged by index. */
enum { TAG_SIGNAL = LISTENER_MAX, TAG_STATUS, TAG_WATCHDOG, TAG_TLS_WATCH, TAG_CONTROL, TAG_METRICS,
       TAG_SHARED_BANS };

struct server {
	struct config *cfg;
	const struct options *opts;
	struct listener listener;
	struct worker_pool pool;
	int epoll_fd;
	int signal_fd;
	int watchdog_fd;
	uint64_t ping_seq;
	bool stopping;

	/* TLS: the context new handshakes use (the workers hold their own
	 * references), the files' stamp when last loaded or tried, and when
	 * the expiry was last warned of (CLOCK_MONOTONIC seconds; 0 never). */
	SSL_CTX *tls_ctx;
	struct tls_files_stamp tls_stamp, tls_seen; /* loaded or tried; at the last look */
	int tls_watch_fd;
	uint64_t tls_warned_s;

	struct store *store;       /* the database; its thread runs with the workers' */
	struct accounts *accounts; /* its accounts, with a thread of their own */
	struct site *site;         /* the web page's files, as the workers have them */
	unsigned sweep_ticks;      /* of the 5 s timer, since the last sweep */

	struct control *control;   /* chatctl's socket; NULL: none */
	struct metrics *metrics;   /* [metrics] listen; NULL: none */
	bool cluster_told_down;    /* the cluster's thread's: users were told */
	/* Bans the other nodes shared, for the main thread (TAG_SHARED_BANS). */
	struct {
		pthread_mutex_t lock;
		struct shared_ban { struct ban ban; bool removed; } *items;
		size_t count, cap;
		int fd;            /* an eventfd */
	} shared_bans;
	uint64_t stream_seq;       /* the cluster stream's newest line in the store */
	struct ban_list *bans;     /* in force, as the workers have them */
	uint64_t rejected[REJECT_COUNT];
	struct control_host control_host;
	time_t started;            /* wall clock */
	uint64_t reloads[2];       /* failed, done */
};

/* The C library hands freed heap memory back to the kernel as soon as
 * 128 KiB of it lies at the top of an arena. A TLS connection's output
 * (tens of KiB of records, freed once written) makes that happen at nearly
 * every loop iteration under load, and the pages are faulted in again at
 * the next: perf put it at a sixth of the server's CPU in a TLS blast.
 * Up to this much is kept instead (per arena, so per worker): what a
 * burst took is given back once the burst is over, not at every write. */
#define MALLOC_KEEP (16 * 1024 * 1024)

static void tune_malloc(void)
{
	/* Fixed, not glibc's sliding thresholds (which setting one turns off):
	 * blocks from 1 MiB up come from mmap, and go back when freed. */
	if (mallopt(M_TRIM_THRESHOLD, MALLOC_KEEP) != 1 || mallopt(M_MMAP_THRESHOLD, 1024 * 1024) != 1)
		log_warning("mallopt failed; freed memory goes back to the kernel at once");
}

/* The command line wins over the file, at start and at every reload. */
static void apply_overrides(struct config *cfg, const struct options *opts)
{
	if (opts->port >= 0)
		cfg->port = opts->port;
	if (opts->verbosity == VERBOSITY_VERBOSE)
		cfg->log_level = LOG_DEBUG;
	else if (opts->verbosity == VERBOSITY_QUIET)
		cfg->log_level = LOG_WARNING;
}

static int epoll_watch(int epoll_fd, int fd, uint32_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };
	return epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int setup_signals(struct server *s)
{
	sigset_t mask;

	/* A peer closing while we write must be an EPIPE, not a death. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	/* Blocked before the workers start, so they inherit the mask and only
	 * this thread's signalfd ever sees these signals. */
	if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0)
		return -EINVAL;
	s->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	return s->signal_fd < 0 ? -errno : 0;
}

static int setup_watchdog(struct server *s)
{
	uint64_t usec = notify_watchdog_usec();
	if (usec == 0)
		return 0;
	s->watchdog_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->watchdog_fd < 0)
		return -errno;
	/* Twice per period, as sd_watchdog_enabled(3) advises. */
	uint64_t half = usec / 2;
	struct itimerspec its = {
		.it_interval = { .tv_sec = (time_t)(half / 1000000), .tv_nsec = (long)(half % 1000000) * 1000 },
	};
	its.it_value = its.it_interval;
	if (timerfd_settime(s->watchdog_fd, 0, &its, NULL) < 0)
		return -errno;
	log_debug("watchdog every %llu ms", (unsigned long long)(half / 1000));
	return epoll_watch(s->epoll_fd, s->watchdog_fd, TAG_WATCHDOG);
}

/* Keep-alive only while every worker answered the previous ping: a stuck
 * worker must get us restarted, not just a live main thread. */
static void watchdog_tick(struct server *s)
{
	uint64_t expirations;
	if (read(s->watchdog_fd, &expirations, sizeof(expirations)) < 0)
		return;
	bool all_alive = true;
	for (int i = 0; i < s->pool.count; i++)
		if (worker_last_pong(s->pool.workers[i]) != s->ping_seq)
			all_alive = false;
	if (all_alive)
		notify_watchdog();
	else
		log_warning("a worker did not answer the watchdog ping; withholding WATCHDOG=1");
	s->ping_seq++;
	for (int i = 0; i < s->pool.count; i++)
		worker_post_ping(s->pool.workers[i], s->ping_seq);
}

/* ---- TLS: the certificate in use, renewed without a restart -------------- */

/* Warns, once a day, of a certificate that expires within
 * TLS_EXPIRY_WARN_DAYS or has expired: admins alert on its CHATD_EVENT. */
static void tls_check_expiry(struct server *s)
{
	struct tls_cert_info info;
	if (!s->tls_ctx || !tls_context_cert_info(s->tls_ctx, &info) || !info.not_after)
		return;
	time_t now = time(NULL);
	uint64_t mono = monotonic_ms() / 1000;
	if (info.not_after - now > (time_t)TLS_EXPIRY_WARN_DAYS * DAY_SECONDS)
		return;
	if (s->tls_warned_s && mono - s->tls_warned_s < DAY_SECONDS)
		return;
	s->tls_warned_s = mono;
	long days = (long)((info.not_after - now) / DAY_SECONDS);
	if (info.not_after <= now)
		log_event(LOG_WARNING, LOG_FIELDS(.event = "tls_expired"),
			  "the TLS certificate %s (%s) has expired: clients will refuse it; renew it "
			  "(chatd reloads it by itself once the file changes)",
			  s->cfg->tls_certificate, info.subject);
	else
		log_event(LOG_WARNING, LOG_FIELDS(.event = "tls_expiring"),
			  "the TLS certificate %s (%s) expires in %ld day%s: renew it (chatd reloads "
			  "it by itself once the file changes)", s->cfg->tls_certificate, info.subject,
			  days, days == 1 ? "" : "s");
}

/* Makes the context from CFG's files and, when that works, gives it to
 * the workers for the handshakes from now on; when not, the one in use
 * stays. WHEN says what made us look, for the log. Returns 0 or -1. */
static int tls_load(struct server *s, const struct config *cfg, const char *when)
{
	char *err = NULL;

	tls_files_stamp_read(cfg, &s->tls_stamp);
	s->tls_seen = s->tls_stamp;
	SSL_CTX *ctx = tls_context_new(cfg, &err);
	if (!ctx) {
		if (s->tls_ctx) {
			log_event(LOG_ERR, LOG_FIELDS(.event = "tls_reload_failed"),
				  "TLS (%s): keeping the certificate in use: %s", when, err);
		} else {
			log_event(LOG_ERR, LOG_FIELDS(.event = "tls_failed"), "TLS: %s", err);
		}
		free(err);
		return -1;
	}
	SSL_CTX_free(s->tls_ctx);
	s->tls_ctx = ctx;
	for (int i = 0; i < s->pool.count; i++)
		worker_post_tls(s->pool.workers[i], ctx);
	tls_context_log(ctx, when);
	s->tls_warned_s = 0; /* a new certificate: a new warning if due */
	tls_check_expiry(s);
	return 0;
}

/* Rooms nobody is in that said nothing for this long (or within max_age,
 * when shorter) leave memory; looked for once a minute. */
#define SWEEP_IDLE_S (24 * 3600)
#define SWEEP_EVERY_TICKS (60 / TLS_WATCH_SECONDS)

static void expire_bans(struct server *s);

static void sweep_rooms(struct server *s)
{
	if (++s->sweep_ticks < SWEEP_EVERY_TICKS)
		return;
	s->sweep_ticks = 0;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t idle = SWEEP_IDLE_S;
	if (s->cfg->history_max_age && s->cfg->history_max_age < idle)
		idle = s->cfg->history_max_age;
	size_t n = rooms_sweep(s->pool.rooms, ((int64_t)now.tv_sec - idle) * 1000);
	if (n)
		log_debug("%zu rooms' recent lines left memory (nobody there for %lld s)", n,
			  (long long)idle);
}

/* Every TLS_WATCH_SECONDS: files replaced by a renewal are loaded once
 * they stayed the same for one look (a renewal that writes the certificate,
 * then the key, is not caught in between), each new state of them tried
 * once; the expiry is checked, and expired bans lifted; once a minute,
 * rooms' memory is swept. */
static void tls_watch_tick(struct server *s)
{
	uint64_t expirations;
	if (read(s->tls_watch_fd, &expirations, sizeof(expirations)) < 0)
		return;
	sweep_rooms(s);
	expire_bans(s);
	if (!s->cfg->tls_certificate)
		return;
	struct tls_files_stamp now;
	tls_files_stamp_read(s->cfg, &now);
	bool settled = tls_files_stamp_equal(&now, &s->tls_seen);
	s->tls_seen = now;
	if (settled && !tls_files_stamp_equal(&now, &s->tls_stamp)) {
		log_info("the TLS files changed; loading them");
		tls_load(s, s->cfg, "reloaded (the files changed)");
	}
	tls_check_expiry(s);
}

static int setup_tls_watch(struct server *s)
{
	s->tls_watch_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->tls_watch_fd < 0)
		return -errno;
	struct itimerspec its = { .it_interval = { .tv_sec = TLS_WATCH_SECONDS },
				  .it_value = { .tv_sec = TLS_WATCH_SECONDS } };
	if (timerfd_settime(s->tls_watch_fd, 0, &its, NULL) < 0)
		return -errno;
	return epoll_watch(s->epoll_fd, s->tls_watch_fd, TAG_TLS_WATCH);
}

static void status_changed(struct server *s)
{
	uint64_t n;
	if (read(s->pool.status_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	atomic_store(&s->pool.status_pending, false);
	notify_status(rooms_online(s->pool.rooms));
}

static struct worker *least_loaded_worker(struct server *s)
{
	struct worker *best = s->pool.workers[0];
	int best_count = worker_connection_count(best);
	for (int i = 1; i < s->pool.count; i++) {
		int count = worker_connection_count(s->pool.workers[i]);
		if (count < best_count) {
			best = s->pool.workers[i];
			best_count = count;
		}
	}
	return best;
}

static struct ip_limit_policy ip_policy(const struct config *cfg)
{
	return (struct ip_limit_policy){ .max_per_ip = cfg->max_per_ip,
					 .connect_rate = cfg->connect_rate,
					 .log_burst = cfg->log_per_address_burst };
}

/* Turns a connection away with one "!" line; nobody else notices. The log
 * says so within [log] per_address_burst. */
static void reject(struct server *s, int fd, enum proto proto, bool tls, const char *peer,
		   const struct ip_key *ip, uint64_t now_ms, enum metrics_reject reason, const char *why)
{
	s->rejected[reason]++;
	/* Over TLS there is no saying it before a handshake, which is the
	 * workers' to make: the connection is just closed. */
	if (!tls) {
		struct msg *m = codec_refusal(proto, peer, why);
		/* A fresh socket's buffer takes this line; if not, the client is gone. */
		ssize_t w = send(fd, m->data, m->len, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w;
		msg_unref(m);
	}
	close(fd);
	struct log_note note;
	bool logged = ip_limit_log_allowed(s->pool.ip_limit, ip, LOG_NOTICE, now_ms, &note);
	if (logged || log_tapping("reject"))
		log_event(LOG_NOTICE, LOG_FIELDS(.event = "reject", .peer = peer,
						 .reason = metrics_reject_names[reason],
						 .suppressed = note.suppressed,
						 LOG_ONLINE(rooms_online(s->pool.rooms)),
						 .tap_only = !logged),
			  "rejected %s: %s%s", peer, why, note.text);
}

/* The ban in force on SA's address; NULL: none. */
static const struct ban *banned(struct server *s, const struct sockaddr *sa)
{
	uint8_t addr[16] = { [10] = 0xff, [11] = 0xff };
	if (sa->sa_family == AF_INET)
		memcpy(addr + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		memcpy(addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	else
		return NULL;
	return ban_list_address(s->bans, addr, time(NULL));
}

static void accept_connections(struct server *s, const struct listen_socket *ls)
{
	char peer[PEER_MAX], why[BAN_REASON_MAX + 64];
	struct sockaddr_storage addr;
	struct ip_key ip;

	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = listener_accept(&s->listener, ls->fd, &addr, peer);
		if (fd < 0) {
			if (fd != -EAGAIN && fd != -EMFILE && fd != -ENFILE)
				log_errno(LOG_ERR, -fd, "accept");
			return;
		}
		uint64_t now = monotonic_ms();
		ip_key_from_sockaddr((struct sockaddr *)&addr, &ip);
		/* A trusted proxy's connections count against the addresses
		 * its X-Forwarded-For names (net/web.c), not its own. */
		bool proxied = ls->proto == PROTO_WEB &&
			       web_from_trusted_proxy(s->cfg, (struct sockaddr *)&addr);
		const struct ban *ban = proxied ? NULL : banned(s, (struct sockaddr *)&addr);
		if (ban) {
			char text[BAN_REASON_MAX + 16];
			ban_message(ban, text, sizeof(text));
			snprintf(why, sizeof(why), "%s", text);
			reject(s, fd, ls->proto, ls->tls, peer, &ip, now, REJECT_BANNED, why);
			continue;
		}
		if (atomic_load(&s->pool.connections) >= s->cfg->max_clients) {
			snprintf(why, sizeof(why), "server full (max %d clients)", s->cfg->max_clients);
			reject(s, fd, ls->proto, ls->tls, peer, &ip, now, REJECT_FULL, why);
			continue;
		}
		switch (proxied ? IP_OK : ip_limit_acquire(s->pool.ip_limit, &ip, now)) {
		case IP_OK:
			break;
		case IP_TOO_MANY:
			snprintf(why, sizeof(why), "too many connections from your address (max %d)",
				 s->cfg->max_per_ip);
			reject(s, fd, ls->proto, ls->tls, peer, &ip, now, REJECT_PER_IP, why);
			continue;
		case IP_TOO_FAST:
			snprintf(why, sizeof(why), "too many new connections from your address "
				 "(at most %d a second): try again in a moment", s->cfg->connect_rate);
			reject(s, fd, ls->proto, ls->tls, peer, &ip, now, REJECT_RATE, why);
			continue;
		}
		int family = ((struct sockaddr *)&addr)->sa_family;
		if (s->cfg->keepalive && (family == AF_INET || family == AF_INET6)) {
			/* Once: a socket-activated stream socket of another
			 * protocol (SCTP, say) would refuse it on every accept. */
			static bool warned;
			int r = listener_set_keepalive(fd, s->cfg->keepalive);
			if (r < 0 && !warned) {
				log_errno(LOG_WARNING, -r, "keepalive for %s (not said again)", peer);
				warned = true;
			}
		}
		atomic_fetch_add(&s->pool.connections, 1);
		worker_post_connection(least_loaded_worker(s), fd, ls->proto, ls->tls, peer, &ip, !proxied);
	}
}

static struct store_policy store_policy(const struct config *cfg)
{
	return (struct store_policy){ .keep = (unsigned)cfg->history_keep,
				      .max_age_ms = (int64_t)cfg->history_max_age * 1000,
				      .commit_interval_ms = cfg->store_commit_interval };
}

/* Opens the database named by the config; -1 (logged) when it cannot. */
static int open_store(struct server *s)
{
	char *path = config_store_path(s->cfg);
	if (!path) {
		log_error("no place for the database: set path in [store] of %s (neither "
			  "STATE_DIRECTORY, XDG_STATE_HOME nor HOME is set)", s->cfg->path);
		return -1;
	}
	char *err = NULL;
	/* The store first: it makes the file and brings its schema up to date. */
	if (!(s->store = store_open(path, &err)) || !(s->accounts = accounts_open(path, &err))) {
		log_event(LOG_ERR, LOG_FIELDS(.event = "store_failed"), "cannot open the database %s",
			  err);
		free(err);
		free(path);
		return -1;
	}
	log_info("database: %s", path);
	free(path);
	return 0;
}

static void history_loaded(void *ctx, const char *room, int64_t last_no, struct hline **lines,
			   size_t count)
{
	struct server *s = ctx;
	unsigned replay = (unsigned)s->cfg->history_replay;
	rooms_history_load(s->pool.rooms, room, last_no, lines, count, replay);
	free(lines);
}

/* The web page's files: [web] root, or those installed with chatd, or,
 * for a chatd run from its build tree, the source's web/ folder next to
 * src/. */
static char *web_root(const struct config *cfg)
{
	if (cfg->web_root)
		return xstrdup(cfg->web_root);
	char *installed = xstrdup(PKGDATADIR "/web");
	if (access(PKGDATADIR "/web/index.html", R_OK) == 0)
		return installed;
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			char *tree = xasprintf("%s/../web", exe);
			char *index = xasprintf("%s/index.html", tree);
			bool found = access(index, R_OK) == 0;
			free(index);
			if (found) {
				free(installed);
				return tree;
			}
			free(tree);
		}
	}
	return installed;
}

/* Reads the page's files (when a web port listens) and hands them to the
 * workers; on failure the ones in use stay. */
static void site_reload(struct server *s, const struct config *cfg, const char *when)
{
	if (!listener_has(&s->listener, PROTO_WEB, false) && !listener_has(&s->listener, PROTO_WEB, true))
		return;
	char *root = web_root(cfg), *err = NULL;
	struct site *site = site_load(root, &err);
	if (!site) {
		log_event(LOG_ERR, LOG_FIELDS(.event = "web_root_failed"),
			  "the web page cannot be served%s: %s (set root in [web] of %s)",
			  s->site ? ", keeping the files in use" : "", err, cfg->path);
		free(err);
		free(root);
		return;
	}
	log_info("web page: %zu files from %s (%s)", site_file_count(site), root, when);
	free(root);
	site_unref(s->site);
	s->site = site;
	for (int i = 0; i < s->pool.count; i++)
		worker_post_site(s->pool.workers[i], site);
}

static bool same_string(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool cluster_config_changed(const struct config *a, const struct config *b)
{
	if (a->cluster_url_count != b->cluster_url_count || a->cluster_replicas != b->cluster_replicas ||
	    !same_string(a->cluster_node, b->cluster_node) ||
	    !same_string(a->cluster_credentials, b->cluster_credentials) ||
	    !same_string(a->cluster_ca, b->cluster_ca))
		return true;
	for (size_t i = 0; i < a->cluster_url_count; i++)
		if (strcmp(a->cluster_urls[i], b->cluster_urls[i]) != 0)
			return true;
	return false;
}

static void warn_restart_needed(const char *key, const char *path)
{
	log_warning("%s changed in %s: takes effect after a restart", key, path);
}

/* Reads the config again (for ACTOR: an admin through chatctl; NULL: a
 * signal): 0, or -1 with its errors in ERRORS, logged, and the config in
 * use kept. */
static int reload(struct server *s, const char *actor, struct config_errors *errors)
{
	struct config *cfg;

	notify_reloading();
	log_info("reloading the config from %s", s->opts->config_path);
	if (config_load(s->opts->config_path, &cfg, errors) < 0) {
		for (size_t i = 0; i < errors->count; i++)
			log_event(LOG_ERR, LOG_FIELDS(.event = "reload_failed", .actor = actor),
				  "reload failed, keeping the old config: %s", errors->messages[i]);
		s->reloads[0]++;
		notify_ready(rooms_online(s->pool.rooms));
		return -1;
	}
	apply_overrides(cfg, s->opts);

	const struct config *old = s->cfg;
	if (cfg->port != old->port)
		warn_restart_needed("port", cfg->path);
	if (strcmp(cfg->bind, old->bind) != 0)
		warn_restart_needed("bind", cfg->path);
	if (cfg->threads != old->threads)
		warn_restart_needed("threads", cfg->path);
	if (cfg->io_uring != old->io_uring)
		warn_restart_needed("io_uring", cfg->path);
	if (cfg->log_target != old->log_target)
		warn_restart_needed("log target", cfg->path);
	if (cfg->irc_port != old->irc_port)
		warn_restart_needed("[irc] port", cfg->path);
	if (strcmp(config_irc_bind(cfg), config_irc_bind(old)) != 0)
		warn_restart_needed("[irc] bind", cfg->path);
	if (cfg->tls_port != old->tls_port)
		warn_restart_needed("tls_port", cfg->path);
	if (cfg->irc_tls_port != old->irc_tls_port)
		warn_restart_needed("[irc] tls_port", cfg->path);
	if (cfg->web_port != old->web_port)
		warn_restart_needed("[web] port", cfg->path);
	if (cfg->web_tls_port != old->web_tls_port)
		warn_restart_needed("[web] tls_port", cfg->path);
	if (strcmp(config_web_bind(cfg), config_web_bind(old)) != 0)
		warn_restart_needed("[web] bind", cfg->path);
	if (cfg->metrics_port != old->metrics_port ||
	    (cfg->metrics_address == NULL) != (old->metrics_address == NULL) ||
	    (cfg->metrics_address && strcmp(cfg->metrics_address, old->metrics_address) != 0))
		warn_restart_needed("[metrics] listen", cfg->path);
	if (cluster_config_changed(cfg, old))
		warn_restart_needed("[cluster]", cfg->path);
	site_reload(s, cfg, "reloaded");

	/* The certificate is read again whether or not its files changed:
	 * that is what an admin's reload after a renewal asks for. */
	if (cfg->tls_certificate)
		tls_load(s, cfg, "reloaded");
	else if (s->tls_ctx)
		log_warning("[tls] certificate is no longer set in %s: TLS listeners keep the "
			    "certificate in use until a restart", cfg->path);

	log_set_level(cfg->log_level);
	if (cfg->store_path && (!old->store_path || strcmp(cfg->store_path, old->store_path) != 0))
		warn_restart_needed("[store] path", cfg->path);
	struct store_policy sp = store_policy(cfg);
	store_set_policy(s->store, &sp);
	struct ip_limit_policy policy = ip_policy(cfg);
	ip_limit_set_policy(s->pool.ip_limit, &policy);
	for (int i = 0; i < s->pool.count; i++)
		worker_post_config(s->pool.workers[i], cfg);
	if (s->control && !config_same_control(cfg, old))
		warn_restart_needed("[control] socket", cfg->path);
	control_set_config(s->control, cfg);
	config_unref(s->cfg);
	s->cfg = cfg;
	s->reloads[1]++;
	log_event(LOG_INFO, LOG_FIELDS(.event = "reload", .actor = actor,
				       LOG_ONLINE(rooms_online(s->pool.rooms))),
		  "config reloaded from %s", cfg->path);
	notify_ready(rooms_online(s->pool.rooms));
	return 0;
}

static void reload_on_signal(struct server *s)
{
	struct config_errors errors = { 0 };
	reload(s, NULL, &errors);
	config_errors_free(&errors);
}

static void handle_signals(struct server *s)
{
	struct signalfd_siginfo si;

	while (read(s->signal_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			reload_on_signal(s);
		} else if (!s->stopping) {
			s->stopping = true;
			notify_stopping();
			log_event(LOG_INFO, LOG_FIELDS(.event = "stop", LOG_ONLINE(rooms_online(s->pool.rooms))),
				  "shutting down (signal %s)", sigabbrev_np((int)si.ssi_signo));
		}
	}
}

/* The line protocol on [server] bind:port and, over TLS, tls_port; IRC on
 * [irc] bind:port and tls_port; each unless its port is 0 (but [server]
 * port, where 0 is any free port). Or, under socket activation, what
 * systemd passes. */
static int open_listeners(struct server *s)
{
	const struct config *cfg = s->cfg;
	struct listen_address addresses[6] = {
		{ .address = cfg->bind, .port = cfg->port, .proto = PROTO_LINE },
	};
	size_t count = 1;

	if (cfg->tls_port)
		addresses[count++] = (struct listen_address){
			.address = cfg->bind, .port = cfg->tls_port, .proto = PROTO_LINE, .tls = true };
	if (cfg->irc_port)
		addresses[count++] = (struct listen_address){
			.address = config_irc_bind(cfg), .port = cfg->irc_port, .proto = PROTO_IRC };
	if (cfg->irc_tls_port)
		addresses[count++] = (struct listen_address){ .address = config_irc_bind(cfg),
							      .port = cfg->irc_tls_port,
							      .proto = PROTO_IRC, .tls = true };
	if (cfg->web_port)
		addresses[count++] = (struct listen_address){
			.address = config_web_bind(cfg), .port = cfg->web_port, .proto = PROTO_WEB };
	if (cfg->web_tls_port)
		addresses[count++] = (struct listen_address){ .address = config_web_bind(cfg),
							      .port = cfg->web_tls_port,
							      .proto = PROTO_WEB, .tls = true };
	if (listener_open(&s->listener, addresses, count) < 0)
		return -1;
	if (!s->listener.activated && !cfg->irc_port && !cfg->irc_tls_port)
		log_info("no IRC: [irc] port = 0");
	else if (s->listener.activated && cfg->irc_port && !listener_has(&s->listener, PROTO_IRC, false))
		log_info("no IRC: systemd passed no socket named \"irc\" (under socket activation "
			 "[irc] port is not used)");
	bool tls = listener_has(&s->listener, PROTO_LINE, true) || listener_has(&s->listener, PROTO_IRC, true) ||
		   listener_has(&s->listener, PROTO_WEB, true);
	if (tls && !s->tls_ctx) {
		log_error("systemd passed a TLS socket (named \"tls\", \"irc-tls\" or \"web-tls\"), "
			  "but [tls] certificate is not set in %s", cfg->path);
		return -1;
	}
	return 0;
}

/* ---- for chatctl (admin/control.h) ------------------------------------------- */

/* BANS (taken) from now on, everywhere. */
static void set_bans(struct server *s, struct ban_list *bans)
{
	ban_list_unref(s->bans);
	s->bans = bans;
	for (int i = 0; i < s->pool.count; i++)
		worker_post_bans(s->pool.workers[i], bans);
}

static void host_set_bans(void *server, struct ban_list *bans)
{
	set_bans(server, bans);
}

static const struct ban_list *host_bans(void *server)
{
	return ((struct server *)server)->bans;
}

struct bans_loading {
	struct ban *bans;
	size_t count, cap;
};

static void ban_loaded(void *ctx, const struct ban *b)
{
	struct bans_loading *bl = ctx;
	if (bl->count == bl->cap) {
		bl->cap = bl->cap ? 2 * bl->cap : 64;
		bl->bans = xrealloc(bl->bans, bl->cap * sizeof(*bl->bans));
	}
	bl->bans[bl->count++] = *b;
}

/* Bans past their time leave the list, and the store. */
static void expire_bans(struct server *s)
{
	int64_t now = time(NULL);
	struct ban_list *l = ban_list_expired(s->bans, now);
	if (!l)
		return;
	for (size_t i = 0; i < s->bans->count; i++) {
		const struct ban *b = &s->bans->bans[i];
		if (b->expires && b->expires <= now) {
			store_delete_ban(s->store, b->mask);
			log_event(LOG_INFO, LOG_FIELDS(.event = "ban_removed", .reason = "expired"),
				  "the ban of %s expired", b->mask);
		}
	}
	set_bans(s, l);
}

static const struct config *host_config(void *server)
{
	return ((struct server *)server)->cfg;
}

static int host_reload(void *server, const char *actor, struct config_errors *errors)
{
	return reload(server, actor, errors);
}

static void host_status(void *server, struct json_object *o, FILE *text)
{
	struct server *s = server;
	int online, max, invisible;
	rooms_counts(s->pool.rooms, &online, &max, &invisible);
	int rooms = rooms_count(s->pool.rooms);
	long uptime = (long)(time(NULL) - s->started);
	json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(o, "started", json_object_new_int64((int64_t)s->started));
	json_object_object_add(o, "uptime", json_object_new_int64(uptime));
	json_object_object_add(o, "config", json_object_new_string(s->cfg->path));
	json_object_object_add(o, "online", json_object_new_int(online));
	json_object_object_add(o, "max_online", json_object_new_int(max));
	json_object_object_add(o, "connections", json_object_new_int(atomic_load(&s->pool.connections)));
	json_object_object_add(o, "max_clients", json_object_new_int(s->cfg->max_clients));
	json_object_object_add(o, "rooms", json_object_new_int(rooms));
	json_object_object_add(o, "workers", json_object_new_int(s->pool.count));
	json_object_object_add(o, "log_level", json_object_new_string(log_level_name(log_get_level())));
	json_object_object_add(o, "reloads", json_object_new_int64((int64_t)s->reloads[1]));
	json_object_object_add(o, "failed_reloads", json_object_new_int64((int64_t)s->reloads[0]));
	fprintf(text, "chatd %s, pid %d, up %ldd %02ld:%02ld:%02ld\n", PACKAGE_VERSION, (int)getpid(),
		uptime / 86400, uptime % 86400 / 3600, uptime % 3600 / 60, uptime % 60);
	fprintf(text, "config:      %s (reloaded %llu times, %llu failed)\n", s->cfg->path,
		(unsigned long long)s->reloads[1], (unsigned long long)s->reloads[0]);
	fprintf(text, "online:      %d (most ever %d), %d connections of at most %d\n", online, max,
		atomic_load(&s->pool.connections), s->cfg->max_clients);
	fprintf(text, "rooms:       %d\n", rooms);
	fprintf(text, "workers:     %d\n", s->pool.count);
	struct json_object *listening = json_object_new_array();
	for (size_t i = 0; i < s->listener.count; i++) {
		const struct listen_socket *ls = &s->listener.sockets[i];
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		char addr[PEER_MAX] = "?";
		if (getsockname(ls->fd, (struct sockaddr *)&ss, &len) == 0)
			format_address((struct sockaddr *)&ss, addr, sizeof(addr));
		struct json_object *l = json_object_new_object();
		json_object_object_add(l, "address", json_object_new_string(addr));
		json_object_object_add(l, "protocol", json_object_new_string(
			ls->proto == PROTO_LINE ? "line" : ls->proto == PROTO_IRC ? "irc" : "web"));
		json_object_object_add(l, "tls", json_object_new_boolean(ls->tls));
		json_object_array_add(listening, l);
		fprintf(text, "%-12s %s, %s\n", i ? "" : "listening:", addr,
			listener_kind_name(ls->proto, ls->tls));
	}
	json_object_object_add(o, "listeners", listening);
	json_object_object_add(o, "socket_activated", json_object_new_boolean(s->listener.activated));
	struct tls_cert_info info;
	if (s->tls_ctx && tls_context_cert_info(s->tls_ctx, &info)) {
		struct json_object *t = json_object_new_object();
		json_object_object_add(t, "subject", json_object_new_string(info.subject));
		json_object_object_add(t, "not_after", json_object_new_int64((int64_t)info.not_after));
		json_object_object_add(t, "sha256", json_object_new_string(info.sha256));
		json_object_object_add(o, "tls", t);
		long days = (long)((info.not_after - time(NULL)) / DAY_SECONDS);
		fprintf(text, "TLS:         %s, expires in %ld days\n", info.subject, days);
	}
	struct store_stats st;
	store_get_stats(s->store, &st);
	char *db = config_store_path(s->cfg);
	json_object_object_add(o, "database", db ? json_object_new_string(db) : NULL);
	json_object_object_add(o, "history_written", json_object_new_int64((int64_t)st.written));
	json_object_object_add(o, "history_dropped", json_object_new_int64((int64_t)st.dropped));
	fprintf(text, "database:    %s (%llu lines written since start, %llu lost)\n", db ? db : "?",
		(unsigned long long)st.written, (unsigned long long)st.dropped);
	free(db);
	if (s->pool.cluster) {
		struct cluster_stats cs;
		cluster_get_stats(s->pool.cluster, &cs);
		struct json_object *c = json_object_new_object();
		json_object_object_add(c, "node", json_object_new_string(s->cfg->cluster_node));
		json_object_object_add(c, "up", json_object_new_boolean(cs.up));
		json_object_object_add(c, "nodes", json_object_new_int(cs.nodes));
		json_object_object_add(c, "published", json_object_new_int64((int64_t)cs.published));
		json_object_object_add(c, "lost", json_object_new_int64((int64_t)cs.lost));
		json_object_object_add(c, "received", json_object_new_int64((int64_t)cs.received));
		json_object_object_add(c, "stream_seq", json_object_new_int64((int64_t)cs.last_seq));
		json_object_object_add(o, "cluster", c);
		fprintf(text, "cluster:     node %s, %s NATS, %d other node%s heard (%llu messages "
			"published, %llu lost, %llu read)\n", s->cfg->cluster_node,
			cs.up ? "reaches" : "does not reach", cs.nodes, cs.nodes == 1 ? "" : "s",
			(unsigned long long)cs.published, (unsigned long long)cs.lost,
			(unsigned long long)cs.received);
	}
	fprintf(text, "log level:   %s\n", log_level_name(log_get_level()));
}

static void collect_metrics(void *server, struct metrics_snapshot *snap)
{
	struct server *s = server;
	snap->started = s->started;
	snap->workers = s->pool.count < METRICS_WORKERS_MAX ? s->pool.count : METRICS_WORKERS_MAX;
	for (int i = 0; i < s->pool.count; i++) {
		const struct worker_stats *ws = worker_stats(s->pool.workers[i]);
		stats_add_to(&snap->sum, ws);
		if (i < snap->workers) {
			snap->worker[i].busy_ns = stat_get(&ws->busy_ns);
			snap->worker[i].loops = stat_get(&ws->loops);
			snap->worker[i].connections = worker_connection_count(s->pool.workers[i]);
		}
	}
	int invisible;
	rooms_counts(s->pool.rooms, &snap->online, &snap->max_online, &invisible);
	snap->rooms = rooms_count(s->pool.rooms);
	snap->accounts = accounts_count(s->accounts);
	struct store_stats st;
	store_get_stats(s->store, &st);
	snap->history_written = st.written;
	snap->history_dropped = st.dropped;
	if (s->pool.cluster) {
		struct cluster_stats cs;
		cluster_get_stats(s->pool.cluster, &cs);
		snap->clustered = true;
		snap->cluster_up = cs.up;
		snap->cluster_nodes = cs.nodes;
		snap->cluster_published = cs.published;
		snap->cluster_lost = cs.lost;
		snap->cluster_received = cs.received;
	}
	snap->reloads_ok = s->reloads[1];
	snap->reloads_failed = s->reloads[0];
	memcpy(snap->rejected, s->rejected, sizeof(snap->rejected));
}

static void room_loaded(void *ctx, const struct store_room *room)
{
	struct server *s = ctx;
	rooms_room_load(s->pool.rooms, room);
}

/* The registry of N workers' rooms, with what the store kept of them (their
 * recent lines, registered rooms), before anyone can join one: -1 (logged)
 * when the file cannot be read. */
static int load_rooms(struct server *s, int n)
{
	s->pool.rooms = rooms_new(n);
	char *err = NULL;
	int64_t since = 0;
	if (s->cfg->history_max_age) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		since = ((int64_t)now.tv_sec - s->cfg->history_max_age) * 1000;
	}
	struct bans_loading bl = { 0 };
	int r = store_load_bans(s->store, ban_loaded, &bl, &err);
	s->bans = ban_list_of(bl.bans, bl.count);
	free(bl.bans);
	if (r < 0 ||
	    store_load_recent(s->store, (unsigned)s->cfg->history_replay, since, history_loaded, s,
			      &err) < 0 ||
	    store_load_rooms(s->store, room_loaded, s, &err) < 0 ||
	    store_load_stream_seq(s->store, &s->stream_seq, &err) < 0) {
		log_event(LOG_ERR, LOG_FIELDS(.event = "store_failed"), "%s", err);
		free(err);
		return -1;
	}
	return 0;
}

/* On the accounts thread: a new account's name, claimed for the cluster. */
static int replica_create(void *ctx, const struct account_row *row)
{
	struct server *s = ctx;
	return s->pool.cluster ? cluster_account_create(s->pool.cluster, row) : 0;
}

static void replica_changed(void *ctx, const struct account_row *row)
{
	struct server *s = ctx;
	if (s->pool.cluster)
		cluster_account_changed(s->pool.cluster, row);
}

/* On the accounts thread: an account this node had before it joined. */
static void replica_offer(void *ctx, const struct account_row *row)
{
	struct server *s = ctx;
	if (s->pool.cluster)
		cluster_account_offer(s->pool.cluster, row);
}

static int start_workers(struct server *s, int n)
{
	struct store_policy sp = store_policy(s->cfg);
	int err_store = store_start(s->store, &sp);
	if (err_store < 0)
		return err_store;
	s->pool.store = s->store;
	/* In a cluster, accounts are the nodes' (cluster/shared.h). */
	if (s->cfg->cluster_url_count)
		accounts_set_replica(s->accounts, &(struct accounts_replica){
			.ctx = s, .create = replica_create, .changed = replica_changed,
			.offer = replica_offer });
	if ((err_store = accounts_start(s->accounts)) < 0)
		return err_store;
	s->pool.accounts = s->accounts;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	s->pool.id_base = (uint64_t)now.tv_sec * 1000000 + (uint64_t)now.tv_nsec / 1000;
	struct ip_limit_policy policy = ip_policy(s->cfg);
	s->pool.ip_limit = ip_limit_new(&policy, IP_LIMIT_IDLE_MAX);
	s->pool.workers = xcalloc((size_t)n, sizeof(*s->pool.workers));
	s->pool.inboxes = xcalloc((size_t)n, sizeof(*s->pool.inboxes));
	s->pool.status_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->pool.status_fd < 0)
		return -errno;
	s->pool.count = n;
	/* Checked once here, said once; each worker then makes its own ring. */
	const char *why_not = NULL;
	s->pool.io_uring = s->cfg->io_uring && writer_uring_usable(&why_not);
	if (why_not)
		log_info("writing with writev: io_uring is not usable (%s)", why_not);
	else
		log_info("writing with %s", s->pool.io_uring ? "io_uring" : "writev (io_uring = no)");
	for (int i = 0; i < n; i++)
		s->pool.workers[i] = worker_new(&s->pool, i, s->cfg);
	for (int i = 0; i < n; i++) {
		int r = worker_start(s->pool.workers[i]);
		if (r < 0)
			return r;
	}
	return epoll_watch(s->epoll_fd, s->pool.status_fd, TAG_STATUS);
}

/* ---- the cluster ([cluster]) ---------------------------------------------- */

/* On nats.c's thread: the room stream's messages go to worker 0, which
 * tells them in order (one thread keeps the stream's order). */
static void cluster_delivered(void *ctx, uint64_t seq, const uint8_t *data, size_t len)
{
	struct server *s = ctx;
	worker_post_cluster(s->pool.workers[0], seq, data, len);
}

/* On the cluster's thread: everyone here is told when the other nodes
 * cannot be reached, once, and when they can again. */
static void cluster_changed(void *ctx, bool up)
{
	struct server *s = ctx;
	const char *text;
	if (!up) {
		text = "the other servers of this network cannot be reached: you are chatting with "
		       "this server's users only until they are back";
		s->cluster_told_down = true;
	} else if (s->cluster_told_down) {
		text = "the other servers of this network are back";
		s->cluster_told_down = false;
	} else {
		return;
	}
	for (int i = 0; i < s->pool.count; i++) {
		worker_post_wall(s->pool.workers[i], text);
		/* Another node may have taken a nick of ours meanwhile. */
		if (up)
			worker_post_tell_all(s->pool.workers[i], true);
	}
}

/* On the nicks' thread: the session is renamed by its own worker. */
static void cluster_nick_refused(void *ctx, int worker, int fd, uint64_t session, const char *nick)
{
	struct server *s = ctx;
	if (worker >= 0 && worker < s->pool.count)
		worker_post_nick_refused(s->pool.workers[worker], fd, session, nick);
}

/* On the cluster's thread: the node's members leave, on worker 0 (which
 * owns the members of other nodes). */
static void cluster_node_lost(void *ctx, uint64_t origin, const char *node)
{
	struct server *s = ctx;
	worker_post_node_lost(s->pool.workers[0], origin, node);
}

/* On the shared buckets' thread: another node's account, kept here too. */
static void cluster_account(void *ctx, const struct account_row *row)
{
	struct server *s = ctx;
	accounts_apply(s->accounts, row);
}

/* On the shared buckets' thread: a ban the nodes share, for the main
 * thread. */
static void cluster_ban(void *ctx, const struct ban *added, const char *removed)
{
	struct server *s = ctx;
	pthread_mutex_lock(&s->shared_bans.lock);
	if (s->shared_bans.count == s->shared_bans.cap) {
		s->shared_bans.cap = s->shared_bans.cap ? 2 * s->shared_bans.cap : 16;
		s->shared_bans.items = xrealloc(s->shared_bans.items,
						s->shared_bans.cap * sizeof(*s->shared_bans.items));
	}
	struct shared_ban *sb = &s->shared_bans.items[s->shared_bans.count++];
	memset(sb, 0, sizeof(*sb));
	if (added) {
		sb->ban = *added;
	} else {
		snprintf(sb->ban.mask, sizeof(sb->ban.mask), "%s", removed);
		sb->removed = true;
	}
	pthread_mutex_unlock(&s->shared_bans.lock);
	uint64_t one = 1;
	if (write(s->shared_bans.fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_errno(LOG_WARNING, errno, "cannot wake the main thread for a shared ban");
}

/* The bans other nodes shared (and ours, back from the bucket: those
 * change nothing), into the list in force and the store. */
static void apply_shared_bans(struct server *s)
{
	uint64_t n;
	if (read(s->shared_bans.fd, &n, sizeof(n)) < 0)
		return;
	pthread_mutex_lock(&s->shared_bans.lock);
	struct shared_ban *items = s->shared_bans.items;
	size_t count = s->shared_bans.count;
	s->shared_bans.items = NULL;
	s->shared_bans.count = s->shared_bans.cap = 0;
	pthread_mutex_unlock(&s->shared_bans.lock);
	for (size_t i = 0; i < count; i++) {
		const struct ban *b = &items[i].ban;
		const struct ban *had = NULL;
		for (size_t k = 0; k < s->bans->count && !had; k++)
			if (strcmp(s->bans->bans[k].mask, b->mask) == 0)
				had = &s->bans->bans[k];
		struct ban_list *l = NULL;
		if (items[i].removed && had) {
			l = ban_list_without(s->bans, b->mask);
			store_delete_ban(s->store, b->mask);
		} else if (!items[i].removed && (!had || had->created != b->created ||
						 had->expires != b->expires)) {
			l = ban_list_with(s->bans, b);
			store_save_ban(s->store, b);
		}
		if (!l)
			continue;
		log_event(LOG_NOTICE, LOG_FIELDS(.event = items[i].removed ? "ban_removed" : "ban_added",
						 .actor = "another node", .reason = b->mask),
			  "ban of %s %s by another node", b->mask, items[i].removed ? "lifted" : "set");
		set_bans(s, l);
	}
	free(items);
}

static int start_cluster(struct server *s)
{
	if (s->cfg->cluster_url_count == 0)
		return 0;
	pthread_mutex_init(&s->shared_bans.lock, NULL);
	s->shared_bans.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int r;
	if (s->shared_bans.fd < 0 ||
	    (r = epoll_watch(s->epoll_fd, s->shared_bans.fd, TAG_SHARED_BANS)) < 0) {
		log_errno(LOG_ERR, errno, "cluster: eventfd");
		return -1;
	}
	char *err = NULL;
	struct cluster_host host = { .ctx = s, .deliver = cluster_delivered,
				     .changed = cluster_changed, .node_lost = cluster_node_lost,
				     .nick_refused = cluster_nick_refused, .account = cluster_account,
				     .ban = cluster_ban };
	s->pool.remotes = remotes_new();
	rooms_set_guest_suffix(s->pool.rooms, s->cfg->cluster_node);
	s->pool.cluster = cluster_start(s->cfg, &host, s->stream_seq, &err);
	if (!s->pool.cluster) {
		log_event(LOG_ERR, LOG_FIELDS(.event = "cluster_failed"), "cluster: %s", err);
		free(err);
		return -1;
	}
	/* What this node kept alone (before it joined, or while it ran
	 * without [cluster]) becomes the others' too, unless they ever had
	 * it: sent once the buckets are open. */
	for (size_t i = 0; i < s->bans->count; i++)
		cluster_ban_offer(s->pool.cluster, &s->bans->bans[i]);
	accounts_offer(s->accounts);
	return 0;
}

static void stop_workers(struct server *s)
{
	for (int i = 0; i < s->pool.count; i++)
		worker_post_shutdown(s->pool.workers[i]);
	for (int i = 0; i < s->pool.count; i++)
		worker_join(s->pool.workers[i]);
	/* Nothing of the cluster's calls the accounts any more; they may
	 * still call it. */
	cluster_halt(s->pool.cluster);
	/* Every line said is in the store's hands now: written before the
	 * workers are freed, as answers to questions still go to their
	 * inboxes. */
	store_close(s->store);
	s->store = NULL;
	s->pool.store = NULL;
	accounts_close(s->accounts);
	s->accounts = NULL;
	s->pool.accounts = NULL;
	/* What the workers handed over is published, for a second at most;
	 * what the stream still delivers lands in inboxes that exist. */
	cluster_stop(s->pool.cluster);
	s->pool.cluster = NULL;
	remotes_free(s->pool.remotes, s->pool.rooms);
	s->pool.remotes = NULL;
	for (int i = 0; i < s->pool.count; i++)
		worker_free(s->pool.workers[i]);
	free(s->pool.workers);
	free(s->pool.inboxes);
	rooms_free(s->pool.rooms);
	ip_limit_free(s->pool.ip_limit);
	if (s->pool.status_fd >= 0)
		close(s->pool.status_fd);
}

static void loop(struct server *s)
{
	struct epoll_event events[32];

	while (!s->stopping) {
		int n = epoll_wait(s->epoll_fd, events, 32, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_errno(LOG_ERR, errno, "epoll_wait");
			return;
		}
		for (int i = 0; i < n; i++) {
			uint32_t tag = events[i].data.u32;
			if (tag < LISTENER_MAX)
				accept_connections(s, &s->listener.sockets[tag]);
			else if (tag == TAG_SIGNAL)
				handle_signals(s);
			else if (tag == TAG_STATUS)
				status_changed(s);
			else if (tag == TAG_WATCHDOG)
				watchdog_tick(s);
			else if (tag == TAG_TLS_WATCH)
				tls_watch_tick(s);
			else if (tag == TAG_CONTROL)
				control_run(s->control);
			else if (tag == TAG_SHARED_BANS)
				apply_shared_bans(s);
			else if (tag == TAG_METRICS)
				metrics_run(s->metrics);
		}
	}
}

int server_run(struct config *cfg, const struct options *opts, int ready_fd)
{
	struct server s = { .cfg = cfg, .opts = opts, .signal_fd = -1, .watchdog_fd = -1,
			    .tls_watch_fd = -1, .pool.status_fd = -1, .listener.reserve_fd = -1,
			    .shared_bans.fd = -1,
			    .started = time(NULL) };
	int exit_code = 1, r;

	apply_overrides(cfg, opts);
	log_set_level(cfg->log_level);
	tune_malloc();
	int workers = config_worker_count(cfg);
	log_event(LOG_INFO, LOG_FIELDS(.event = "start"), "chatd %s starting (%d worker thread%s)",
		  PACKAGE_VERSION, workers, workers == 1 ? "" : "s");
	/* A worker waits only for its connections (and, rarely and briefly,
	 * for an inbox lock), so one beyond the CPUs only shares a CPU with
	 * another, and under load both write fewer lines per system call
	 * (docs/design.md, Scaling). */
	int cpus = config_cpu_count();
	if (cfg->threads > cpus)
		log_warning("threads = %d is more than the %d CPU%s chatd may run on: the extra workers "
			    "share CPUs and, under load, cost throughput (threads = 0 starts one per CPU)",
			    cfg->threads, cpus, cpus == 1 ? "" : "s");

	s.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (s.epoll_fd < 0) {
		log_errno(LOG_ERR, errno, "epoll_create1");
		goto out;
	}
	if ((r = setup_signals(&s)) < 0 || (r = epoll_watch(s.epoll_fd, s.signal_fd, TAG_SIGNAL)) < 0) {
		log_errno(LOG_ERR, -r, "signals");
		goto out;
	}
	if (open_store(&s) < 0 || load_rooms(&s, workers) < 0)
		goto out;
	/* Before the workers: its log tap is in place before any thread logs. */
	s.control_host = (struct control_host){ .server = &s, .pool = &s.pool, .config = host_config,
						.reload = host_reload, .status = host_status,
						.bans = host_bans, .set_bans = host_set_bans };
	s.control = control_open(cfg, &s.control_host);
	if (s.control && (r = epoll_watch(s.epoll_fd, control_fd(s.control), TAG_CONTROL)) < 0) {
		log_errno(LOG_ERR, -r, "epoll_ctl(control socket)");
		goto out;
	}
	if ((r = start_workers(&s, workers)) < 0) {
		log_errno(LOG_ERR, -r, "starting worker threads");
		goto out;
	}
	set_bans(&s, ban_list_ref(s.bans)); /* the workers' first */
	if (start_cluster(&s) < 0)
		goto out;
	/* Before the listeners: a TLS socket needs the context, which the
	 * workers are given as they will be at each reload. */
	if (cfg->tls_certificate && tls_load(&s, cfg, "in use") < 0)
		goto out;
	if (open_listeners(&s) < 0)
		goto out;
	site_reload(&s, cfg, "in use");
	s.metrics = metrics_open(cfg, collect_metrics, &s);
	if (s.metrics && (r = epoll_watch(s.epoll_fd, metrics_fd(s.metrics), TAG_METRICS)) < 0) {
		log_errno(LOG_ERR, -r, "epoll_ctl(metrics)");
		goto out;
	}
	if ((r = setup_tls_watch(&s)) < 0) {
		log_errno(LOG_ERR, -r, "TLS file watch timer");
		goto out;
	}
	for (size_t i = 0; i < s.listener.count; i++) {
		if ((r = epoll_watch(s.epoll_fd, s.listener.sockets[i].fd, (uint32_t)i)) < 0) {
			log_errno(LOG_ERR, -r, "epoll_ctl(listener)");
			goto out;
		}
	}
	if ((r = setup_watchdog(&s)) < 0) {
		log_errno(LOG_ERR, -r, "watchdog timer");
		goto out;
	}

	notify_ready(0);
	log_echo_errors(false);
	daemonize_done(ready_fd);
	loop(&s);
	exit_code = 0;
out:
	/* Stop taking connections first; then workers say goodbye and flush. */
	listener_close(&s.listener);
	metrics_close(s.metrics);
	if (s.pool.workers)
		stop_workers(&s);
	else
		rooms_free(s.pool.rooms);
	accounts_close(s.accounts);
	store_close(s.store);
	/* After every thread that logs is gone: it takes the log's copies. */
	control_close(s.control);
	if (s.watchdog_fd >= 0)
		close(s.watchdog_fd);
	if (s.tls_watch_fd >= 0)
		close(s.tls_watch_fd);
	SSL_CTX_free(s.tls_ctx);
	site_unref(s.site);
	ban_list_unref(s.bans);
	if (s.shared_bans.fd >= 0) {
		close(s.shared_bans.fd);
		free(s.shared_bans.items);
		pthread_mutex_destroy(&s.shared_bans.lock);
	}
	if (s.signal_fd >= 0)
		close(s.signal_fd);
	if (s.epoll_fd >= 0)
		close(s.epoll_fd);
	if (exit_code == 0)
		log_event(LOG_INFO, LOG_FIELDS(.event = "stop"), "stopped");
	config_unref(s.cfg);
	return exit_code;
}
