/* /v2/agent: create, list, get, replace, patch, delete, stop, executions. Every statement is
 * scoped by the caller's account: another account's agent is simply not found (404). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "state.h"
#include "validate.h"

PL_DB_STMT(insert_stmt) = {
    "agent_insert",
    "INSERT INTO agents (account_id, agent_name, agent_type, config, prompts, webhook_url,"
    " telephony_provider)"
    " VALUES ($1, $2, COALESCE($3, 'other'), $4::jsonb, $5::jsonb, NULLIF($6, ''), $7)"
    " RETURNING id",
    7,
};

PL_DB_STMT(list_stmt) = {
    "agent_list",
    "SELECT COALESCE(jsonb_agg(agent_json(a) ORDER BY a.created_at DESC), '[]'::jsonb)::text"
    " FROM agents a WHERE a.account_id = $1 AND a.deleted_at IS NULL",
    1,
};

PL_DB_STMT(get_stmt) = {
    "agent_get",
    "SELECT agent_json(a)::text FROM agents a"
    " WHERE a.id = $1 AND a.account_id = $2 AND a.deleted_at IS NULL",
    2,
};

PL_DB_STMT(config_stmt) = {
    "agent_config_get",
    "SELECT config::text FROM agents WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL",
    2,
};

PL_DB_STMT(update_stmt) = {
    "agent_update",
    "UPDATE agents SET agent_name = $3, agent_type = COALESCE($4, 'other'), config = $5::jsonb,"
    " prompts = COALESCE($6::jsonb, prompts), webhook_url = NULLIF($7, ''),"
    " telephony_provider = $8, updated_at = now()"
    " WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL",
    8,
};

PL_DB_STMT(delete_stmt) = {
    "agent_delete",
    "UPDATE agents SET deleted_at = now(), updated_at = now()"
    " WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL",
    2,
};

PL_DB_STMT(stoppable_stmt) = {
    "agent_stoppable",
    "SELECT e.id, e.status, e.attempt FROM executions e"
    " WHERE e.agent_id = $1 AND e.account_id = $2"
    " AND e.status IN ('queued', 'scheduled', 'rescheduled') ORDER BY e.created_at",
    2,
};

PL_DB_STMT(exists_stmt) = {
    "agent_exists",
    "SELECT 1 FROM agents WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL",
    2,
};

static const char *str_or_null(const cJSON *obj, const char *key)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(m) ? m->valuestring : NULL;
}

/* Parses the body and validates agent_config and agent_prompts (both required). */
static cJSON *read_agent_body(pl_req *r, int *status)
{
    cJSON *body = pl_http_json_body(r, status);
    if (body == NULL)
        return NULL;
    char err[512];
    if (api_validate_agent_config(cJSON_GetObjectItemCaseSensitive(body, "agent_config"), err,
                                  sizeof(err)) != 0 ||
        api_validate_agent_prompts(cJSON_GetObjectItemCaseSensitive(body, "agent_prompts"), err,
                                   sizeof(err)) != 0) {
        *status = pl_http_error(r, 422, "%s", err);
        cJSON_Delete(body);
        return NULL;
    }
    return body;
}

int api_agent_create(pl_req *r)
{
    char account[40];
    int status;
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    cJSON *body = read_agent_body(r, &status);
    if (body == NULL)
        return status;
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(body, "agent_config");
    char *cfg_s = cJSON_PrintUnformatted(cfg);
    char *prompts_s =
        cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(body, "agent_prompts"));
    const char *p[7] = {
        account,   str_or_null(cfg, "agent_name"),  str_or_null(cfg, "agent_type"),   cfg_s,
        prompts_s, str_or_null(cfg, "webhook_url"), api_agent_telephony_provider(cfg)};
    PGresult *res = api_exec(r, &insert_stmt, p);
    if (pl_db_ok(res)) {
        char out[160];
        snprintf(out, sizeof(out),
                 "{\"agent_id\":\"%s\",\"status\":\"created\",\"state\":\"created\"}",
                 PQgetvalue(res, 0, 0));
        status = pl_http_json(r, 200, out);
    } else {
        status = api_db_error(r, res, "agent create");
    }
    PQclear(res);
    free(cfg_s);
    free(prompts_s);
    cJSON_Delete(body);
    return status;
}

