/* Configuration from environment variables, declared as one table per service.
 *
 * Each option names its variable, its type, where it lands in the service's config struct, a
 * default that works on a developer machine, and for integers an inclusive range. Loading fails
 * with a message naming the variable when a value does not parse or is out of range.
 */
#ifndef PL_CONFIG_H
#define PL_CONFIG_H

#include <stddef.h>

typedef enum { PL_CFG_STR, PL_CFG_INT, PL_CFG_BOOL } pl_cfg_type;

typedef struct {
    const char *name; /* environment variable, e.g. "PL_HTTP_PORT" */
    pl_cfg_type type;
    size_t offset;    /* offsetof(target struct, field): const char *, long or int (bool) */
    const char *def;  /* default as text; NULL for strings means NULL */
    long min, max;    /* inclusive bounds for PL_CFG_INT */
    const char *help; /* one line for --help and the README table */
} pl_cfg_opt;

/* The settings every service shares; embed as the first member `common` of a service config. */
typedef struct {
    const char *database_url;
    const char *redis_url;
    const char *redis_prefix;
    const char *bus_bind;
    const char *bus_advertise;
    const char *log_level;
    const char *service_id;
    const char *migrations_dir;
} pl_common_config;

#define PL_CFG_COMMON_OPTS(type)                                                                   \
    {"PL_DATABASE_URL",                                                                            \
     PL_CFG_STR,                                                                                   \
     offsetof(type, common.database_url),                                                          \
     "postgresql://postgres@127.0.0.1:5432/parley",                                                \
     0,                                                                                            \
     0,                                                                                            \
     "libpq connection string"},                                                                   \
        {"PL_REDIS_URL",                                                                           \
         PL_CFG_STR,                                                                               \
         offsetof(type, common.redis_url),                                                         \
         "redis://127.0.0.1:6379",                                                                 \
         0,                                                                                        \
         0,                                                                                        \
         "Redis address (redis://host:port)"},                                                     \
        {"PL_REDIS_PREFIX",                                                                        \
         PL_CFG_STR,                                                                               \
         offsetof(type, common.redis_prefix),                                                      \
         "parley:",                                                                                \
         0,                                                                                        \
         0,                                                                                        \
         "prefix of every Redis key"},                                                             \
        {"PL_BUS_BIND",                                                                            \
         PL_CFG_STR,                                                                               \
         offsetof(type, common.bus_bind),                                                          \
         "tcp://127.0.0.1:0",                                                                      \
         0,                                                                                        \
         0,                                                                                        \
         "nng PUB listen address (port 0 picks a free port)"},                                     \
        {"PL_BUS_ADVERTISE",                                                                       \
         PL_CFG_STR,                                                                               \
         offsetof(type, common.bus_advertise),                                                     \
         NULL,                                                                                     \
         0,                                                                                        \
         0,                                                                                        \
         "host other processes dial to reach this PUB socket (default: bound host)"},              \
        {"PL_LOG_LEVEL",                                                                           \
         PL_CFG_STR,                                                                               \
         offsetof(type, common.log_level),                                                         \
         "info",                                                                                   \
         0,                                                                                        \
         0,                                                                                        \
         "debug, info, warn or error"},                                                            \
        {"PL_SERVICE_ID",                                                                          \
         PL_CFG_STR,                                                                               \
         offsetof(type, common.service_id),                                                        \
         NULL,                                                                                     \
         0,                                                                                        \
         0,                                                                                        \
         "unique id of this replica (default: name-hostname-pid)"},                                \
    {                                                                                              \
        "PL_MIGRATIONS_DIR", PL_CFG_STR, offsetof(type, common.migrations_dir), "proto/sql", 0, 0, \
            "folder of NNN_name.sql migrations applied at start (once each, under a lock)"         \
    }

/* Fills `target` from the environment. Returns 0, or -1 with a message in err. */
int pl_config_load(const pl_cfg_opt *opts, size_t n, void *target, char *err, size_t errlen);

/* Prints the table as "NAME (default): help" lines to stdout, for --help. */
void pl_config_usage(const pl_cfg_opt *opts, size_t n);

/* The start of every service's main: with --help prints `what` and the table and returns 1;
 * otherwise loads the configuration, returning 0, or 2 after printing the error to stderr.
 * A caller returns (rc == 1 ? 0 : rc) when rc is not 0. */
int pl_config_cli(int argc, char **argv, const char *name, const char *what, const pl_cfg_opt *opts,
                  size_t n, void *target);

#endif
