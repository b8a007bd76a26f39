/* The event loop: one thread that owns a set of calls. It sleeps in curl_multi_poll (the LLM
 * streams' sockets) with a timeout of the next 20 ms tick or timer, and is woken by
 * curl_multi_wakeup when records or posts arrive from other threads. Per turn: run libcurl,
 * take the inbox (relay records), take the posts (job results), fire due timers, tick the calls
 * when 20 ms have passed, then flush one relay message per gateway.
 *
 * The inbox is two relay batches swapped under the mutex, so routing a frame to a loop copies
 * bytes into a reused buffer and allocates nothing in the steady state. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "call.h"
#include "error.h"
#include "log.h"
#include "mp.h"

#define TICK_MS   20
#define MAX_PEERS 64

typedef struct timer {
    int64_t due;
    void (*fn)(void *arg);
    void *arg;
    struct timer *next;
} timer;

typedef struct {
    char url[256];
    pl_relay_batch out;
} peer;

typedef struct call_node {
    mp_call *call;
    struct call_node *next;
} call_node;

struct mp_loop {
    mp *app;
    int idx;
    pthread_t th;
    int started;
    CURLM *multi;
    llm_loop llm;
    pthread_mutex_t mu; /* guards inbox and posts */
    pl_relay_batch inbox, work;
    mp_post *posts, *posts_tail;
    atomic_int stop; /* 1: drain (stop once no call is left), 2: at once */
    atomic_int ncalls;
    /* loop thread only */
    timer *timers; /* sorted by due */
    call_node *calls;
    uint64_t next_serial;
    peer peers[MAX_PEERS];
    int npeers;
    int64_t now, next_tick;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- timers (llm_loop contract) ---- */

static void *timer_start(void *ctx, long ms, void (*fn)(void *arg), void *arg)
{
    mp_loop *l = ctx;
    timer *t = malloc(sizeof(*t));
    if (t == NULL)
        return NULL;
    t->due = mono_ms() + (ms > 0 ? ms : 0);
    t->fn = fn;
    t->arg = arg;
    timer **p = &l->timers;
    while (*p != NULL && (*p)->due <= t->due)
        p = &(*p)->next;
    t->next = *p;
    *p = t;
    return t;
}

static void timer_stop(void *ctx, void *tp)
{
    mp_loop *l = ctx;
    for (timer **p = &l->timers; *p != NULL; p = &(*p)->next)
        if (*p == tp) {
            *p = ((timer *)tp)->next;
            free(tp);
            return;
        }
}

static void run_timers(mp_loop *l)
{
    /* Only timers due now: one a callback adds with 0 ms waits for the next turn. */
    int64_t now = l->now;
    while (l->timers != NULL && l->timers->due <= now) {
        timer *t = l->timers;
        l->timers = t->next;
        void (*fn)(void *) = t->fn;
        void *arg = t->arg;
        free(t);
        fn(arg);
    }
}

/* ---- what calls use ---- */

mp *mp_loop_app(mp_loop *l)
{
    return l->app;
}

const llm_loop *mp_loop_llm(mp_loop *l)
{
    return &l->llm;
}

int64_t mp_loop_now(mp_loop *l)
{
    return l->now;
}

void mp_loop_post(mp_loop *l, mp_post *p)
{
    p->next = NULL;
    pthread_mutex_lock(&l->mu);
    if (l->posts_tail != NULL)
        l->posts_tail->next = p;
    else
        l->posts = p;
    l->posts_tail = p;
    pthread_mutex_unlock(&l->mu);
    curl_multi_wakeup(l->multi);
}

mp_call *mp_loop_find(mp_loop *l, uint64_t serial)
{
    for (call_node *n = l->calls; n != NULL; n = n->next)
        if (mp_call_serial(n->call) == serial)
            return n->call;
    return NULL;
}

