/* /phone-numbers: the carrier numbers an account registers (docs/inbound.md, "Phone numbers").
 *
 * We do not buy numbers: an account registers the numbers it already owns at its carrier. A
 * (carrier, number) pair is live in one account at a time; the unique index phone_numbers_live
 * (006_inbound.sql) decides, so of two concurrent registrations exactly one wins and the other
 * answers 409. Deleting is a soft delete that also unlinks the agent; the pair can then be
 * registered again. Every statement is scoped by the caller's account: another account's number
 * is simply not found (404).
 *
 * A field that fails validation answers 422 naming the field, as /v2/agent and /call do (a body
 * that is not a JSON object is 400); a malformed path id answers 422 too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "validate.h"

/* The columns number_json reads, in this order (the two ages in whole seconds, by the clock
 * that wrote the timestamps). */
#define NUMBER_COLUMNS                                                                             \
    " replace(p.id::text, '-', ''), p.phone_number, p.telephony_provider, p.credentials_ref,"      \
    " p.agent_id, pl_ts(p.created_at), pl_ts(p.updated_at),"                                       \
    " floor(extract(epoch FROM now() - p.created_at))::bigint,"                                    \
    " floor(extract(epoch FROM now() - p.updated_at))::bigint"
enum {
    COL_ID,
    COL_NUMBER,
    COL_PROVIDER,
    COL_CREDENTIALS,
    COL_AGENT,
    COL_CREATED,
    COL_UPDATED,
    COL_CREATED_AGE,
    COL_UPDATED_AGE
};

PL_DB_STMT(insert_stmt) = {
    "phone_number_insert",
    "INSERT INTO phone_numbers AS p (account_id, phone_number, telephony_provider,"
    " credentials_ref) VALUES ($1, $2, $3, $4) RETURNING" NUMBER_COLUMNS,
    4,
};

PL_DB_STMT(list_stmt) = {
    "phone_number_list",
    "SELECT" NUMBER_COLUMNS " FROM phone_numbers p"
    " WHERE p.account_id = $1 AND p.deleted_at IS NULL ORDER BY p.created_at DESC, p.id",
    1,
};

PL_DB_STMT(get_stmt) = {
    "phone_number_get",
    "SELECT" NUMBER_COLUMNS " FROM phone_numbers p"
    " WHERE p.id = $1 AND p.account_id = $2 AND p.deleted_at IS NULL",
    2,
};

PL_DB_STMT(delete_stmt) = {
    "phone_number_delete",
    "UPDATE phone_numbers SET deleted_at = now(), updated_at = now(), agent_id = NULL"
    " WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL",
    2,
};

/* Bolna's humanized_*_at: the age rounded down to its largest whole unit. */
static void humanize_age(long long seconds, char *out, size_t cap)
{
    static const struct {
        long long seconds;
        const char *name;
    } units[] = {{86400, "day"}, {3600, "hour"}, {60, "minute"}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        long long n = seconds / units[i].seconds;
        if (n >= 1) {
            snprintf(out, cap, "%lld %s%s ago", n, units[i].name, n == 1 ? "" : "s");
            return;
        }
    }
    snprintf(out, cap, "just now"); /* also a clock that went back */
}

static void add_age(cJSON *o, const char *key, const char *seconds)
{
    char text[48];
    humanize_age(strtoll(seconds, NULL, 10), text, sizeof(text));
    cJSON_AddStringToObject(o, key, text);
}

/* The number object of row `row` of a result with NUMBER_COLUMNS; the caller frees it. */
static cJSON *number_json(const PGresult *res, int row)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", PQgetvalue(res, row, COL_ID));
    cJSON_AddStringToObject(o, "phone_number", PQgetvalue(res, row, COL_NUMBER));
    cJSON_AddStringToObject(o, "telephony_provider", PQgetvalue(res, row, COL_PROVIDER));
    cJSON_AddStringToObject(o, "credentials_ref", PQgetvalue(res, row, COL_CREDENTIALS));
    if (PQgetisnull(res, row, COL_AGENT))
        cJSON_AddNullToObject(o, "agent_id");
    else
        cJSON_AddStringToObject(o, "agent_id", PQgetvalue(res, row, COL_AGENT));
    cJSON_AddFalseToObject(o, "rented"); /* registered, never bought from us */
    cJSON_AddNullToObject(o, "price");
    cJSON_AddNullToObject(o, "renewal_at");
    cJSON_AddStringToObject(o, "created_at", PQgetvalue(res, row, COL_CREATED));
    cJSON_AddStringToObject(o, "updated_at", PQgetvalue(res, row, COL_UPDATED));
    add_age(o, "humanized_created_at", PQgetvalue(res, row, COL_CREATED_AGE));
    add_age(o, "humanized_updated_at", PQgetvalue(res, row, COL_UPDATED_AGE));
    return o;
}

static int reply_number(pl_req *r, int status, const PGresult *res)
{
    cJSON *o = number_json(res, 0);
    status = pl_http_cjson(r, status, o);
    cJSON_Delete(o);
    return status;
}

/* credentials_ref names a credential set: [a-z0-9_]{1,32}, so that the gateway can turn it into
 * a variable name (PL_<CARRIER>_CREDENTIALS_<REF>). */
