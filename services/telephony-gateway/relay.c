/* The media relay, gateway side (docs/media.md; wire and transport in common/relay.h).
 *
 * Sending (gw_relay_sink): each started stream's frames and events become records appended to
 * the batch of its worker (a peer), under the peer's mutex, on the stream's civetweb thread.
 * One flusher thread sends every peer's batch each TICK_MS: the filled batch is swapped with
 * the peer's spare under the mutex and sent outside it, and both are reused (no allocation per
 * frame once they have grown to a tick's worth). A peer's batches leave one at a time
 * (send_mu) in the order they were filled, so the worker reads each call's records in order.
 * START leaves at once, flushed by the opening thread: a worker learns of a call without
 * waiting for a tick (and a first connection to a new worker is dialled on that thread, never
 * on the flusher's). Sequence numbers count per call in this direction.
 *
 * Receiving: pl_relay calls on_recv on one nng thread, a message at a time. Its records are
 * demultiplexed by call and attempt onto the live media sessions (gw_media_get holds a
 * reference while the session is written to). AUDIO, MARK and CLEAR are written to the
 * carrier's socket right there (playout.h: consecutive audio of a call in one message leaves
 * as one carrier message) — no Postgres, Redis or allocation on this thread. HANGUP and STOP
 * need Postgres and the carrier's REST API: they are queued for the control thread
 * (control.c).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "codec.h"
#include "error.h"
#include "gateway.h"
#include "log.h"

#define TICK_MS      20
#define MAX_PEERS    64  /* workers this process sends to (entries are never removed) */
#define MAX_FRAME    960 /* samples: 20 ms at 48 kHz */
#define STOP_WAIT_MS 50  /* at shutdown, time for the last batches to leave the sockets */

typedef struct {
    char url[256];
    pthread_mutex_t mu;      /* guards cur and records */
    pthread_mutex_t send_mu; /* one flush of this peer at a time */
    pl_relay_batch cur;      /* being filled */
    pl_relay_batch out;      /* being sent (send_mu) */
    long records;            /* in cur */
} peer;

struct gw_relay {
    gw *g;
    pl_relay *ep;
    gw_control *ctl;
    pthread_mutex_t mu; /* serializes adding peers */
    peer peers[MAX_PEERS];
    atomic_int npeers; /* peers[0, npeers) are ready */
    atomic_int stop;
    pthread_t flusher;
};

/* ---- sending ---- */

/* The peer of a worker address, added on first use; NULL when the table is full. */
static peer *peer_get(gw_relay *r, const char *url)
{
    int n = atomic_load(&r->npeers);
    for (int i = 0; i < n; i++)
        if (strcmp(r->peers[i].url, url) == 0)
            return &r->peers[i];
    pthread_mutex_lock(&r->mu);
    peer *p = NULL;
    n = atomic_load(&r->npeers);
    for (int i = 0; i < n && p == NULL; i++)
        if (strcmp(r->peers[i].url, url) == 0)
            p = &r->peers[i];
    if (p == NULL && n < MAX_PEERS && strlen(url) < sizeof(p->url)) {
        p = &r->peers[n];
        gw_copy(p->url, sizeof(p->url), url);
        pthread_mutex_init(&p->mu, NULL);
        pthread_mutex_init(&p->send_mu, NULL);
        atomic_store(&r->npeers, n + 1);
    }
    pthread_mutex_unlock(&r->mu);
    if (p == NULL)
        PL_ERROR("relay: cannot add worker %s (%d workers already, or address too long)", url,
                 MAX_PEERS);
    return p;
}

/* Sends what the peer has batched. wait = 0: skip when another thread is flushing it now (its
 * records then leave on the next tick). */
static void flush_peer(gw_relay *r, peer *p, int wait)
{
    if (wait)
        pthread_mutex_lock(&p->send_mu);
    else if (pthread_mutex_trylock(&p->send_mu) != 0)
        return;
    pthread_mutex_lock(&p->mu);
    pl_relay_batch full = p->cur;
    p->cur = p->out;
    p->out = full;
    long records = p->records;
    p->records = 0;
    pthread_mutex_unlock(&p->mu);
    if (p->out.len > 0) {
        gw_stats *st = &r->g->stats;
        if (pl_relay_send(r->ep, p->url, p->out.buf, p->out.len) == PL_OK) {
            pl_metric_add(st->relay_msgs_out, 1);
            pl_metric_add(st->relay_records_out, records);
        } else {
            pl_metric_add(st->relay_dropped, 1);
        }
        pl_relay_reset(&p->out);
    }
    pthread_mutex_unlock(&p->send_mu);
}

static void flush_all(gw_relay *r, int wait)
{
    int n = atomic_load(&r->npeers);
    for (int i = 0; i < n; i++)
        flush_peer(r, &r->peers[i], wait);
}

