/* media-pipeline configuration (environment or --flags; `media-pipeline --help` lists them). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "mp.h"

const pl_cfg_opt mp_config_opts[] = {
    PL_CFG_COMMON_OPTS(mp_config),
    {"PL_PIPELINE_PORT", PL_CFG_STR, offsetof(mp_config, http_port), "8094", 0, 0,
     "port of /healthz, /readyz, /metrics"},
    {"PL_PIPELINE_RELAY_LISTEN", PL_CFG_STR, offsetof(mp_config, relay_listen),
     "tcp://0.0.0.0:8095", 0, 0, "nng address gateways send call media to"},
    {"PL_PIPELINE_RELAY_HOST", PL_CFG_STR, offsetof(mp_config, relay_host), "", 0, 0,
     "host advertised in the worker registry (empty: the listen host, 127.0.0.1 for 0.0.0.0)"},
    {"PL_PIPELINE_LOOPS", PL_CFG_INT, offsetof(mp_config, loops), "0", 0, 256,
     "event loops (0: one per core)"},
    {"PL_PIPELINE_JOBS", PL_CFG_INT, offsetof(mp_config, jobs), "0", 0, 256,
     "threads for speech decoding/synthesis and database work (0: one per core)"},
    {"PL_PIPELINE_CAPACITY", PL_CFG_INT, offsetof(mp_config, capacity), "32", 1, 100000,
     "calls this worker serves at once"},
    {"PL_PIPELINE_RECORDINGS_DIR", PL_CFG_STR, offsetof(mp_config, recordings_dir),
     "/var/lib/parley/recordings", 0, 0,
     "where call recordings (WAV, caller left, agent right) go"},
    {"PL_PIPELINE_STT_DECODERS", PL_CFG_INT, offsetof(mp_config, stt_decoders), "4", 1, 1024,
     "local transcriber decoders (one per concurrent call, ~90 MB each)"},
    {"PL_PIPELINE_DRAIN_MS", PL_CFG_INT, offsetof(mp_config, drain_ms), "120000", 0, 3600000,
     "on SIGTERM, longest wait for live calls to end"},
    {"PL_PIPELINE_BARGEIN_VAD_MS", PL_CFG_INT, offsetof(mp_config, bargein_vad_ms), "800", 100,
     10000, "caller speech that interrupts the agent when the transcriber has no words yet"},
    {"PL_PIPELINE_LEAD_MS", PL_CFG_INT, offsetof(mp_config, lead_ms), "100", 20, 1000,
     "agent audio sent ahead of real time (what a clear can still take back)"},
};
const size_t mp_config_nopts = sizeof(mp_config_opts) / sizeof(mp_config_opts[0]);

int mp_config_check(const mp_config *c, char *err, size_t cap)
{
    if (strncmp(c->relay_listen, "tcp://", 6) != 0 && strncmp(c->relay_listen, "ipc://", 6) != 0) {
        snprintf(err, cap, "PL_PIPELINE_RELAY_LISTEN: '%s' is not a tcp:// or ipc:// address",
                 c->relay_listen);
        return -1;
    }
    if (c->recordings_dir[0] != '/') {
        snprintf(err, cap, "PL_PIPELINE_RECORDINGS_DIR: '%s' is not an absolute path",
                 c->recordings_dir);
        return -1;
    }
    return 0;
}
