/* The carrier registry and the small helpers every carrier file shares. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carrier.h"

static const gw_carrier *const carriers[GW_NCARRIERS] = {
    [GW_TWILIO] = &gw_twilio,
    [GW_PLIVO] = &gw_plivo,
    [GW_EXOTEL] = &gw_exotel,
};

const gw_carrier *gw_carrier_find(const char *name)
{
    for (int i = 0; name != NULL && i < GW_NCARRIERS; i++)
        if (strcmp(carriers[i]->name, name) == 0)
            return carriers[i];
    return NULL;
}

const gw_carrier *gw_carrier_by_id(gw_carrier_id id)
{
    return (unsigned)id < GW_NCARRIERS ? carriers[id] : NULL;
}

long gw_str_long(const char *s, long def)
{
    if (s == NULL || *s == '\0')
        return def;
    char *end;
    long v = strtol(s, &end, 10);
    return *end == '\0' && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) ? v : def;
}

long gw_json_long(const cJSON *obj, const char *key, long def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsNumber(v))
        return (long)v->valuedouble;
    if (cJSON_IsString(v))
        return gw_str_long(v->valuestring, def);
    return def;
}

const char *gw_json_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int gw_xml_append(char *buf, size_t cap, size_t *len, const char *s, int escape)
{
    for (; *s != '\0'; s++) {
        const char *rep = NULL;
        if (escape) {
            switch (*s) {
            case '&':
                rep = "&amp;";
                break;
            case '<':
                rep = "&lt;";
                break;
            case '>':
                rep = "&gt;";
                break;
            case '"':
                rep = "&quot;";
                break;
            case '\'':
                rep = "&apos;";
                break;
            }
        }
        size_t n = rep != NULL ? strlen(rep) : 1;
        if (*len + n + 1 > cap)
            return -1;
        memcpy(buf + *len, rep != NULL ? rep : s, n);
        *len += n;
    }
    buf[*len] = '\0';
    return 0;
}

void gw_copy(char *dst, size_t cap, const char *s)
{
    snprintf(dst, cap, "%s", s != NULL ? s : "");
}

gw_event_kind gw_status_kind(const char *s)
{
    static const struct {
        const char *word;
        gw_event_kind kind;
    } map[] = {
        {"queued", GW_EV_INITIATED},  {"initiated", GW_EV_INITIATED},
        {"ringing", GW_EV_RINGING},   {"in-progress", GW_EV_ANSWERED},
        {"answered", GW_EV_ANSWERED}, {"completed", GW_EV_COMPLETED},
        {"busy", GW_EV_BUSY},         {"no-answer", GW_EV_NO_ANSWER},
        {"timeout", GW_EV_NO_ANSWER}, {"failed", GW_EV_FAILED},
        {"canceled", GW_EV_CANCELED}, {"cancel", GW_EV_CANCELED},
    };
    for (size_t i = 0; s != NULL && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].word, s) == 0)
            return map[i].kind;
    return GW_EV_NONE;
}

void gw_event_init(gw_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->duration_s = -1;
    ev->provider_code = -1;
}

void gw_dial_fail(gw_dial_result *out, int rc, const pl_httpc_resp *resp, int code,
                  const char *message)
{
    out->http_status = (int)resp->status;
    out->code = code;
    if (rc != 0) {
        out->status = GW_DIAL_UNAVAILABLE;
        snprintf(out->message, sizeof(out->message), "carrier unreachable: %.200s", resp->error);
        return;
    }
    out->status =
        resp->status >= 400 && resp->status < 500 ? GW_DIAL_REJECTED : GW_DIAL_UNAVAILABLE;
    if (message != NULL && message[0] != '\0')
        snprintf(out->message, sizeof(out->message), "%s", message);
    else
        snprintf(out->message, sizeof(out->message), "carrier answered HTTP %ld", resp->status);
}

void gw_rest_opts(const gw_carrier_conf *c, pl_httpc_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->user = c->user;
    o->password = c->secret;
    o->timeout_ms = c->timeout_ms;
    o->max_response = 256 * 1024;
}
