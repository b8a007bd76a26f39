/* The workers' HANGUP and STOP requests (relay.h), served off the relay's receive thread.
 *
 * Both need Postgres and, but for Exotel, a carrier REST call: seconds in the worst case, while
 * the receive thread carries every call's audio. So the receive thread only queues them, and
 * one thread of this module serves them in arrival order. A thread of its own rather than the
 * dial workers' Redis stream: the request must be served by this process, which holds the
 * call's media socket (Exotel hangs up by closing it; a REST hang-up that fails falls back to
 * it), and it should not wait behind dial jobs. Requests are rare (one per call at most), so
 * one thread suffices; the queue is bounded and a request that finds it full is dropped with a
 * warning (the call still ends when the callee or the carrier hangs up).
 *
 *   HANGUP {"by","reason"}: the agent ended the call. hangup_by/hangup_reason are recorded and
 *     the carrier asked to hang up (gw_hangup_live); its final callback then moves the execution
 *     to call-disconnected, keeping what we recorded.
 *   STOP {"reason"}: the worker cannot serve the call: it ends `error` with that reason, as a
 *     call without pipeline capacity does (gw_media_unserved).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "error.h"
#include "gateway.h"
#include "log.h"

#define QUEUE_LEN      128
#define DEFAULT_BY     "agent"
#define DEFAULT_REASON "the agent ended the call"
#define DEFAULT_STOP   "media-pipeline worker stopped the call"

typedef struct {
    pl_relay_kind kind; /* PL_RELAY_HANGUP or PL_RELAY_STOP */
    char execution_id[37];
    int attempt;
    char by[32];
    char reason[256];
} request;

struct gw_control {
    gw *g;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    request queue[QUEUE_LEN]; /* a ring: count requests from head */
    int head, count;
    int stop;
    pthread_t thread;
};

/* The request of a record: its JSON payload's fields, bounded, with defaults. */
static void parse(const pl_relay_rec *rec, request *q)
{
    memset(q, 0, sizeof(*q));
    q->kind = (pl_relay_kind)rec->kind;
    pl_relay_uuid_format(rec->call, q->execution_id);
    q->attempt = rec->attempt;
    cJSON *j = cJSON_ParseWithLength((const char *)rec->payload, rec->len);
    gw_copy(q->by, sizeof(q->by), gw_json_str(j, "by"));
    gw_copy(q->reason, sizeof(q->reason), gw_json_str(j, "reason"));
    cJSON_Delete(j);
    if (q->by[0] == '\0')
        gw_copy(q->by, sizeof(q->by), DEFAULT_BY);
    if (q->reason[0] == '\0')
        gw_copy(q->reason, sizeof(q->reason),
                q->kind == PL_RELAY_HANGUP ? DEFAULT_REASON : DEFAULT_STOP);
}

void gw_control_post(gw_control *c, const pl_relay_rec *rec)
{
    request q;
    parse(rec, &q);
    pthread_mutex_lock(&c->mu);
    int full = c->count == QUEUE_LEN;
    if (!full) {
        c->queue[(c->head + c->count) % QUEUE_LEN] = q;
        c->count++;
        pthread_cond_signal(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    if (full)
        PL_WARN("worker %s for %s dropped: %d requests already wait",
                q.kind == PL_RELAY_HANGUP ? "HANGUP" : "STOP", q.execution_id, QUEUE_LEN);
}

static void serve(gw *g, const request *q)
{
    if (q->kind == PL_RELAY_HANGUP) {
        pl_metric_add(g->stats.relay_hangups, 1);
        PL_INFO("worker hangs up %s/%d (by %s: %s)", q->execution_id, q->attempt, q->by, q->reason);
        gw_hangup_live(g, q->execution_id, q->attempt, q->by, q->reason);
    } else {
        pl_metric_add(g->stats.relay_stops, 1);
        gw_media_unserved(g->media, q->execution_id, q->attempt, q->reason);
    }
}

static void *run(void *arg)
{
    gw_control *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (c->count == 0 && !c->stop)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->count == 0)
            break; /* stopping, and everything queued was served */
        request q = c->queue[c->head];
        c->head = (c->head + 1) % QUEUE_LEN;
        c->count--;
        pthread_mutex_unlock(&c->mu);
        serve(c->g, &q);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

gw_control *gw_control_start(gw *g)
{
    gw_control *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->g = g;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (pthread_create(&c->thread, NULL, run, c) != 0) {
        PL_ERROR("relay: cannot start the control thread");
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return NULL;
    }
    return c;
}

void gw_control_stop(gw_control *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
