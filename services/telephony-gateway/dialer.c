/* The `telephony` stream (group `gateway`): dial, hangup and reconcile jobs.
 *
 * Each worker reads one job at a time, acts, and acknowledges only once the effect is committed
 * (or the job is found obsolete). A job left unacknowledged — a crashed replica, a Postgres
 * outage — is taken over by any worker after PL_GATEWAY_CLAIM_IDLE_MS. Jobs are idempotent: a
 * dial first claims its attempt with INSERT ... ON CONFLICT DO NOTHING, and only the claimer
 * asks the carrier to dial, so a repeated job never dials twice.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "crypto.h"
#include "error.h"
#include "gateway.h"
#include "log.h"
#include "validate.h"
#include "queue.h"

#define BLOCK_MS 1000

struct gw_dialer {
    gw *g;
    int n;
    pthread_t *threads;
    struct worker *workers;
    atomic_int stop;
};

typedef struct worker {
    gw_dialer *d;
    int index;
    char consumer[160];
} worker;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int gw_carrier_hangup(gw *g, const gw_carrier *car, const gw_attempt *a, char *err, size_t cap)
{
    gw_cred_buf buf;
    const gw_carrier_conf *conf = gw_credentials(g, car, a->credentials_ref, &buf);
    if (conf == NULL) {
        snprintf(err, cap, "%s credential set '%s' is not configured", car->name,
                 a->credentials_ref);
        return PL_ERR_IO;
    }
    return car->hangup(conf, a->call_id, err, cap);
}

int gw_hangup(gw *g, pl_dbconn *c, const gw_attempt *a, const char *hangup_by, const char *reason)
{
    const gw_carrier *car = gw_carrier_find(a->provider);
    if (car == NULL)
        return PL_ERR_INVALID;
    if (hangup_by != NULL) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "hangup_by", hangup_by);
        cJSON_AddStringToObject(p, "hangup_reason", reason);
        char *patch = cJSON_PrintUnformatted(p);
        cJSON_Delete(p);
        if (patch != NULL)
            gw_telephony_patch(g, c, a->execution_id, patch);
        cJSON_free(patch);
    }
    pl_metric_add(g->stats.hangups, 1);
    char err[512] = "";
    int rc =
        a->call_id[0] != '\0' ? gw_carrier_hangup(g, car, a, err, sizeof(err)) : PL_ERR_NOTFOUND;
    if (rc == PL_ERR_INVALID || (rc == PL_ERR_NOTFOUND && car->id == GW_EXOTEL)) {
        /* No REST hang-up (Exotel): the call ends when its media WebSocket closes. */
        if (gw_media_close(g->media, a->execution_id))
            return PL_OK;
        PL_WARN("hang-up of %s: %s; no media stream of it in this process", a->execution_id,
                err[0] != '\0' ? err : "no call id");
        return PL_ERR_NOTFOUND;
    }
    if (rc == PL_ERR_NOTFOUND) {
        PL_WARN("hang-up of %s: the carrier never gave a call id", a->execution_id);
        return rc;
    }
    if (rc == PL_OK) {
        PL_INFO("hang-up of %s (%s %s) requested", a->execution_id, car->name, a->call_id);
        return rc;
    }
    /* Closing the media stream ends the call too (the answer document has nothing after it). */
    int closed = gw_media_close(g->media, a->execution_id);
    PL_WARN("hang-up of %s failed: %s%s", a->execution_id, err,
            closed ? "; its media stream was closed instead" : "");
    return closed ? PL_OK : rc;
}

