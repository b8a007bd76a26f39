/* retry: Bolna's retry_config decisions. */
#include "check.h"
#include "retry.h"

static void disabled_or_missing(void)
{
    int64_t d;
    CHECK(!pl_retry_due(NULL, 0, PL_ST_BUSY, 0, 60000, &d));
    CHECK(!pl_retry_due("{\"enabled\":false}", 0, PL_ST_BUSY, 0, 60000, &d));
    CHECK(!pl_retry_due("not json", 0, PL_ST_BUSY, 0, 60000, &d));
}

static void defaults(void)
{
    int64_t d;
    const char *rc = "{\"enabled\":true}";
    CHECK(pl_retry_due(rc, 0, PL_ST_NO_ANSWER, 0, 60000, &d) && d == 30 * 60000);
    CHECK(pl_retry_due(rc, 1, PL_ST_BUSY, 0, 60000, &d) && d == 60 * 60000);
    CHECK(pl_retry_due(rc, 2, PL_ST_FAILED, 0, 60000, &d) && d == 120 * 60000);
    CHECK(!pl_retry_due(rc, 3, PL_ST_FAILED, 0, 60000, &d));    /* max_retries 3 used up */
    CHECK(!pl_retry_due(rc, 0, PL_ST_ERROR, 0, 60000, &d));     /* not in the default list */
    CHECK(!pl_retry_due(rc, 0, PL_ST_COMPLETED, 1, 60000, &d)); /* voicemail off */
}

static void configured(void)
{
    int64_t d;
    const char *rc = "{\"enabled\":true,\"max_retries\":2,\"retry_on_statuses\":[\"busy\","
                     "\"error\"],\"retry_on_voicemail\":true,\"retry_intervals_minutes\":[5]}";
    CHECK(pl_retry_due(rc, 0, PL_ST_BUSY, 0, 1000, &d) && d == 5000);
    CHECK(pl_retry_due(rc, 1, PL_ST_ERROR, 0, 1000, &d) && d == 5000); /* last interval reused */
    CHECK(!pl_retry_due(rc, 2, PL_ST_BUSY, 0, 1000, &d));
    CHECK(!pl_retry_due(rc, 0, PL_ST_NO_ANSWER, 0, 1000, &d));
    CHECK(pl_retry_due(rc, 0, PL_ST_COMPLETED, 1, 1000, &d) && d == 5000);
}

int main(void)
{
    RUN(disabled_or_missing);
    RUN(defaults);
    RUN(configured);
    return check_summary();
}
