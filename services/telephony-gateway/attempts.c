/* Postgres access of the gateway: call_attempts rows and the execution fields it needs. Every
 * statement is prepared once per connection and parameterized. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "error.h"
#include "gateway.h"
#include "log.h"
#include "validate.h"

#define ATTEMPT_COLUMNS                                                                            \
    "SELECT ca.execution_id, ca.attempt, e.status, e.account_id, ac.concurrency_max,"              \
    " e.retry_config::text, ca.provider, COALESCE(ca.provider_call_id, ''), ca.media_token,"       \
    " ca.callback_token, (extract(epoch FROM ca.dial_requested_at) * 1000)::bigint,"               \
    " COALESCE((extract(epoch FROM ca.answered_at) * 1000)::bigint, 0),"                           \
    " ca.ended_at IS NOT NULL, COALESCE(e.telephony_data->>'hangup_by', ''),"                      \
    " e.call_type = 'inbound', COALESCE(ca.credentials_ref, '')"                                   \
    " FROM call_attempts ca JOIN executions e ON e.id = ca.execution_id"                           \
    " JOIN accounts ac ON ac.id = e.account_id "

PL_DB_STMT_WARM(attempt_stmt) = {
    "gw_attempt",
    ATTEMPT_COLUMNS "WHERE ca.execution_id = $1::uuid AND ca.attempt = $2::int",
    2,
};

/* One round trip for a callback that does not end the call: attempt n of provider $3 as it was
 * before this statement (the columns above), and what the carrier said recorded on it: the status
 * word (never over the final one of an ended attempt), the call id, the answer time. A row of
 * another provider is neither returned nor changed, and a row this event would not change is not
 * written (a repeated callback costs no write). */
PL_DB_STMT_WARM(event_stmt) = {
    "gw_attempt_event",
    "WITH upd AS (UPDATE call_attempts SET"
    "   status = CASE WHEN ended_at IS NULL THEN COALESCE($4::text, status) ELSE status END,"
    "   provider_call_id = COALESCE(NULLIF($5::text, ''), provider_call_id),"
    "   answered_at = CASE WHEN $6::boolean THEN COALESCE(answered_at, now()) ELSE answered_at END,"
    "   updated_at = now()"
    "   WHERE execution_id = $1::uuid AND attempt = $2::int AND provider = $3::text"
    "   AND ((ended_at IS NULL AND $4::text IS NOT NULL AND status IS DISTINCT FROM $4::text)"
    "     OR (NULLIF($5::text, '') IS NOT NULL AND provider_call_id IS DISTINCT FROM $5::text)"
    "     OR ($6::boolean AND answered_at IS NULL)) RETURNING 1) " ATTEMPT_COLUMNS
    "WHERE ca.execution_id = $1::uuid AND ca.attempt = $2::int AND ca.provider = $3::text",
    6,
};

PL_DB_STMT_WARM(latest_stmt) = {
    "gw_attempt_latest",
    ATTEMPT_COLUMNS "WHERE ca.execution_id = $1::uuid ORDER BY ca.attempt DESC LIMIT 1",
    1,
};

PL_DB_STMT_WARM(execution_stmt) = {
    "gw_execution",
    "SELECT e.status, e.account_id, ac.concurrency_max,"
    " COALESCE(e.provider, ag.telephony_provider, ''), e.to_number, COALESCE(e.from_number, '')"
    " FROM executions e JOIN accounts ac ON ac.id = e.account_id"
    " LEFT JOIN agents ag ON ag.id = e.agent_id WHERE e.id = $1::uuid",
    1,
};

/* A dial job's one statement before the carrier is asked: the execution (status, account, cap,
 * provider with Twilio as the default, numbers) and, when it is `initiated` with a provider we
 * speak ($5: the carriers' names; $6: their default from numbers, in the same order), the claim
 * of attempt $2: INSERT ... ON CONFLICT DO NOTHING, so only one job ever dials it, and the
 * execution's attempt, from number and a fresh telephony_data. Checking the status in the same
 * statement as the claim means a call that left `initiated` meanwhile is never dialled. */
