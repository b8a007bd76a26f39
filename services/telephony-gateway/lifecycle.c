/* Carrier events -> execution statuses (docs/dialing.md, "Carrier status → execution status").
 *
 * Every status change goes through pl_state_apply, whose guard refuses edges the state machine
 * does not allow: a late, duplicate or out-of-order callback therefore changes nothing, and that
 * is not an error (logged at debug; the carrier still gets its 200). Transitions are published
 * after their commit. A final outcome consults pl_retry_due: when a retry is due the delayed dial
 * job is stored first and the execution then moves to `rescheduled` — a crash in between leaves
 * a duplicate job the scheduler drops, never a lost retry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "error.h"
#include "gateway.h"
#include "log.h"
#include "queue.h"
#include "retry.h"

static int is_live(pl_status s)
{
    return s == PL_ST_INITIATED || s == PL_ST_RINGING || s == PL_ST_IN_PROGRESS;
}

int gw_transition(gw *g, pl_dbconn *c, const char *execution_id, pl_status to, const char *patch,
                  const char *error_message, pl_status *from)
{
    pl_transition t;
    int rc = pl_state_apply(c, execution_id, to, patch, error_message, &t);
    if (from != NULL)
        *from = rc == PL_OK || rc == PL_ERR_CONFLICT ? t.from : PL_ST__COUNT;
    if (rc == PL_OK) {
        pl_state_publish(g->bus, &t);
        PL_INFO("execution %s: %s -> %s", execution_id, pl_status_name(t.from), pl_status_name(to));
    } else if (rc == PL_ERR_CONFLICT) {
        PL_DEBUG("execution %s: %s -> %s refused (late, duplicate or out of order)", execution_id,
                 pl_status_name(t.from), pl_status_name(to));
    } else if (rc == PL_ERR_NOTFOUND) {
        PL_WARN("execution %s: not found for -> %s", execution_id, pl_status_name(to));
    }
    return rc;
}

/* gw_transition for attempt a, unless the status loaded with the attempt already rules the edge
 * out: the guard would refuse it (a late, duplicate or out-of-order callback, such as Twilio's
 * TwiML fetch after its `answered` callback), so the refused statement and its status query are
 * saved. Within an attempt statuses only move forward, and every edge the gateway takes that
 * starts later than the loaded status is taken by its callers after the step before it
 * (disconnect answers first), so a refusal read from that snapshot stays a refusal. */
static int move(gw *g, pl_dbconn *c, gw_attempt *a, pl_status to, const char *patch,
                const char *error_message, pl_status *from)
{
    if ((unsigned)a->status < PL_ST__COUNT && !pl_status_edge(a->status, to)) {
        if (from != NULL)
            *from = a->status;
        PL_DEBUG("execution %s: %s -> %s refused (late, duplicate or out of order)",
                 a->execution_id, pl_status_name(a->status), pl_status_name(to));
        return PL_ERR_CONFLICT;
    }
    return gw_transition(g, c, a->execution_id, to, patch, error_message, from);
}

static long seconds(int64_t ms)
{
    return ms > 0 ? (long)((ms + 500) / 1000) : 0;
}

/* telephony_data patch of an event: provider, call id, then what the caller adds. */
static cJSON *base_patch(const gw_attempt *a, const char *call_id)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "provider", a->provider);
    if (call_id != NULL && call_id[0] != '\0')
        cJSON_AddStringToObject(p, "provider_call_id", call_id);
    return p;
}

/* hangup_by / hangup_reason / hangup_provider_code, unless the gateway already recorded who
 * ended the call (an API stop, an error): those win over the carrier's view. */
static void add_hangup(cJSON *p, const gw_attempt *a, const char *by, const char *reason, int code)
{
    if (a->hangup_by[0] == '\0') {
        if (by != NULL && by[0] != '\0')
            cJSON_AddStringToObject(p, "hangup_by", by);
        if (reason != NULL && reason[0] != '\0')
            cJSON_AddStringToObject(p, "hangup_reason", reason);
    }
    if (code >= 0)
        cJSON_AddNumberToObject(p, "hangup_provider_code", code);
}

static char *take_json(cJSON *p)
{
    char *s = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    return s;
}

