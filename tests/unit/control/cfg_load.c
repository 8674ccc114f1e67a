/* SPDX-License-Identifier: BSD-3-Clause */
/* cfg_load.h: the config tests' loading helpers. */
#include "cfg_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) /* clang */
#define MX_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(MX_TEST_ASAN)
#include <sanitizer/lsan_interface.h>
#endif

void no_leaks(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(MX_TEST_ASAN)
	cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "memory leaked (report above)");
#endif
}

struct cfg *load(const char *yaml, char **err)
{
	size_t n = 0;
	FILE *f = open_memstream(err, &n);

	cr_assert_not_null(f);
	struct cfg *c = cfg_load_data("t.yaml", (const uint8_t *)yaml, strlen(yaml), f);

	fclose(f);
	return c;
}

struct cfg *load_ok(const char *yaml)
{
	char *err = NULL;
	struct cfg *c = load(yaml, &err);

	cr_assert_not_null(c, "expected the config to load, got:\n%s", err);
	cr_assert_str_empty(err, "a config that loads prints nothing, got:\n%s", err);
	free(err);
	return c;
}

void expect_errors(const char *yaml, const char *want)
{
	char *err = NULL;
	struct cfg *c = load(yaml, &err);

	cr_assert_null(c, "expected errors, but it loaded:\n%s", yaml);
	cr_assert_str_eq(err, want, "for:\n%s\ngot:\n%s\nwant:\n%s", yaml, err, want);
	free(err);
	no_leaks();
}
