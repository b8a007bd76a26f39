/* The gateway's Prometheus series, registered once at start-up. */
#include <stdio.h>

#include "gateway.h"

static pl_metric *by_carrier(const char *name, int carrier, const char *result, const char *help)
{
    char labels[96];
    snprintf(labels, sizeof(labels), "carrier=\"%s\",result=\"%s\"",
             gw_carrier_by_id((gw_carrier_id)carrier)->name, result);
    return pl_metric_counter(name, labels, help);
}

static void relay_stats_init(gw_stats *s)
{
    static const char msgs[] = "pl_gateway_relay_messages_total";
    static const char msgs_help[] = "media relay messages exchanged with pipeline workers";
    static const char recs[] = "pl_gateway_relay_records_total";
    static const char recs_help[] = "media relay records exchanged with pipeline workers";
    static const char ends[] = "pl_gateway_relay_call_ends_total";
    static const char ends_help[] = "calls a pipeline worker ended (hangup) or gave up (stop)";
    s->relay_msgs_in = pl_metric_counter(msgs, "direction=\"in\"", msgs_help);
    s->relay_msgs_out = pl_metric_counter(msgs, "direction=\"out\"", msgs_help);
    s->relay_records_in = pl_metric_counter(recs, "direction=\"in\"", recs_help);
    s->relay_records_out = pl_metric_counter(recs, "direction=\"out\"", recs_help);
    s->relay_dropped =
        pl_metric_counter("pl_gateway_relay_dropped_total", NULL,
                          "relay messages to a worker that could not be queued (away or slow)");
    s->relay_unknown = pl_metric_counter("pl_gateway_relay_unknown_call_records_total", NULL,
                                         "relay records for calls this process does not hold");
    s->relay_invalid = pl_metric_counter("pl_gateway_relay_invalid_messages_total", NULL,
                                         "malformed relay messages (the rest was dropped)");
    s->relay_hangups = pl_metric_counter(ends, "request=\"hangup\"", ends_help);
    s->relay_stops = pl_metric_counter(ends, "request=\"stop\"", ends_help);
}

void gw_stats_init(gw_stats *s)
{
    static const char dials[] = "pl_gateway_dials_total";
    static const char dials_help[] = "create-call requests by carrier and result";
    static const char cbs[] = "pl_gateway_callbacks_total";
    static const char cbs_help[] = "carrier callbacks by carrier and result (forged: refused 403)";
    static const char media[] = "pl_gateway_media_sessions_total";
    static const char media_help[] = "media WebSocket sessions by carrier and result";
    for (int i = 0; i < GW_NCARRIERS; i++) {
        s->dials_ok[i] = by_carrier(dials, i, "ok", dials_help);
        s->dials_rejected[i] = by_carrier(dials, i, "rejected", dials_help);
        s->dials_unavailable[i] = by_carrier(dials, i, "unavailable", dials_help);
        s->cb_applied[i] = by_carrier(cbs, i, "applied", cbs_help);
        s->cb_refused[i] = by_carrier(cbs, i, "unchanged", cbs_help);
        s->cb_forged[i] = by_carrier(cbs, i, "forged", cbs_help);
        s->cb_unknown[i] = by_carrier(cbs, i, "unknown", cbs_help);
        s->cb_invalid[i] = by_carrier(cbs, i, "invalid", cbs_help);
        s->media_accepted[i] = by_carrier(media, i, "accepted", media_help);
        s->media_rejected[i] = by_carrier(media, i, "rejected", media_help);
        s->media_no_capacity[i] = by_carrier(media, i, "no_capacity", media_help);
        char labels[64];
        snprintf(labels, sizeof(labels), "carrier=\"%s\"",
                 gw_carrier_by_id((gw_carrier_id)i)->name);
        s->media_frames[i] = pl_metric_counter("pl_gateway_media_frames_total", labels,
                                               "20 ms inbound audio frames decoded");
    }
    s->media_live =
        pl_metric_gauge("pl_gateway_media_sessions_live", NULL, "open media WebSockets");
    s->live_calls =
        pl_metric_gauge("pl_gateway_live_calls", NULL, "calls whose leases this process renews");
    s->jobs = pl_metric_counter("pl_gateway_jobs_total", NULL, "telephony jobs handled");
    s->jobs_failed = pl_metric_counter("pl_gateway_jobs_failed_total", NULL,
                                       "telephony jobs left pending for a retry");
    s->lease_lost = pl_metric_counter("pl_gateway_lease_lost_total", NULL,
                                      "renewals that found the lease expired and no slot free");
    s->hangups = pl_metric_counter("pl_gateway_hangups_total", NULL,
                                   "hang-ups the gateway asked of a carrier");
    relay_stats_init(s);
    static const char in[] = "pl_gateway_inbound_calls_total";
    static const char in_help[] =
        "inbound voice webhooks by carrier and result (busy: over the account's cap; "
        "rejected: the reason is logged)";
    for (int i = 0; i < GW_NCARRIERS; i++) {
        s->in_accepted[i] = by_carrier(in, i, "accepted", in_help);
        s->in_busy[i] = by_carrier(in, i, "busy", in_help);
        s->in_repeated[i] = by_carrier(in, i, "repeated", in_help);
        s->in_rejected[i] = by_carrier(in, i, "rejected", in_help);
        s->in_forged[i] = by_carrier(in, i, "forged", in_help);
    }
}
