/* The dispatcher's one event loop. It waits on everything at once with curl_multi_poll: the
 * HTTP transfers, the sockets of its two Postgres connections (one claims, one records
 * outcomes; pgasync.c) and a wake-up from the bus thread. Each turn:
 *   1. collect finished attempts from libcurl, judge and log them, and queue their outcomes;
 *   2. send the queued outcomes in one statement when the recording connection is free (a
 *      delivered or dead event unblocks the next event of its execution, so once that commits,
 *      claim again);
 *   3. send a claim when slots are free and something may be due: a bus event woke us, the last
 *      claim came back full, an attempt ended, or the timer (the earliest next_attempt_at, at
 *      most PL_WEBHOOK_POLL_MS away) ran out; start the POSTs of the rows it returns.
 * Nothing here blocks on the network: a slow receiver or a slow query delays only itself.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dispatcher.h"
#include "error.h"
#include "log.h"
#include "queue.h"

#define MAX_DONE 256
/* After a claim that found nothing, bus events wait this long before the next claim: a burst
 * of status changes of agents without webhooks must not become a burst of empty queries. */
#define QUIET_MS 2
/* The longest wait, so that SIGTERM is noticed promptly. */
#define MAX_WAIT_MS 100
#define URL_BUCKETS 256

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_ms(void)
{
    return mono_us() / 1000;
}

/* ---- deliveries in flight per webhook_url (PL_WEBHOOK_URL_CONCURRENCY) ---- */

typedef struct url_count {
    char *url;
    int n;
    struct url_count *next;
} url_count;

typedef struct {
    url_count *b[URL_BUCKETS];
} url_counts;

static unsigned url_hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % URL_BUCKETS;
}

static void url_add(url_counts *u, const char *url, int delta)
{
    url_count **p = &u->b[url_hash(url)];
    for (; *p != NULL; p = &(*p)->next)
        if (strcmp((*p)->url, url) == 0)
            break;
    if (*p == NULL) {
        if (delta <= 0)
            return;
        url_count *c = calloc(1, sizeof(*c));
        if (c == NULL || (c->url = strdup(url)) == NULL) {
            free(c);
            return; /* the cap is advisory: without memory it is simply not applied */
        }
        *p = c;
    }
    (*p)->n += delta;
    if ((*p)->n <= 0) {
        url_count *dead = *p;
        *p = dead->next;
        free(dead->url);
        free(dead);
    }
}

/* The URLs at their cap (pointers into u, valid until the next url_add). */
static int url_saturated(const url_counts *u, int cap, const char **out, int max)
{
    int n = 0;
    for (int i = 0; i < URL_BUCKETS; i++)
        for (const url_count *c = u->b[i]; c != NULL && n < max; c = c->next)
            if (c->n >= cap)
                out[n++] = c->url;
    return n;
}

static void url_free(url_counts *u)
{
    for (int i = 0; i < URL_BUCKETS; i++)
        while (u->b[i] != NULL)
            url_add(u, u->b[i]->url, -u->b[i]->n);
}

/* ---- the loop's state ---- */

typedef struct {
    wd *w;
    wd_pg claim, record;
    url_counts urls;
    wd_result *pending; /* outcomes waiting for the recording connection */
    int npending, cap;
    int nflight; /* outcomes in the statement in flight */
    int64_t flight_us, claim_us;
    int claim_asked, claim_by_timer, claim_by_wake;
    int want;                       /* claim as soon as allowed */
    int64_t next_look, quiet_until; /* monotonic ms */
    int draining;
} loop;

