/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "auth:" section (authenticated submission, RFC 4954 / RFC 6409): the
 * password file of user:hash lines, and how many failed AUTHs a client
 * address may have before it is locked out, and for how long. Types only;
 * auth.c loads and checks.
 */
#ifndef MX_CONFIG_AUTH_H
#define MX_CONFIG_AUTH_H

struct cfg_auth {
	char *password_file;   /* absolute path; NULL: no listener offers AUTH */
	unsigned max_failures; /* failed AUTHs from one address before 421 and lockout: 5 */
	unsigned lockout_s;    /* how long the lockout lasts, and the window failures count in: 300 */
	unsigned queue_depth;  /* AUTHs each worker may have waiting for the hash thread: 256 */
};

#endif
