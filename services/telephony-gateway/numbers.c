/* Phone numbers and inbound executions in Postgres (docs/inbound.md). The acceptance itself is
 * one call of inbound_accept (proto/sql/006_inbound.sql): the repeat check, the caller's limit
 * and the inserts commit together. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "gateway.h"
#include "log.h"
#include "validate.h"

/* A number's agent counts only while the agent lives: a deleted agent leaves the number
 * unlinked in effect. */
PL_DB_STMT_WARM(number_stmt) = {
    "gw_number",
    "SELECT n.id, n.account_id, n.phone_number, n.telephony_provider, n.credentials_ref,"
    " n.inbound_secret, COALESCE(ag.id::text, ''), ag.config::text, ac.concurrency_max,"
    " ac.wallet > 0"
    " FROM phone_numbers n JOIN accounts ac ON ac.id = n.account_id"
    " LEFT JOIN agents ag ON ag.id = n.agent_id AND ag.deleted_at IS NULL"
    " WHERE n.id = $1::uuid AND n.deleted_at IS NULL",
    1,
};

PL_DB_STMT(accept_stmt) = {
    "gw_inbound_accept",
    "SELECT outcome, COALESCE(execution_id::text, ''), COALESCE(media_token, ''),"
    " COALESCE(event_id, 0) FROM inbound_accept($1::uuid, $2::uuid, $3::uuid, $4, $5, $6, $7,"
    " $8::jsonb, $9::jsonb, $10, $11, $12::int, $13)",
    13};

void gw_number_clear(gw_number *n)
{
    free(n->agent_config);
    n->agent_config = NULL;
}

int gw_number_load(gw *g, pl_dbconn *c, const char *id, gw_number *n)
{
    (void)g;
    memset(n, 0, sizeof(*n));
    char uuid[37];
    if (id == NULL || pl_uuid_canon(id, uuid) != 0)
        return PL_ERR_NOTFOUND;
    const char *params[1] = {uuid};
    PGresult *r = pl_db_exec(c, &number_stmt, params);
    if (!pl_db_ok(r)) {
        PL_ERROR("phone number %s: %s", uuid, PQresultErrorMessage(r));
        PQclear(r);
        return PL_ERR_DB;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        return PL_ERR_NOTFOUND;
    }
    gw_copy(n->id, sizeof(n->id), PQgetvalue(r, 0, 0));
    gw_copy(n->account_id, sizeof(n->account_id), PQgetvalue(r, 0, 1));
    gw_copy(n->phone_number, sizeof(n->phone_number), PQgetvalue(r, 0, 2));
    gw_copy(n->provider, sizeof(n->provider), PQgetvalue(r, 0, 3));
    gw_copy(n->credentials_ref, sizeof(n->credentials_ref), PQgetvalue(r, 0, 4));
    gw_copy(n->inbound_secret, sizeof(n->inbound_secret), PQgetvalue(r, 0, 5));
    gw_copy(n->agent_id, sizeof(n->agent_id), PQgetvalue(r, 0, 6));
    n->agent_config = PQgetisnull(r, 0, 7) ? NULL : strdup(PQgetvalue(r, 0, 7));
    pl_parse_int(PQgetvalue(r, 0, 8), 0, 1000000, 0, &n->concurrency_max);
    n->funded = PQgetvalue(r, 0, 9)[0] == 't';
    PQclear(r);
    return PL_OK;
}

int gw_inbound_accept(gw *g, pl_dbconn *c, const gw_number *n, const gw_in_request *req,
                      gw_in_result *out)
{
    (void)g;
    memset(out, 0, sizeof(*out));
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", req->limit);
    const char *params[13] = {
        req->execution_id,   n->account_id, n->agent_id,       req->provider,  req->call->call_id,
        req->call->from,     req->call->to, req->user_data,    req->telephony, req->media_token,
        req->callback_token, limit,         n->credentials_ref};
    PGresult *r = pl_db_exec(c, &accept_stmt, params);
    if (!pl_db_ok(r) || PQntuples(r) != 1) {
        PL_ERROR("inbound call %s to %s: %s", req->call->call_id, n->phone_number,
                 PQresultErrorMessage(r));
        PQclear(r);
        return PL_ERR_DB;
    }
    const char *outcome = PQgetvalue(r, 0, 0);
    out->outcome = strcmp(outcome, "created") == 0    ? GW_IN_CREATED
                   : strcmp(outcome, "existing") == 0 ? GW_IN_EXISTING
                                                      : GW_IN_LIMIT;
    gw_copy(out->execution_id, sizeof(out->execution_id), PQgetvalue(r, 0, 1));
    gw_copy(out->media_token, sizeof(out->media_token), PQgetvalue(r, 0, 2));
    out->event_id = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    PQclear(r);
    return PL_OK;
}
