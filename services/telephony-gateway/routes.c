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
};
const int gw_nroutes = sizeof(gw_routes) / sizeof(gw_routes[0]);

int gw_ready(void *app, char *why, size_t cap)
{
    gw *g = app;
    return pl_service_ready(&g->svc, why, cap);
}
