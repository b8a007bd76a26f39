/* The gateway's HTTP routes (docs/dialing.md, "Gateway URLs"); /healthz, /readyz and /metrics
 * come with common/http.c. */
#include "gateway.h"

const pl_route gw_routes[] = {
    {"POST", "/twilio/status/{}/{}", gw_cb_twilio_status, "twilio_status"},
    {"POST", "/twilio/answer/{}/{}", gw_cb_twilio_answer, "twilio_answer"},
    {"POST", "/plivo/answer/{}/{}", gw_cb_plivo_answer, "plivo_answer"},
    {"POST", "/plivo/ring/{}/{}", gw_cb_plivo_ring, "plivo_ring"},
    {"POST", "/plivo/hangup/{}/{}", gw_cb_plivo_hangup, "plivo_hangup"},
    {"POST", "/exotel/status/{}/{}/{}", gw_cb_exotel_status, "exotel_status"},
    /* Inbound voice webhooks (docs/inbound.md): carriers may be set to GET or POST. */
    {"POST", "/inbound/twilio/{}", gw_cb_inbound_twilio, "inbound_twilio"},
    {"GET", "/inbound/twilio/{}", gw_cb_inbound_twilio, "inbound_twilio"},
    {"POST", "/inbound/plivo/{}", gw_cb_inbound_plivo, "inbound_plivo"},
    {"GET", "/inbound/plivo/{}", gw_cb_inbound_plivo, "inbound_plivo"},
    {"GET", "/inbound/exotel/{}/{}", gw_cb_inbound_exotel, "inbound_exotel"},
    {"POST", "/inbound/exotel/{}/{}", gw_cb_inbound_exotel, "inbound_exotel"},
};
const int gw_nroutes = sizeof(gw_routes) / sizeof(gw_routes[0]);

int gw_ready(void *app, char *why, size_t cap)
{
    gw *g = app;
    return pl_service_ready(&g->svc, why, cap);
}