static int dial(gw *g, const char *execution_id, int n)
{
    /* The media token names its attempt so the WebSocket finds the row by primary key. */
    char rnd[33], media_token[72], callback_token[33];
    if (pl_random_hex(rnd, 16) != PL_OK || pl_random_hex(callback_token, 16) != PL_OK)
        return PL_ERR_IO;
    snprintf(media_token, sizeof(media_token), "%s.%d.%s", execution_id, n, rnd);
    pl_dbconn *c = pl_db_acquire(g->db);
    gw_execution e;
    int claimed = 0;
    int rc = gw_load_claim(g, c, execution_id, n, media_token, callback_token, &e, &claimed);
    if (rc != PL_OK) {
        pl_db_release(g->db, c);
        if (rc == PL_ERR_DB)
            return rc;
        PL_WARN("dial job for unknown execution %s dropped", execution_id);
        return PL_OK;
    }
    if (e.status != PL_ST_INITIATED) {
        pl_db_release(g->db, c);
        PL_INFO("dial job for %s dropped: it is %s, not initiated", execution_id,
                pl_status_name(e.status));
        return PL_OK;
    }
    const gw_carrier *car = gw_carrier_find(e.provider);
    if (car == NULL) {
        char msg[128];
        snprintf(msg, sizeof(msg), "unsupported telephony provider '%s'", e.provider);
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "hangup_by", "Error");
        cJSON_AddStringToObject(p, "hangup_reason", msg);
        char *patch = cJSON_PrintUnformatted(p);
        cJSON_Delete(p);
        rc = gw_transition(g, c, execution_id, PL_ST_ERROR, patch, msg, NULL);
        cJSON_free(patch);
        pl_db_release(g->db, c);
        if (rc == PL_ERR_DB)
            return rc;
        gw_release(g, execution_id, e.account_id);
        return PL_OK;
    }
    pl_db_release(g->db, c);
    if (!claimed) {
        PL_INFO("attempt %s/%d already claimed: not dialled again", execution_id, n);
        return PL_OK;
    }
    const gw_carrier_conf *conf = &g->conf[car->id];
    const char *from = e.from[0] != '\0' ? e.from : conf->from;

    gw_dial_req req = {execution_id, n, e.to, from, media_token, callback_token};
    gw_dial_result res;
    car->dial(conf, &req, &res);

    c = pl_db_acquire(g->db);
    if (res.status == GW_DIAL_OK) {
        pl_metric_add(g->stats.dials_ok[car->id], 1);
        PL_INFO("dialled %s attempt %d via %s: %s", execution_id, n, car->name, res.call_id);
        gw_live_add(g->live, execution_id, e.account_id, e.concurrency_max);
        if (gw_attempt_dialed(g, c, execution_id, n, car->name, res.call_id) != PL_OK)
            PL_ERROR("dialled %s but could not record call id %s (callbacks will)", execution_id,
                     res.call_id);
        pl_db_release(g->db, c);
        return PL_OK;
    }
    pl_metric_add(res.status == GW_DIAL_REJECTED ? g->stats.dials_rejected[car->id]
                                                 : g->stats.dials_unavailable[car->id],
                  1);
    PL_WARN("dial of %s via %s failed (HTTP %d, code %d): %s", execution_id, car->name,
            res.http_status, res.code, res.message);
    gw_attempt a;
    rc = gw_attempt_load(g, c, execution_id, n, &a);
    if (rc == PL_OK) {
        /* A refused request (invalid number...) fails the same way again: no retry. A carrier
         * that did not answer may do better later: retry_config decides. */
        int code = res.code >= 0 ? res.code : (res.http_status > 0 ? res.http_status : -1);
        rc = gw_end_attempt(g, c, &a, PL_ST_FAILED, "Carrier", res.message, code, NULL,
                            res.status == GW_DIAL_UNAVAILABLE);
        gw_attempt_clear(&a);
    }
    pl_db_release(g->db, c);
    return rc;
}

int gw_hangup_live(gw *g, const char *execution_id, int n, const char *hangup_by,
                   const char *reason)
{
    pl_dbconn *c = pl_db_acquire(g->db);
    gw_attempt a;
    int rc = n < 0 ? gw_attempt_latest(g, c, execution_id, &a)
                   : gw_attempt_load(g, c, execution_id, n, &a);
    if (rc == PL_OK) {
        if (a.status == PL_ST_INITIATED || a.status == PL_ST_RINGING ||
            a.status == PL_ST_IN_PROGRESS)
            gw_hangup(g, c, &a, hangup_by, reason);
        else
            PL_INFO("hang-up of %s (%s) dropped: it is %s", execution_id, reason,
                    pl_status_name(a.status));
        gw_attempt_clear(&a);
    }
    pl_db_release(g->db, c);
    return rc;
}

static int hangup(gw *g, const char *execution_id)
{
    int rc = gw_hangup_live(g, execution_id, -1, "API Request", "Call stopped through the API");
    return rc == PL_ERR_DB ? rc : PL_OK;
}

