/* POST /call and POST /call/{id}/stop.
 *
 * POST /call writes the execution, its outbox row and (with an Idempotency-Key) the key in ONE
 * statement, then — after that commit — enqueues the dial job in Redis and publishes the event,
 * in that order. If the process dies between the commit and the enqueue, the execution stays
 * `queued` in Postgres, which the scheduler's sweep re-enqueues: nothing accepted is lost.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "crypto.h"
#include "error.h"
#include "log.h"
#include "queue.h"
#include "state.h"
#include "validate.h"

/* A scheduled_at up to this far in the past is taken as "now" (clock skew, slow clients). */
#define SCHEDULE_GRACE_MS 5000

#define DIAL_STREAM "dial"

/* The agent is found by its primary key alone and its account checked after (MATERIALIZED keeps
 * the planner from merging the two): with both conditions together, a plan made while the agents
 * table was small walked the account's agents by the account index instead. */
PL_DB_STMT_WARM(create_stmt) = {
    "call_create",
    "WITH ag AS MATERIALIZED (SELECT id, account_id, telephony_provider, deleted_at FROM agents"
    "  WHERE id = $1),"
    " ins AS (INSERT INTO executions (account_id, agent_id, status, to_number, from_number,"
    "  user_data, agent_data, retry_config, bypass_call_guardrails, scheduled_at, provider)"
    "  SELECT account_id, id, $3, $4, $5, $6::jsonb, $7::jsonb, $8::jsonb, $9::boolean,"
    "   to_timestamp($10::float8 / 1000), telephony_provider"
    "  FROM ag WHERE account_id = $2 AND deleted_at IS NULL"
    "  RETURNING id, account_id, agent_id, status),"
    " ev AS (INSERT INTO execution_events (execution_id, account_id, status)"
    "  SELECT id, account_id, status FROM ins RETURNING id),"
    " idem AS (INSERT INTO idempotency_keys (account_id, key, request_hash, execution_id)"
    "  SELECT account_id, $11, $12, id FROM ins WHERE $11::text IS NOT NULL)"
    " SELECT ins.id, ev.id FROM ins, ev",
    12,
};

PL_DB_STMT_WARM(idem_stmt) = {
    "call_idempotency",
    "SELECT execution_id, request_hash FROM idempotency_keys WHERE account_id = $1 AND key = $2",
    2,
};

typedef struct {
    const char *agent_id;
    const char *to;
    const char *from;
    int64_t scheduled_ms; /* 0: dial now */
    char *user_data;      /* JSON text or NULL; owned */
    char *agent_data;
    char *retry_config;
    int bypass;
} call_request;

static void call_request_free(call_request *c)
{
    free(c->user_data);
    free(c->agent_data);
    free(c->retry_config);
}

/* Object-or-null member printed to JSON text; -1 with err when present with another type. */
static int object_member(const cJSON *body, const char *key, char **out, char *err, size_t cap)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, key);
    *out = NULL;
    if (m == NULL || cJSON_IsNull(m))
        return 0;
    if (!cJSON_IsObject(m)) {
        snprintf(err, cap, "%s: must be an object", key);
        return -1;
    }
    *out = cJSON_PrintUnformatted(m);
    return 0;
}

