/* POST /inbound/setup and /inbound/unlink: which agent answers a registered number's calls, and
 * the URL the operator sets at the carrier (docs/inbound.md, "Phone numbers").
 *
 * Linking writes the agent, a new inbound_secret and updated_at in one statement, so the URL
 * answered is the only one that works from then on (the gateway compares an Exotel URL's secret
 * with the row's). Unlinking keeps the secret: the number answers nothing without an agent, and
 * the next link issues a new one anyway.
 *
 * A field that fails validation answers 422 naming the field, as /v2/agent and /call do. Ids
 * are taken as 32 hex digits (Bolna's form) or dashed UUIDs.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "validate.h"

/* One row: whether the number and the agent exist for the account, then the linked number's
 * id, number, carrier and new secret (NULL when either is missing, or when the number was
 * deleted after the snapshot: the UPDATE rechecks deleted_at on the row it locks). */
PL_DB_STMT(setup_stmt) = {
    "inbound_setup",
    "WITH n AS (SELECT id FROM phone_numbers"
    "  WHERE id = $1 AND account_id = $3 AND deleted_at IS NULL),"
    " a AS (SELECT id FROM agents WHERE id = $2 AND account_id = $3 AND deleted_at IS NULL),"
    " u AS (UPDATE phone_numbers p SET agent_id = a.id, updated_at = now(),"
    "   inbound_secret = encode(gen_random_bytes(24), 'hex')"
    "  FROM n, a WHERE p.id = n.id AND p.deleted_at IS NULL"
    "  RETURNING replace(p.id::text, '-', '') AS id, p.phone_number, p.telephony_provider,"
    "   p.inbound_secret)"
    " SELECT EXISTS (SELECT 1 FROM n), EXISTS (SELECT 1 FROM a), u.id, u.phone_number,"
    "  u.telephony_provider, u.inbound_secret FROM (SELECT 1) one LEFT JOIN u ON true",
    3,
};
enum { SETUP_HAS_NUMBER, SETUP_HAS_AGENT, SETUP_ID, SETUP_NUMBER, SETUP_PROVIDER, SETUP_SECRET };

/* Unlinking an unlinked number changes nothing, updated_at included. */
PL_DB_STMT(unlink_stmt) = {
    "inbound_unlink",
    "UPDATE phone_numbers SET agent_id = NULL,"
    " updated_at = CASE WHEN agent_id IS NULL THEN updated_at ELSE now() END"
    " WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL"
    " RETURNING replace(id::text, '-', ''), phone_number",
    2,
};

/* Reads the required id member `key` into canonical form; -1 with a message in err. */
static int body_id(const cJSON *body, const char *key, char id[37], char *err, size_t cap)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, key);
    if (m == NULL || cJSON_IsNull(m))
        return snprintf(err, cap, "%s: is required", key), -1;
    if (!cJSON_IsString(m) || pl_uuid_canon(m->valuestring, id) != 0)
        return snprintf(err, cap,
                        "%s: must be a UUID (32 hexadecimal digits, with or without dashes)", key),
               -1;
    return 0;
}

/* allow_multiple is accepted and ignored (one number answers with one agent); ivr_config is
 * refused when it enables an IVR, which we do not run. */
static int check_setup_options(const cJSON *body, char *err, size_t cap)
{
    const cJSON *multi = cJSON_GetObjectItemCaseSensitive(body, "allow_multiple");
    const cJSON *ivr = cJSON_GetObjectItemCaseSensitive(body, "ivr_config");
    if (multi != NULL && !cJSON_IsNull(multi) && !cJSON_IsBool(multi))
        return snprintf(err, cap, "allow_multiple: must be true or false"), -1;
    if (ivr == NULL || cJSON_IsNull(ivr))
        return 0;
    if (!cJSON_IsObject(ivr))
        return snprintf(err, cap, "ivr_config: must be an object"), -1;
    const cJSON *enabled = cJSON_GetObjectItemCaseSensitive(ivr, "enabled");
    if (enabled != NULL && !cJSON_IsNull(enabled) && !cJSON_IsBool(enabled))
        return snprintf(err, cap, "ivr_config.enabled: must be true or false"), -1;
    if (cJSON_IsTrue(enabled))
        return snprintf(err, cap,
                        "ivr_config: IVR is not supported; omit ivr_config or set "
                        "ivr_config.enabled to false"),
               -1;
    return 0;
}