PL_DB_STMT_WARM(load_claim_stmt) = {
    "gw_load_claim",
    "WITH e AS (SELECT e.id, e.status, e.account_id, ac.concurrency_max,"
    "   COALESCE(NULLIF(COALESCE(e.provider, ag.telephony_provider, ''), ''), 'twilio')"
    "   AS provider, e.to_number, e.from_number"
    "   FROM executions e JOIN accounts ac ON ac.id = e.account_id"
    "   LEFT JOIN agents ag ON ag.id = e.agent_id WHERE e.id = $1::uuid),"
    " ins AS (INSERT INTO call_attempts (execution_id, attempt, provider, media_token,"
    "   callback_token) SELECT id, $2::int, provider, $3, $4 FROM e"
    "   WHERE status = 'initiated' AND provider = ANY($5::text[])"
    "   ON CONFLICT DO NOTHING RETURNING execution_id),"
    " upd AS (UPDATE executions x SET attempt = $2::int, from_number = COALESCE(x.from_number,"
    "     ($6::text[])[array_position($5::text[], e.provider)]),"
    "   telephony_data = (x.telephony_data - ARRAY['provider_call_id', 'hangup_by',"
    "     'hangup_reason', 'hangup_provider_code', 'duration', 'ring_duration'])"
    "     || jsonb_build_object('provider', e.provider)"
    "   FROM e WHERE x.id = e.id AND x.id IN (SELECT execution_id FROM ins) RETURNING x.id)"
    " SELECT e.status, e.account_id, e.concurrency_max, e.provider, e.to_number,"
    " COALESCE(e.from_number, ''), (SELECT count(*) FROM ins), (SELECT count(*) FROM upd) FROM e",
    6,
};

/* Existing keys win: a callback faster than this statement already wrote the right call id. */
PL_DB_STMT_WARM(dialed_stmt) = {
    "gw_attempt_dialed",
    "WITH a AS (UPDATE call_attempts SET provider_call_id = COALESCE(provider_call_id, $3),"
    "   status = COALESCE(status, 'initiated'), updated_at = now()"
    "   WHERE execution_id = $1::uuid AND attempt = $2::int RETURNING 1)"
    " UPDATE executions SET telephony_data ="
    "   jsonb_build_object('provider', $4::text, 'provider_call_id', $3::text) || telephony_data"
    " WHERE id = $1::uuid AND EXISTS (SELECT 1 FROM a)",
    4,
};

/* A late, out-of-order status word never replaces the final one of an ended attempt. */
PL_DB_STMT_WARM(update_stmt) = {
    "gw_attempt_update",
    "UPDATE call_attempts SET"
    " status = CASE WHEN ended_at IS NULL THEN COALESCE($3, status) ELSE status END,"
    " provider_call_id = COALESCE(NULLIF($4, ''), provider_call_id),"
    " answered_at = CASE WHEN $5::boolean THEN COALESCE(answered_at, now()) ELSE answered_at END,"
    " ended_at = CASE WHEN $6::boolean THEN COALESCE(ended_at, now()) ELSE ended_at END,"
    " outcome = COALESCE($7, outcome), updated_at = now()"
    " WHERE execution_id = $1::uuid AND attempt = $2::int",
    7,
};

PL_DB_STMT_WARM(patch_stmt) = {
    "gw_telephony_patch",
    "UPDATE executions SET telephony_data = telephony_data || $2::jsonb WHERE id = $1::uuid",
    2,
};

PL_DB_STMT(voicemail_stmt) = {
    "gw_voicemail", "UPDATE executions SET answered_by_voice_mail = true WHERE id = $1::uuid", 1};

PL_DB_STMT(statuses_stmt) = {
    "gw_statuses", "SELECT id::text, status FROM executions WHERE id = ANY($1::uuid[])", 1};

void gw_attempt_clear(gw_attempt *a)
{
    free(a->retry_config);
    a->retry_config = NULL;
}

static void read_attempt(PGresult *r, gw_attempt *a)
{
    memset(a, 0, sizeof(*a));
    gw_copy(a->execution_id, sizeof(a->execution_id), PQgetvalue(r, 0, 0));
    pl_parse_int(PQgetvalue(r, 0, 1), 0, 1000, 0, &a->attempt);
    if (pl_status_parse(PQgetvalue(r, 0, 2), &a->status) != PL_OK)
        a->status = PL_ST__COUNT;
    gw_copy(a->account_id, sizeof(a->account_id), PQgetvalue(r, 0, 3));
    pl_parse_int(PQgetvalue(r, 0, 4), 0, 1000000, 0, &a->concurrency_max);
    a->retry_config = PQgetisnull(r, 0, 5) ? NULL : strdup(PQgetvalue(r, 0, 5));
    gw_copy(a->provider, sizeof(a->provider), PQgetvalue(r, 0, 6));
    gw_copy(a->call_id, sizeof(a->call_id), PQgetvalue(r, 0, 7));
    gw_copy(a->media_token, sizeof(a->media_token), PQgetvalue(r, 0, 8));
    gw_copy(a->callback_token, sizeof(a->callback_token), PQgetvalue(r, 0, 9));
    a->dial_ms = strtoll(PQgetvalue(r, 0, 10), NULL, 10);
    a->answered_ms = strtoll(PQgetvalue(r, 0, 11), NULL, 10);
    a->ended = PQgetvalue(r, 0, 12)[0] == 't';
    gw_copy(a->hangup_by, sizeof(a->hangup_by), PQgetvalue(r, 0, 13));
    a->inbound = PQgetvalue(r, 0, 14)[0] == 't';
    gw_copy(a->credentials_ref, sizeof(a->credentials_ref), PQgetvalue(r, 0, 15));
}