static int parse_call(const cJSON *body, call_request *c, char *err, size_t cap)
{
    memset(c, 0, sizeof(*c));
    const cJSON *agent = cJSON_GetObjectItemCaseSensitive(body, "agent_id");
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(body, "recipient_phone_number");
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(body, "from_phone_number");
    const cJSON *sched = cJSON_GetObjectItemCaseSensitive(body, "scheduled_at");
    const cJSON *bypass = cJSON_GetObjectItemCaseSensitive(body, "bypass_call_guardrails");
    const cJSON *agent_data = cJSON_GetObjectItemCaseSensitive(body, "agent_data");
    const cJSON *retry = cJSON_GetObjectItemCaseSensitive(body, "retry_config");

    if (agent == NULL || cJSON_IsNull(agent))
        return snprintf(err, cap, "agent_id: is required"), -1;
    if (!cJSON_IsString(agent) || !pl_is_uuid(agent->valuestring))
        return snprintf(err, cap, "agent_id: must be a UUID string"), -1;
    c->agent_id = agent->valuestring;
    if (to == NULL || cJSON_IsNull(to))
        return snprintf(err, cap, "recipient_phone_number: is required"), -1;
    if (!cJSON_IsString(to) || !pl_is_e164(to->valuestring))
        return snprintf(err, cap,
                        "recipient_phone_number: must be an E.164 number such as +14155550100 "
                        "('+', country code, 7 to 15 digits)"),
               -1;
    c->to = to->valuestring;
    if (from != NULL && !cJSON_IsNull(from)) {
        if (!cJSON_IsString(from) || !pl_is_e164(from->valuestring))
            return snprintf(err, cap,
                            "from_phone_number: must be an E.164 number such as "
                            "+14155550100"),
                   -1;
        c->from = from->valuestring;
    }
    if (sched != NULL && !cJSON_IsNull(sched)) {
        int64_t ms;
        if (!cJSON_IsString(sched) || pl_parse_iso8601(sched->valuestring, &ms) != 0)
            return snprintf(err, cap,
                            "scheduled_at: must be an ISO 8601 date-time such as "
                            "2025-08-21T10:35:00+05:30"),
                   -1;
        int64_t now = pl_now_ms();
        if (ms < now - SCHEDULE_GRACE_MS)
            return snprintf(err, cap, "scheduled_at: %s is in the past", sched->valuestring), -1;
        c->scheduled_ms = ms > now ? ms : 0;
    }
    if (bypass != NULL && !cJSON_IsNull(bypass)) {
        if (!cJSON_IsBool(bypass))
            return snprintf(err, cap, "bypass_call_guardrails: must be true or false"), -1;
        c->bypass = cJSON_IsTrue(bypass);
    }
    if (agent_data != NULL && cJSON_IsObject(agent_data)) {
        const cJSON *voice = cJSON_GetObjectItemCaseSensitive(agent_data, "voice_id");
        if (voice != NULL && !cJSON_IsNull(voice) && !cJSON_IsString(voice))
            return snprintf(err, cap, "agent_data.voice_id: must be a string"), -1;
    }
    if (retry != NULL && !cJSON_IsNull(retry) && api_validate_retry_config(retry, err, cap) != 0)
        return -1;
    if (object_member(body, "user_data", &c->user_data, err, cap) != 0 ||
        object_member(body, "agent_data", &c->agent_data, err, cap) != 0 ||
        object_member(body, "retry_config", &c->retry_config, err, cap) != 0)
        return -1;
    return 0;
}

static int idempotency_key_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > 255)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] < 0x20 || (unsigned char)k[i] > 0x7e)
            return 0;
    return 1;
}

static int reply_done(pl_req *r, const char *execution_id)
{
    char out[256];
    snprintf(out, sizeof(out),
             "{\"message\":\"done\",\"status\":\"queued\",\"execution_id\":\"%s\"}", execution_id);
    return pl_http_json(r, 200, out);
}

/* Looks up an Idempotency-Key. 1: replied with the earlier execution (or 422 on a different
 * body); 0: unused key; -1: replied 500. */
static int idempotent_replay(pl_req *r, pl_dbconn *c, const char *account, const char *key,
                             const char *hash)
{
    const char *p[2] = {account, key};
    PGresult *res = pl_db_exec(c, &idem_stmt, p);
    int rc = 0;
    if (!pl_db_ok(res)) {
        api_db_error(r, res, "idempotency lookup");
        rc = -1;
    } else if (PQntuples(res) == 1) {
        if (strcmp(PQgetvalue(res, 0, 1), hash) == 0)
            reply_done(r, PQgetvalue(res, 0, 0));
        else
            pl_http_error(r, 422,
                          "Idempotency-Key '%s' was already used with a different request "
                          "body",
                          key);
        rc = 1;
    }
    PQclear(res);
    return rc;
}

/* Hands the committed execution to the scheduler: now (stream) or at scheduled_at (delayed). */
static void enqueue_dial(api_ctx *app, const char *execution_id, int64_t scheduled_ms)
{
    const char *kv[4] = {"execution_id", execution_id, "attempt", "0"};
    pl_rconn *rc = pl_redis_acquire(app->redis);
    int err = scheduled_ms > 0 ? pl_delay_add(app->redis, rc, DIAL_STREAM, kv, 2, scheduled_ms)
                               : pl_queue_push(app->redis, rc, DIAL_STREAM, kv, 2, NULL);
    pl_redis_release(app->redis, rc);
    if (err != 0)
        PL_WARN("call %s committed but not enqueued (%s); the scheduler sweep will pick it up",
                execution_id, pl_strerror(err));
}

