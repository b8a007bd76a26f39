/* finalize: the end of post-processing, in ONE transaction:
 *   1. call-disconnected -> completed through pl_state_apply (guarded UPDATE + outbox row);
 *   2. the execution's final fields;
 *   3. the extraction/summary log rows;
 *   4. the wallet debit: a wallet_ledger row keyed by the execution (ON CONFLICT DO NOTHING)
 *      and, only when that row is new, accounts.wallet -= total_cost / 100.
 * All or nothing: a crash before COMMIT leaves the execution in call-disconnected with no
 * debit (the sweep runs it again); after COMMIT it is completed and debited exactly once. A
 * second run finds the status moved and writes nothing.
 */
#ifndef PP_FINALIZE_H
#define PP_FINALIZE_H

#include <stdint.h>

#include "db.h"
#include "extract.h"
#include "state.h"

typedef struct {
    const char *execution_id;
    double duration_s;
    int64_t total_hundredths;                          /* total_cost in hundredths of a cent */
    const char *cost_json, *usage_json, *latency_json; /* latency_json NULL: left as it is */
    const char *transcript;
    const char *extracted_json; /* NULL: no extraction */
    const char *summary;        /* NULL: none */
    const char *recording_url;  /* NULL: no recording */
    const pp_log_entry *logs;
    int nlogs;
} pp_final;

/* PL_OK (t filled: publish it after this returns), PL_ERR_CONFLICT (the execution is no longer
 * in call-disconnected; nothing written), PL_ERR_NOTFOUND, or PL_ERR_DB (rolled back). */
int pp_finalize(pl_dbconn *c, const pp_final *f, pl_transition *t);

#endif