static int reconcile_without_attempt(gw *g, pl_dbconn *c, const char *execution_id)
{
    gw_execution e;
    int rc = gw_execution_load(g, c, execution_id, &e);
    if (rc != PL_OK || (e.status != PL_ST_INITIATED && e.status != PL_ST_RINGING))
        return rc == PL_ERR_DB ? rc : PL_OK;
    const char *why = "no dial attempt was recorded for this execution";
    rc = gw_transition(g, c, execution_id, PL_ST_ERROR,
                       "{\"hangup_by\":\"Error\",\"hangup_reason\":\"no dial attempt was "
                       "recorded for this execution\"}",
                       why, NULL);
    if (rc == PL_OK)
        gw_release(g, execution_id, e.account_id);
    return rc == PL_ERR_DB ? rc : PL_OK;
}

static int reconcile(gw *g, const char *execution_id, const char *attempt)
{
    pl_dbconn *c = pl_db_acquire(g->db);
    gw_attempt a;
    int n_attempt = 0;
    int rc = attempt != NULL && pl_parse_int(attempt, 0, 1000, 0, &n_attempt) != PL_OK
                 ? PL_ERR_NOTFOUND /* a malformed job names no attempt we know */
             : attempt != NULL ? gw_attempt_load(g, c, execution_id, n_attempt, &a)
                               : gw_attempt_latest(g, c, execution_id, &a);
    if (rc == PL_ERR_NOTFOUND) {
        rc = reconcile_without_attempt(g, c, execution_id);
        pl_db_release(g->db, c);
        return rc;
    }
    if (rc != PL_OK) {
        pl_db_release(g->db, c);
        return rc == PL_ERR_DB ? rc : PL_OK;
    }
    const gw_carrier *car = gw_carrier_find(a.provider);
    if (car == NULL || (a.status != PL_ST_INITIATED && a.status != PL_ST_RINGING &&
                        a.status != PL_ST_IN_PROGRESS)) {
        gw_attempt_clear(&a);
        pl_db_release(g->db, c);
        return PL_OK;
    }
    char why[600] = "";
    if (a.call_id[0] == '\0') {
        snprintf(why, sizeof(why), "the carrier never confirmed the dial (no call id)");
    } else {
        gw_event ev;
        char err[512] = "";
        gw_cred_buf cred;
        const gw_carrier_conf *conf = gw_credentials(g, car, a.credentials_ref, &cred);
        int fr = conf != NULL ? car->fetch(conf, a.call_id, &ev, err, sizeof(err)) : PL_ERR_IO;
        if (conf == NULL)
            snprintf(err, sizeof(err), "%s credential set '%s' is not configured", car->name,
                     a.credentials_ref);
        if (fr == PL_ERR_NOTFOUND) {
            snprintf(why, sizeof(why), "%s does not know call %s", car->name, a.call_id);
        } else if (fr != PL_OK) {
            PL_WARN("reconcile of %s: %s (tried again on the next sweep)", execution_id, err);
        } else if (ev.kind == GW_EV_NONE) {
            snprintf(why, sizeof(why), "%s reports call %s in unknown status '%s'", car->name,
                     a.call_id, ev.carrier_status);
        } else {
            PL_INFO("reconcile of %s: %s says %s", execution_id, car->name, ev.carrier_status);
            rc = gw_apply_event(g, c, &a, &ev, NULL);
        }
    }
    if (why[0] != '\0') {
        PL_WARN("reconcile of %s: %s", execution_id, why);
        rc = gw_end_attempt(g, c, &a, PL_ST_ERROR, "Error", why, -1, why, 0);
    }
    gw_attempt_clear(&a);
    pl_db_release(g->db, c);
    return rc == PL_ERR_DB ? rc : PL_OK;
}

static int handle_job(gw *g, const char *action, const char *execution_id, const char *attempt)
{
    pl_metric_add(g->stats.jobs, 1);
    if (execution_id == NULL) {
        PL_WARN("telephony job without execution_id dropped");
        return PL_OK;
    }
    if (action == NULL || strcmp(action, "dial") == 0) {
        long n = gw_str_long(attempt, 0);
        if (n < 0 || n > 100000) {
            PL_WARN("dial job for %s with attempt '%s' dropped", execution_id, attempt);
            return PL_OK;
        }
        return dial(g, execution_id, (int)n);
    }
    if (strcmp(action, "hangup") == 0)
        return hangup(g, execution_id);
    if (strcmp(action, "reconcile") == 0)
        return reconcile(g, execution_id, attempt);
    PL_WARN("telephony job with unknown action '%s' dropped", action);
    return PL_OK;
}

