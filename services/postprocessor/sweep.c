/* sweep: the durable half of finding work. Bus events are only a shortcut (pub/sub drops
 * messages, and a replica may be down when one flies); every sweep_ms each replica reads from
 * Postgres what still waits in call-disconnected and queues it. Queueing twice is harmless
 * (workq.h), and so is two replicas queueing the same id (the claim, store.h). */
#include <stdio.h>
#include <stdlib.h>

#include "error.h"
#include "log.h"
#include "pp.h"
#include "queue.h"

PL_DB_STMT(waiting_stmt) = {
    "pp_waiting",
    "SELECT id FROM executions WHERE status = 'call-disconnected' ORDER BY updated_at LIMIT $1",
    1,
};

/* Executions that ended without a conversation: zero cost, status unchanged, nothing else
 * touched (updated_at included: the object they render does not change, since an absent
 * cost_breakdown already reads as zeros). */
PL_DB_STMT(zero_stmt) = {
    "pp_zero_cost",
    "UPDATE executions SET total_cost = 0,"
    " cost_breakdown = '{\"llm\":0,\"network\":0,\"platform\":0,\"synthesizer\":0,"
    "\"transcriber\":0}'::jsonb"
    " WHERE id IN (SELECT id FROM executions WHERE cost_breakdown IS NULL AND status IN"
    "  ('no-answer', 'busy', 'failed', 'canceled', 'stopped', 'error', 'balance-low')"
    "  ORDER BY updated_at LIMIT $1 FOR UPDATE SKIP LOCKED)",
    1,
};

void pp_sweep(pp *app)
{
    char limit[16];
    snprintf(limit, sizeof(limit), "%ld", app->cfg.batch);
    const char *p[1] = {limit};
    pl_dbconn *c = pl_db_acquire(app->svc.db);
    PGresult *r = pl_db_exec(c, &waiting_stmt, p);
    if (pl_db_ok(r)) {
        int64_t now = pl_now_ms();
        for (int i = 0; i < PQntuples(r); i++)
            pp_workq_add(app->q, PQgetvalue(r, i, 0), now);
    } else {
        PL_ERROR("sweep: %s", PQresultErrorMessage(r));
    }
    PQclear(r);
    r = pl_db_exec(c, &zero_stmt, p);
    if (pl_db_ok(r))
        pl_metric_add(app->stats.priced_zero, strtoll(PQcmdTuples(r), NULL, 10));
    else
        PL_ERROR("sweep (zero cost): %s", PQresultErrorMessage(r));
    PQclear(r);
    pl_db_release(app->svc.db, c);
    pl_metric_set(app->stats.queued, pp_workq_size(app->q));
}
