#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "state.h"

static const char *const names[PL_ST__COUNT] = {
    [PL_ST_SCHEDULED] = "scheduled",
    [PL_ST_QUEUED] = "queued",
    [PL_ST_RESCHEDULED] = "rescheduled",
    [PL_ST_INITIATED] = "initiated",
    [PL_ST_RINGING] = "ringing",
    [PL_ST_IN_PROGRESS] = "in-progress",
    [PL_ST_CALL_DISCONNECTED] = "call-disconnected",
    [PL_ST_COMPLETED] = "completed",
    [PL_ST_NO_ANSWER] = "no-answer",
    [PL_ST_BUSY] = "busy",
    [PL_ST_FAILED] = "failed",
    [PL_ST_CANCELED] = "canceled",
    [PL_ST_STOPPED] = "stopped",
    [PL_ST_ERROR] = "error",
    [PL_ST_BALANCE_LOW] = "balance-low",
};

#define E(s) (1u << (s))
/* edges[from] is the set of statuses `from` may move to. Terminal statuses have none. */
static const unsigned edges[PL_ST__COUNT] = {
    [PL_ST_SCHEDULED] = E(PL_ST_QUEUED) | E(PL_ST_STOPPED) | E(PL_ST_ERROR),
    [PL_ST_QUEUED] = E(PL_ST_INITIATED) | E(PL_ST_STOPPED) | E(PL_ST_BALANCE_LOW) | E(PL_ST_ERROR),
    [PL_ST_RESCHEDULED] = E(PL_ST_QUEUED) | E(PL_ST_STOPPED) | E(PL_ST_ERROR),
    [PL_ST_INITIATED] = E(PL_ST_RINGING) | E(PL_ST_IN_PROGRESS) | E(PL_ST_NO_ANSWER) |
                        E(PL_ST_BUSY) | E(PL_ST_FAILED) | E(PL_ST_CANCELED) | E(PL_ST_ERROR) |
                        E(PL_ST_RESCHEDULED),
    [PL_ST_RINGING] = E(PL_ST_IN_PROGRESS) | E(PL_ST_NO_ANSWER) | E(PL_ST_BUSY) | E(PL_ST_FAILED) |
                      E(PL_ST_CANCELED) | E(PL_ST_ERROR) | E(PL_ST_RESCHEDULED),
    [PL_ST_IN_PROGRESS] = E(PL_ST_CALL_DISCONNECTED) | E(PL_ST_ERROR),
    [PL_ST_CALL_DISCONNECTED] = E(PL_ST_COMPLETED) | E(PL_ST_ERROR),
};
#undef E

const char *pl_status_name(pl_status s)
{
    return (unsigned)s < PL_ST__COUNT ? names[s] : "unknown";
}

int pl_status_parse(const char *name, pl_status *out)
{
    for (int i = 0; i < PL_ST__COUNT; i++)
        if (strcmp(names[i], name) == 0) {
            *out = (pl_status)i;
            return PL_OK;
        }
    return PL_ERR_INVALID;
}

int pl_status_is_terminal(pl_status s)
{
    return s >= PL_ST_COMPLETED;
}

int pl_status_edge(pl_status from, pl_status to)
{
    if ((unsigned)from >= PL_ST__COUNT || (unsigned)to >= PL_ST__COUNT)
        return 0;
    return (edges[from] >> to) & 1u;
}

void pl_status_sources(pl_status to, char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, "{");
    for (int f = 0; f < PL_ST__COUNT; f++)
        if (pl_status_edge((pl_status)f, to) && len < cap)
            len += (size_t)snprintf(buf + len, cap - len, "%s%s", len > 1 ? "," : "", names[f]);
    if (len < cap)
        snprintf(buf + len, cap - len, "}");
}

/* One statement, so one transaction: lock the row, check the source status, update, and append
 * the outbox row. Zero rows back means the guard refused (or the id does not exist). */