void mp_loop_send(mp_loop *l, const char *url, const uint8_t call[16], uint16_t attempt,
                  pl_relay_kind kind, uint32_t seq, const void *payload, size_t len)
{
    peer *p = NULL;
    for (int i = 0; i < l->npeers; i++)
        if (strcmp(l->peers[i].url, url) == 0) {
            p = &l->peers[i];
            break;
        }
    if (p == NULL) {
        if (l->npeers == MAX_PEERS) {
            PL_WARN("loop %d: more than %d gateways; record for %s dropped", l->idx, MAX_PEERS,
                    url);
            return;
        }
        p = &l->peers[l->npeers++];
        snprintf(p->url, sizeof(p->url), "%s", url);
    }
    if (pl_relay_put(&p->out, call, attempt, kind, seq, payload, len) != PL_OK)
        PL_WARN("loop %d: record for %s dropped (too big or out of memory)", l->idx, url);
}

static void flush(mp_loop *l)
{
    for (int i = 0; i < l->npeers; i++) {
        peer *p = &l->peers[i];
        if (p->out.len == 0)
            continue;
        pl_relay_send(l->app->relay, p->url, p->out.buf, p->out.len);
        pl_relay_reset(&p->out);
    }
}

/* ---- inbox ---- */

void mp_loop_deliver(mp_loop *l, const pl_relay_rec *r)
{
    pthread_mutex_lock(&l->mu);
    pl_relay_put(&l->inbox, r->call, r->attempt, (pl_relay_kind)r->kind, r->seq, r->payload,
                 r->len);
    pthread_mutex_unlock(&l->mu);
}

void mp_loop_wake(mp_loop *l)
{
    curl_multi_wakeup(l->multi);
}

int mp_loop_calls(mp_loop *l)
{
    return atomic_load(&l->ncalls);
}

static mp_call *find_call(mp_loop *l, const uint8_t uuid[16], uint16_t attempt)
{
    for (call_node *n = l->calls; n != NULL; n = n->next)
        if (mp_call_matches(n->call, uuid, attempt))
            return n->call;
    return NULL;
}

/* A START the loop cannot serve: tell the gateway at once so it ends the call cleanly. */
static void refuse(mp_loop *l, const pl_relay_rec *r, const char *reason)
{
    cJSON *start = cJSON_ParseWithLength((const char *)r->payload, r->len);
    const cJSON *reply = cJSON_GetObjectItemCaseSensitive(start, "reply");
    char payload[256];
    snprintf(payload, sizeof(payload), "{\"reason\":\"%s\"}", reason);
    if (cJSON_IsString(reply))
        mp_loop_send(l, reply->valuestring, r->call, r->attempt, PL_RELAY_STOP, 0, payload,
                     strlen(payload));
    cJSON_Delete(start);
    pl_metric_add(l->app->stats.calls_refused, 1);
}

static void on_start(mp_loop *l, const pl_relay_rec *r)
{
    char id[37];
    pl_relay_uuid_format(r->call, id);
    if (find_call(l, r->call, r->attempt) != NULL) {
        PL_DEBUG("duplicate START for %s ignored", id);
        return;
    }
    mp *app = l->app;
    if (atomic_load(&app->draining)) {
        PL_WARN("call %s refused: this worker is draining", id);
        refuse(l, r, "media-pipeline worker is shutting down");
        return;
    }
    if (atomic_fetch_add(&app->live, 1) >= app->cfg.capacity) {
        atomic_fetch_sub(&app->live, 1);
        PL_WARN("call %s refused: %ld calls already live", id, app->cfg.capacity);
        refuse(l, r, "no media-pipeline capacity");
        return;
    }
    call_node *n = malloc(sizeof(*n));
    mp_call *c = n != NULL ? mp_call_new(l, ++l->next_serial, r) : NULL;
    if (c == NULL) {
        free(n);
        atomic_fetch_sub(&app->live, 1);
        refuse(l, r, "media-pipeline could not start the call");
        return;
    }
    n->call = c;
    n->next = l->calls;
    l->calls = n;
    atomic_fetch_add(&l->ncalls, 1);
    pl_metric_add(app->stats.calls, 1);
    pl_metric_add(app->stats.calls_live, 1);
}

