/* The caller's data from the agent's ingest source (docs/inbound.md, "Caller variables").
 *
 * Only `source_type: api` is read: GET {source_url}?contact_number=<caller> (or &contact_number=
 * when the URL has a query) with the Bearer token, within PL_INBOUND_INGEST_TIMEOUT_MS. The
 * carrier is waiting for our answer meanwhile, so the deadline is short and every failure is
 * only logged: the call proceeds without the data.
 *
 * Each request holds the civetweb HTTP worker of its webhook, and carrier callbacks need those
 * workers too: at most PL_INBOUND_INGEST_MAX requests are in flight, and a call beyond that goes
 * on without caller data (logged), so a slow source under a burst of calls cannot starve them.
 *
 * The URL is an account owner's choice, so the request goes through pl_httpc's SSRF guard
 * (public_only: no loopback, private, link-local, metadata... address, even behind a public name;
 * no redirect followed) unless PL_INBOUND_INGEST_ALLOW_PRIVATE=1. */
#include <stdio.h>
#include <string.h>

#include "form.h"
#include "gateway.h"
#include "httpc.h"
#include "log.h"

#define INGEST_MAX_RESPONSE 65536

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && v->valuestring[0] != '\0' ? v->valuestring : NULL;
}

cJSON *gw_ingest_fetch(gw *g, const cJSON *agent_config, const char *caller, char *why, size_t cap)
{
    why[0] = '\0';
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(agent_config, "ingest_source_config");
    if (!cJSON_IsObject(src))
        return NULL;
    const char *type = str(src, "source_type");
    if (type == NULL || strcmp(type, "api") != 0) {
        snprintf(why, cap, "ingest source_type '%s' is not read (only 'api' is)",
                 type != NULL ? type : "");
        return NULL;
    }
    const char *base = str(src, "source_url");
    if (base == NULL || (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0)) {
        snprintf(why, cap, "ingest source_url is not an http(s) URL");
        return NULL;
    }
    char number[64], url[2048];
    if (pl_url_encode(caller, number, sizeof(number)) < 0 ||
        snprintf(url, sizeof(url), "%s%scontact_number=%s", base,
                 strchr(base, '?') != NULL ? "&" : "?", number) >= (int)sizeof(url)) {
        snprintf(why, cap, "ingest source_url is too long");
        return NULL;
    }
    pl_httpc_opts o = {.bearer = str(src, "source_auth_token"),
                       .timeout_ms = g->cfg.ingest_timeout_ms,
                       .max_response = INGEST_MAX_RESPONSE,
                       .public_only = !g->cfg.ingest_allow_private};
    if (atomic_fetch_add(&g->ingest_inflight, 1) >= g->cfg.ingest_max) {
        atomic_fetch_sub(&g->ingest_inflight, 1);
        snprintf(why, cap, "ingest source %s not asked: %ld requests already in flight", base,
                 g->cfg.ingest_max);
        return NULL;
    }
    pl_httpc_resp resp;
    int rc = pl_httpc_get(url, &o, &resp);
    atomic_fetch_sub(&g->ingest_inflight, 1);
    cJSON *data = NULL;
    if (rc != PL_OK)
        snprintf(why, cap, "ingest source %s: %s", base, resp.error);
    else if (resp.status < 200 || resp.status > 299)
        snprintf(why, cap, "ingest source %s answered HTTP %ld", base, resp.status);
    else if ((data = cJSON_ParseWithLength(resp.body, resp.len)) == NULL || !cJSON_IsObject(data))
        snprintf(why, cap, "ingest source %s did not answer a JSON object", base);
    pl_httpc_resp_free(&resp);
    if (why[0] != '\0') {
        cJSON_Delete(data);
        return NULL;
    }
    return data;
}