/* Logs and counts one outcome, computes its retry delay and queues it for recording. */
static void outcome(loop *L, wd_delivery *d, wd_result *r)
{
    wd *w = L->w;
    int attempt = d->attempts + 1;
    if (d->started_us > 0)
        pl_histogram_observe(w->attempt_seconds, (double)(mono_us() - d->started_us) / 1e6);
    switch (r->outcome) {
    case WD_DELIVERED:
        pl_metric_add(w->delivered, 1);
        pl_histogram_observe(w->lag_seconds, (double)(pl_now_ms() - d->created_ms) / 1e3);
        PL_DEBUG("webhook event %lld (%s of %s) delivered to %s on attempt %d (HTTP %d)",
                 d->event_id, d->status, d->execution_id, d->url, attempt, r->code);
        break;
    case WD_RETRY:
        r->delay_ms =
            wd_backoff_ms(attempt, w->cfg.backoff_base_ms, w->cfg.backoff_cap_ms, wd_random_unit());
        pl_metric_add(w->retried, 1);
        PL_WARN("webhook event %lld (%s of %s) attempt %d to %s failed: %s; next attempt in "
                "%lld ms",
                d->event_id, d->status, d->execution_id, attempt, d->url, r->error,
                (long long)r->delay_ms);
        /* our own retry: look again when it is due (another replica's is found by the poll) */
        if (mono_ms() + r->delay_ms < L->next_look)
            L->next_look = mono_ms() + r->delay_ms;
        break;
    case WD_DEAD:
        pl_metric_add(w->dead, 1);
        if (strncmp(r->error, "SSRF guard", 10) == 0)
            pl_metric_add(w->refused, 1);
        PL_WARN("webhook event %lld (%s of %s) to %s is dead after %d attempt(s): %s", d->event_id,
                d->status, d->execution_id, d->url, attempt, r->error);
        break;
    }
    url_add(&L->urls, d->url, -1);
    if (L->npending == L->cap) {
        int cap = L->cap ? L->cap * 2 : 256;
        wd_result *p = realloc(L->pending, (size_t)cap * sizeof(*p));
        if (p == NULL) { /* lost: the lease runs out and the delivery is repeated */
            pl_metric_add(w->db_errors, 1);
            wd_delivery_free(d);
            return;
        }
        L->pending = p;
        L->cap = cap;
    }
    L->pending[L->npending++] = *r;
    wd_delivery_free(d);
}

static void send_outcomes(loop *L)
{
    if (L->npending == 0 || L->record.busy)
        return;
    if (wd_outbox_finish_send(&L->record, L->pending, L->npending) != PL_OK) {
        /* Lost, harmlessly: their leases run out and the deliveries are attempted again. */
        pl_metric_add(L->w->db_errors, 1);
        L->npending = 0;
        return;
    }
    L->nflight = L->npending;
    L->flight_us = mono_us();
    L->npending = 0;
}

static void on_recorded(loop *L, PGresult *r)
{
    pl_histogram_observe(L->w->finish_seconds, (double)(mono_us() - L->flight_us) / 1e6);
    int unblocked = wd_outbox_finished(r, L->nflight);
    if (unblocked < 0)
        pl_metric_add(L->w->db_errors, 1);
    else if (unblocked > 0)
        L->want = 1; /* the next event of those executions is due now */
    PQclear(r);
    L->nflight = 0;
}

/* by_timer: the poll or a retry's due time; by_wake: a bus event (else: a full batch before,
 * or an unblocked event). */
static void send_claim(loop *L, int by_timer, int by_wake)
{
    wd *w = L->w;
    int free_slots = (int)w->cfg.concurrency - wd_http_running(w->http);
    const char *sat[64];
    int nsat = url_saturated(&L->urls, (int)w->cfg.url_concurrency, sat, 64);
    L->claim_asked = free_slots < w->cfg.batch ? free_slots : (int)w->cfg.batch;
    L->claim_by_timer = by_timer;
    L->claim_by_wake = by_wake;
    L->want = 0;
    if (by_timer)
        L->next_look = mono_ms() + w->cfg.poll_ms;
    if (wd_outbox_claim_send(w, &L->claim, L->claim_asked, sat, nsat) != PL_OK) {
        pl_metric_add(w->db_errors, 1);
        L->next_look = mono_ms() + w->cfg.poll_ms;
        return;
    }
    L->claim_us = mono_us();
}

