/* Request rate limits: one token bucket per key (an account id), held in process.
 *
 * A bucket holds at most `burst` tokens and gains `rate` per second; each request takes one.
 * Buckets live in a fixed table (no allocation per request): a key is looked for in a few slots
 * after its hash, and a key seen for the first time takes an empty slot or the one of those
 * idle the longest, starting full. So an evicted key loses nothing but its debt, and the table's
 * size bounds memory however many keys come.
 *
 * Thread-safe: one mutex per group of slots.
 */
#ifndef PL_RATELIMIT_H
#define PL_RATELIMIT_H

#include <stdint.h>

typedef struct pl_ratelimit pl_ratelimit;

/* rate > 0 requests per second, burst >= 1; slots: the table's size (rounded up to a power of
 * two, at least 64). NULL when out of memory. */
pl_ratelimit *pl_ratelimit_new(double rate, double burst, int slots);
void pl_ratelimit_free(pl_ratelimit *rl);

/* 1 when a request of `key` (at most 63 bytes are compared) may go at now_ms (a token is
 * taken); 0 when it is over the limit: *retry_after_s is then the whole seconds until a token
 * is back (at least 1), for a Retry-After header. */
int pl_ratelimit_take(pl_ratelimit *rl, const char *key, int64_t now_ms, int *retry_after_s);

#endif
