/* The caller's data from the agent's ingest source (docs/inbound.md, "Caller variables").
 *
 * Only `source_type: api` is read: GET {source_url}?contact_number=<caller> (or &contact_number=
 * when the URL has a query) with the Bearer token, within PL_INBOUND_INGEST_TIMEOUT_MS. The
 * carrier is waiting for our answer meanwhile, so the deadline is short and every failure is
 * only logged: the call proceeds without the data.
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
    pl_httpc_resp resp;
    int rc = pl_httpc_get(url, &o, &resp);
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