static void *flusher(void *arg)
{
    gw_relay *r = arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    while (!atomic_load(&r->stop)) {
        next.tv_nsec += TICK_MS * 1000000L;
        if (next.tv_nsec >= 1000000000L) {
            next.tv_sec++;
            next.tv_nsec -= 1000000000L;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > next.tv_sec + 1) /* far behind (a stalled process): skip, not burst */
            next = now;
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        flush_all(r, 0);
    }
    return NULL;
}

/* One call's sink: its worker and its outgoing sequence. */
typedef struct {
    gw_relay *r;
    peer *p;
    uint8_t call[16];
    uint16_t attempt;
    uint32_t seq;
    int stopped; /* STOP sent */
} relay_call;

static void put(relay_call *c, pl_relay_kind kind, const void *payload, size_t len)
{
    peer *p = c->p;
    pthread_mutex_lock(&p->mu);
    int rc = pl_relay_put(&p->cur, c->call, c->attempt, kind, c->seq++, payload, len);
    if (rc == PL_OK)
        p->records++;
    pthread_mutex_unlock(&p->mu);
    if (rc != PL_OK)
        PL_WARN("relay: record of kind %d for %s not batched: %s", (int)kind, p->url,
                pl_strerror(rc));
}

/* START's JSON: {"rate","carrier","call_id","stream_id","reply"}. Owned (cJSON_free). */
static char *start_json(const gw_relay *r, const gw_media_info *info)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "rate", info->rate);
    cJSON_AddStringToObject(j, "carrier", info->carrier);
    cJSON_AddStringToObject(j, "call_id", info->call_id != NULL ? info->call_id : "");
    cJSON_AddStringToObject(j, "stream_id", info->stream_id != NULL ? info->stream_id : "");
    cJSON_AddStringToObject(j, "reply", pl_relay_url(r->ep));
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static int relay_open(void *ctx, const gw_media_info *info, void **self)
{
    gw_relay *r = ctx;
    relay_call *c = calloc(1, sizeof(*c));
    char *json = start_json(r, info);
    if (c == NULL || json == NULL || info->attempt < 0 || info->attempt > 65535 ||
        pl_relay_uuid_parse(info->execution_id, c->call) != PL_OK ||
        (c->p = peer_get(r, info->worker_addr)) == NULL) {
        free(c);
        cJSON_free(json);
        return -1;
    }
    c->r = r;
    c->attempt = (uint16_t)info->attempt;
    put(c, PL_RELAY_START, json, strlen(json));
    cJSON_free(json);
    flush_peer(r, c->p, 1);
    *self = c;
    return 0;
}

static void relay_frame(void *self, const int16_t *pcm, size_t samples)
{
    uint8_t le[2 * MAX_FRAME];
    if (samples > MAX_FRAME) /* not a 20 ms frame at a rate we accept: cannot happen */
        samples = MAX_FRAME;
    pl_pcm16le_encode(pcm, samples, le);
    put(self, PL_RELAY_AUDIO, le, 2 * samples);
}

static void relay_event(void *self, gw_mm_kind kind, const char *arg)
{
    relay_call *c = self;
    switch (kind) {
    case GW_MM_MARK:
    case GW_MM_DTMF:
        if (arg != NULL)
            put(c, kind == GW_MM_MARK ? PL_RELAY_MARK : PL_RELAY_DTMF, arg, strlen(arg));
        break;
    case GW_MM_CLEARED:
        put(c, PL_RELAY_CLEAR, NULL, 0);
        break;
    case GW_MM_STOP:
        if (!c->stopped)
            put(c, PL_RELAY_STOP, NULL, 0);
        c->stopped = 1;
        break;
    default:
        break;
    }
}

static void relay_close(void *self)
{
    relay_event(self, GW_MM_STOP, NULL);
    free(self);
}

const gw_sink_ops gw_relay_sink = {
    .open = relay_open,
    .frame = relay_frame,
    .event = relay_event,
    .close = relay_close,
};

/* ---- receiving ---- */

/* The call whose records are being read, and its session (NULL: not held here). */
typedef struct {
    int valid;
    uint8_t call[16];
    uint16_t attempt;
    gw_session *s;
} cursor;

/* Done with the cursor's call for this message: its staged audio leaves as one message. */
static void cursor_release(cursor *cur)
{
    if (cur->s != NULL) {
        gw_media_flush(cur->s, 0);
        gw_media_put(cur->s);
    }
    cur->s = NULL;
    cur->valid = 0;
}

static void cursor_move(gw_relay *r, cursor *cur, const pl_relay_rec *rec)
{
    if (cur->valid && cur->attempt == rec->attempt && memcmp(cur->call, rec->call, 16) == 0)
        return;
    cursor_release(cur);
    memcpy(cur->call, rec->call, 16);
    cur->attempt = rec->attempt;
    cur->s = gw_media_get(r->g->media, rec->call, rec->attempt);
    cur->valid = 1;
}

