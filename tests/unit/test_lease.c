/* lease: per-account concurrency slots in Redis. */
#include <unistd.h>

#include "check.h"
#include "lease.h"

static pl_redis *r;

static void cap_is_enforced(void)
{
    pl_rconn *c = pl_redis_acquire(r);
    int g;
    CHECK(pl_lease_acquire(r, c, "acct1", "e1", 2, 10000, &g) == 0 && g == 1);
    CHECK(pl_lease_acquire(r, c, "acct1", "e2", 2, 10000, &g) == 0 && g == 1);
    CHECK(pl_lease_acquire(r, c, "acct1", "e3", 2, 10000, &g) == 0 && g == 0);
    CHECK(pl_lease_acquire(r, c, "acct1", "e1", 2, 10000, &g) == 0 && g == 1); /* re-take */
    CHECK(pl_lease_acquire(r, c, "acct2", "e9", 2, 10000, &g) == 0 && g == 1); /* other acct */
    int n;
    CHECK(pl_lease_count(r, c, "acct1", &n) == 0 && n == 2);
    CHECK(pl_lease_release(r, c, "acct1", "e1") == 0);
    CHECK(pl_lease_acquire(r, c, "acct1", "e3", 2, 10000, &g) == 0 && g == 1);
    pl_redis_release(r, c);
}

static void expired_leases_free_their_slot(void)
{
    pl_rconn *c = pl_redis_acquire(r);
    int g, n;
    CHECK(pl_lease_acquire(r, c, "acct3", "a", 1, 100, &g) == 0 && g == 1);
    CHECK(pl_lease_acquire(r, c, "acct3", "b", 1, 100, &g) == 0 && g == 0);
    usleep(150 * 1000);
    CHECK(pl_lease_count(r, c, "acct3", &n) == 0 && n == 0);
    CHECK(pl_lease_acquire(r, c, "acct3", "b", 1, 100, &g) == 0 && g == 1);
    /* renewing keeps a live lease alive past its first expiry */
    for (int i = 0; i < 4; i++) {
        usleep(50 * 1000);
        CHECK(pl_lease_renew(r, c, "acct3", "b", 1, 100, &g) == 0 && g == 1);
    }
    CHECK(pl_lease_acquire(r, c, "acct3", "a", 1, 100, &g) == 0 && g == 0);
    pl_redis_release(r, c);
}

int main(void)
{
    r = pl_redis_open(check_env("PL_TEST_REDIS_URL"), "t:", 1);
    if (r == NULL)
        return 1;
    RUN(cap_is_enforced);
    RUN(expired_leases_free_their_slot);
    pl_redis_close(r);
    return check_summary();
}