static void run_job(gw_dialer *d, pl_job *job)
{
    gw *g = d->g;
    int rc = handle_job(g, pl_job_get(job, "action"), pl_job_get(job, "execution_id"),
                        pl_job_get(job, "attempt"));
    if (rc != PL_OK) {
        pl_metric_add(g->stats.jobs_failed, 1);
        PL_WARN("telephony job %s left pending (%s): taken over after %ld ms", job->id,
                pl_strerror(rc), g->cfg.claim_idle_ms);
        return;
    }
    pl_rconn *rc2 = pl_redis_acquire(g->redis);
    pl_queue_ack(g->redis, rc2, GW_TELEPHONY_STREAM, GW_TELEPHONY_GROUP, job->id);
    pl_redis_release(g->redis, rc2);
}

static void *work(void *arg)
{
    worker *w = arg;
    gw_dialer *d = w->d;
    gw *g = d->g;
    int64_t next_claim = 0;
    while (!atomic_load(&d->stop)) {
        pl_job job;
        int n = 0, rc;
        int64_t now = pl_now_ms();
        int claiming = now >= next_claim;
        pl_rconn *c = pl_redis_acquire(g->redis);
        if (claiming)
            rc = pl_queue_claim(g->redis, c, GW_TELEPHONY_STREAM, GW_TELEPHONY_GROUP, w->consumer,
                                g->cfg.claim_idle_ms, &job, 1, &n);
        else
            rc = pl_queue_read(g->redis, c, GW_TELEPHONY_STREAM, GW_TELEPHONY_GROUP, w->consumer,
                               BLOCK_MS, &job, 1, &n);
        if (rc != PL_OK) /* Redis down or the group gone (a flushed Redis): back off, recreate */
            pl_queue_group(g->redis, c, GW_TELEPHONY_STREAM, GW_TELEPHONY_GROUP, "0");
        pl_redis_release(g->redis, c);
        if (rc != PL_OK) {
            sleep_ms(200);
            continue;
        }
        if (claiming && n == 0) /* nothing left to take over: look again later */
            next_claim = now + g->cfg.claim_idle_ms / 2 + w->index * 97;
        if (n == 1) {
            if (claiming)
                PL_INFO("took over telephony job %s (delivered %d times)", job.id, job.deliveries);
            run_job(d, &job);
            pl_jobs_clear(&job, 1);
        }
    }
    return NULL;
}

gw_dialer *gw_dialer_start(gw *g)
{
    gw_dialer *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->g = g;
    d->n = (int)g->cfg.workers;
    d->threads = calloc((size_t)d->n, sizeof(*d->threads));
    d->workers = calloc((size_t)d->n, sizeof(*d->workers));
    if (d->threads == NULL || d->workers == NULL) {
        free(d->threads);
        free(d->workers);
        free(d);
        return NULL;
    }
    pl_rconn *c = pl_redis_acquire(g->redis);
    pl_queue_group(g->redis, c, GW_TELEPHONY_STREAM, GW_TELEPHONY_GROUP, "0");
    pl_redis_release(g->redis, c);
    for (int i = 0; i < d->n; i++) {
        worker *w = &d->workers[i];
        w->d = d;
        w->index = i;
        snprintf(w->consumer, sizeof(w->consumer), "%s-%d", g->svc.id, i);
        if (pthread_create(&d->threads[i], NULL, work, w) != 0) {
            PL_ERROR("cannot start dial worker %d", i);
            d->n = i;
            break;
        }
    }
    PL_INFO("%d dial workers consuming %s (group %s)", d->n, GW_TELEPHONY_STREAM,
            GW_TELEPHONY_GROUP);
    return d;
}

void gw_dialer_stop(gw_dialer *d)
{
    if (d == NULL)
        return;
    atomic_store(&d->stop, 1);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += d->g->cfg.drain_ms / 1000 + 1 + BLOCK_MS / 1000;
    int stuck = 0;
    for (int i = 0; i < d->n; i++) {
        if (pthread_timedjoin_np(d->threads[i], NULL, &deadline) != 0) {
            PL_WARN("dial worker %d still busy after the drain deadline; its job stays pending "
                    "and another replica takes it over",
                    i);
            pthread_detach(d->threads[i]);
            stuck++;
        }
    }
    if (stuck > 0)
        return; /* a detached worker may still read d: leave it to the process's exit */
    free(d->threads);
    free(d->workers);
    free(d);
}