static void unknown_call(gw_relay *r, const pl_relay_rec *rec)
{
    pl_metric_add(r->g->stats.relay_unknown, 1);
    if (pl_log_min_level <= PL_LOG_DEBUG) {
        char id[37];
        pl_relay_uuid_format(rec->call, id);
        PL_DEBUG("relay: record of kind %d for %s/%d, a call this process does not hold",
                 (int)rec->kind, id, (int)rec->attempt);
    }
}

static void dispatch(gw_relay *r, gw_session *s, const pl_relay_rec *rec)
{
    if (s == NULL) {
        unknown_call(r, rec);
        return;
    }
    switch (rec->kind) {
    case PL_RELAY_AUDIO:
        gw_media_play(s, rec->payload, rec->len);
        break;
    case PL_RELAY_MARK:
        if (gw_media_mark(s, (const char *)rec->payload, rec->len) != 0)
            PL_WARN("relay: a mark name of %u bytes from %s dropped (at most %d)",
                    (unsigned)rec->len, gw_media_worker(s), GW_MARK_MAX);
        break;
    case PL_RELAY_CLEAR:
        gw_media_clear(s);
        break;
    case PL_RELAY_HANGUP:
    case PL_RELAY_STOP:
        gw_media_flush(s, 1); /* what the agent said before it is played */
        gw_control_post(r->ctl, rec);
        break;
    default:
        PL_DEBUG("relay: record of kind %d from %s ignored", (int)rec->kind, gw_media_worker(s));
        break;
    }
}

/* pl_relay_recv_fn: one message of one worker, on the nng receive thread. */
static void on_recv(void *user, const uint8_t *msg, size_t len)
{
    gw_relay *r = user;
    gw_stats *st = &r->g->stats;
    pl_metric_add(st->relay_msgs_in, 1);
    cursor cur = {0};
    char worker[256] = ""; /* whose message this is, as far as its calls tell */
    size_t off = 0;
    long n = 0;
    pl_relay_rec rec;
    int rc;
    while ((rc = pl_relay_next(msg, len, &off, &rec)) == 1) {
        n++;
        cursor_move(r, &cur, &rec);
        if (cur.s != NULL && worker[0] == '\0')
            gw_copy(worker, sizeof(worker), gw_media_worker(cur.s));
        dispatch(r, cur.s, &rec);
    }
    cursor_release(&cur);
    pl_metric_add(st->relay_records_in, n);
    if (rc == PL_ERR_INVALID) {
        pl_metric_add(st->relay_invalid, 1);
        PL_WARN("relay: malformed message of %zu bytes from %s: record %ld truncated at byte "
                "%zu; the rest is dropped",
                len, worker[0] != '\0' ? worker : "an unknown worker", n + 1, off);
    }
}

/* ---- lifecycle ---- */

gw_relay *gw_relay_start(gw *g)
{
    gw_relay *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->g = g;
    pthread_mutex_init(&r->mu, NULL);
    r->ctl = gw_control_start(g);
    if (r->ctl == NULL)
        goto fail;
    r->ep = pl_relay_open(g->cfg.relay_listen, g->cfg.relay_host, on_recv, r);
    if (r->ep == NULL)
        goto fail;
    if (pthread_create(&r->flusher, NULL, flusher, r) != 0) {
        PL_ERROR("relay: cannot start the flusher thread");
        pl_relay_close(r->ep);
        goto fail;
    }
    PL_INFO("relay: listening on %s, workers answer to %s", g->cfg.relay_listen,
            pl_relay_url(r->ep));
    return r;
fail:
    gw_control_stop(r->ctl);
    pthread_mutex_destroy(&r->mu);
    free(r);
    return NULL;
}

void gw_relay_stop(gw_relay *r)
{
    if (r == NULL)
        return;
    atomic_store(&r->stop, 1);
    pthread_join(r->flusher, NULL);
    flush_all(r, 1); /* the STOPs of the streams gw_media_stop closed */
    struct timespec ts = {0, STOP_WAIT_MS * 1000000L};
    nanosleep(&ts, NULL); /* nng discards what a closing socket still queues */
    pl_relay_close(r->ep);
    gw_control_stop(r->ctl);
    int n = atomic_load(&r->npeers);
    for (int i = 0; i < n; i++) {
        pl_relay_batch_free(&r->peers[i].cur);
        pl_relay_batch_free(&r->peers[i].out);
        pthread_mutex_destroy(&r->peers[i].mu);
        pthread_mutex_destroy(&r->peers[i].send_mu);
    }
    pthread_mutex_destroy(&r->mu);
    free(r);
}