static void on_claimed(loop *L, PGresult *r)
{
    wd *w = L->w;
    pl_histogram_observe(w->claim_seconds, (double)(mono_us() - L->claim_us) / 1e6);
    wd_delivery *list = NULL;
    int got = wd_outbox_claimed(r, &list);
    PQclear(r);
    if (got < 0) {
        pl_metric_add(w->db_errors, 1);
        L->next_look = mono_ms() + w->cfg.poll_ms;
        return;
    }
    pl_metric_add(w->claimed, got);
    if (L->draining) { /* claimed as the stop came: give them straight back */
        wd_outbox_release(wd_pg_conn(&L->claim), list);
        while (list != NULL) {
            wd_delivery *d = list;
            list = d->next;
            wd_delivery_free(d);
        }
        return;
    }
    while (list != NULL) {
        wd_delivery *d = list;
        list = d->next;
        d->next = NULL;
        url_add(&L->urls, d->url, 1);
        if (wd_http_start(w->http, d) == PL_OK)
            continue;
        wd_result res;
        memset(&res, 0, sizeof(res));
        res.event_id = d->event_id;
        res.claims = d->claims;
        snprintf(res.error, sizeof(res.error), "%s", d->curl_error);
        /* An invalid URL will never work; anything else (memory) is worth another try. */
        res.outcome = strncmp(d->curl_error, "invalid webhook_url", 19) == 0 ||
                              d->attempts + 1 >= w->cfg.max_attempts
                          ? WD_DEAD
                          : WD_RETRY;
        d->started_us = 0;
        outcome(L, d, &res);
    }
    int64_t now = mono_ms();
    if (got == L->claim_asked) {
        L->want = 1; /* a full batch: more may be due right now */
    } else {
        if (got == 0 && L->claim_by_wake)
            L->quiet_until = now + QUIET_MS;
        if (L->claim_by_timer) {
            /* The timer's look: find when the next pending delivery is due. */
            int64_t due = wd_outbox_next_due_ms(wd_pg_conn(&L->claim));
            if (due < 0 || due > w->cfg.poll_ms)
                due = w->cfg.poll_ms;
            /* Due yet not claimed: behind an earlier event or a saturated URL; an ending
             * attempt or the poll brings it. */
            if (due <= 0)
                due = w->cfg.poll_ms < 50 ? w->cfg.poll_ms : 50;
            if (now + due < L->next_look)
                L->next_look = now + due;
        }
    }
}

/* Blocks until the statement in flight on p is done (shutdown only). */
static PGresult *wait_done(wd_pg *p, int *done)
{
    PGresult *r = NULL;
    *done = 0;
    while (p->busy) {
        int fd, wr;
        if (wd_pg_fd(p, &fd, &wr)) {
            struct pollfd pf = {fd, (short)(POLLIN | (wr ? POLLOUT : 0)), 0};
            poll(&pf, 1, 100);
        }
        if (wd_pg_result(p, &r)) {
            *done = 1;
            break;
        }
    }
    return r;
}

/* At the drain deadline: running transfers are given back, outcomes written, synchronously. */
static void abandon(loop *L)
{
    int done;
    PGresult *r = wait_done(&L->claim, &done);
    if (done)
        on_claimed(L, r);
    wd_delivery *left = wd_http_cancel_all(L->w->http);
    int n = 0;
    for (wd_delivery *d = left; d != NULL; d = d->next)
        n++;
    PL_WARN("webhooks: drain deadline passed; %d delivery(ies) given back", n);
    wd_outbox_release(wd_pg_conn(&L->claim), left);
    while (left != NULL) {
        wd_delivery *d = left;
        left = d->next;
        url_add(&L->urls, d->url, -1);
        wd_delivery_free(d);
    }
    r = wait_done(&L->record, &done);
    if (done)
        on_recorded(L, r);
    if (L->npending > 0 &&
        wd_outbox_finish(wd_pg_conn(&L->record), L->pending, L->npending) != PL_OK)
        pl_metric_add(L->w->db_errors, 1);
    L->npending = 0;
}

