/* The retry schedule: exponential (x3) from PL_WEBHOOK_BACKOFF_BASE_MS, capped at
 * PL_WEBHOOK_BACKOFF_CAP_MS, with +-20% jitter so that the retries of many deliveries that failed
 * together (a receiver outage) do not all arrive together when it comes back. With the defaults
 * (30 s, 8 h, 10 attempts) the waits are 30 s, 1.5 min, 4.5 min, 13.5 min, 40.5 min, 2 h, 6 h,
 * 8 h, 8 h: the last attempt comes about 25 h after the first. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "dispatcher.h"

int64_t wd_backoff_ms(int failed, int64_t base_ms, int64_t cap_ms, double unit)
{
    if (failed < 1)
        failed = 1;
    double d = (double)base_ms;
    for (int i = 1; i < failed && d < (double)cap_ms; i++)
        d *= 3.0;
    if (d > (double)cap_ms)
        d = (double)cap_ms;
    if (unit < 0.0)
        unit = 0.0;
    if (unit >= 1.0)
        unit = 0.999999;
    d *= 0.8 + 0.4 * unit;
    return d < 1.0 ? 1 : (int64_t)d;
}

static pthread_mutex_t rng_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned short rng_state[3];
static int rng_seeded;

double wd_random_unit(void)
{
    pthread_mutex_lock(&rng_mu);
    if (!rng_seeded) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
        rng_state[0] = (unsigned short)s;
        rng_state[1] = (unsigned short)(s >> 16);
        rng_state[2] = (unsigned short)(s >> 32);
        rng_seeded = 1;
    }
    double r = erand48(rng_state);
    pthread_mutex_unlock(&rng_mu);
    return r;
}
