/* Per-account concurrency leases in Redis: a sorted set <prefix>lease:<account_id> whose
 * members are execution ids and scores their expiry (Unix ms).
 *
 * A live call holds one lease. The holder renews it well before expiry; a holder that crashes
 * stops renewing and its slot frees itself when the lease runs out, so no slot leaks. Acquire is
 * one Lua script (drop expired, count, add), so two schedulers never both take the last slot.
 */
#ifndef PL_LEASE_H
#define PL_LEASE_H

#include <stdint.h>

#include "redis.h"

/* Takes a slot for execution_id if fewer than max live leases exist (re-taking one already held
 * renews it). *granted is 1 or 0. */
int pl_lease_acquire(pl_redis *r, pl_rconn *c, const char *account_id, const char *execution_id,
                     int max, int64_t ttl_ms, int *granted);

/* Extends a held lease; a lease that already expired is taken again only if a slot is free
 * (*held tells). */
int pl_lease_renew(pl_redis *r, pl_rconn *c, const char *account_id, const char *execution_id,
                   int max, int64_t ttl_ms, int *held);

int pl_lease_release(pl_redis *r, pl_rconn *c, const char *account_id, const char *execution_id);

/* Live (unexpired) leases of the account. */
int pl_lease_count(pl_redis *r, pl_rconn *c, const char *account_id, int *count);

#endif
