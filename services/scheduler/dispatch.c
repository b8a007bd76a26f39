/* One dial job: the checks of docs/dialing.md step 2, in order, then queued -> initiated and the
 * hand-off to the gateway. Every step is safe to repeat: the job is acknowledged only after its
 * effect is committed, and a repeat finds the execution further along and does the rest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "error.h"
#include "lease.h"
#include "log.h"
#include "validate.h"
#include "phone.h"
#include "scheduler.h"
#include "state.h"

PL_DB_STMT_WARM(load_stmt) = {
    "sched_load",
    "SELECT e.status, e.account_id, e.to_number, e.bypass_call_guardrails, a.concurrency_max,"
    " a.wallet > 0, ag.config->'calling_guardrails', e.attempt,"
    " EXISTS (SELECT 1 FROM call_attempts c WHERE c.execution_id = e.id AND c.attempt = $2)"
    " FROM executions e JOIN accounts a ON a.id = e.account_id JOIN agents ag ON ag.id = e.agent_id"
    " WHERE e.id = $1",
    2,
};

PL_DB_STMT_WARM(attempt_stmt) = {
    "sched_attempt",
    "UPDATE executions SET attempt = $2 WHERE id = $1 AND attempt < $2",
    2,
};

typedef struct {
    pl_status status;
    char account[40];
    char to[32];
    int bypass;
    int cap;
    int has_balance;
    int start_hour, end_hour; /* -1: no calling hours */
    int attempt;
    int attempt_claimed;
} execution_view;

static int load(scheduler *s, pl_dbconn *c, const char *id, int attempt, execution_view *v)
{
    char attempt_s[16];
    snprintf(attempt_s, sizeof(attempt_s), "%d", attempt);
    const char *p[2] = {id, attempt_s};
    PGresult *r = pl_db_exec(c, &load_stmt, p);
    int rc = PL_OK;
    if (!pl_db_ok(r)) {
        PL_ERROR("dial %s: load failed: %s", id, PQresultErrorMessage(r));
        rc = PL_ERR_DB;
    } else if (PQntuples(r) == 0) {
        rc = PL_ERR_NOTFOUND;
    } else {
        memset(v, 0, sizeof(*v));
        pl_status_parse(PQgetvalue(r, 0, 0), &v->status);
        snprintf(v->account, sizeof(v->account), "%s", PQgetvalue(r, 0, 1));
        snprintf(v->to, sizeof(v->to), "%s", PQgetvalue(r, 0, 2));
        v->bypass = strcmp(PQgetvalue(r, 0, 3), "t") == 0;
        pl_parse_int(PQgetvalue(r, 0, 4), 0, 1000000, 0, &v->cap);
        v->has_balance = strcmp(PQgetvalue(r, 0, 5), "t") == 0;
        v->start_hour = v->end_hour = -1;
        if (!PQgetisnull(r, 0, 6)) {
            cJSON *g = cJSON_Parse(PQgetvalue(r, 0, 6));
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(g, "call_start_hour");
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(g, "call_end_hour");
            if (cJSON_IsNumber(a) && cJSON_IsNumber(b)) {
                v->start_hour = a->valueint;
                v->end_hour = b->valueint;
            }
            cJSON_Delete(g);
        }
        pl_parse_int(PQgetvalue(r, 0, 7), 0, 1000, 0, &v->attempt);
        v->attempt_claimed = strcmp(PQgetvalue(r, 0, 8), "t") == 0;
    }
    (void)s;
    PQclear(r);
    return rc;
}

/* Applies a transition and publishes it after the commit. PL_ERR_CONFLICT is not an error here:
 * another actor (a stop, a replica, a worker with a duplicate job) got there first; *now (may be
 * NULL) is then the status it left. */
static int move(scheduler *s, pl_dbconn *c, const char *id, pl_status to, const char *err_msg,
                pl_status *now)
{
    pl_transition t;
    int rc = pl_state_apply(c, id, to, NULL, err_msg, &t);
    if (rc == PL_OK)
        pl_state_publish(s->bus, &t);
    if (now != NULL)
        *now = rc == PL_ERR_CONFLICT ? t.from : to;
    return rc;
}

static int redelay(scheduler *s, pl_rconn *rc, const char *id, int attempt, int64_t due)
{
    char a[16];
    snprintf(a, sizeof(a), "%d", attempt);
    const char *kv[4] = {"execution_id", id, "attempt", a};
    return pl_delay_add(s->redis, rc, DIAL_STREAM, kv, 2, due);
}

static int hand_to_gateway(scheduler *s, pl_rconn *rc, const char *id, int attempt)
{
    char a[16];
    snprintf(a, sizeof(a), "%d", attempt);
    const char *kv[6] = {"action", "dial", "execution_id", id, "attempt", a};
    return pl_queue_push(s->redis, rc, TELEPHONY_STREAM, kv, 3, NULL);
}

/* The hand-off and the dial job's acknowledgement in one round trip: the XADD to `telephony`
 * (the fields hand_to_gateway writes) and the XACK of the job, in one script, so both happen or
 * neither does. Without a job id (nothing to acknowledge) it is hand_to_gateway. */
static const char hand_and_ack_lua[] =
    "redis.call('XADD', KEYS[1], '*', 'action', 'dial', 'execution_id', ARGV[1], 'attempt',"
    " ARGV[2])\n"
    "return redis.call('XACK', KEYS[2], ARGV[3], ARGV[4])\n";