void wd_run(wd *w, volatile int *stop)
{
    static wd_delivery *done[MAX_DONE];
    static wd_result res[MAX_DONE];
    loop L;
    memset(&L, 0, sizeof(L));
    L.w = w;
    if (wd_pg_open(&L.claim, w->svc.db, w->cfg.async_commit, wd_outbox_async_stmts,
                   wd_outbox_nasync) != PL_OK ||
        wd_pg_open(&L.record, w->svc.db, w->cfg.async_commit, wd_outbox_async_stmts,
                   wd_outbox_nasync) != PL_OK)
        PL_ERROR("webhooks: postgres set-up failed; retrying as statements are sent");
    int64_t now = mono_ms(), drain_deadline = 0;
    int64_t next_sweep = now + w->cfg.sweep_ms;
    L.want = 1;
    L.next_look = now + w->cfg.poll_ms;
    for (;;) {
        now = mono_ms();
        if (*stop && !L.draining) {
            L.draining = 1;
            drain_deadline = now + w->cfg.drain_ms;
            PL_INFO("webhooks: draining %d delivery(ies) in flight", wd_http_running(w->http));
        }
        if (L.draining && wd_http_running(w->http) == 0 && L.npending == 0 && !L.record.busy &&
            !L.claim.busy)
            break;
        if (L.draining && now >= drain_deadline) {
            abandon(&L);
            break;
        }

        /* 1. finished attempts */
        int n = wd_http_progress(w->http, done, res, MAX_DONE);
        for (int i = 0; i < n; i++)
            outcome(&L, done[i], &res[i]);
        /* 2. their outcomes */
        send_outcomes(&L);
        /* 3. claims */
        int free_slots = (int)w->cfg.concurrency - wd_http_running(w->http);
        if (!L.draining && !L.claim.busy) {
            int woke = atomic_exchange(&w->woken, 0);
            if (woke)
                L.want = 1;
            if (free_slots > 0 && L.want && now >= L.quiet_until)
                send_claim(&L, 0, woke);
            else if (free_slots > 0 && now >= L.next_look)
                send_claim(&L, 1, 0);
            else if (now >= next_sweep) {
                next_sweep = now + w->cfg.sweep_ms;
                int fixed = wd_outbox_sweep(wd_pg_conn(&L.claim));
                if (fixed > 0) {
                    PL_WARN("webhooks: sweep unblocked %d event(s) left waiting", fixed);
                    L.want = 1;
                }
            }
        }
        pl_metric_set(w->inflight, wd_http_running(w->http));

        /* 4. wait for a socket, a wake-up or the timer */
        int64_t wait = MAX_WAIT_MS;
        if (n == MAX_DONE)
            wait = 0;
        else if (!L.draining && !L.claim.busy && free_slots > 0) {
            int64_t at = L.want ? L.quiet_until : L.next_look;
            if (at - now < wait)
                wait = at > now ? at - now : 0;
        }
        int fds[2], wr[2], nfd = 0;
        nfd += wd_pg_fd(&L.claim, &fds[nfd], &wr[nfd]);
        nfd += wd_pg_fd(&L.record, &fds[nfd], &wr[nfd]);
        wd_http_wait(w->http, (int)wait, fds, wr, nfd);

        PGresult *r;
        if (wd_pg_result(&L.claim, &r))
            on_claimed(&L, r);
        if (wd_pg_result(&L.record, &r))
            on_recorded(&L, r);
    }
    wd_pg_close(&L.claim);
    wd_pg_close(&L.record);
    url_free(&L.urls);
    free(L.pending);
}
