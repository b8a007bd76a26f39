#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "pp.h"
#include "recording.h"
#include "validate.h"

const pl_cfg_opt pp_config_opts[] = {
    PL_CFG_COMMON_OPTS(pp_config),
    {"PL_POSTPROCESS_PORT", PL_CFG_STR, offsetof(pp_config, http_port), "8096", 0, 0,
     "port of /healthz, /readyz, /metrics"},
    {"PL_PRICING_FILE", PL_CFG_STR, offsetof(pp_config, pricing_file), "proto/pricing.json", 0, 0,
     "price table in cents (docs/postprocess.md); validated at start"},
    {"PL_PUBLIC_API_URL", PL_CFG_STR, offsetof(pp_config, public_api_url), "http://127.0.0.1:8080",
     0, 0, "base URL clients reach the api at (recording URLs)"},
    {"PL_RECORDING_SIGNING_KEY", PL_CFG_STR, offsetof(pp_config, recording_key),
     PL_RECORDING_DEFAULT_KEY, 0, 0,
     "HMAC key of recording URLs; the api verifies with the same (default: local only)"},
    {"PL_RECORDING_URL_TTL_S", PL_CFG_INT, offsetof(pp_config, recording_ttl_s), "604800", 60,
     315360000, "lifetime of a recording URL, from completion"},
    {"PL_POSTPROCESS_SWEEP_MS", PL_CFG_INT, offsetof(pp_config, sweep_ms), "1000", 50, 600000,
     "period of the sweep that finds executions waiting in call-disconnected"},
    {"PL_POSTPROCESS_MEDIA_WAIT_MS", PL_CFG_INT, offsetof(pp_config, media_wait_ms), "10000", 0,
     3600000, "how long after call-disconnected to wait for the media-pipeline's figures"},
    {"PL_POSTPROCESS_WORKERS", PL_CFG_INT, offsetof(pp_config, workers), "4", 1, 256,
     "executions post-processed at once (each may wait on an LLM)"},
    {"PL_POSTPROCESS_LLM_TIMEOUT_MS", PL_CFG_INT, offsetof(pp_config, llm_timeout_ms), "30000",
     1000, 600000, "deadline of one extraction or summary request"},
    {"PL_POSTPROCESS_BATCH", PL_CFG_INT, offsetof(pp_config, batch), "500", 1, 10000,
     "executions one sweep queues at most"},
};
const size_t pp_config_nopts = sizeof(pp_config_opts) / sizeof(pp_config_opts[0]);

int pp_config_check(const pp_config *c, char *err, size_t cap)
{
    if (!pl_is_http_url(c->public_api_url)) {
        snprintf(err, cap, "PL_PUBLIC_API_URL: '%s' is not an absolute http(s) URL",
                 c->public_api_url);
        return -1;
    }
    if (c->recording_key == NULL || c->recording_key[0] == '\0') {
        snprintf(err, cap, "PL_RECORDING_SIGNING_KEY: must not be empty");
        return -1;
    }
    return 0;
}
