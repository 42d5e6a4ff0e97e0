/* The main thread: owns the listening sockets, the worker pool and the
 * config; handles signals (reload, shutdown), accepting, sd_notify and the
 * watchdog. Workers do all client I/O. */
#ifndef CHATD_SERVER_H
#define CHATD_SERVER_H

#include "base/config.h"
#include "daemon/options.h"

/* Runs until SIGTERM/SIGINT. Takes over the reference to CFG. READY_FD,
 * when >= 0, is told once the server listens (see daemonize.h). Returns the
 * exit code. */
int server_run(struct config *cfg, const struct options *opts, int ready_fd);

#endif
