/* telephony-gateway: wiring only. Configuration, connections, the dial workers, the lease
 * thread, the HTTP and media servers, the media relay, and the drain on SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "gateway.h"
#include "httpc.h"
#include "log.h"

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

int main(int argc, char **argv)
{
    static gw g;
    char err[256];
    int rc = pl_config_cli(argc, argv, "telephony-gateway",
                           "carrier REST, signed callbacks and media WebSockets", gw_config_opts,
                           gw_config_nopts, &g.cfg);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (gw_config_carriers(&g, err, sizeof(err)) != 0) {
        fprintf(stderr, "telephony-gateway: %s\n", err);
        return 2;
    }
    pl_log_init("telephony-gateway", g.cfg.common.log_level);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    pl_httpc_init();
    gw_stats_init(&g.stats);
    if (pl_service_open(&g.svc, "telephony-gateway", &g.cfg.common, (int)g.cfg.db_pool,
                        (int)g.cfg.workers + 16) != PL_OK)
        return 1;
    g.db = g.svc.db;
    g.redis = g.svc.redis;
    g.bus = g.svc.bus;
    gw_db_warm(&g);
    g.live = gw_live_new(&g);
    if (g.live == NULL || gw_live_start(g.live) != PL_OK)
        return 1;
    pl_http_opts ho = {
        .port = g.cfg.http_port,
        .threads = (int)g.cfg.http_threads,
        .keepalive_ms = (int)g.cfg.keepalive_ms,
        .max_body = (size_t)g.cfg.max_body,
        .ready = gw_ready,
    };
    pl_http *http = pl_http_start(&ho, gw_routes, gw_nroutes, &g);
    if (http == NULL)
        return 1;
    g.relay = gw_relay_start(&g);
    if (g.relay == NULL)
        return 1;
    g.media = gw_media_start(&g, &gw_relay_sink, g.relay);
    if (g.media == NULL)
        return 1;
    g.dialer = gw_dialer_start(&g);
    if (g.dialer == NULL)
        return 1;
    if (g.cfg.ingest_allow_private)
        PL_WARN("PL_INBOUND_INGEST_ALLOW_PRIVATE=1: agents' ingest sources may be loopback and "
                "private addresses");
    PL_INFO("telephony-gateway ready (%s): callbacks at %s, media at %s", g.svc.id,
            g.cfg.public_url, g.cfg.media_url);
    while (!stopping)
        pause();
    /* Drain: stop taking jobs and finish the dials in flight while callbacks are still served,
     * then stop the servers. Live calls keep their leases; they expire if nobody renews. The
     * relay outlives the media server (closing streams still tell their workers) and the media
     * state outlives the relay (whose receive thread looks sessions up). */
    PL_INFO("telephony-gateway stopping: finishing dials in flight");
    gw_dialer_stop(g.dialer);
    gw_live_stop(g.live);
    pl_http_stop(http);
    gw_media_stop(g.media);
    gw_relay_stop(g.relay);
    gw_media_free(g.media);
    gw_live_free(g.live);
    pl_service_close(&g.svc);
    PL_INFO("telephony-gateway stopped");
    return 0;
}
