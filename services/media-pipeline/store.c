/* store: transcript turns, call context and the call's final figures in Postgres (store.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "store.h"

PL_DB_STMT(load_stmt) = {
    "mp_load",
    "SELECT e.account_id, e.agent_id, e.call_type, e.to_number, COALESCE(e.from_number, ''),"
    " COALESCE(e.telephony_data->>'provider_call_id', ''), a.config::text, a.prompts::text,"
    " COALESCE(e.user_data, '{}'::jsonb)::text, COALESCE(e.agent_data, '{}'::jsonb)::text,"
    " e.telephony_data->>'busy_message'"
    " FROM executions e LEFT JOIN agents a ON a.id = e.agent_id WHERE e.id = $1",
    1};

PL_DB_STMT(turn_stmt) = {
    "mp_turn",
    "INSERT INTO transcript_turns (execution_id, attempt, seq, role, content, start_ms, end_ms,"
    " interrupted) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    " ON CONFLICT (execution_id, attempt, seq) DO UPDATE SET content = EXCLUDED.content,"
    " end_ms = EXCLUDED.end_ms, interrupted = EXCLUDED.interrupted",
    8};

PL_DB_STMT(finish_stmt) = {
    "mp_finish",
    "UPDATE executions SET usage_breakdown = $2::jsonb, latency_data = $3::jsonb,"
    " recording_path = COALESCE($4, recording_path),"
    " error_message = COALESCE($5, error_message), updated_at = now()"
    /* Late figures never rewrite a completed execution (the postprocessor went on without). */
    " WHERE id = $1 AND status <> 'completed'",
    5};

static void copy(char *dst, size_t cap, const char *s)
{
    snprintf(dst, cap, "%s", s != NULL ? s : "");
}

int mp_store_load(pl_db *db, const char *execution_id, mp_call_ctx *ctx, char *why, size_t cap)
{
    memset(ctx, 0, sizeof(*ctx));
    const char *params[1] = {execution_id};
    pl_dbconn *c = pl_db_acquire(db);
    PGresult *r = pl_db_exec(c, &load_stmt, params);
    pl_db_release(db, c);
    if (!pl_db_ok(r)) {
        snprintf(why, cap, "database: %s", PQresultErrorMessage(r));
        PQclear(r);
        return PL_ERR_DB;
    }
    if (PQntuples(r) == 0) {
        snprintf(why, cap, "execution %s not found", execution_id);
        PQclear(r);
        return PL_ERR_NOTFOUND;
    }
    if (PQgetisnull(r, 0, 6)) {
        snprintf(why, cap, "agent %s of execution %s not found", PQgetvalue(r, 0, 1), execution_id);
        PQclear(r);
        return PL_ERR_NOTFOUND;
    }
    copy(ctx->account_id, sizeof(ctx->account_id), PQgetvalue(r, 0, 0));
    copy(ctx->agent_id, sizeof(ctx->agent_id), PQgetvalue(r, 0, 1));
    copy(ctx->call_type, sizeof(ctx->call_type), PQgetvalue(r, 0, 2));
    copy(ctx->to_number, sizeof(ctx->to_number), PQgetvalue(r, 0, 3));
    copy(ctx->from_number, sizeof(ctx->from_number), PQgetvalue(r, 0, 4));
    copy(ctx->provider_call_id, sizeof(ctx->provider_call_id), PQgetvalue(r, 0, 5));
    ctx->config = cJSON_Parse(PQgetvalue(r, 0, 6));
    ctx->prompts = PQgetisnull(r, 0, 7) ? NULL : cJSON_Parse(PQgetvalue(r, 0, 7));
    ctx->user_data = cJSON_Parse(PQgetvalue(r, 0, 8));
    ctx->agent_data = cJSON_Parse(PQgetvalue(r, 0, 9));
    ctx->busy_message = PQgetisnull(r, 0, 10) ? NULL : strdup(PQgetvalue(r, 0, 10));
    PQclear(r);
    if (!cJSON_IsObject(ctx->config)) {
        snprintf(why, cap, "agent %s: stored agent_config is not a JSON object", ctx->agent_id);
        mp_call_ctx_free(ctx);
        return PL_ERR_INVALID;
    }
    return PL_OK;
}

void mp_call_ctx_free(mp_call_ctx *ctx)
{
    cJSON_Delete(ctx->config);
    cJSON_Delete(ctx->prompts);
    cJSON_Delete(ctx->user_data);
    cJSON_Delete(ctx->agent_data);
    ctx->config = ctx->prompts = ctx->user_data = ctx->agent_data = NULL;
    free(ctx->busy_message);
    ctx->busy_message = NULL;
}

int mp_store_turn(pl_service *svc, const mp_turn *t)
{
    char attempt[16], seq[16], start[24], end[24];
    snprintf(attempt, sizeof(attempt), "%d", t->attempt);
    snprintf(seq, sizeof(seq), "%d", t->seq);
    snprintf(start, sizeof(start), "%ld", t->start_ms);
    snprintf(end, sizeof(end), "%ld", t->end_ms);
    const char *params[8] = {t->execution_id, attempt, seq, t->role,
                             t->text,         start,   end, t->interrupted ? "true" : "false"};
    pl_dbconn *c = pl_db_acquire(svc->db);
    PGresult *r = pl_db_exec(c, &turn_stmt, params);
    pl_db_release(svc->db, c);
    int ok = pl_db_ok(r);
    if (!ok)
        PL_WARN("transcript turn %d of %s not stored: %s", t->seq, t->execution_id,
                PQresultErrorMessage(r));
    PQclear(r);
    if (!ok)
        return PL_ERR_DB;
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "execution_id", t->execution_id);
    cJSON_AddNumberToObject(ev, "attempt", t->attempt);
    cJSON_AddNumberToObject(ev, "seq", t->seq);
    cJSON_AddStringToObject(ev, "role", t->role);
    cJSON_AddStringToObject(ev, "text", t->text);
    cJSON_AddNumberToObject(ev, "start_ms", (double)t->start_ms);
    cJSON_AddNumberToObject(ev, "end_ms", (double)t->end_ms);
    cJSON_AddBoolToObject(ev, "interrupted", t->interrupted);
    char *payload = cJSON_PrintUnformatted(ev);
    cJSON_Delete(ev);
    if (payload != NULL) {
        char topic[64];
        snprintf(topic, sizeof(topic), "exec.transcript.%s", t->role);
        pl_bus_publish(svc->bus, topic, payload, strlen(payload));
        cJSON_free(payload);
    }
    return PL_OK;
}

int mp_store_finish(pl_db *db, const char *execution_id, const char *usage_json,
                    const char *latency_json, const char *recording_path, const char *error_message)
{
    const char *params[5] = {execution_id, usage_json, latency_json, recording_path, error_message};
    pl_dbconn *c = pl_db_acquire(db);
    PGresult *r = pl_db_exec(c, &finish_stmt, params);
    pl_db_release(db, c);
    int ok = pl_db_ok(r);
    if (!ok)
        PL_WARN("usage and latency of %s not stored: %s", execution_id, PQresultErrorMessage(r));
    PQclear(r);
    return ok ? PL_OK : PL_ERR_DB;
}
