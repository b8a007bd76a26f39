/* Signed, expiring recording URLs: the postprocessor signs them, the api verifies them. One copy
 * of the scheme for both (docs/postprocess.md):
 *
 *   {public_api_url}/recordings/{execution_id}.wav?exp=<unix seconds>&sig=<hex>
 *   sig = lowercase hex HMAC-SHA256(key, execution_id + "." + exp)
 *
 * The signature is the only authority: whoever holds the URL may fetch the file until exp.
 */
#ifndef PL_RECORDING_H
#define PL_RECORDING_H

#include <stddef.h>
#include <stdint.h>

/* The key both services use when PL_RECORDING_SIGNING_KEY is not set: good for local runs only
 * (anyone who reads this file can sign URLs). Services warn at start when they run with it. */
#define PL_RECORDING_DEFAULT_KEY "parley-local-recording-key"

/* sig (65 bytes) = hex HMAC-SHA256(key, execution_id + "." + exp). */
void pl_recording_sig(const char *key, const char *execution_id, int64_t exp, char sig[65]);

/* Writes the signed URL into buf. base_url may end with '/'. 0, or PL_ERR_TOOBIG when buf is too
 * small. */
int pl_recording_url(char *buf, size_t cap, const char *base_url, const char *key,
                     const char *execution_id, int64_t exp);

/* Checks the query values of a request: exp (decimal Unix seconds) and sig (hex). Returns
 * PL_OK; PL_ERR_INVALID when a value is missing or malformed or the signature does not match
 * (compared in constant time); PL_ERR_TIMEOUT when the signature matches but now_s > exp. The
 * signature is checked before the expiry, so an altered exp is "invalid", never "expired". */
int pl_recording_verify(const char *key, const char *execution_id, const char *exp, const char *sig,
                        int64_t now_s);

#endif
