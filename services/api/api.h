/* The api service: Bolna-compatible REST over civetweb, Postgres as truth, Redis for hand-offs,
 * nng for events. */
#ifndef API_H
#define API_H

#include <stddef.h>

#include "bus.h"
#include "exec_cache.h"
#include "config.h"
#include "db.h"
#include "http.h"
#include "redis.h"
#include "ratelimit.h"
#include "service.h"

typedef struct {
    pl_common_config common;
    const char *http_port;
    long http_threads;
    long keepalive_ms;
    long max_body;
    long db_pool;
    long redis_pool;
    long auth_cache_ttl_s;
    long exec_cache_ms;
    long rate_limit;           /* requests per second per account, in this process; 0: none */
    long rate_burst;           /* the bucket's size; 0: 2 x rate_limit */
    const char *recording_key; /* HMAC key of recording URLs (common/recording.h) */
    /* PL_INBOUND_BASE_URL: the gateway's public URL, the start of every inbound URL
     * (docs/inbound.md); api_config_check trims its trailing slashes. */
    const char *inbound_base_url;
} api_config;

typedef struct {
    api_config cfg;
    pl_service svc;
    pl_db *db; /* = svc.db, svc.redis, svc.bus: the handlers' shorthands */
    pl_redis *redis;
    pl_bus_pub *bus;
    exec_cache *executions;
    pl_ratelimit *limits; /* NULL when PL_API_RATE_LIMIT is 0 */
} api_ctx;

/* settings.c */
extern const pl_cfg_opt api_config_opts[];
extern const size_t api_config_nopts;
/* Checks what the table cannot (URL syntax) and normalizes (trailing slashes); run once at start,
 * before any thread reads the configuration. 0, or -1 with a message naming the setting in err. */
int api_config_check(api_config *c, char *err, size_t cap);

/* routes.c */
extern const pl_route api_routes[];
extern const int api_nroutes;
int api_ready(void *app, char *why, size_t cap);

/* auth.c: resolves the Bearer key to its account and takes a request from the account's rate
 * budget. 0 when the request may go on; otherwise it has replied and returns that status (401 a
 * missing or bad key, 429 over the rate limit, 500 the database failed), for the handler to
 * return. */
int api_auth(pl_req *r, char account_id[40]);

/* agent_config.c: validates an agent body; 0, or -1 with a message naming the field in err. */
int api_validate_agent_config(const cJSON *config, char *err, size_t cap);
int api_validate_agent_prompts(const cJSON *prompts, char *err, size_t cap);
/* The conversation task's input (telephony) provider of a validated config, or NULL. */
const char *api_agent_telephony_provider(const cJSON *config);
/* Applies a PATCH agent_config onto a full config (both validated by the caller after). */
int api_patch_agent_config(cJSON *config, const cJSON *patch, char *err, size_t cap);

/* Handlers (each replies once and returns the status sent). */
int api_agent_create(pl_req *r);
int api_agent_list(pl_req *r);
int api_agent_get(pl_req *r);
int api_agent_put(pl_req *r);
int api_agent_patch(pl_req *r);
int api_agent_delete(pl_req *r);
int api_agent_stop(pl_req *r);
int api_agent_executions(pl_req *r);
int api_call_create(pl_req *r);
int api_call_stop(pl_req *r);
int api_execution_get(pl_req *r);
int api_execution_log(pl_req *r);
int api_execution_webhooks(pl_req *r);
int api_execution_webhook_redeliver(pl_req *r);
int api_user_me(pl_req *r);
int api_batch_create(pl_req *r);
int api_batch_schedule(pl_req *r);
int api_batch_stop(pl_req *r);
int api_batch_get(pl_req *r);
int api_batch_list(pl_req *r);
int api_batch_delete(pl_req *r);
int api_batch_executions(pl_req *r);
int api_recording_get(pl_req *r); /* recordings.c: no Bearer, the URL's signature authorises */
int api_phone_number_create(pl_req *r); /* phone_numbers.c */
int api_phone_number_list(pl_req *r);
int api_phone_number_get(pl_req *r);
int api_phone_number_delete(pl_req *r);
int api_inbound_setup(pl_req *r); /* inbound.c */
int api_inbound_unlink(pl_req *r);

/* retry_config.c: validates a retry_config object (POST /call and POST /batches); 0, or -1 with a
 * message naming the field in err. */
int api_validate_retry_config(const cJSON *rc, char *err, size_t cap);

/* Replies 500 for a failed query and logs the server-side reason. */
int api_db_error(pl_req *r, const PGresult *res, const char *what);

/* reply.c: runs a statement whose first row's first column is a JSON text and replies 200 with
 * it; replies 404 with `notfound` when there is no row (or the value is NULL). */
int api_reply_row_json(pl_req *r, const pl_db_stmt *st, const char *const *params, const char *what,
                       const char *notfound);

/* Checks a path id is a UUID; otherwise replies 422 naming `field` and returns -1. */
int api_path_uuid(pl_req *r, const char *id, const char *field);

/* Runs one prepared statement on a pooled connection (held only for the statement). The result
 * is the caller's (PQclear); never NULL. */
PGresult *api_exec(pl_req *r, const pl_db_stmt *st, const char *const *params);

#endif
