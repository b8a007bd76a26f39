#include <stdio.h>

#include "api.h"
#include "error.h"

const pl_route api_routes[] = {
    {"POST", "/v2/agent", api_agent_create, "agent_create"},
    {"GET", "/v2/agent/all", api_agent_list, "agent_list"},
    {"GET", "/v2/agent/{}", api_agent_get, "agent_get"},
    {"PUT", "/v2/agent/{}", api_agent_put, "agent_put"},
    {"PATCH", "/v2/agent/{}", api_agent_patch, "agent_patch"},
    {"DELETE", "/v2/agent/{}", api_agent_delete, "agent_delete"},
    {"POST", "/v2/agent/{}/stop", api_agent_stop, "agent_stop"},
    {"GET", "/v2/agent/{}/executions", api_agent_executions, "agent_executions"},
    {"POST", "/call", api_call_create, "call_create"},
    {"POST", "/call/{}/stop", api_call_stop, "call_stop"},
    {"GET", "/executions/{}", api_execution_get, "execution_get"},
    {"GET", "/executions/{}/log", api_execution_log, "execution_log"},
    {"GET", "/executions/{}/webhooks", api_execution_webhooks, "execution_webhooks"},
    {"POST", "/executions/{}/webhooks/{}/redeliver", api_execution_webhook_redeliver,
     "execution_webhook_redeliver"},
    {"GET", "/user/me", api_user_me, "user_me"},
    /* /batches/{agent_id}/all and /batches/{batch_id}/... differ in their last segment, and
     * pl_http_match matches whole paths, so no batch route shadows another. */
    {"POST", "/batches", api_batch_create, "batch_create"},
    {"GET", "/batches/{}/all", api_batch_list, "batch_list"},
    {"GET", "/batches/{}", api_batch_get, "batch_get"},
    {"DELETE", "/batches/{}", api_batch_delete, "batch_delete"},
    {"POST", "/batches/{}/schedule", api_batch_schedule, "batch_schedule"},
    {"POST", "/batches/{}/stop", api_batch_stop, "batch_stop"},
    {"GET", "/batches/{}/executions", api_batch_executions, "batch_executions"},
    {"GET", "/recordings/{}.wav", api_recording_get, "recording_get"},
    /* /phone-numbers/all first: /phone-numbers/{} matches it too, and the first match wins. */
    {"POST", "/phone-numbers", api_phone_number_create, "phone_number_create"},
    {"GET", "/phone-numbers/all", api_phone_number_list, "phone_number_list"},
    {"GET", "/phone-numbers/{}", api_phone_number_get, "phone_number_get"},
    {"DELETE", "/phone-numbers/{}", api_phone_number_delete, "phone_number_delete"},
    {"POST", "/inbound/setup", api_inbound_setup, "inbound_setup"},
    {"POST", "/inbound/unlink", api_inbound_unlink, "inbound_unlink"},
};
const int api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);

int api_ready(void *app_, char *why, size_t cap)
{
    api_ctx *app = app_;
    return pl_service_ready(&app->svc, why, cap);
}