/* The end of an attempt: `st` is its outcome; a retry replaces it by `rescheduled` when due. */
static int finish(gw *g, pl_dbconn *c, gw_attempt *a, pl_status st, const char *patch,
                  const char *error_message, int retry, const char *carrier_status,
                  const char *call_id, int *applied)
{
    pl_status to = st;
    int64_t delay = 0;
    if (retry && pl_status_edge(a->status, PL_ST_RESCHEDULED) &&
        pl_retry_due(a->retry_config, a->attempt, st, 0, g->cfg.retry_minute_ms, &delay)) {
        char next[16];
        snprintf(next, sizeof(next), "%d", a->attempt + 1);
        const char *kv[4] = {"execution_id", a->execution_id, "attempt", next};
        pl_rconn *rc = pl_redis_acquire(g->redis);
        int r = pl_delay_add(g->redis, rc, GW_DIAL_STREAM, kv, 2, pl_now_ms() + delay);
        pl_redis_release(g->redis, rc);
        if (r != PL_OK)
            return PL_ERR_REDIS; /* nothing changed yet: the carrier retries the callback */
        to = PL_ST_RESCHEDULED;
        PL_INFO("execution %s: attempt %d ended %s; retry %s in %lld ms", a->execution_id,
                a->attempt, pl_status_name(st), next, (long long)delay);
    }
    pl_status from;
    int rc = move(g, c, a, to, patch, error_message, &from);
    if (rc == PL_ERR_DB)
        return rc;
    if (rc == PL_OK && applied != NULL)
        *applied = 1;
    gw_attempt_update(g, c, a, carrier_status, call_id, 0, 1,
                      rc == PL_OK ? pl_status_name(st) : NULL);
    pl_status now = rc == PL_OK ? to : from;
    if (rc == PL_OK || rc == PL_ERR_CONFLICT)
        a->status = now;
    if (!is_live(now))
        gw_release(g, a->execution_id, a->account_id);
    return PL_OK;
}

static void default_hangup(pl_status st, const char **by, const char **reason)
{
    switch (st) {
    case PL_ST_BUSY:
        *by = "Callee";
        *reason = "Callee busy";
        break;
    case PL_ST_NO_ANSWER:
        *by = "Callee";
        *reason = "No answer";
        break;
    case PL_ST_CANCELED:
        *by = "API Request";
        *reason = "Call canceled";
        break;
    case PL_ST_CALL_DISCONNECTED:
        *by = "Callee";
        *reason = "Call recipient hung up";
        break;
    default:
        *by = "Carrier";
        *reason = "Call failed";
        break;
    }
}

static int final_event(gw *g, pl_dbconn *c, gw_attempt *a, const gw_event *ev, pl_status st,
                       int retry, int *applied)
{
    const char *call_id = ev->call_id[0] != '\0' ? ev->call_id : a->call_id;
    const char *by, *reason;
    default_hangup(st, &by, &reason);
    if (ev->hangup_by[0] != '\0')
        by = ev->hangup_by;
    if (ev->hangup_reason[0] != '\0')
        reason = ev->hangup_reason;
    cJSON *p = base_patch(a, call_id);
    cJSON_AddNumberToObject(p, "ring_duration", (double)seconds(pl_now_ms() - a->dial_ms));
    cJSON_AddNumberToObject(p, "duration", 0);
    add_hangup(p, a, by, reason, ev->provider_code);
    char *patch = take_json(p);
    int rc = finish(g, c, a, st, patch, NULL, retry, ev->carrier_status, ev->call_id, applied);
    free(patch);
    return rc;
}

/* initiated|ringing -> in-progress. answered_ms: when the callee answered (ring_duration). */
static int answer(gw *g, pl_dbconn *c, gw_attempt *a, const gw_event *ev, int64_t answered_ms,
                  int *applied)
{
    const char *call_id = ev->call_id[0] != '\0' ? ev->call_id : a->call_id;
    cJSON *p = base_patch(a, call_id);
    cJSON_AddNumberToObject(p, "ring_duration", (double)seconds(answered_ms - a->dial_ms));
    char *patch = take_json(p);
    pl_status from;
    int rc = move(g, c, a, PL_ST_IN_PROGRESS, patch, NULL, &from);
    free(patch);
    if (rc == PL_ERR_DB)
        return rc;
    if (rc == PL_OK) {
        if (applied != NULL)
            *applied = 1;
        a->status = PL_ST_IN_PROGRESS;
        gw_live_add(g->live, a->execution_id, a->account_id, a->concurrency_max);
    } else if (rc == PL_ERR_CONFLICT) {
        a->status = from; /* what the row says now, for the caller's next decision */
    }
    if (ev->machine)
        gw_mark_voicemail(g, c, a->execution_id);
    if (!a->event_recorded)
        gw_attempt_update(g, c, a, ev->carrier_status, ev->call_id, 1, 0, NULL);
    if (a->answered_ms == 0)
        a->answered_ms = answered_ms;
    return PL_OK;
}

