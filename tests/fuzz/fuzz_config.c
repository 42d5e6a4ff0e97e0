/* libFuzzer target: the config loader on arbitrary file contents, through
 * a memfd so the real file path (fopen, the line reader, inih) is used. */
#include "autoconf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	char path[64];
	struct config *cfg;
	struct config_errors errors;

	if (fd < 0 && (fd = memfd_create("chatd.conf", 0)) < 0)
		abort();
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

	if (config_load(path, &cfg, &errors) == 0) {
		if (errors.count != 0 || cfg->max_sendq < cfg->max_line * 3 + 64)
			abort();
		config_unref(cfg);
	} else {
		if (errors.count == 0)
			abort(); /* a failure must say why */
		for (size_t i = 0; i < errors.count; i++)
			if (strncmp(errors.messages[i], path, strlen(path)) != 0)
				abort(); /* every message names the file */
		config_errors_free(&errors);
	}
	return 0;
}