static int load(pl_dbconn *c, const pl_db_stmt *st, const char *const *p, gw_attempt *a)
{
    PGresult *r = pl_db_exec(c, st, p);
    int rc = PL_OK;
    if (!pl_db_ok(r)) {
        PL_ERROR("%s: %s", st->name, PQresultErrorMessage(r));
        rc = PL_ERR_DB;
    } else if (PQntuples(r) == 0) {
        rc = PL_ERR_NOTFOUND;
    } else {
        read_attempt(r, a);
    }
    PQclear(r);
    return rc;
}

int gw_attempt_load(gw *g, pl_dbconn *c, const char *execution_id, int n, gw_attempt *a)
{
    (void)g;
    char num[16];
    memset(a, 0, sizeof(*a));
    if (!pl_is_uuid(execution_id) || n < 0)
        return PL_ERR_INVALID;
    snprintf(num, sizeof(num), "%d", n);
    const char *p[2] = {execution_id, num};
    return load(c, &attempt_stmt, p, a);
}

int gw_attempt_event(gw *g, pl_dbconn *c, const char *execution_id, int n, const char *provider,
                     const gw_event *ev, gw_attempt *a)
{
    (void)g;
    char num[16];
    memset(a, 0, sizeof(*a));
    if (!pl_is_uuid(execution_id) || n < 0)
        return PL_ERR_INVALID;
    snprintf(num, sizeof(num), "%d", n);
    const char *p[6] = {execution_id, num,
                        provider,     ev->carrier_status[0] != '\0' ? ev->carrier_status : NULL,
                        ev->call_id,  ev->kind == GW_EV_ANSWERED ? "true" : "false"};
    int rc = load(c, &event_stmt, p, a);
    if (rc == PL_OK)
        a->event_recorded = 1;
    return rc;
}

int gw_attempt_latest(gw *g, pl_dbconn *c, const char *execution_id, gw_attempt *a)
{
    (void)g;
    memset(a, 0, sizeof(*a));
    if (!pl_is_uuid(execution_id))
        return PL_ERR_INVALID;
    const char *p[1] = {execution_id};
    return load(c, &latest_stmt, p, a);
}

/* Media tokens are "<execution id>.<attempt>.<random hex>" (minted in dialer.c), so the row is
 * found by primary key and the whole token then compared in constant time. */
int gw_attempt_by_media_token(gw *g, pl_dbconn *c, const char *token, gw_attempt *a)
{
    char eid[40];
    memset(a, 0, sizeof(*a));
    const char *dot = token != NULL ? strchr(token, '.') : NULL;
    if (dot == NULL || dot - token != 36)
        return PL_ERR_NOTFOUND;
    memcpy(eid, token, 36);
    eid[36] = '\0';
    char num[12];
    size_t nl = strcspn(dot + 1, ".");
    if (nl == 0 || nl >= sizeof(num))
        return PL_ERR_NOTFOUND;
    memcpy(num, dot + 1, nl);
    num[nl] = '\0';
    long n = gw_str_long(num, -1);
    if (!pl_is_uuid(eid) || n < 0 || n > 100000)
        return PL_ERR_NOTFOUND;
    int rc = gw_attempt_load(g, c, eid, (int)n, a);
    if (rc == PL_OK && !pl_secure_equal(a->media_token, token)) {
        gw_attempt_clear(a);
        rc = PL_ERR_NOTFOUND;
    }
    return rc;
}