int api_call_create(pl_req *r)
{
    char account[40], err[512];
    int status;
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    cJSON *body = pl_http_json_body(r, &status);
    if (body == NULL)
        return status;
    call_request call;
    if (parse_call(body, &call, err, sizeof(err)) != 0) {
        call_request_free(&call);
        cJSON_Delete(body);
        return pl_http_error(r, 422, "%s", err);
    }
    const char *idem = pl_http_header(r, "Idempotency-Key");
    char hash[65] = "";
    if (idem != NULL && !idempotency_key_ok(idem)) {
        call_request_free(&call);
        cJSON_Delete(body);
        return pl_http_error(r, 422,
                             "Idempotency-Key: must be 1 to 255 printable ASCII "
                             "characters");
    }
    if (idem != NULL) {
        char *canon = cJSON_PrintUnformatted(body);
        pl_sha256_hex(canon, strlen(canon), hash);
        free(canon);
    }

    api_ctx *app = r->app;
    char sched_ms[32];
    snprintf(sched_ms, sizeof(sched_ms), "%lld", (long long)call.scheduled_ms);
    const char *p[12] = {call.agent_id,
                         account,
                         call.scheduled_ms > 0 ? "scheduled" : "queued",
                         call.to,
                         call.from,
                         call.user_data,
                         call.agent_data,
                         call.retry_config,
                         call.bypass ? "true" : "false",
                         call.scheduled_ms > 0 ? sched_ms : NULL,
                         idem,
                         idem != NULL ? hash : NULL};
    pl_dbconn *c = pl_db_acquire(app->db);
    int replayed = idem != NULL ? idempotent_replay(r, c, account, idem, hash) : 0;
    PGresult *res = NULL;
    if (replayed == 0) {
        res = pl_db_exec(c, &create_stmt, p);
        /* A concurrent request with the same key won the race: answer with its execution. */
        if (!pl_db_ok(res) && idem != NULL && strcmp(pl_db_sqlstate(res), "23505") == 0) {
            PQclear(res);
            res = NULL;
            replayed = idempotent_replay(r, c, account, idem, hash);
        }
    }
    pl_db_release(app->db, c);

    if (replayed != 0) {
        status = replayed == 1 ? 200 : 500;
    } else if (!pl_db_ok(res)) {
        status = api_db_error(r, res, "call create");
    } else if (PQntuples(res) == 0) {
        status = pl_http_error(r, 404, "agent_id: agent %s not found", call.agent_id);
    } else {
        pl_transition t = {.from = PL_ST__COUNT};
        snprintf(t.execution_id, sizeof(t.execution_id), "%s", PQgetvalue(res, 0, 0));
        snprintf(t.account_id, sizeof(t.account_id), "%s", account);
        snprintf(t.agent_id, sizeof(t.agent_id), "%s", call.agent_id);
        t.event_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        t.to = call.scheduled_ms > 0 ? PL_ST_SCHEDULED : PL_ST_QUEUED;
        enqueue_dial(app, t.execution_id, call.scheduled_ms);
        pl_state_publish(app->bus, &t);
        status = reply_done(r, t.execution_id);
    }
    if (res != NULL)
        PQclear(res);
    call_request_free(&call);
    cJSON_Delete(body);
    return status;
}

PL_DB_STMT(owned_stmt) = {
    "call_owned",
    "SELECT status, attempt FROM executions WHERE id = $1 AND account_id = $2",
    2,
};

int api_call_stop(pl_req *r)
{
    char account[40];
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    if (api_path_uuid(r, r->params[0], "execution_id") != 0)
        return 422;
    api_ctx *app = r->app;
    const char *p[2] = {r->params[0], account};
    pl_dbconn *c = pl_db_acquire(app->db);
    PGresult *res = pl_db_exec(c, &owned_stmt, p);
    int status = 0, rc = -1;
    char attempt[16] = "0";
    pl_transition t;
    if (!pl_db_ok(res))
        status = api_db_error(r, res, "call stop");
    else if (PQntuples(res) == 0)
        status = pl_http_error(r, 404, "execution %s not found", r->params[0]);
    else {
        snprintf(attempt, sizeof(attempt), "%s", PQgetvalue(res, 0, 1));
        rc = pl_state_apply(c, r->params[0], PL_ST_STOPPED, NULL, NULL, &t);
    }
    pl_db_release(app->db, c);
    PQclear(res);
    if (status != 0)
        return status;
    if (rc == PL_ERR_CONFLICT)
        return pl_http_error(r, 409,
                             "execution %s is %s; only a queued, scheduled or rescheduled call "
                             "can be stopped",
                             r->params[0], pl_status_name(t.from));
    if (rc != 0)
        return pl_http_error(r, 500, "internal error while stopping %s; retry later", r->params[0]);
    exec_cache_invalidate(app->executions, r->params[0]);
    /* Tidy the delayed set; the scheduler would skip the stopped call anyway. */
    const char *kv[4] = {"execution_id", r->params[0], "attempt", attempt};
    int removed = 0;
    pl_rconn *rcn = pl_redis_acquire(app->redis);
    pl_delay_remove(app->redis, rcn, DIAL_STREAM, kv, 2, &removed);
    pl_redis_release(app->redis, rcn);
    pl_state_publish(app->bus, &t);
    char out[256];
    snprintf(out, sizeof(out),
             "{\"message\":\"done\",\"status\":\"stopped\",\"execution_id\":\"%s\"}", r->params[0]);
    return pl_http_json(r, 200, out);
}
