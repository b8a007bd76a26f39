#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "queue.h"
#include "service.h"

int pl_service_open(pl_service *s, const char *name, const pl_common_config *cfg, int db_pool,
                    int redis_pool)
{
    memset(s, 0, sizeof(*s));
    if (cfg->service_id != NULL) {
        snprintf(s->id, sizeof(s->id), "%s", cfg->service_id);
    } else {
        char host[64] = "host";
        gethostname(host, sizeof(host) - 1);
        snprintf(s->id, sizeof(s->id), "%s-%s-%d", name, host, (int)getpid());
    }
    s->db = pl_db_open(cfg->database_url, db_pool);
    if (s->db == NULL)
        return PL_ERR_DB;
    pl_dbconn *c = pl_db_acquire(s->db);
    int rc = pl_db_migrate(c, cfg->migrations_dir);
    pl_db_release(s->db, c);
    if (rc == PL_OK) {
        int64_t t0 = pl_now_ms();
        int n = pl_db_warm(s->db);
        PL_INFO("postgres: %d statement preparations on %d connections in %lld ms", n, db_pool,
                (long long)(pl_now_ms() - t0));
    }
    /* The bus heartbeat and subscribers take Redis connections of their own from the pool. */
    if (rc == PL_OK &&
        (s->redis = pl_redis_open(cfg->redis_url, cfg->redis_prefix, redis_pool + 4)) == NULL)
        rc = PL_ERR_REDIS;
    if (rc == PL_OK &&
        (s->bus = pl_bus_pub_open(s->redis, cfg->bus_bind, cfg->bus_advertise)) == NULL)
        rc = PL_ERR_BUS;
    if (rc != PL_OK)
        pl_service_close(s);
    return rc;
}

void pl_service_close(pl_service *s)
{
    pl_bus_pub_close(s->bus);
    pl_redis_close(s->redis);
    pl_db_close(s->db);
    memset(s, 0, sizeof(*s));
}

int pl_service_ready(pl_service *s, char *why, size_t cap)
{
    if (pl_db_ping(s->db) != PL_OK) {
        snprintf(why, cap, "postgres unreachable");
        return -1;
    }
    if (pl_redis_ping(s->redis) != PL_OK) {
        snprintf(why, cap, "redis unreachable");
        return -1;
    }
    return 0;
}