static void take_inbox(mp_loop *l)
{
    pthread_mutex_lock(&l->mu);
    pl_relay_batch t = l->inbox;
    l->inbox = l->work;
    l->work = t;
    mp_post *posts = l->posts;
    l->posts = l->posts_tail = NULL;
    pthread_mutex_unlock(&l->mu);

    size_t off = 0;
    pl_relay_rec r;
    while (pl_relay_next(l->work.buf, l->work.len, &off, &r) == 1) {
        if (r.kind == PL_RELAY_START) {
            on_start(l, &r);
            continue;
        }
        mp_call *c = find_call(l, r.call, r.attempt);
        if (c == NULL) {
            pl_metric_add(l->app->stats.relay_unknown, 1);
            continue;
        }
        mp_call_record(c, &r);
    }
    pl_relay_reset(&l->work);
    while (posts != NULL) {
        mp_post *p = posts;
        posts = p->next;
        p->fn(l, p);
    }
}

static void tick(mp_loop *l)
{
    int draining_hard = atomic_load(&l->stop) == 2;
    for (call_node **p = &l->calls; *p != NULL;) {
        call_node *n = *p;
        if (draining_hard)
            mp_call_abort(n->call, "media-pipeline worker stopped");
        mp_call_tick(n->call, l->now);
        if (mp_call_finished(n->call)) {
            *p = n->next;
            mp_call_free(n->call);
            free(n);
            atomic_fetch_sub(&l->ncalls, 1);
            atomic_fetch_sub(&l->app->live, 1);
            pl_metric_add(l->app->stats.calls_live, -1);
            continue;
        }
        p = &n->next;
    }
}

static void *run(void *arg)
{
    mp_loop *l = arg;
    l->now = mono_ms();
    l->next_tick = l->now + TICK_MS;
    for (;;) {
        int stop = atomic_load(&l->stop);
        if (stop != 0 && l->calls == NULL)
            break;
        int64_t wait = l->next_tick - mono_ms();
        if (l->timers != NULL && l->timers->due - mono_ms() < wait)
            wait = l->timers->due - mono_ms();
        if (wait > 0)
            curl_multi_poll(l->multi, NULL, 0, (int)wait, NULL);
        l->now = mono_ms();
        int running;
        curl_multi_perform(l->multi, &running);
        llm_multi_dispatch(l->multi);
        take_inbox(l);
        run_timers(l);
        if (l->now >= l->next_tick) {
            tick(l);
            l->next_tick += TICK_MS;
            if (l->next_tick <= l->now) /* fell behind (a stall): do not burst to catch up */
                l->next_tick = l->now + TICK_MS;
        }
        flush(l);
    }
    return NULL;
}

mp_loop *mp_loop_new(mp *app, int idx)
{
    mp_loop *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->app = app;
    l->idx = idx;
    l->multi = curl_multi_init();
    if (l->multi == NULL) {
        free(l);
        return NULL;
    }
    l->llm = (llm_loop){
        .multi = l->multi, .ctx = l, .timer_start = timer_start, .timer_stop = timer_stop};
    pthread_mutex_init(&l->mu, NULL);
    return l;
}

int mp_loop_start(mp_loop *l)
{
    if (pthread_create(&l->th, NULL, run, l) != 0)
        return PL_ERR_IO;
    l->started = 1;
    return PL_OK;
}

void mp_loop_stop(mp_loop *l, int force)
{
    atomic_store(&l->stop, force ? 2 : 1);
    curl_multi_wakeup(l->multi);
}

void mp_loop_join(mp_loop *l)
{
    if (l != NULL && l->started) {
        pthread_join(l->th, NULL);
        l->started = 0;
    }
}

void mp_loop_free(mp_loop *l)
{
    if (l == NULL)
        return;
    mp_loop_join(l);
    while (l->timers != NULL) {
        timer *t = l->timers;
        l->timers = t->next;
        free(t);
    }
    /* Posts for calls that are gone: run them, they find no call and free themselves. Records
     * still in the inbox are for calls that are over: dropped. */
    mp_post *posts = l->posts;
    while (posts != NULL) {
        mp_post *p = posts;
        posts = p->next;
        p->fn(l, p);
    }
    for (int i = 0; i < l->npeers; i++)
        pl_relay_batch_free(&l->peers[i].out);
    pl_relay_batch_free(&l->inbox);
    pl_relay_batch_free(&l->work);
    curl_multi_cleanup(l->multi);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