static int is_credentials_ref(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 32 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

typedef struct {
    const char *number; /* point into the request body */
    const char *provider;
    const char *credentials_ref;
} number_request;

/* Reads POST /phone-numbers' fields (others are ignored); 0, or -1 with a message naming the
 * field in err. */
static int parse_number(const cJSON *body, number_request *req, char *err, size_t cap)
{
    const cJSON *num = cJSON_GetObjectItemCaseSensitive(body, "phone_number");
    const cJSON *prov = cJSON_GetObjectItemCaseSensitive(body, "telephony_provider");
    const cJSON *cred = cJSON_GetObjectItemCaseSensitive(body, "credentials_ref");
    if (num == NULL || cJSON_IsNull(num))
        return snprintf(err, cap, "phone_number: is required"), -1;
    if (!cJSON_IsString(num) || !pl_is_e164(num->valuestring))
        return snprintf(err, cap,
                        "phone_number: must be an E.164 number such as +14155550100 ('+', "
                        "country code, 7 to 15 digits)"),
               -1;
    if (prov == NULL || cJSON_IsNull(prov))
        return snprintf(err, cap, "telephony_provider: is required"), -1;
    if (!cJSON_IsString(prov) ||
        (strcmp(prov->valuestring, "twilio") != 0 && strcmp(prov->valuestring, "plivo") != 0 &&
         strcmp(prov->valuestring, "exotel") != 0))
        return snprintf(err, cap, "telephony_provider: must be twilio, plivo or exotel"), -1;
    req->number = num->valuestring;
    req->provider = prov->valuestring;
    req->credentials_ref = "default";
    if (cred != NULL && !cJSON_IsNull(cred)) {
        if (!cJSON_IsString(cred) || !is_credentials_ref(cred->valuestring))
            return snprintf(err, cap,
                            "credentials_ref: must be 1 to 32 characters among a-z, 0-9 and _"),
                   -1;
        req->credentials_ref = cred->valuestring;
    }
    return 0;
}

/* 1 if the failed result is the (carrier, number) pair already being live. */
static int is_duplicate(const PGresult *res)
{
    const char *constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
    return strcmp(pl_db_sqlstate(res), "23505") == 0 && constraint != NULL &&
           strcmp(constraint, "phone_numbers_live") == 0;
}

int api_phone_number_create(pl_req *r)
{
    char account[40], err[256];
    int status;
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    cJSON *body = pl_http_json_body(r, &status);
    if (body == NULL)
        return status;
    number_request req;
    if (parse_number(body, &req, err, sizeof(err)) != 0) {
        cJSON_Delete(body);
        return pl_http_error(r, 422, "%s", err);
    }
    const char *p[4] = {account, req.number, req.provider, req.credentials_ref};
    PGresult *res = api_exec(r, &insert_stmt, p);
    if (pl_db_ok(res))
        status = reply_number(r, 201, res);
    else if (is_duplicate(res)) /* in this account or another: say no more than that */
        status = pl_http_error(r, 409, "phone_number: %s is already registered with %s", req.number,
                               req.provider);
    else
        status = api_db_error(r, res, "phone number create");
    PQclear(res);
    cJSON_Delete(body);
    return status;
}

int api_phone_number_list(pl_req *r)
{
    char account[40];
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    const char *p[1] = {account};
    PGresult *res = api_exec(r, &list_stmt, p);
    if (!pl_db_ok(res)) {
        int status = api_db_error(r, res, "phone number list");
        PQclear(res);
        return status;
    }
    cJSON *all = cJSON_CreateArray();
    for (int i = 0; i < PQntuples(res); i++)
        cJSON_AddItemToArray(all, number_json(res, i));
    PQclear(res);
    int status = pl_http_cjson(r, 200, all);
    cJSON_Delete(all);
    return status;
}

/* The path's phone number id in canonical form; otherwise replies 422 and returns -1. */
static int path_number_id(pl_req *r, char id[37])
{
    if (pl_uuid_canon(r->params[0], id) == 0)
        return 0;
    pl_http_error(r, 422,
                  "phone_number_id: '%s' is not a phone number id (32 hexadecimal digits, or a "
                  "UUID)",
                  r->params[0]);
    return -1;
}

int api_phone_number_get(pl_req *r)
{
    char account[40], id[37];
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    if (path_number_id(r, id) != 0)
        return 422;
    const char *p[2] = {id, account};
    PGresult *res = api_exec(r, &get_stmt, p);
    int status;
    if (!pl_db_ok(res))
        status = api_db_error(r, res, "phone number get");
    else if (PQntuples(res) == 0)
        status = pl_http_error(r, 404, "phone number %s not found", r->params[0]);
    else
        status = reply_number(r, 200, res);
    PQclear(res);
    return status;
}

int api_phone_number_delete(pl_req *r)
{
    char account[40], id[37];
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    if (path_number_id(r, id) != 0)
        return 422;
    const char *p[2] = {id, account};
    PGresult *res = api_exec(r, &delete_stmt, p);
    int status;
    if (!pl_db_ok(res))
        status = api_db_error(r, res, "phone number delete");
    else if (strcmp(PQcmdTuples(res), "1") != 0)
        status = pl_http_error(r, 404, "phone number %s not found", r->params[0]);
    else
        status = pl_http_json(r, 200,
                              "{\"message\":\"The phone number has been removed from your "
                              "account\",\"state\":\"deleted\"}");
    PQclear(res);
    return status;
}