static int hand_and_ack(scheduler *s, pl_rconn *rc, const char *id, int attempt, const char *job_id,
                        int *acked)
{
    if (job_id == NULL)
        return hand_to_gateway(s, rc, id, attempt);
    char a[16], tel[256], dial[256];
    snprintf(a, sizeof(a), "%d", attempt);
    redisReply *rep = pl_redis_cmd(rc, "EVAL %s 2 %s %s %s %s %s %s", hand_and_ack_lua,
                                   pl_redis_key(s->redis, tel, sizeof(tel), TELEPHONY_STREAM),
                                   pl_redis_key(s->redis, dial, sizeof(dial), DIAL_STREAM), id, a,
                                   DIAL_GROUP, job_id);
    int ok = pl_redis_ok(rep, "hand-off");
    if (rep != NULL)
        freeReplyObject(rep);
    if (!ok)
        return PL_ERR_REDIS;
    *acked = 1;
    return PL_OK;
}

static int dispatch_queued(scheduler *s, pl_dbconn *c, pl_rconn *rc, const char *id, int attempt,
                           const execution_view *v, int *handoff)
{
    if (!v->has_balance) {
        pl_metric_add(s->balance_low, 1);
        int r = move(s, c, id, PL_ST_BALANCE_LOW, "the account's wallet is exhausted", NULL);
        return r == PL_OK || r == PL_ERR_CONFLICT ? PL_OK : r;
    }
    int64_t now = pl_now_ms();
    if (!v->bypass && v->start_hour >= 0 &&
        !pl_phone_within_hours(v->to, now, v->start_hour, v->end_hour)) {
        int64_t next = pl_phone_next_window(v->to, now, v->start_hour, v->end_hour);
        PL_INFO("dial %s: outside calling hours %02d-%02d for %s; deferred %llds", id,
                v->start_hour, v->end_hour, v->to, (long long)((next - now) / 1000));
        pl_metric_add(s->deferred_hours, 1);
        return redelay(s, rc, id, attempt, next);
    }
    int granted = 0;
    int r = pl_lease_acquire(s->redis, rc, v->account, id, v->cap, s->cfg.lease_ttl_ms, &granted);
    if (r != PL_OK)
        return r;
    if (!granted) {
        pl_metric_add(s->deferred_cap, 1);
        return redelay(s, rc, id, attempt, now + s->cfg.cap_retry_ms);
    }
    pl_status now_st;
    r = move(s, c, id, PL_ST_INITIATED, NULL, &now_st);
    if (r == PL_ERR_CONFLICT) {
        /* Stopped meanwhile: give the slot back. Unless a duplicate job (another worker, a
         * replica) dialled it first: the lease, keyed by execution, is then that call's. */
        if (now_st != PL_ST_INITIATED && now_st != PL_ST_RINGING && now_st != PL_ST_IN_PROGRESS)
            pl_lease_release(s->redis, rc, v->account, id);
        return PL_OK;
    }
    if (r != PL_OK)
        return r;
    pl_metric_add(s->dialed, 1);
    *handoff = 1; /* after the connection is back in the pool: see scheduler_dispatch */
    return PL_OK;
}

int scheduler_dispatch(scheduler *s, pl_rconn *rc, const char *job_id, const char *id, int attempt,
                       int *acked)
{
    *acked = 0;
    pl_metric_add(s->jobs, 1);
    pl_dbconn *c = pl_db_acquire(s->db);
    execution_view v;
    int handoff = 0;
    int r = load(s, c, id, attempt, &v);
    if (r == PL_ERR_NOTFOUND) {
        PL_WARN("dial job for unknown execution %s dropped", id);
        r = PL_OK;
        goto out;
    }
    if (r != PL_OK)
        goto out;
    if (attempt < v.attempt) { /* a job of an attempt already superseded */
        pl_metric_add(s->dropped, 1);
        goto out;
    }
    switch (v.status) {
    case PL_ST_SCHEDULED:
    case PL_ST_RESCHEDULED:
        r = move(s, c, id, PL_ST_QUEUED, NULL, NULL);
        if (r != PL_OK && r != PL_ERR_CONFLICT)
            goto out;
        v.status = PL_ST_QUEUED;
        /* fall through */
    case PL_ST_QUEUED: {
        if (attempt > v.attempt) {
            char a[16];
            snprintf(a, sizeof(a), "%d", attempt);
            const char *p[2] = {id, a};
            PGresult *res = pl_db_exec(c, &attempt_stmt, p);
            int ok = pl_db_ok(res);
            PQclear(res);
            if (!ok) {
                r = PL_ERR_DB;
                goto out;
            }
        }
        r = dispatch_queued(s, c, rc, id, attempt, &v, &handoff);
        break;
    }
    case PL_ST_INITIATED:
        /* A crash between "initiated" and the hand-off: hand off again unless the gateway has
         * claimed the attempt already (its claim makes a duplicate harmless either way). */
        handoff = !v.attempt_claimed && attempt == v.attempt;
        r = PL_OK;
        break;
    default:
        pl_metric_add(s->dropped, 1); /* stopped, dialling, finished: nothing to do */
        r = PL_OK;
    }
out:
    pl_db_release(s->db, c);
    if (r == PL_OK && handoff)
        r = hand_and_ack(s, rc, id, attempt, job_id, acked);
    return r;
}
