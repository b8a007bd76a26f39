/* Request signatures of the telephony carriers (reference/providers.md §1, §2): computing them
 * (for fakes and tests) and verifying them (for the gateway's callbacks).
 *
 * `url` is the full URL the carrier requested, scheme and host included, with its query string.
 * Params are the decoded form parameters of the POST body (pl_form); their order does not matter:
 * the functions sort a copy. Verification compares in constant time and never allocates in
 * proportion to attacker input beyond the params already parsed.
 */
#ifndef PL_SIGN_H
#define PL_SIGN_H

#include <stddef.h>

#include "form.h"

/* Capacity that holds any base64 signature these functions produce (SHA-256: 44 chars + NUL). */
#define PL_SIG_CAP 64

/* Twilio X-Twilio-Signature: base64(HMAC-SHA1(auth_token, url + k1v1k2v2... sorted by key, then
 * value for repeated keys)). Writes the signature into out (≥ PL_SIG_CAP). 0 or PL_ERR_NOMEM. */
int pl_sign_twilio(const char *auth_token, const char *url, const pl_form *params, char *out);

/* 1 when `signature` is the Twilio signature of url, or of url with the scheme's default port
 * (:443 / :80) added or removed (Twilio is inconsistent about it). 0 otherwise. */
int pl_verify_twilio(const char *auth_token, const char *url, const pl_form *params,
                     const char *signature);

/* Plivo X-Plivo-Signature-V3 of a POST: base64(HMAC-SHA256(auth_token, base + "." + nonce)) where
 * base = scheme://host/path, then "?" + the sorted query "k=v&..." (+ "." when there are POST
 * params) when there is a query or there are POST params, then the sorted POST params "kv...".
 * 0 or PL_ERR_NOMEM. */
int pl_sign_plivo_v3(const char *auth_token, const char *url, const pl_form *params,
                     const char *nonce, char *out);

/* 1 when any of the comma-separated signatures in `header` is the V3 signature of url (or url
 * with its default port added or removed). 0 otherwise (also for a missing nonce or header). */
int pl_verify_plivo_v3(const char *auth_token, const char *url, const pl_form *params,
                       const char *nonce, const char *header);

#endif
