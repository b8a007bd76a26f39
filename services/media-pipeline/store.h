/* store: the media-pipeline's Postgres and bus work. Every function blocks (a database round
 * trip): call them from the job pool, never from a loop. */
#ifndef MP_STORE_H
#define MP_STORE_H

#include <cjson/cJSON.h>

#include "service.h"

/* What a call needs to know, read once when its media starts. */
typedef struct {
    char account_id[40], agent_id[40], call_type[16];
    char to_number[40], from_number[40], provider_call_id[128];
    cJSON *config;     /* agent_config (object) */
    cJSON *prompts;    /* agent_prompts (object or NULL) */
    cJSON *user_data;  /* object or NULL */
    cJSON *agent_data; /* object or NULL */
    /* An inbound call over the account's concurrency cap (docs/inbound.md): say this and hang
     * up with reason concurrency_limit instead of conversing. NULL for every other call. */
    char *busy_message;
} mp_call_ctx;

/* PL_OK and ctx filled; PL_ERR_NOTFOUND (no such execution or agent, why says which),
 * PL_ERR_INVALID (stored JSON unreadable) or PL_ERR_DB. */
int mp_store_load(pl_db *db, const char *execution_id, mp_call_ctx *ctx, char *why, size_t cap);
void mp_call_ctx_free(mp_call_ctx *ctx);

typedef struct {
    const char *execution_id;
    int attempt;
    int seq;
    const char *role; /* "assistant" | "user" */
    const char *text;
    long start_ms, end_ms;
    int interrupted;
} mp_turn;

/* Writes (or rewrites) one transcript turn, then publishes exec.transcript.<role> with
 * {"execution_id","attempt","seq","role","text","start_ms","end_ms","interrupted"}. */
int mp_store_turn(pl_service *svc, const mp_turn *t);

/* The call's media ended: usage_breakdown and latency_data (JSON text), the recording's path
 * (NULL: none) and, for a provider failure, error_message (NULL: keep). */
int mp_store_finish(pl_db *db, const char *execution_id, const char *usage_json,
                    const char *latency_json, const char *recording_path,
                    const char *error_message);

#endif
