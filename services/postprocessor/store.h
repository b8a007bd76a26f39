/* store: the postprocessor's reads and its claim on an execution.
 *
 * Claiming: a session-level advisory lock keyed by the execution id, taken with
 * pg_try_advisory_lock on the connection the job keeps for its whole run. A second replica (or
 * worker) finds it taken and skips the execution; a process that dies loses its connection and,
 * with it, the lock, so the next sweep's job may take over. The lock never blocks the writers of
 * the row (the media-pipeline's figures, the gateway), unlike a row lock held for the seconds an
 * LLM may take. Correctness does not rest on it alone: the final transition is guarded, and the
 * debit is keyed by the execution (finalize.h).
 */
#ifndef PP_STORE_H
#define PP_STORE_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "db.h"
#include "state.h"
#include "transcript.h"
#include "workq.h"

typedef struct {
    char id[PP_ID_CAP];
    char account_id[40], agent_id[40];
    pl_status status;
    int attempt;
    char provider[32];    /* executions.provider (the telephony carrier) */
    cJSON *telephony;     /* telephony_data: an object, never NULL after a load */
    char *usage_json;     /* usage_breakdown; NULL until the media-pipeline wrote it */
    char *recording_path; /* NULL when the pipeline wrote no recording */
    char *config_json;    /* the agent's config and prompts; NULL when the agent row is gone */
    char *prompts_json;
    int64_t waited_ms; /* since the execution entered call-disconnected */
    pp_turn *turns;    /* this attempt's turns in seq order; point into turns_res */
    int nturns;
    PGresult *turns_res;
} pp_exec;

/* 1 when this connection now holds the execution, 0 when someone else does, -1 on error. */
int pp_claim(pl_dbconn *c, const char *execution_id);
/* Releases the claim (harmless when the connection was lost: the lock went with it). */
void pp_unclaim(pl_dbconn *c, const char *execution_id);

/* Loads the execution (and its agent). PL_OK, PL_ERR_NOTFOUND or PL_ERR_DB. */
int pp_load(pl_dbconn *c, const char *execution_id, pp_exec *e);
/* Loads the turns of e->attempt. PL_OK or PL_ERR_DB. */
int pp_load_turns(pl_dbconn *c, pp_exec *e);
void pp_exec_free(pp_exec *e);

#endif
