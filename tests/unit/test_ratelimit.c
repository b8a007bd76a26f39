/* ratelimit: token buckets per key — burst, refill, Retry-After, independence, eviction, and
 * exact counts under threads. */
#include <pthread.h>
#include <stdio.h>

#include "check.h"
#include "ratelimit.h"

static void burst_then_refill(void)
{
    pl_ratelimit *rl = pl_ratelimit_new(10, 3, 64);
    int retry = -1;
    CHECK(rl != NULL);
    for (int i = 0; i < 3; i++)
        CHECK(pl_ratelimit_take(rl, "acct-a", 1000, &retry) == 1);
    CHECK(pl_ratelimit_take(rl, "acct-a", 1000, &retry) == 0 && retry == 1);
    CHECK(pl_ratelimit_take(rl, "acct-b", 1000, &retry) == 1); /* keys are independent */
    CHECK(pl_ratelimit_take(rl, "acct-a", 1100, &retry) == 1); /* 0.1 s at 10/s: one token */
    CHECK(pl_ratelimit_take(rl, "acct-a", 1100, &retry) == 0);
    CHECK(pl_ratelimit_take(rl, "acct-a", 60000, &retry) == 1); /* long idle: full, not more */
    CHECK(pl_ratelimit_take(rl, "acct-a", 60000, &retry) == 1);
    CHECK(pl_ratelimit_take(rl, "acct-a", 60000, &retry) == 1);
    CHECK(pl_ratelimit_take(rl, "acct-a", 60000, &retry) == 0);
    pl_ratelimit_free(rl);
}

static void retry_after_counts_whole_seconds(void)
{
    pl_ratelimit *rl = pl_ratelimit_new(0.25, 1, 64); /* one request per 4 s */
    int retry = -1;
    CHECK(pl_ratelimit_take(rl, "k", 5000, &retry) == 1);
    CHECK(pl_ratelimit_take(rl, "k", 5000, &retry) == 0 && retry == 4);
    CHECK(pl_ratelimit_take(rl, "k", 7500, &retry) == 0 && retry == 2); /* 0.625 -> 1.5 s */
    CHECK(pl_ratelimit_take(rl, "k", 9000, &retry) == 1);
    CHECK(pl_ratelimit_new(0, 1, 64) == NULL && pl_ratelimit_new(1, 0.5, 64) == NULL);
    pl_ratelimit_free(rl);
}

/* Many more keys than slots: nothing breaks, and a key pushed out comes back with a full bucket
 * (it loses its debt, never a request it was owed). */
static void eviction_bounds_memory(void)
{
    pl_ratelimit *rl = pl_ratelimit_new(1, 2, 64);
    int retry;
    CHECK(pl_ratelimit_take(rl, "first", 1000, &retry) == 1);
    CHECK(pl_ratelimit_take(rl, "first", 1000, &retry) == 1);
    CHECK(pl_ratelimit_take(rl, "first", 1000, &retry) == 0);
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        if (pl_ratelimit_take(rl, key, 1001 + i, &retry) != 1)
            check_case_failed = 1;
    }
    CHECK(pl_ratelimit_take(rl, "first", 7000, &retry) == 1);
    pl_ratelimit_free(rl);
}

static pl_ratelimit *shared;
static int granted[4];

static void *hammer(void *arg)
{
    int *n = arg;
    int retry;
    for (int i = 0; i < 5000; i++)
        *n += pl_ratelimit_take(shared, "one-account", 1000, &retry);
    return NULL;
}

/* 4 threads, 20,000 requests at one instant for one key with 100 tokens: exactly 100 go. */
static void exact_under_threads(void)
{
    shared = pl_ratelimit_new(0.001, 100, 1024);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, &granted[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK(granted[0] + granted[1] + granted[2] + granted[3] == 100);
    pl_ratelimit_free(shared);
}

int main(void)
{
    RUN(burst_then_refill);
    RUN(retry_after_counts_whole_seconds);
    RUN(eviction_bounds_memory);
    RUN(exact_under_threads);
    return check_summary();
}