int gw_execution_load(gw *g, pl_dbconn *c, const char *execution_id, gw_execution *e)
{
    (void)g;
    memset(e, 0, sizeof(*e));
    if (!pl_is_uuid(execution_id))
        return PL_ERR_INVALID;
    const char *p[1] = {execution_id};
    PGresult *r = pl_db_exec(c, &execution_stmt, p);
    int rc = PL_OK;
    if (!pl_db_ok(r)) {
        PL_ERROR("load execution %s: %s", execution_id, PQresultErrorMessage(r));
        rc = PL_ERR_DB;
    } else if (PQntuples(r) == 0) {
        rc = PL_ERR_NOTFOUND;
    } else {
        if (pl_status_parse(PQgetvalue(r, 0, 0), &e->status) != PL_OK)
            e->status = PL_ST__COUNT;
        gw_copy(e->account_id, sizeof(e->account_id), PQgetvalue(r, 0, 1));
        pl_parse_int(PQgetvalue(r, 0, 2), 0, 1000000, 0, &e->concurrency_max);
        gw_copy(e->provider, sizeof(e->provider), PQgetvalue(r, 0, 3));
        gw_copy(e->to, sizeof(e->to), PQgetvalue(r, 0, 4));
        gw_copy(e->from, sizeof(e->from), PQgetvalue(r, 0, 5));
    }
    PQclear(r);
    return rc;
}

/* The Postgres array literal of the carriers' names (from_numbers = 0) or of their default from
 * numbers (1), in gw_carrier_id order; elements quoted, `"` and backslash escaped. */
static void array_literal(char *buf, size_t cap, const gw *g, int from_numbers)
{
    size_t len = 0;
    buf[len++] = '{';
    for (int i = 0; i < GW_NCARRIERS; i++) {
        const char *v = from_numbers ? g->conf[i].from : gw_carrier_by_id((gw_carrier_id)i)->name;
        if (i > 0 && len + 1 < cap)
            buf[len++] = ',';
        if (len + 1 < cap)
            buf[len++] = '"';
        for (; v != NULL && *v != '\0' && len + 3 < cap; v++) {
            if (*v == '"' || *v == '\\')
                buf[len++] = '\\';
            buf[len++] = *v;
        }
        if (len + 1 < cap)
            buf[len++] = '"';
    }
    if (len + 1 < cap)
        buf[len++] = '}';
    buf[len < cap ? len : cap - 1] = '\0';
}

int gw_load_claim(gw *g, pl_dbconn *c, const char *execution_id, int n, const char *media_token,
                  const char *callback_token, gw_execution *e, int *claimed)
{
    char num[16];
    memset(e, 0, sizeof(*e));
    *claimed = 0;
    if (!pl_is_uuid(execution_id))
        return PL_ERR_INVALID;
    snprintf(num, sizeof(num), "%d", n);
    char names[128], froms[512];
    array_literal(names, sizeof(names), g, 0);
    array_literal(froms, sizeof(froms), g, 1);
    const char *p[6] = {execution_id, num, media_token, callback_token, names, froms};
    PGresult *r = pl_db_exec(c, &load_claim_stmt, p);
    int rc = PL_OK;
    if (!pl_db_ok(r)) {
        PL_ERROR("load and claim attempt %s/%d: %s", execution_id, n, PQresultErrorMessage(r));
        rc = PL_ERR_DB;
    } else if (PQntuples(r) == 0) {
        rc = PL_ERR_NOTFOUND;
    } else {
        if (pl_status_parse(PQgetvalue(r, 0, 0), &e->status) != PL_OK)
            e->status = PL_ST__COUNT;
        gw_copy(e->account_id, sizeof(e->account_id), PQgetvalue(r, 0, 1));
        pl_parse_int(PQgetvalue(r, 0, 2), 0, 1000000, 0, &e->concurrency_max);
        gw_copy(e->provider, sizeof(e->provider), PQgetvalue(r, 0, 3));
        gw_copy(e->to, sizeof(e->to), PQgetvalue(r, 0, 4));
        gw_copy(e->from, sizeof(e->from), PQgetvalue(r, 0, 5));
        *claimed = strcmp(PQgetvalue(r, 0, 6), "1") == 0;
    }
    PQclear(r);
    return rc;
}

static int exec_ok(pl_dbconn *c, const pl_db_stmt *st, const char *const *p, const char *what)
{
    PGresult *r = pl_db_exec(c, st, p);
    int ok = pl_db_ok(r);
    if (!ok)
        PL_ERROR("%s: %s", what, PQresultErrorMessage(r));
    PQclear(r);
    return ok ? PL_OK : PL_ERR_DB;
}

