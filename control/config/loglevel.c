/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Log level names (control.h): the config's logging.level, and the run-time
 * "log level LEVEL" of mxgatectl and the control socket. Apart from
 * control.c so the socket's request parser (control/common/proto.c, and its
 * fuzz target) links it without libcyaml.
 */
#include <string.h>

#include "control/config/config_priv.h"
#include "control/config/control.h"

const struct cfg_enum cfg_log_levels[] = {
	{ "error", CFG_LOG_ERROR },
	{ "warning", CFG_LOG_WARNING },
	{ "info", CFG_LOG_INFO },
	{ "debug", CFG_LOG_DEBUG },
	{ NULL, 0 },
};

const char *cfg_log_level_name(enum cfg_log_level l)
{
	for (unsigned i = 0; cfg_log_levels[i].name != NULL; i++)
		if (cfg_log_levels[i].value == (int)l)
			return cfg_log_levels[i].name;
	return "?";
}

int cfg_log_level_parse(const char *s, enum cfg_log_level *out)
{
	for (unsigned i = 0; cfg_log_levels[i].name != NULL; i++)
		if (strcmp(s, cfg_log_levels[i].name) == 0) {
			*out = (enum cfg_log_level)cfg_log_levels[i].value;
			return 0;
		}
	return -1;
}
