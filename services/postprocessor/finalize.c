/* finalize: see finalize.h. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "finalize.h"
#include "log.h"

PL_DB_STMT(fields_stmt) = {
    "pp_fields",
    "UPDATE executions SET conversation_duration = $2::float8, total_cost = $3::float8,"
    " cost_breakdown = $4::jsonb, usage_breakdown = $5::jsonb, transcript = $6,"
    " extracted_data = $7::jsonb, summary = $8, recording_url = $9,"
    " latency_data = COALESCE($10::jsonb, latency_data)"
    " WHERE id = $1::uuid AND status = 'completed'",
    10,
};

PL_DB_STMT(log_stmt) = {
    "pp_log",
    "INSERT INTO execution_logs (execution_id, type, component, provider, data)"
    " VALUES ($1::uuid, $2, $3, $4, $5)",
    5,
};

/* The account is the execution's own, read in the same statement. $2: hundredths of a cent;
 * the wallet holds currency units, so the debit is $2 / 10000. */
PL_DB_STMT(debit_stmt) = {
    "pp_debit",
    "WITH l AS ("
    "  INSERT INTO wallet_ledger (execution_id, account_id, amount)"
    "  SELECT e.id, e.account_id, $2::numeric / 10000 FROM executions e WHERE e.id = $1::uuid"
    "  ON CONFLICT (execution_id) DO NOTHING RETURNING account_id, amount)"
    " UPDATE accounts a SET wallet = a.wallet - l.amount FROM l WHERE a.id = l.account_id",
    2,
};

static int run(pl_dbconn *c, const pl_db_stmt *st, const char *const *p, const char *id)
{
    PGresult *r = pl_db_exec(c, st, p);
    int ok = pl_db_ok(r);
    if (!ok)
        PL_ERROR("%s: %s failed: %s", id, st->name, PQresultErrorMessage(r));
    PQclear(r);
    return ok ? PL_OK : PL_ERR_DB;
}

static int simple(pl_dbconn *c, const char *sql, const char *id)
{
    PGresult *r = pl_db_query(c, sql, 0, NULL);
    int ok = pl_db_ok(r);
    if (!ok)
        PL_ERROR("%s: %s failed: %s", id, sql, PQresultErrorMessage(r));
    PQclear(r);
    return ok ? PL_OK : PL_ERR_DB;
}

int pp_finalize(pl_dbconn *c, const pp_final *f, pl_transition *t)
{
    const char *id = f->execution_id;
    if (simple(c, "BEGIN", id) != PL_OK)
        return PL_ERR_DB;
    int rc = pl_state_apply(c, id, PL_ST_COMPLETED, NULL, NULL, t);
    if (rc != PL_OK)
        goto rollback;
    char duration[32], total[32], hundredths[32];
    snprintf(duration, sizeof(duration), "%.3f", f->duration_s);
    snprintf(total, sizeof(total), "%.2f", (double)f->total_hundredths / 100.0);
    snprintf(hundredths, sizeof(hundredths), "%" PRId64, f->total_hundredths);
    const char *fp[10] = {id,
                          duration,
                          total,
                          f->cost_json,
                          f->usage_json,
                          f->transcript,
                          f->extracted_json,
                          f->summary,
                          f->recording_url,
                          f->latency_json};
    if ((rc = run(c, &fields_stmt, fp, id)) != PL_OK)
        goto rollback;
    for (int i = 0; i < f->nlogs; i++) {
        const pp_log_entry *l = &f->logs[i];
        const char *lp[5] = {id, l->type, l->component, l->provider, l->data};
        if ((rc = run(c, &log_stmt, lp, id)) != PL_OK)
            goto rollback;
    }
    const char *dp[2] = {id, hundredths};
    if ((rc = run(c, &debit_stmt, dp, id)) != PL_OK)
        goto rollback;
    return simple(c, "COMMIT", id);
rollback:
    simple(c, "ROLLBACK", id);
    return rc;
}
