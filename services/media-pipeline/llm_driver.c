/* llm_driver: a tiny standalone loop for the LLM layer, for tests and tools that have no
 * media-pipeline loop (the service runs providers on loop.c). It implements the loop's
 * contract in llm.h with a CURLM of its own, one-shot timers kept in a list, and
 * curl_multi_poll between turns.
 */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "error.h"
#include "llm.h"

/* The test driver: timers in a list (few at a time), curl_multi_poll between turns. */

typedef struct drv_timer {
    struct drv_timer *next;
    int64_t due;
    unsigned long gen;
    void (*fn)(void *arg);
    void *arg;
} drv_timer;

struct llm_driver {
    llm_loop loop;
    drv_timer *timers;
    unsigned long gen;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *drv_timer_start(void *ctx, long ms, void (*fn)(void *arg), void *arg)
{
    llm_driver *d = ctx;
    drv_timer *t = malloc(sizeof(*t));
    if (t == NULL)
        return NULL;
    *t = (drv_timer){.next = d->timers, .due = now_ms() + ms, .gen = d->gen, .fn = fn, .arg = arg};
    d->timers = t;
    return t;
}

static void drv_timer_stop(void *ctx, void *timer)
{
    llm_driver *d = ctx;
    for (drv_timer **pp = &d->timers; *pp != NULL; pp = &(*pp)->next)
        if (*pp == timer) {
            *pp = ((drv_timer *)timer)->next;
            free(timer);
            return;
        }
}

/* Fires the due timers that existed when the pass began (a 0 ms timer set by a timer runs on
 * the next pass, so a chain of them cannot starve the transfers). */
static void drv_fire(llm_driver *d)
{
    unsigned long gen = ++d->gen;
    int64_t now = now_ms();
    for (;;) {
        drv_timer **best = NULL;
        for (drv_timer **pp = &d->timers; *pp != NULL; pp = &(*pp)->next)
            if ((*pp)->gen < gen && (*pp)->due <= now &&
                (best == NULL || (*pp)->due < (*best)->due))
                best = pp;
        if (best == NULL)
            return;
        drv_timer *t = *best;
        *best = t->next;
        void (*fn)(void *) = t->fn;
        void *arg = t->arg;
        free(t);
        fn(arg);
    }
}

llm_driver *llm_driver_new(void)
{
    static int curl_ready;
    if (!curl_ready) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl_ready = 1;
    }
    llm_driver *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->loop = (llm_loop){.multi = curl_multi_init(),
                         .ctx = d,
                         .timer_start = drv_timer_start,
                         .timer_stop = drv_timer_stop};
    if (d->loop.multi == NULL) {
        free(d);
        return NULL;
    }
    return d;
}

const llm_loop *llm_driver_loop(llm_driver *d)
{
    return &d->loop;
}

int llm_driver_run(llm_driver *d, const volatile int *until, long timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int running;
        curl_multi_perform(d->loop.multi, &running);
        llm_multi_dispatch(d->loop.multi);
        drv_fire(d);
        if (until != NULL && *until)
            return PL_OK;
        int64_t now = now_ms();
        if (now >= deadline)
            return PL_ERR_TIMEOUT;
        int64_t wait = deadline - now;
        for (drv_timer *t = d->timers; t != NULL; t = t->next)
            if (t->due - now < wait)
                wait = t->due - now;
        if (wait > 100)
            wait = 100;
        if (wait > 0)
            curl_multi_poll(d->loop.multi, NULL, 0, (int)wait, NULL);
    }
}

void llm_driver_free(llm_driver *d)
{
    if (d == NULL)
        return;
    while (d->timers != NULL) {
        drv_timer *t = d->timers;
        d->timers = t->next;
        free(t);
    }
    curl_multi_cleanup(d->loop.multi);
    free(d);
}