/* The URL set at the carrier (docs/inbound.md): Twilio and Plivo sign their webhooks, Exotel
 * signs nothing, so its URL carries the number's secret. */
static void inbound_url(const char *base, const char *provider, const char *id, const char *secret,
                        char *out, size_t cap)
{
    if (strcmp(provider, "exotel") == 0)
        snprintf(out, cap, "%s/inbound/exotel/%s/%s", base, id, secret);
    else
        snprintf(out, cap, "%s/inbound/%s/%s", base, provider, id);
}

/* {"url": url or null, "phone_number": ..., "id": ...}, Bolna's InboundAgentResponse and
 * InboundUnlinkAgentResponse. */
static int reply_link(pl_req *r, const char *url, const char *number, const char *id)
{
    cJSON *o = cJSON_CreateObject();
    if (url != NULL)
        cJSON_AddStringToObject(o, "url", url);
    else
        cJSON_AddNullToObject(o, "url");
    cJSON_AddStringToObject(o, "phone_number", number);
    cJSON_AddStringToObject(o, "id", id);
    int status = pl_http_cjson(r, 200, o);
    cJSON_Delete(o);
    return status;
}

static int reply_setup(pl_req *r, const PGresult *res)
{
    api_ctx *app = r->app;
    if (strcmp(PQgetvalue(res, 0, SETUP_HAS_AGENT), "t") != 0)
        return pl_http_error(r, 404, "agent_id: agent not found");
    if (strcmp(PQgetvalue(res, 0, SETUP_HAS_NUMBER), "t") != 0 || PQgetisnull(res, 0, SETUP_ID))
        return pl_http_error(r, 404, "phone_number_id: phone number not found");
    char url[2400]; /* the base is at most 2048 characters */
    inbound_url(app->cfg.inbound_base_url, PQgetvalue(res, 0, SETUP_PROVIDER),
                PQgetvalue(res, 0, SETUP_ID), PQgetvalue(res, 0, SETUP_SECRET), url, sizeof(url));
    return reply_link(r, url, PQgetvalue(res, 0, SETUP_NUMBER), PQgetvalue(res, 0, SETUP_ID));
}

int api_inbound_setup(pl_req *r)
{
    char account[40], agent[37], number[37], err[256];
    int status;
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    cJSON *body = pl_http_json_body(r, &status);
    if (body == NULL)
        return status;
    int bad = body_id(body, "agent_id", agent, err, sizeof(err)) != 0 ||
              body_id(body, "phone_number_id", number, err, sizeof(err)) != 0 ||
              check_setup_options(body, err, sizeof(err)) != 0;
    cJSON_Delete(body);
    if (bad)
        return pl_http_error(r, 422, "%s", err);
    const char *p[3] = {number, agent, account};
    PGresult *res = api_exec(r, &setup_stmt, p);
    if (pl_db_ok(res))
        status = reply_setup(r, res);
    else
        status = api_db_error(r, res, "inbound setup");
    PQclear(res);
    return status;
}

int api_inbound_unlink(pl_req *r)
{
    char account[40], number[37], err[256];
    int status;
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    cJSON *body = pl_http_json_body(r, &status);
    if (body == NULL)
        return status;
    int bad = body_id(body, "phone_number_id", number, err, sizeof(err)) != 0;
    cJSON_Delete(body);
    if (bad)
        return pl_http_error(r, 422, "%s", err);
    const char *p[2] = {number, account};
    PGresult *res = api_exec(r, &unlink_stmt, p);
    if (!pl_db_ok(res))
        status = api_db_error(r, res, "inbound unlink");
    else if (PQntuples(res) == 0)
        status = pl_http_error(r, 404, "phone_number_id: phone number not found");
    else
        status = reply_link(r, NULL, PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 0));
    PQclear(res);
    return status;
}
