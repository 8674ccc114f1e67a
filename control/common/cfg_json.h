/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A loaded config as JSON, with every default filled in: what `mxgatectl
 * config show` and `config check --json` print, so an operator sees the values
 * in force and not only the ones written.
 */
#ifndef MX_CTL_CFG_JSON_H
#define MX_CTL_CFG_JSON_H

#include <jansson.h>

#include "control/config/config.h"

/* A new object (sections dataplane, listeners, policy, control, logging), or NULL when out of memory. */
json_t *cfg_to_json(const struct cfg *c);

/* The "routes:" section: {"domains": [{domain, next_hops: [...]}], "smarthost": [...]}. */
json_t *cfg_routes_json(const struct cfg_routes *r);

#endif
