/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Loading a config from a string in the config tests: what loaded, or
 * exactly which errors it printed. Every call checks for leaks too, since
 * Criterion ignores LeakSanitizer's report at process exit.
 */
#ifndef MX_TEST_CFG_LOAD_H
#define MX_TEST_CFG_LOAD_H

#include "control/config/config.h"

/* Loads YAML as file "t.yaml"; *ERR gets everything written to the error stream (free it). */
struct cfg *load(const char *yaml, char **err);

/* YAML loads and prints nothing; the caller frees the config with cfg_free(). */
struct cfg *load_ok(const char *yaml);

/* YAML fails to load and prints exactly WANT. */
void expect_errors(const char *yaml, const char *want);

/* Fails the test when something leaked so far (a no-op without LeakSanitizer). */
void no_leaks(void);

#endif