int api_agent_list(pl_req *r)
{
    char account[40];
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    const char *p[1] = {account};
    return api_reply_row_json(r, &list_stmt, p, "agent list", "no agents");
}

int api_agent_get(pl_req *r)
{
    char account[40], nf[200];
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    if (api_path_uuid(r, r->params[0], "agent_id") != 0)
        return 422;
    const char *p[2] = {r->params[0], account};
    snprintf(nf, sizeof(nf), "agent %s not found", r->params[0]);
    return api_reply_row_json(r, &get_stmt, p, "agent get", nf);
}

/* Writes a full validated config (and prompts when non-NULL); replies with `ok_json`. */
static int save_agent(pl_req *r, const char *account, const cJSON *cfg, const cJSON *prompts,
                      const char *ok_json)
{
    char *cfg_s = cJSON_PrintUnformatted(cfg);
    char *prompts_s = prompts != NULL ? cJSON_PrintUnformatted(prompts) : NULL;
    const char *p[8] = {r->params[0],
                        account,
                        str_or_null(cfg, "agent_name"),
                        str_or_null(cfg, "agent_type"),
                        cfg_s,
                        prompts_s,
                        str_or_null(cfg, "webhook_url"),
                        api_agent_telephony_provider(cfg)};
    PGresult *res = api_exec(r, &update_stmt, p);
    int status;
    if (!pl_db_ok(res))
        status = api_db_error(r, res, "agent update");
    else if (strcmp(PQcmdTuples(res), "1") != 0)
        status = pl_http_error(r, 404, "agent %s not found", r->params[0]);
    else
        status = pl_http_json(r, 200, ok_json);
    PQclear(res);
    free(cfg_s);
    free(prompts_s);
    return status;
}

int api_agent_put(pl_req *r)
{
    char account[40];
    int status;
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    if (api_path_uuid(r, r->params[0], "agent_id") != 0)
        return 422;
    cJSON *body = read_agent_body(r, &status);
    if (body == NULL)
        return status;
    char ok[256];
    snprintf(ok, sizeof(ok), "{\"agent_id\":\"%s\",\"status\":\"updated\",\"state\":\"updated\"}",
             r->params[0]);
    status = save_agent(r, account, cJSON_GetObjectItemCaseSensitive(body, "agent_config"),
                        cJSON_GetObjectItemCaseSensitive(body, "agent_prompts"), ok);
    cJSON_Delete(body);
    return status;
}

int api_agent_patch(pl_req *r)
{
    char account[40], err[512];
    int status;
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    if (api_path_uuid(r, r->params[0], "agent_id") != 0)
        return 422;
    cJSON *body = pl_http_json_body(r, &status);
    if (body == NULL)
        return status;
    const cJSON *patch = cJSON_GetObjectItemCaseSensitive(body, "agent_config");
    const cJSON *prompts = cJSON_GetObjectItemCaseSensitive(body, "agent_prompts");
    if (patch == NULL && prompts == NULL) {
        cJSON_Delete(body);
        return pl_http_error(r, 422,
                             "body: nothing to patch; send agent_config and/or agent_prompts");
    }
    const char *p[2] = {r->params[0], account};
    PGresult *res = api_exec(r, &config_stmt, p);
    cJSON *cfg = NULL;
    if (!pl_db_ok(res))
        status = api_db_error(r, res, "agent patch");
    else if (PQntuples(res) == 0)
        status = pl_http_error(r, 404, "agent %s not found", r->params[0]);
    else if ((cfg = cJSON_Parse(PQgetvalue(res, 0, 0))) == NULL)
        status = pl_http_error(r, 500, "stored agent config is unreadable");
    else if (patch != NULL && api_patch_agent_config(cfg, patch, err, sizeof(err)) != 0)
        status = pl_http_error(r, 422, "%s", err);
    else if (api_validate_agent_config(cfg, err, sizeof(err)) != 0)
        status = pl_http_error(r, 422, "%s", err);
    else if (prompts != NULL && api_validate_agent_prompts(prompts, err, sizeof(err)) != 0)
        status = pl_http_error(r, 422, "%s", err);
    else
        status =
            save_agent(r, account, cfg, prompts, "{\"message\":\"success\",\"state\":\"updated\"}");
    PQclear(res);
    cJSON_Delete(cfg);
    cJSON_Delete(body);
    return status;
}

