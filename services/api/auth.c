/* Bearer API keys. Keys are stored as SHA-256 hex; a lookup hits Postgres once and is then cached
 * in process for PL_API_AUTH_CACHE_TTL seconds, keyed by the hash (the clear key is never kept). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "crypto.h"
#include "log.h"
#include "queue.h"
#include "ratelimit.h"

#define CACHE_SLOTS 1024

typedef struct {
    pthread_mutex_t mu; /* one lock per slot: request threads rarely meet */
    char hash[65];
    char account_id[40];
    time_t expires;
} cache_entry;

static cache_entry cache[CACHE_SLOTS];
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_init(void)
{
    for (int i = 0; i < CACHE_SLOTS; i++)
        pthread_mutex_init(&cache[i].mu, NULL);
}

static unsigned slot_of(const char *hash)
{
    unsigned h = 0;
    for (int i = 0; i < 8; i++)
        h = h * 16 + (unsigned)(hash[i] <= '9' ? hash[i] - '0' : hash[i] - 'a' + 10);
    return h % CACHE_SLOTS;
}

static int cache_get(const char *hash, char account_id[40])
{
    unsigned s = slot_of(hash);
    int hit = 0;
    pthread_once(&cache_once, cache_init);
    pthread_mutex_lock(&cache[s].mu);
    if (strcmp(cache[s].hash, hash) == 0 && cache[s].expires > time(NULL)) {
        memcpy(account_id, cache[s].account_id, 40);
        hit = 1;
    }
    pthread_mutex_unlock(&cache[s].mu);
    return hit;
}

static void cache_put(const char *hash, const char *account_id, long ttl)
{
    unsigned s = slot_of(hash);
    pthread_once(&cache_once, cache_init);
    pthread_mutex_lock(&cache[s].mu);
    memcpy(cache[s].hash, hash, 65);
    snprintf(cache[s].account_id, sizeof(cache[s].account_id), "%s", account_id);
    cache[s].expires = time(NULL) + ttl;
    pthread_mutex_unlock(&cache[s].mu);
}

PL_DB_STMT_WARM(key_stmt) = {
    "api_auth_key",
    "SELECT account_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
    1,
};

static int deny(pl_req *r)
{
    return pl_http_json(
        r, 401, "{\"error\":401,\"message\":\"Access denied\",\"detail\":\"Access denied\"}");
}

/* The account's request budget (PL_API_RATE_LIMIT): 0, or 429 replied with Retry-After. */
static int within_rate(pl_req *r, const char *account_id)
{
    api_ctx *app = r->app;
    int retry = 1;
    if (app->limits == NULL || pl_ratelimit_take(app->limits, account_id, pl_now_ms(), &retry))
        return 0;
    char header[48];
    snprintf(header, sizeof(header), "Retry-After: %d\r\n", retry);
    return pl_http_error_with(r, 429, header,
                              "rate limit: this account may send %ld requests per second (bursts "
                              "of %ld); retry after %d s",
                              app->cfg.rate_limit, app->cfg.rate_burst, retry);
}

int api_auth(pl_req *r, char account_id[40])
{
    api_ctx *app = r->app;
    const char *h = pl_http_header(r, "Authorization");
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return deny(r);
    const char *key = h + 7;
    while (*key == ' ')
        key++;
    size_t klen = strlen(key);
    if (klen == 0 || klen > 256)
        return deny(r);
    char hash[65];
    pl_sha256_hex(key, klen, hash);
    if (app->cfg.auth_cache_ttl_s > 0 && cache_get(hash, account_id))
        return within_rate(r, account_id);

    const char *p[1] = {hash};
    PGresult *res = api_exec(r, &key_stmt, p);
    if (!pl_db_ok(res)) {
        int st = api_db_error(r, res, "auth");
        PQclear(res);
        return st;
    }
    int found = PQntuples(res) == 1;
    if (found)
        snprintf(account_id, 40, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (!found)
        return deny(r);
    if (app->cfg.auth_cache_ttl_s > 0)
        cache_put(hash, account_id, app->cfg.auth_cache_ttl_s);
    return within_rate(r, account_id);
}

int api_db_error(pl_req *r, const PGresult *res, const char *what)
{
    PL_ERROR("%s: database error: %s", what, res != NULL ? PQresultErrorMessage(res) : "none");
    return pl_http_error(r, 500, "internal error while handling %s; retry later", what);
}
