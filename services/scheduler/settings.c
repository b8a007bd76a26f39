#include <stddef.h>

#include "scheduler.h"

const pl_cfg_opt scheduler_config_opts[] = {
    PL_CFG_COMMON_OPTS(scheduler_config),
    {"PL_SCHEDULER_PORT", PL_CFG_STR, offsetof(scheduler_config, http_port), "8092", 0, 0,
     "port of /healthz, /readyz, /metrics"},
    {"PL_SCHEDULER_CAP_RETRY_MS", PL_CFG_INT, offsetof(scheduler_config, cap_retry_ms), "500", 10,
     600000, "a call over its account's concurrency cap is looked at again after this"},
    {"PL_LEASE_TTL_MS", PL_CFG_INT, offsetof(scheduler_config, lease_ttl_ms), "30000", 1000,
     3600000, "concurrency lease lifetime; the gateway renews leases of live calls"},
    {"PL_RING_TIMEOUT_S", PL_CFG_INT, offsetof(scheduler_config, ring_timeout_s), "30", 1, 600,
     "how long a callee's phone rings before no-answer"},
    {"PL_SCHEDULER_SWEEP_MS", PL_CFG_INT, offsetof(scheduler_config, sweep_ms), "5000", 100, 600000,
     "period of the sweeps that repair stuck executions and lost jobs"},
    {"PL_SCHEDULER_STUCK_QUEUED_S", PL_CFG_INT, offsetof(scheduler_config, stuck_queued_s), "30", 1,
     86400, "a queued execution untouched this long gets its dial job again"},
    {"PL_SCHEDULER_INBOUND_CHECK_S", PL_CFG_INT, offsetof(scheduler_config, inbound_check_s), "60",
     1, 86400, "an in-progress inbound call not heard of this long is checked with its carrier"},
    {"PL_SCHEDULER_CLAIM_IDLE_MS", PL_CFG_INT, offsetof(scheduler_config, claim_idle_ms), "30000",
     100, 3600000, "jobs a dead consumer held this long are taken over"},
    {"PL_SCHEDULER_BATCH", PL_CFG_INT, offsetof(scheduler_config, batch), "64", 1, 1000,
     "jobs read per round (with one worker)"},
    {"PL_SCHEDULER_WORKERS", PL_CFG_INT, offsetof(scheduler_config, workers), "4", 1, 64,
     "threads dispatching dial jobs side by side, each with its own connections: their commits "
     "overlap, so a durable commit per job does not serialize the queue"},
};
const size_t scheduler_config_nopts =
    sizeof(scheduler_config_opts) / sizeof(scheduler_config_opts[0]);
