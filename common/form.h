/* application/x-www-form-urlencoded: an ordered list of (key, value) pairs, its encoding and its
 * parsing, and percent-encoding of single components.
 *
 * Carriers send their callbacks as form posts and Twilio/Exotel take their REST parameters that
 * way. Repeated keys are kept (Twilio's StatusCallbackEvent repeats). A pl_form owns copies of
 * every key and value; pl_form_free releases them. Not thread-safe: one owner at a time.
 */
#ifndef PL_FORM_H
#define PL_FORM_H

#include <stddef.h>

typedef struct {
    char *key;
    char *val;
} pl_form_pair;

typedef struct {
    pl_form_pair *items;
    int n;
    int cap;
} pl_form;

/* An empty form (no allocation until the first pair). */
void pl_form_init(pl_form *f);
void pl_form_free(pl_form *f);

/* Appends copies of key and value. 0 or PL_ERR_NOMEM. */
int pl_form_add(pl_form *f, const char *key, const char *val);

/* The first value of key, or NULL. */
const char *pl_form_get(const pl_form *f, const char *key);

/* Parses a urlencoded body ("a=1&b=x%20y", '+' is a space; a pair without '=' has an empty
 * value) and appends its pairs. Fails with PL_ERR_TOOBIG past max_pairs pairs and with
 * PL_ERR_INVALID on a malformed escape or a NUL byte once decoded. */
int pl_form_parse(pl_form *f, const char *body, size_t len, int max_pairs);

/* Sorts the pairs by key then value (byte order), as the signature schemes want. */
void pl_form_sort(pl_form *f);

/* "k=v&k2=v2" with both sides percent-encoded (space as %20). Returns a malloc'd string the caller
 * frees, or NULL on allocation failure. */
char *pl_form_encode(const pl_form *f);

/* Percent-encodes s (RFC 3986 unreserved characters kept) into out of cap bytes, NUL-terminated.
 * Returns the length, or -1 when cap is too small. */
long pl_url_encode(const char *s, char *out, size_t cap);

/* Decodes %XX escapes (and '+' as a space when plus_is_space) of in[0..n) into out of cap
 * bytes, NUL-terminated. Returns the length, or -1 on a malformed escape, an encoded NUL or too
 * small a buffer. */
long pl_url_decode(const char *in, size_t n, char *out, size_t cap, int plus_is_space);

#endif
