/* workq: one entry per id, earliest due first, re-queue after done, close wakes takers. */
#include <pthread.h>

#include "check.h"
#include "queue.h"
#include "workq.h"

static void dedup_and_order(void)
{
    pp_workq *q = pp_workq_new(3);
    int64_t now = pl_now_ms();
    CHECK(pp_workq_add(q, "b", now - 10) == 1);
    CHECK(pp_workq_add(q, "a", now - 20) == 1);
    CHECK(pp_workq_add(q, "a", now - 30) == 0); /* known: unchanged */
    CHECK(pp_workq_add(q, "c", now + 60000) == 1);
    CHECK(pp_workq_add(q, "d", now) == -1); /* full */
    char id[PP_ID_CAP];
    CHECK(pp_workq_take(q, id) == 0);
    CHECK_STR(id, "a");
    CHECK(pp_workq_add(q, "a", now) == 0); /* in flight: still known */
    CHECK(pp_workq_take(q, id) == 0);
    CHECK_STR(id, "b");
    pp_workq_done(q, "b", 0);
    pp_workq_done(q, "a", pl_now_ms() + 50); /* again in 50 ms */
    CHECK(pp_workq_size(q) == 2);
    int64_t t0 = pl_now_ms();
    CHECK(pp_workq_take(q, id) == 0);
    CHECK_STR(id, "a");
    CHECK(pl_now_ms() - t0 >= 40);
    pp_workq_free(q);
}

static void *taker(void *arg)
{
    char id[PP_ID_CAP];
    return (void *)(long)pp_workq_take(arg, id);
}

static void close_wakes_takers(void)
{
    pp_workq *q = pp_workq_new(4);
    pthread_t th;
    pthread_create(&th, NULL, taker, q);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    pp_workq_close(q);
    void *rc;
    pthread_join(th, &rc);
    CHECK((long)rc == -1);
    pp_workq_free(q);
}

int main(void)
{
    RUN(dedup_and_order);
    RUN(close_wakes_takers);
    return check_summary();
}
