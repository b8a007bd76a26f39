/* GET /executions/{id}/webhooks (the delivery log of one execution) and
 * POST /executions/{id}/webhooks/{event_id}/redeliver. The webhook-dispatcher does the
 * delivering; these only read and reschedule rows of webhook_deliveries (docs/webhooks.md),
 * always scoped by the caller's account: another account's execution is a 404. */
#include <stdio.h>
#include <string.h>

#include "api.h"

PL_DB_STMT(log_stmt) = {
    "webhook_log",
    "SELECT jsonb_build_object('execution_id', e.id, 'data', COALESCE((SELECT"
    "  jsonb_agg(webhook_delivery_json(d) ORDER BY d.event_id)"
    "  FROM execution_events ev JOIN webhook_deliveries d ON d.event_id = ev.id"
    "  WHERE ev.execution_id = e.id), '[]'::jsonb))::text"
    " FROM executions e WHERE e.id = $1 AND e.account_id = $2",
    2,
};

PL_DB_STMT(redeliver_stmt) = {
    "webhook_redeliver",
    "SELECT result, jsonb_build_object('message', 'scheduled', 'execution_id', $1::uuid,"
    " 'event_id', $3::bigint, 'delivery', delivery)::text"
    " FROM webhook_redeliver($1, $2, $3)",
    3,
};

int api_execution_webhooks(pl_req *r)
{
    char account[40], nf[200];
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    if (api_path_uuid(r, r->params[0], "execution_id") != 0)
        return 422;
    const char *p[2] = {r->params[0], account};
    snprintf(nf, sizeof(nf), "execution %s not found", r->params[0]);
    return api_reply_row_json(r, &log_stmt, p, "webhook log", nf);
}

/* An outbox id: 1 to 18 decimal digits, no sign, no leading zero. */
static int is_event_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 18 || s[0] == '0')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

int api_execution_webhook_redeliver(pl_req *r)
{
    api_ctx *app = r->app;
    char account[40];
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    const char *id = r->params[0], *event = r->params[1];
    if (api_path_uuid(r, id, "execution_id") != 0)
        return 422;
    if (!is_event_id(event))
        return pl_http_error(r, 422, "event_id: '%s' is not an event id (a positive integer)",
                             event);
    const char *p[3] = {id, account, event};
    PGresult *res = api_exec(r, &redeliver_stmt, p);
    int status;
    const char *result = pl_db_ok(res) && PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : NULL;
    if (result == NULL) {
        status = api_db_error(r, res, "webhook redeliver");
    } else if (strcmp(result, "scheduled") == 0) {
        status = pl_http_send(r, 202, "application/json", PQgetvalue(res, 0, 1),
                              (size_t)PQgetlength(res, 0, 1), NULL);
        /* Wakes the dispatchers now rather than at their next poll; losing it only waits. */
        char payload[160];
        int n = snprintf(payload, sizeof(payload), "{\"execution_id\":\"%s\",\"event_id\":%s}", id,
                         event);
        pl_bus_publish(app->bus, "webhook.redeliver", payload, (size_t)n);
    } else if (strcmp(result, "no_execution") == 0) {
        status = pl_http_error(r, 404, "execution %s not found", id);
    } else if (strcmp(result, "no_event") == 0) {
        status =
            pl_http_error(r, 404, "execution %s has no webhook delivery for event %s", id, event);
    } else if (strcmp(result, "in_flight") == 0) {
        status = pl_http_error(r, 409,
                               "event %s of execution %s is being delivered right now; "
                               "redeliver it once that attempt has ended",
                               event, id);
    } else {
        status = pl_http_error(r, 409,
                               "the agent of execution %s has no webhook_url any more; set one "
                               "to redeliver",
                               id);
    }
    PQclear(res);
    return status;
}