int api_agent_delete(pl_req *r)
{
    char account[40];
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    if (api_path_uuid(r, r->params[0], "agent_id") != 0)
        return 422;
    const char *p[2] = {r->params[0], account};
    PGresult *res = api_exec(r, &delete_stmt, p);
    int status;
    if (!pl_db_ok(res))
        status = api_db_error(r, res, "agent delete");
    else if (strcmp(PQcmdTuples(res), "1") != 0)
        status = pl_http_error(r, 404, "agent %s not found", r->params[0]);
    else
        status = pl_http_json(r, 200, "{\"message\":\"success\",\"state\":\"deleted\"}");
    PQclear(res);
    return status;
}

/* 1 if the agent exists for the account, 0 if not (404 sent), -1 on error (500 sent). */
static int agent_exists(pl_req *r, pl_dbconn *c, const char *account)
{
    const char *p[2] = {r->params[0], account};
    PGresult *res = pl_db_exec(c, &exists_stmt, p);
    int rc;
    if (!pl_db_ok(res)) {
        api_db_error(r, res, "agent lookup");
        rc = -1;
    } else if (PQntuples(res) == 0) {
        pl_http_error(r, 404, "agent %s not found", r->params[0]);
        rc = 0;
    } else {
        rc = 1;
    }
    PQclear(res);
    return rc;
}

int api_agent_stop(pl_req *r)
{
    char account[40];
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    if (api_path_uuid(r, r->params[0], "agent_id") != 0)
        return 422;
    api_ctx *app = r->app;
    pl_dbconn *c = pl_db_acquire(app->db);
    int ex = agent_exists(r, c, account);
    if (ex != 1) {
        pl_db_release(app->db, c);
        return ex == 0 ? 404 : 500;
    }
    const char *p[2] = {r->params[0], account};
    PGresult *res = pl_db_exec(c, &stoppable_stmt, p);
    if (!pl_db_ok(res)) {
        pl_db_release(app->db, c);
        int s = api_db_error(r, res, "agent stop");
        PQclear(res);
        return s;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON *ids = cJSON_AddArrayToObject(out, "stopped_executions");
    pl_transition t[64];
    int nt = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        pl_transition one;
        /* The guard makes this safe against the scheduler taking the call meanwhile: a call
         * that already left queued is not stopped and not listed. */
        if (pl_state_apply(c, PQgetvalue(res, i, 0), PL_ST_STOPPED, NULL, NULL, &one) != 0)
            continue;
        cJSON_AddItemToArray(ids, cJSON_CreateString(one.execution_id));
        exec_cache_invalidate(app->executions, one.execution_id);
        if (nt < 64)
            t[nt++] = one;
        else
            pl_state_publish(app->bus, &one);
    }
    pl_db_release(app->db, c);
    PQclear(res);
    for (int i = 0; i < nt; i++)
        pl_state_publish(app->bus, &t[i]);
    int status = pl_http_cjson(r, 200, out);
    cJSON_Delete(out);
    return status;
}

PL_DB_STMT(executions_stmt) = {
    "agent_executions",
    "WITH f AS (SELECT * FROM executions e WHERE e.agent_id = $1 AND e.account_id = $2"
    "  AND ($3::text IS NULL OR e.status = $3)"
    "  AND ($4::text IS NULL OR e.call_type = $4)"
    "  AND ($5::text IS NULL OR COALESCE(e.telephony_data->>'provider', e.provider) = $5)"
    "  AND ($6::text IS NULL OR e.batch_id = $6)"
    "  AND ($7::float8 IS NULL OR e.created_at >= to_timestamp($7::float8 / 1000))"
    "  AND ($8::float8 IS NULL OR e.created_at <= to_timestamp($8::float8 / 1000))"
    "  AND ($9::boolean IS NULL OR e.answered_by_voice_mail = $9)),"
    " page AS (SELECT * FROM f ORDER BY created_at DESC, id LIMIT $10::int OFFSET $11::int)"
    " SELECT jsonb_build_object('page_number', $12::int, 'page_size', $10::int,"
    "  'total', (SELECT count(*) FROM f),"
    "  'has_more', (SELECT count(*) FROM f) > $11::int + $10::int,"
    "  'data', COALESCE((SELECT jsonb_agg(execution_json(p.*) ORDER BY p.created_at DESC, p.id)"
    "   FROM page p), '[]'::jsonb))::text",
    12,
};