int gw_attempt_dialed(gw *g, pl_dbconn *c, const char *execution_id, int n, const char *provider,
                      const char *call_id)
{
    (void)g;
    char num[16];
    snprintf(num, sizeof(num), "%d", n);
    const char *p[4] = {execution_id, num, call_id, provider};
    return exec_ok(c, &dialed_stmt, p, "record dialled call");
}

int gw_attempt_update(gw *g, pl_dbconn *c, const gw_attempt *a, const char *carrier_status,
                      const char *call_id, int answered, int ended, const char *outcome)
{
    (void)g;
    char num[16];
    snprintf(num, sizeof(num), "%d", a->attempt);
    const char *p[7] = {a->execution_id,
                        num,
                        carrier_status != NULL && carrier_status[0] != '\0' ? carrier_status : NULL,
                        call_id != NULL ? call_id : "",
                        answered ? "true" : "false",
                        ended ? "true" : "false",
                        outcome};
    return exec_ok(c, &update_stmt, p, "update call attempt");
}

int gw_telephony_patch(gw *g, pl_dbconn *c, const char *execution_id, const char *patch_json)
{
    (void)g;
    const char *p[2] = {execution_id, patch_json};
    return exec_ok(c, &patch_stmt, p, "patch telephony_data");
}

int gw_mark_voicemail(gw *g, pl_dbconn *c, const char *execution_id)
{
    (void)g;
    const char *p[1] = {execution_id};
    return exec_ok(c, &voicemail_stmt, p, "mark voicemail");
}

int gw_statuses(gw *g, pl_dbconn *c, const char *const *ids, int n, pl_status *status)
{
    (void)g;
    size_t cap = (size_t)n * 40 + 3, len = 0;
    char *arr = malloc(cap);
    if (arr == NULL)
        return PL_ERR_NOMEM;
    arr[len++] = '{';
    for (int i = 0; i < n; i++) {
        len += (size_t)snprintf(arr + len, cap - len, "%s%s", i > 0 ? "," : "", ids[i]);
        status[i] = PL_ST__COUNT;
    }
    snprintf(arr + len, cap - len, "}");
    const char *p[1] = {arr};
    PGresult *r = pl_db_exec(c, &statuses_stmt, p);
    free(arr);
    int rc = PL_OK;
    if (!pl_db_ok(r)) {
        PL_ERROR("execution statuses: %s", PQresultErrorMessage(r));
        rc = PL_ERR_DB;
    } else {
        for (int row = 0; row < PQntuples(r); row++)
            for (int i = 0; i < n; i++)
                if (strcmp(ids[i], PQgetvalue(r, row, 0)) == 0)
                    pl_status_parse(PQgetvalue(r, row, 1), &status[i]);
    }
    PQclear(r);
    return rc;
}

/* Runs every statement of the dial and callback paths once on each pooled connection, against
 * the nil UUID, which matches no row: nothing changes, but each connection has its statements
 * prepared and its backend's catalog caches filled before the first call, instead of during the
 * first few dozen. Call before any other thread uses the pool. */
void gw_db_warm(gw *g)
{
    static const char nil[] = "00000000-0000-0000-0000-000000000000";
    int n = (int)g->cfg.db_pool;
    pl_dbconn **conns = calloc((size_t)n, sizeof(*conns));
    if (conns == NULL)
        return;
    for (int i = 0; i < n; i++)
        conns[i] = pl_db_acquire(g->db);
    gw_event ev;
    gw_event_init(&ev);
    gw_copy(ev.carrier_status, sizeof(ev.carrier_status), "ringing");
    for (int i = 0; i < n; i++) {
        pl_dbconn *c = conns[i];
        gw_execution e;
        gw_attempt a;
        pl_transition t;
        pl_status st;
        int claimed;
        gw_load_claim(g, c, nil, 0, "warm-up", "warm-up", &e, &claimed);
        gw_attempt_dialed(g, c, nil, 0, "twilio", "warm-up");
        gw_attempt_event(g, c, nil, 0, "twilio", &ev, &a);
        gw_attempt_clear(&a);
        gw_attempt_load(g, c, nil, 0, &a);
        gw_attempt_clear(&a);
        memset(&a, 0, sizeof(a));
        gw_copy(a.execution_id, sizeof(a.execution_id), nil);
        gw_attempt_update(g, c, &a, "ringing", "", 0, 0, NULL);
        pl_state_apply(c, nil, PL_ST_RINGING, NULL, NULL, &t);
        const char *ids[1] = {nil};
        gw_statuses(g, c, ids, 1, &st);
    }
    for (int i = 0; i < n; i++)
        pl_db_release(g->db, conns[i]);
    free(conns);
}
