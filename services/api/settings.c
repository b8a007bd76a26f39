#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "recording.h"
#include "validate.h"

const pl_cfg_opt api_config_opts[] = {
    PL_CFG_COMMON_OPTS(api_config),
    {"PL_API_PORT", PL_CFG_STR, offsetof(api_config, http_port), "8080", 0, 0,
     "HTTP listen port or host:port"},
    {"PL_API_THREADS", PL_CFG_INT, offsetof(api_config, http_threads), "128", 2, 4096,
     "HTTP worker threads = concurrent keep-alive clients served"},
    {"PL_API_KEEPALIVE_MS", PL_CFG_INT, offsetof(api_config, keepalive_ms), "5000", 0, 600000,
     "idle keep-alive connections are closed after this"},
    {"PL_API_MAX_BODY", PL_CFG_INT, offsetof(api_config, max_body), "1048576", 1024, 104857600,
     "largest request body accepted, in bytes (413 beyond)"},
    {"PL_API_DB_POOL", PL_CFG_INT, offsetof(api_config, db_pool), "8", 1, 256,
     "Postgres connections (few backends win on few cores)"},
    {"PL_API_REDIS_POOL", PL_CFG_INT, offsetof(api_config, redis_pool), "8", 1, 256,
     "Redis connections"},
    {"PL_API_AUTH_CACHE_TTL", PL_CFG_INT, offsetof(api_config, auth_cache_ttl_s), "30", 0, 3600,
     "seconds an API key lookup is cached in process (0 disables)"},
    {"PL_API_EXEC_CACHE_MS", PL_CFG_INT, offsetof(api_config, exec_cache_ms), "2000", 0, 600000,
     "GET /executions cache: longest staleness if a bus event is lost (0 disables)"},
    {"PL_API_RATE_LIMIT", PL_CFG_INT, offsetof(api_config, rate_limit), "1000", 0, 1000000,
     "requests per second each account may send to this api process (429 beyond; 0: no limit)"},
    {"PL_API_RATE_BURST", PL_CFG_INT, offsetof(api_config, rate_burst), "0", 0, 10000000,
     "requests an account may send at once before the rate applies (0: twice the rate)"},
    {"PL_RECORDING_SIGNING_KEY", PL_CFG_STR, offsetof(api_config, recording_key),
     PL_RECORDING_DEFAULT_KEY, 0, 0,
     "HMAC key of recording URLs; the postprocessor signs with the same (default: local only)"},
    {"PL_INBOUND_BASE_URL", PL_CFG_STR, offsetof(api_config, inbound_base_url),
     "http://127.0.0.1:8090", 0, 0,
     "where carriers reach the telephony-gateway: the start of the URLs /inbound/setup answers"},
};
const size_t api_config_nopts = sizeof(api_config_opts) / sizeof(api_config_opts[0]);

int api_config_check(api_config *c, char *err, size_t cap)
{
    if (c->rate_burst == 0)
        c->rate_burst = 2 * c->rate_limit;
    static char base[2049]; /* pl_is_http_url admits at most 2048 characters */
    const char *url = c->inbound_base_url;
    /* Paths are appended to it: a query or fragment would end up in the middle of the URL. */
    if (!pl_is_http_url(url) || strpbrk(url, "?#") != NULL) {
        snprintf(
            err, cap,
            "PL_INBOUND_BASE_URL: '%s' is not an absolute http(s) URL (with no query or fragment)",
            url);
        return -1;
    }
    snprintf(base, sizeof(base), "%s", url);
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        base[--n] = '\0';
    c->inbound_base_url = base;
    return 0;
}