/* Reads an optional query parameter into buf; 0 absent, 1 present, -1 on a reply already sent. */
static int query_param(pl_req *r, const char *name, char *buf, size_t cap)
{
    int n = pl_http_query(r, name, buf, cap);
    if (n == -1)
        return 0;
    if (n < 0 || (size_t)n >= cap - 1) {
        pl_http_error(r, 422, "%s: value is too long or not valid UTF-8", name);
        return -1;
    }
    return 1;
}

static int query_int(pl_req *r, const char *name, long min, long max, long def, long *out)
{
    char buf[32], *end;
    int q = query_param(r, name, buf, sizeof(buf));
    *out = def;
    if (q <= 0)
        return q;
    long v = strtol(buf, &end, 10);
    if (end == buf || *end != '\0' || v < min || v > max) {
        pl_http_error(r, 422, "%s: must be an integer between %ld and %ld", name, min, max);
        return -1;
    }
    *out = v;
    return 1;
}

int api_agent_executions(pl_req *r)
{
    char account[40];
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    if (api_path_uuid(r, r->params[0], "agent_id") != 0)
        return 422;
    long page, size;
    char status[32], call_type[16], provider[32], batch[64], from[64], to[64], vm[8];
    char from_ms[32], to_ms[32], limit[16], offset[24], page_s[16];
    if (query_int(r, "page_number", 1, 1000000, 1, &page) < 0 ||
        query_int(r, "page_size", 1, 50, 20, &size) < 0)
        return 422;
    int has_status = query_param(r, "status", status, sizeof(status));
    int has_type = query_param(r, "call_type", call_type, sizeof(call_type));
    int has_provider = query_param(r, "provider", provider, sizeof(provider));
    int has_batch = query_param(r, "batch_id", batch, sizeof(batch));
    int has_from = query_param(r, "from", from, sizeof(from));
    int has_to = query_param(r, "to", to, sizeof(to));
    int has_vm = query_param(r, "answered_by_voice_mail", vm, sizeof(vm));
    if (has_status < 0 || has_type < 0 || has_provider < 0 || has_batch < 0 || has_from < 0 ||
        has_to < 0 || has_vm < 0)
        return 422;
    pl_status st;
    if (has_status && pl_status_parse(status, &st) != 0)
        return pl_http_error(r, 422, "status: '%s' is not an execution status", status);
    if (has_type && strcmp(call_type, "inbound") != 0 && strcmp(call_type, "outbound") != 0)
        return pl_http_error(r, 422, "call_type: must be inbound or outbound");
    if (has_vm && strcmp(vm, "true") != 0 && strcmp(vm, "false") != 0)
        return pl_http_error(r, 422, "answered_by_voice_mail: must be true or false");
    int64_t ms;
    if (has_from) {
        if (pl_parse_iso8601(from, &ms) != 0)
            return pl_http_error(r, 422, "from: '%s' is not an ISO 8601 date-time", from);
        snprintf(from_ms, sizeof(from_ms), "%lld", (long long)ms);
    }
    if (has_to) {
        if (pl_parse_iso8601(to, &ms) != 0)
            return pl_http_error(r, 422, "to: '%s' is not an ISO 8601 date-time", to);
        snprintf(to_ms, sizeof(to_ms), "%lld", (long long)ms);
    }
    snprintf(limit, sizeof(limit), "%ld", size);
    snprintf(offset, sizeof(offset), "%ld", (page - 1) * size);
    snprintf(page_s, sizeof(page_s), "%ld", page);

    api_ctx *app = r->app;
    pl_dbconn *c = pl_db_acquire(app->db);
    int ex = agent_exists(r, c, account);
    pl_db_release(app->db, c);
    if (ex != 1)
        return ex == 0 ? 404 : 500;
    const char *p[12] = {r->params[0],
                         account,
                         has_status ? status : NULL,
                         has_type ? call_type : NULL,
                         has_provider ? provider : NULL,
                         has_batch ? batch : NULL,
                         has_from ? from_ms : NULL,
                         has_to ? to_ms : NULL,
                         has_vm ? vm : NULL,
                         limit,
                         offset,
                         page_s};
    return api_reply_row_json(r, &executions_stmt, p, "agent executions", "agent not found");
}