PL_DB_STMT_WARM(transition_stmt) = {
    "pl_state_apply",
    "WITH cur AS ("
    "  SELECT id, status AS old FROM executions WHERE id = $1::uuid FOR UPDATE),"
    " upd AS ("
    "  UPDATE executions e SET status = $2, updated_at = now(),"
    "    telephony_data = e.telephony_data || COALESCE($4::jsonb, '{}'::jsonb),"
    "    error_message = COALESCE($5, e.error_message)"
    "  FROM cur WHERE e.id = cur.id AND cur.old = ANY($3::text[])"
    "  RETURNING e.id, e.account_id, e.agent_id, cur.old),"
    " ev AS ("
    "  INSERT INTO execution_events (execution_id, account_id, status, from_status)"
    "  SELECT id, account_id, $2, old FROM upd RETURNING id)"
    " SELECT upd.account_id, upd.agent_id, upd.old, ev.id FROM upd, ev",
    5,
};

PL_DB_STMT_WARM(status_stmt) = {
    "pl_state_status",
    "SELECT status FROM executions WHERE id = $1::uuid",
    1,
};

/* Run only by pl_db_warm, which rolls it back: an event of no execution fires the outbox trigger
 * (webhook_enqueue, 005_webhooks.sql) on each connection before its first transition does. A
 * backend's first trigger call compiles the function and plans its lookup: ~3 ms, paid by the
 * first call of a burst on every pooled connection otherwise. */
PL_DB_STMT_WARM(trigger_warm_stmt) = {
    "pl_state_trigger_warm",
    "INSERT INTO execution_events (execution_id, account_id, status)"
    " VALUES (gen_random_uuid(), gen_random_uuid(), 'queued')",
    0,
};

int pl_state_apply(pl_dbconn *c, const char *execution_id, pl_status to,
                   const char *telephony_patch, const char *error_message, pl_transition *out)
{
    char sources[256];
    pl_status_sources(to, sources, sizeof(sources));
    const char *p[5] = {execution_id, pl_status_name(to), sources, telephony_patch, error_message};
    memset(out, 0, sizeof(*out));
    snprintf(out->execution_id, sizeof(out->execution_id), "%s", execution_id);
    out->to = to;
    PGresult *r = pl_db_exec(c, &transition_stmt, p);
    if (!pl_db_ok(r)) {
        PL_ERROR("state: %s -> %s failed: %s", execution_id, pl_status_name(to),
                 PQresultErrorMessage(r));
        PQclear(r);
        return PL_ERR_DB;
    }
    if (PQntuples(r) == 1) {
        snprintf(out->account_id, sizeof(out->account_id), "%s", PQgetvalue(r, 0, 0));
        snprintf(out->agent_id, sizeof(out->agent_id), "%s", PQgetvalue(r, 0, 1));
        pl_status_parse(PQgetvalue(r, 0, 2), &out->from);
        out->event_id = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
        PQclear(r);
        return PL_OK;
    }
    PQclear(r);
    r = pl_db_exec(c, &status_stmt, p);
    int rc = PL_ERR_DB;
    if (pl_db_ok(r) && PQntuples(r) == 0)
        rc = PL_ERR_NOTFOUND;
    else if (pl_db_ok(r)) {
        pl_status_parse(PQgetvalue(r, 0, 0), &out->from);
        rc = PL_ERR_CONFLICT;
    }
    PQclear(r);
    return rc;
}

void pl_state_publish(pl_bus_pub *bus, const pl_transition *t)
{
    if (bus == NULL)
        return;
    char topic[64];
    char payload[512];
    snprintf(topic, sizeof(topic), "exec.status.%s", pl_status_name(t->to));
    int n = snprintf(payload, sizeof(payload),
                     "{\"event_id\":%lld,\"execution_id\":\"%s\",\"account_id\":\"%s\","
                     "\"agent_id\":\"%s\",\"status\":\"%s\",\"from_status\":%s%s%s}",
                     t->event_id, t->execution_id, t->account_id, t->agent_id,
                     pl_status_name(t->to), t->from == PL_ST__COUNT ? "" : "\"",
                     t->from == PL_ST__COUNT ? "null" : pl_status_name(t->from),
                     t->from == PL_ST__COUNT ? "" : "\"");
    if (pl_bus_publish(bus, topic, payload, (size_t)n) != PL_OK)
        PL_WARN("bus: publish %s for %s failed", topic, t->execution_id);
}
