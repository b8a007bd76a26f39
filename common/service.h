/* What every service does at start and stop, once: identity, Postgres pool (with migrations),
 * Redis pool, event-bus publisher; and the reverse at stop. */
#ifndef PL_SERVICE_H
#define PL_SERVICE_H

#include <stddef.h>

#include "bus.h"
#include "config.h"
#include "db.h"
#include "redis.h"

typedef struct {
    char id[128]; /* PL_SERVICE_ID, or <name>-<hostname>-<pid> */
    pl_db *db;
    pl_redis *redis;
    pl_bus_pub *bus;
} pl_service;

/* Opens everything (logs why on failure) and applies pending migrations. Returns 0 or an error;
 * on error whatever was opened is closed again. */
int pl_service_open(pl_service *s, const char *name, const pl_common_config *cfg, int db_pool,
                    int redis_pool);
void pl_service_close(pl_service *s);

/* readyz helper: 0 when Postgres and Redis answer, else -1 with the reason in why. */
int pl_service_ready(pl_service *s, char *why, size_t cap);

#endif
