/* store: see store.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "store.h"
#include "validate.h"

PL_DB_STMT(claim_stmt) = {
    "pp_claim",
    "SELECT pg_try_advisory_lock(hashtextextended('parley:postprocess:' || $1, 0))",
    1,
};

PL_DB_STMT(unclaim_stmt) = {
    "pp_unclaim",
    "SELECT pg_advisory_unlock(hashtextextended('parley:postprocess:' || $1, 0))",
    1,
};

/* waited: since the outbox row of the move to call-disconnected (the status's own clock), or
 * since the last update when there is none. */
PL_DB_STMT(load_stmt) = {
    "pp_load",
    "SELECT e.status, e.account_id, e.agent_id, e.attempt, COALESCE(e.provider, ''),"
    " e.telephony_data::text, e.usage_breakdown::text, e.recording_path, a.config::text,"
    " a.prompts::text,"
    " (extract(epoch FROM now() - COALESCE((SELECT max(ev.created_at) FROM execution_events ev"
    "   WHERE ev.execution_id = e.id AND ev.status = 'call-disconnected'), e.updated_at))"
    "  * 1000)::bigint"
    " FROM executions e LEFT JOIN agents a ON a.id = e.agent_id WHERE e.id = $1::uuid",
    1,
};

PL_DB_STMT(turns_stmt) = {
    "pp_turns",
    "SELECT role, content, start_ms, end_ms, interrupted FROM transcript_turns"
    " WHERE execution_id = $1::uuid AND attempt = $2 ORDER BY seq",
    2,
};

int pp_claim(pl_dbconn *c, const char *id)
{
    const char *p[1] = {id};
    PGresult *r = pl_db_exec(c, &claim_stmt, p);
    int rc = -1;
    if (pl_db_ok(r) && PQntuples(r) == 1)
        rc = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    else
        PL_ERROR("%s: claim failed: %s", id, PQresultErrorMessage(r));
    PQclear(r);
    return rc;
}

void pp_unclaim(pl_dbconn *c, const char *id)
{
    const char *p[1] = {id};
    PQclear(pl_db_exec(c, &unclaim_stmt, p));
}

static char *dup_or_null(const PGresult *r, int col)
{
    return PQgetisnull(r, 0, col) ? NULL : strdup(PQgetvalue(r, 0, col));
}

int pp_load(pl_dbconn *c, const char *id, pp_exec *e)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->id, sizeof(e->id), "%s", id);
    const char *p[1] = {id};
    PGresult *r = pl_db_exec(c, &load_stmt, p);
    if (!pl_db_ok(r)) {
        PL_ERROR("%s: load failed: %s", id, PQresultErrorMessage(r));
        PQclear(r);
        return PL_ERR_DB;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        return PL_ERR_NOTFOUND;
    }
    if (pl_status_parse(PQgetvalue(r, 0, 0), &e->status) != PL_OK)
        e->status = PL_ST__COUNT;
    snprintf(e->account_id, sizeof(e->account_id), "%s", PQgetvalue(r, 0, 1));
    snprintf(e->agent_id, sizeof(e->agent_id), "%s", PQgetvalue(r, 0, 2));
    pl_parse_int(PQgetvalue(r, 0, 3), 0, 1000000, 0, &e->attempt);
    snprintf(e->provider, sizeof(e->provider), "%s", PQgetvalue(r, 0, 4));
    e->telephony = cJSON_Parse(PQgetvalue(r, 0, 5));
    if (!cJSON_IsObject(e->telephony)) {
        cJSON_Delete(e->telephony);
        e->telephony = cJSON_CreateObject();
    }
    e->usage_json = dup_or_null(r, 6);
    e->recording_path = dup_or_null(r, 7);
    e->config_json = dup_or_null(r, 8);
    e->prompts_json = dup_or_null(r, 9);
    e->waited_ms = strtoll(PQgetvalue(r, 0, 10), NULL, 10);
    PQclear(r);
    return PL_OK;
}

int pp_load_turns(pl_dbconn *c, pp_exec *e)
{
    char attempt[16];
    snprintf(attempt, sizeof(attempt), "%d", e->attempt);
    const char *p[2] = {e->id, attempt};
    PGresult *r = pl_db_exec(c, &turns_stmt, p);
    if (!pl_db_ok(r)) {
        PL_ERROR("%s: loading the transcript failed: %s", e->id, PQresultErrorMessage(r));
        PQclear(r);
        return PL_ERR_DB;
    }
    int n = PQntuples(r);
    e->turns = calloc((size_t)(n > 0 ? n : 1), sizeof(pp_turn));
    if (e->turns == NULL) {
        PQclear(r);
        return PL_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++) {
        pp_turn *t = &e->turns[i];
        t->role = PQgetvalue(r, i, 0);
        t->content = PQgetvalue(r, i, 1);
        t->start_ms = strtol(PQgetvalue(r, i, 2), NULL, 10);
        t->end_ms = strtol(PQgetvalue(r, i, 3), NULL, 10);
        t->interrupted = strcmp(PQgetvalue(r, i, 4), "t") == 0;
    }
    e->nturns = n;
    e->turns_res = r;
    return PL_OK;
}

void pp_exec_free(pp_exec *e)
{
    cJSON_Delete(e->telephony);
    free(e->usage_json);
    free(e->recording_path);
    free(e->config_json);
    free(e->prompts_json);
    free(e->turns);
    PQclear(e->turns_res);
    memset(e, 0, sizeof(*e));
}
