/* GET /executions/{id}, GET /executions/{id}/log and GET /user/me. */
#include <stdio.h>
#include <stdlib.h>

#include "api.h"

PL_DB_STMT(get_stmt) = {
    "execution_get",
    "SELECT execution_json(e)::text FROM executions e WHERE e.id = $1 AND e.account_id = $2",
    2,
};

PL_DB_STMT(log_stmt) = {
    "execution_log",
    "SELECT jsonb_build_object('status', 'success', 'data', COALESCE((SELECT jsonb_agg("
    "  jsonb_build_object('created_at', pl_ts(l.created_at), 'type', l.type,"
    "   'component', l.component, 'provider', l.provider, 'data', l.data) ORDER BY l.id)"
    "  FROM execution_logs l WHERE l.execution_id = e.id), '[]'::jsonb))::text"
    " FROM executions e WHERE e.id = $1 AND e.account_id = $2",
    2,
};

PL_DB_STMT(me_stmt) = {
    "user_me",
    "SELECT jsonb_build_object('id', a.id, 'name', a.name, 'email', a.email,"
    " 'wallet', a.wallet::float8, 'concurrency', jsonb_build_object('max', a.concurrency_max,"
    " 'current', (SELECT count(*) FROM executions e WHERE e.account_id = a.id"
    "   AND e.status IN ('initiated', 'ringing', 'in-progress'))))::text"
    " FROM accounts a WHERE a.id = $1",
    1,
};

static int execution_reply(pl_req *r, const pl_db_stmt *st, const char *what)
{
    char account[40], nf[200];
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    if (api_path_uuid(r, r->params[0], "execution_id") != 0)
        return 422;
    const char *p[2] = {r->params[0], account};
    snprintf(nf, sizeof(nf), "execution %s not found", r->params[0]);
    return api_reply_row_json(r, st, p, what, nf);
}

int api_execution_get(pl_req *r)
{
    api_ctx *app = r->app;
    char account[40];
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    const char *id = r->params[0];
    if (api_path_uuid(r, id, "execution_id") != 0)
        return 422;
    char *json;
    size_t len;
    uint64_t gen;
    if (exec_cache_get(app->executions, id, account, &json, &len, &gen)) {
        pl_http_send(r, 200, "application/json", json, len, NULL);
        free(json);
        return 200;
    }
    const char *p[2] = {id, account};
    PGresult *res = api_exec(r, &get_stmt, p);
    int status;
    if (!pl_db_ok(res)) {
        status = api_db_error(r, res, "execution get");
    } else if (PQntuples(res) == 0) {
        status = pl_http_error(r, 404, "execution %s not found", id);
    } else {
        len = (size_t)PQgetlength(res, 0, 0);
        exec_cache_put(app->executions, id, account, PQgetvalue(res, 0, 0), len, gen);
        status = pl_http_send(r, 200, "application/json", PQgetvalue(res, 0, 0), len, NULL);
    }
    PQclear(res);
    return status;
}

int api_execution_log(pl_req *r)
{
    return execution_reply(r, &log_stmt, "execution log");
}

int api_user_me(pl_req *r)
{
    char account[40];
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    const char *p[1] = {account};
    return api_reply_row_json(r, &me_stmt, p, "user", "account not found");
}
