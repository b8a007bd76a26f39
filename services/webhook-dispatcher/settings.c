#include <stddef.h>

#include "dispatcher.h"

const pl_cfg_opt wd_config_opts[] = {
    PL_CFG_COMMON_OPTS(wd_config),
    {"PL_WEBHOOK_PORT", PL_CFG_STR, offsetof(wd_config, http_port), "8097", 0, 0,
     "port of /healthz, /readyz, /metrics"},
    {"PL_WEBHOOK_MAX_ATTEMPTS", PL_CFG_INT, offsetof(wd_config, max_attempts), "10", 1, 1000,
     "attempts of one event before it is dead (kept, redeliverable)"},
    {"PL_WEBHOOK_BACKOFF_BASE_MS", PL_CFG_INT, offsetof(wd_config, backoff_base_ms), "30000", 1,
     86400000, "wait after the first failed attempt; x3 after each further failure"},
    {"PL_WEBHOOK_BACKOFF_CAP_MS", PL_CFG_INT, offsetof(wd_config, backoff_cap_ms), "28800000", 1,
     604800000, "longest wait between two attempts (before the +-20% jitter)"},
    {"PL_WEBHOOK_TIMEOUT_MS", PL_CFG_INT, offsetof(wd_config, timeout_ms), "10000", 100, 600000,
     "whole-request timeout of one attempt"},
    {"PL_WEBHOOK_CONCURRENCY", PL_CFG_INT, offsetof(wd_config, concurrency), "256", 1, 10000,
     "deliveries in flight at once in this replica"},
    {"PL_WEBHOOK_URL_CONCURRENCY", PL_CFG_INT, offsetof(wd_config, url_concurrency), "32", 1, 10000,
     "deliveries in flight to one webhook_url (a slow receiver cannot take every slot)"},
    {"PL_WEBHOOK_BATCH", PL_CFG_INT, offsetof(wd_config, batch), "64", 1, 1000,
     "deliveries claimed per query"},
    {"PL_WEBHOOK_POLL_MS", PL_CFG_INT, offsetof(wd_config, poll_ms), "1000", 10, 600000,
     "longest sleep between two looks at the table (bus events wake it sooner)"},
    {"PL_WEBHOOK_SWEEP_MS", PL_CFG_INT, offsetof(wd_config, sweep_ms), "10000", 100, 3600000,
     "period of the repair sweep for events left blocked"},
    {"PL_WEBHOOK_DRAIN_MS", PL_CFG_INT, offsetof(wd_config, drain_ms), "11000", 0, 600000,
     "on SIGTERM, how long in-flight deliveries may take to finish"},
    {"PL_WEBHOOK_ALLOW_PRIVATE", PL_CFG_BOOL, offsetof(wd_config, allow_private), "0", 0, 0,
     "1 allows loopback, private and link-local targets (tests, make run); never in production"},
    {"PL_WEBHOOK_ASYNC_COMMIT", PL_CFG_BOOL, offsetof(wd_config, async_commit), "1", 0, 0,
     "record claims and outcomes with synchronous_commit off (a Postgres crash can only cause a "
     "repeat delivery)"},
};
const size_t wd_config_nopts = sizeof(wd_config_opts) / sizeof(wd_config_opts[0]);
