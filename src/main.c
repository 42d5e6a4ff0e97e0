/* chatd: wires the parts together: command line, config, log, daemon mode,
 * then the server. */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>

#include "base/config.h"
#include "daemon/daemonize.h"
#include "base/log.h"
#include "daemon/options.h"
#include "daemon/server.h"
#include "tls/context.h"

static int print_config_errors(struct config_errors *errors)
{
	for (size_t i = 0; i < errors->count; i++)
		fprintf(stderr, "%s\n", errors->messages[i]);
	config_errors_free(errors);
	return 1;
}

int main(int argc, char **argv)
{
	struct options opts;
	struct config *cfg;
	struct config_errors errors = { 0 };

	int r = options_parse(argc, argv, &opts);
	if (r != 0)
		return r;
	if (opts.show_help) {
		options_usage(stdout);
		return 0;
	}
	if (opts.show_version) {
		printf("chatd %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (config_load(opts.config_path, &cfg, &errors) < 0)
		return print_config_errors(&errors);
	if (opts.check_only) {
		/* The certificate and key too: what a reload would refuse. */
		char *err = NULL;
		SSL_CTX *ctx = cfg->tls_certificate ? tls_context_new(cfg, &err) : NULL;
		SSL_CTX_free(ctx);
		config_unref(cfg);
		if (err) {
			fprintf(stderr, "%s\n", err);
			free(err);
			return 1;
		}
		printf("chatd: config ok\n");
		return 0;
	}

	int ready_fd = -1;
	char *config_path = NULL;
	if (opts.daemonize) {
		/* Reloads read the file again after the chdir("/"). */
		config_path = realpath(opts.config_path, NULL);
		if (config_path)
			opts.config_path = config_path;
		ready_fd = daemonize(opts.pidfile);
		if (ready_fd < 0) {
			config_unref(cfg);
			return 1;
		}
	}
	log_open(cfg->log_target, opts.daemonize);
	log_echo_errors(opts.daemonize);
	r = server_run(cfg, &opts, ready_fd);
	daemonize_cleanup();
	free(config_path);
	return r;
}