static int disconnect(gw *g, pl_dbconn *c, gw_attempt *a, const gw_event *ev, int *applied)
{
    int64_t now = pl_now_ms();
    long duration = ev->duration_s;
    if (a->status == PL_ST_INITIATED || a->status == PL_ST_RINGING) {
        /* The answered callback is late or lost: take the answer step first, so the edge
         * exists and ring_duration is known. */
        int64_t at = duration > 0 ? now - duration * 1000 : now;
        int rc = answer(g, c, a, ev, at, applied);
        if (rc != PL_OK)
            return rc;
    }
    if (duration < 0)
        duration = a->answered_ms > 0 ? seconds(now - a->answered_ms) : 0;
    const char *by, *reason;
    default_hangup(PL_ST_CALL_DISCONNECTED, &by, &reason);
    if (ev->hangup_by[0] != '\0')
        by = ev->hangup_by;
    if (ev->hangup_reason[0] != '\0')
        reason = ev->hangup_reason;
    const char *call_id = ev->call_id[0] != '\0' ? ev->call_id : a->call_id;
    cJSON *p = base_patch(a, call_id);
    cJSON_AddNumberToObject(p, "duration", (double)duration);
    add_hangup(p, a, by, reason, ev->provider_code);
    char *patch = take_json(p);
    int rc = finish(g, c, a, PL_ST_CALL_DISCONNECTED, patch, NULL, 0, ev->carrier_status,
                    ev->call_id, applied);
    free(patch);
    return rc;
}

int gw_apply_event(gw *g, pl_dbconn *c, gw_attempt *a, const gw_event *ev, int *applied)
{
    if (applied != NULL)
        *applied = 0;
    switch (ev->kind) {
    case GW_EV_NONE:
    case GW_EV_INITIATED:
        return a->event_recorded
                   ? PL_OK
                   : gw_attempt_update(g, c, a, ev->carrier_status, ev->call_id, 0, 0, NULL);
    case GW_EV_RINGING: {
        const char *call_id = ev->call_id[0] != '\0' ? ev->call_id : a->call_id;
        char *patch = take_json(base_patch(a, call_id));
        pl_status from;
        int rc = move(g, c, a, PL_ST_RINGING, patch, NULL, &from);
        free(patch);
        if (rc == PL_ERR_DB)
            return rc;
        if (rc == PL_OK) {
            if (applied != NULL)
                *applied = 1;
            a->status = PL_ST_RINGING;
            gw_live_add(g->live, a->execution_id, a->account_id, a->concurrency_max);
        } else if (rc == PL_ERR_CONFLICT) {
            a->status = from;
        }
        return a->event_recorded
                   ? PL_OK
                   : gw_attempt_update(g, c, a, ev->carrier_status, ev->call_id, 0, 0, NULL);
    }
    case GW_EV_ANSWERED:
        return answer(g, c, a, ev, pl_now_ms(), applied);
    case GW_EV_COMPLETED: {
        int answered = a->answered_ms > 0 || ev->duration_s > 0 || a->status == PL_ST_IN_PROGRESS ||
                       a->status == PL_ST_CALL_DISCONNECTED;
        if (answered)
            return disconnect(g, c, a, ev, applied);
        /* completed without an answer (duration 0): the callee never picked up. */
        return final_event(g, c, a, ev, PL_ST_NO_ANSWER, 1, applied);
    }
    case GW_EV_BUSY:
        return final_event(g, c, a, ev, PL_ST_BUSY, 1, applied);
    case GW_EV_NO_ANSWER:
        return final_event(g, c, a, ev, PL_ST_NO_ANSWER, 1, applied);
    case GW_EV_FAILED:
        return final_event(g, c, a, ev, PL_ST_FAILED, 1, applied);
    case GW_EV_CANCELED:
        return final_event(g, c, a, ev, PL_ST_CANCELED, 0, applied);
    }
    return PL_OK;
}

int gw_end_attempt(gw *g, pl_dbconn *c, gw_attempt *a, pl_status to, const char *hangup_by,
                   const char *reason, int code, const char *error_message, int retry)
{
    cJSON *p = base_patch(a, a->call_id);
    cJSON_AddStringToObject(p, "hangup_by", hangup_by);
    cJSON_AddStringToObject(p, "hangup_reason", reason);
    if (code >= 0)
        cJSON_AddNumberToObject(p, "hangup_provider_code", code);
    if (to != PL_ST_ERROR || a->answered_ms == 0)
        cJSON_AddNumberToObject(p, "ring_duration", (double)seconds(pl_now_ms() - a->dial_ms));
    char *patch = take_json(p);
    int rc = finish(g, c, a, to, patch, error_message, retry, NULL, NULL, NULL);
    free(patch);
    return rc;
}
