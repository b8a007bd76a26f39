/* Plivo Voice API + Audio Streaming (reference/providers.md §2). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "carrier.h"
#include "error.h"
#include "sign.h"

/* Plivo documents numbers as digits with the country code and no '+'. */
static const char *digits(const char *e164)
{
    return e164 != NULL && e164[0] == '+' ? e164 + 1 : e164;
}

static void plivo_dial(const gw_carrier_conf *c, const gw_dial_req *r, gw_dial_result *out)
{
    char url[512], u[512];
    memset(out, 0, sizeof(*out));
    out->code = -1;
    snprintf(url, sizeof(url), "%s/v1/Account/%s/Call/", c->base_url, c->account);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "from", digits(r->from));
    cJSON_AddStringToObject(body, "to", digits(r->to));
    snprintf(u, sizeof(u), "%s/plivo/answer/%s/%d", c->public_url, r->execution_id, r->attempt);
    cJSON_AddStringToObject(body, "answer_url", u);
    cJSON_AddStringToObject(body, "answer_method", "POST");
    snprintf(u, sizeof(u), "%s/plivo/ring/%s/%d", c->public_url, r->execution_id, r->attempt);
    cJSON_AddStringToObject(body, "ring_url", u);
    cJSON_AddStringToObject(body, "ring_method", "POST");
    snprintf(u, sizeof(u), "%s/plivo/hangup/%s/%d", c->public_url, r->execution_id, r->attempt);
    cJSON_AddStringToObject(body, "hangup_url", u);
    cJSON_AddStringToObject(body, "hangup_method", "POST");
    cJSON_AddNumberToObject(body, "ring_timeout", c->ring_timeout_s);
    char *json = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);

    pl_httpc_opts o;
    pl_httpc_resp resp;
    gw_rest_opts(c, &o);
    int rc = json != NULL ? pl_httpc_post_json(url, json, &o, &resp) : PL_ERR_NOMEM;
    cJSON_free(json);
    if (rc == PL_ERR_NOMEM && json == NULL) {
        out->status = GW_DIAL_UNAVAILABLE;
        snprintf(out->message, sizeof(out->message), "out of memory");
        return;
    }
    cJSON *j = rc == PL_OK ? cJSON_ParseWithLength(resp.body, resp.len) : NULL;
    /* request_uuid is a string, or a list for several destinations (we send one). */
    const cJSON *ru = cJSON_GetObjectItemCaseSensitive(j, "request_uuid");
    if (cJSON_IsArray(ru))
        ru = cJSON_GetArrayItem(ru, 0);
    if (rc == PL_OK && resp.status >= 200 && resp.status < 300 && cJSON_IsString(ru) &&
        ru->valuestring[0] != '\0') {
        out->status = GW_DIAL_OK;
        out->http_status = (int)resp.status;
        gw_copy(out->call_id, sizeof(out->call_id), ru->valuestring);
    } else {
        gw_dial_fail(out, rc, &resp, -1, gw_json_str(j, "error"));
    }
    cJSON_Delete(j);
    pl_httpc_resp_free(&resp);
}

/* DELETE .../Call/{id}/ ends a live call; while it is queued or ringing we may only hold its
 * request_uuid, which .../Request/{id}/ cancels. 404 on both: it has already ended. */
static int plivo_hangup(const gw_carrier_conf *c, const char *call_id, char *err, size_t cap)
{
    static const char *const kinds[] = {"Call", "Request"};
    pl_httpc_opts o;
    gw_rest_opts(c, &o);
    for (int i = 0; i < 2; i++) {
        char url[512];
        pl_httpc_resp resp;
        snprintf(url, sizeof(url), "%s/v1/Account/%s/%s/%s/", c->base_url, c->account, kinds[i],
                 call_id);
        int rc = pl_httpc_delete(url, &o, &resp);
        long st = resp.status;
        if (rc != PL_OK || (st != 404 && (st < 200 || st >= 300)))
            snprintf(err, cap, "plivo hang-up of %s: %s", call_id,
                     rc != PL_OK ? resp.error : resp.body);
        pl_httpc_resp_free(&resp);
        if (rc != PL_OK)
            return rc;
        if (st >= 200 && st < 300)
            return PL_OK;
        if (st != 404)
            return PL_ERR_IO;
    }
    return PL_OK;
}

static int plivo_fetch(const gw_carrier_conf *c, const char *call_id, gw_event *ev, char *err,
                       size_t cap)
{
    char url[512];
    gw_event_init(ev);
    snprintf(url, sizeof(url), "%s/v1/Account/%s/Call/%s/", c->base_url, c->account, call_id);
    pl_httpc_opts o;
    pl_httpc_resp resp;
    gw_rest_opts(c, &o);
    int rc = pl_httpc_get(url, &o, &resp);
    cJSON *j = NULL;
    if (rc == PL_OK && resp.status == 404) {
        rc = PL_ERR_NOTFOUND;
    } else if (rc != PL_OK || resp.status != 200 ||
               (j = cJSON_ParseWithLength(resp.body, resp.len)) == NULL) {
        snprintf(err, cap, "plivo fetch of %s: %s", call_id,
                 rc != PL_OK ? resp.error : "unexpected answer");
        rc = rc != PL_OK ? rc : PL_ERR_IO;
    } else {
        const char *st = gw_json_str(j, "call_status");
        ev->kind = gw_status_kind(st);
        gw_copy(ev->carrier_status, sizeof(ev->carrier_status), st);
        gw_copy(ev->call_id, sizeof(ev->call_id), gw_json_str(j, "call_uuid"));
        ev->duration_s = gw_json_long(j, "call_duration", -1);
        gw_copy(ev->hangup_reason, sizeof(ev->hangup_reason), gw_json_str(j, "hangup_cause_name"));
    }
    cJSON_Delete(j);
    pl_httpc_resp_free(&resp);
    return rc;
}

static int plivo_verify(const gw_carrier_conf *c, const gw_callback *cb, char *why, size_t cap)
{
    if (cb->signature == NULL || cb->nonce == NULL) {
        snprintf(why, cap, "no X-Plivo-Signature-V3 / X-Plivo-Signature-V3-Nonce header");
        return -1;
    }
    if (!pl_verify_plivo_v3(c->secret, cb->url, cb->params, cb->nonce, cb->signature)) {
        snprintf(why, cap, "X-Plivo-Signature-V3 does not match %s", cb->url);
        return -1;
    }
    return 0;
}

/* HangupSource → our hangup_by vocabulary. "Answer XML": our side ended the stream. */
static const char *hangup_source(const char *s)
{
    static const char *const map[][2] = {
        {"Callee", "Callee"},   {"Caller", "Caller"}, {"API Request", "API Request"},
        {"Plivo", "Carrier"},   {"Error", "Error"},   {"Answer XML", "Caller"},
        {"Carrier", "Carrier"},
    };
    for (size_t i = 0; s != NULL && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcasecmp(map[i][0], s) == 0)
            return map[i][1];
    return "";
}

static void plivo_parse(const gw_callback *cb, gw_event *ev)
{
    gw_event_init(ev);
    const pl_form *p = cb->params;
    const char *st = pl_form_get(p, "CallStatus");
    gw_copy(ev->carrier_status, sizeof(ev->carrier_status), st);
    gw_copy(ev->call_id, sizeof(ev->call_id), pl_form_get(p, "CallUUID"));
    if (strcmp(cb->kind, "ring") == 0) {
        ev->kind = GW_EV_RINGING;
    } else if (strcmp(cb->kind, "answer") == 0) {
        ev->kind = GW_EV_ANSWERED;
    } else {
        ev->kind = gw_status_kind(st);
        /* hangup_url always means the call is over, whatever word came with it. */
        if (ev->kind == GW_EV_NONE || ev->kind == GW_EV_INITIATED || ev->kind == GW_EV_RINGING ||
            ev->kind == GW_EV_ANSWERED)
            ev->kind = GW_EV_COMPLETED;
    }
    ev->duration_s = gw_str_long(pl_form_get(p, "Duration"), -1);
    ev->provider_code = (int)gw_str_long(pl_form_get(p, "HangupCauseCode"), -1);
    const char *cause = pl_form_get(p, "HangupCauseName");
    gw_copy(ev->hangup_reason, sizeof(ev->hangup_reason),
            cause != NULL ? cause : pl_form_get(p, "HangupCause"));
    gw_copy(ev->hangup_by, sizeof(ev->hangup_by), hangup_source(pl_form_get(p, "HangupSource")));
    const char *machine = pl_form_get(p, "Machine");
    ev->machine = machine != NULL && strcmp(machine, "true") == 0;
}

static long plivo_answer(const gw_carrier_conf *c, const char *media_token, char *buf, size_t cap)
{
    if (media_token == NULL)
        return gw_xml_response(buf, cap, "<Hangup/>");
    size_t len = 0;
    int rc = gw_xml_append(buf, cap, &len, GW_XML_HEAD, 0);
    /* 16 kHz linear PCM: what the local recogniser wants; keepCallAlive holds the call while
     * the WebSocket is open. */
    rc |= gw_xml_append(buf, cap, &len,
                        "<Stream bidirectional=\"true\" keepCallAlive=\"true\" "
                        "contentType=\"audio/x-l16;rate=16000\">",
                        0);
    rc |= gw_xml_append(buf, cap, &len, c->media_url, 1);
    rc |= gw_xml_append(buf, cap, &len, "/media/plivo/", 0);
    rc |= gw_xml_append(buf, cap, &len, media_token, 1);
    rc |= gw_xml_append(buf, cap, &len, "</Stream></Response>", 0);
    return rc == 0 ? (long)len : -1;
}

/* Plivo writes numbers without the '+'. */
static int plivo_inbound_parse(const pl_form *params, gw_inbound_call *out, char *why, size_t cap)
{
    return gw_inbound_fields(params, "CallUUID", "From", "To", NULL, out, why, cap);
}

static long plivo_inbound_answer(const gw_carrier_conf *c, const char *media_token, char *buf,
                                 size_t cap)
{
    if (media_token != NULL)
        return plivo_answer(c, media_token, buf, cap);
    return gw_xml_response(buf, cap, "<Hangup reason=\"rejected\"/>");
}

static void plivo_media_parse(const cJSON *m, gw_media_msg *out)
{
    static const struct {
        const char *event;
        gw_mm_kind kind;
    } kinds[] = {{"start", GW_MM_START}, {"media", GW_MM_MEDIA},
                 {"dtmf", GW_MM_DTMF},   {"playedStream", GW_MM_MARK},
                 {"played", GW_MM_MARK}, {"clearedAudio", GW_MM_CLEARED},
                 {"stop", GW_MM_STOP}};
    memset(out, 0, sizeof(*out));
    const char *event = gw_json_str(m, "event");
    for (size_t i = 0; event != NULL && i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(kinds[i].event, event) == 0)
            out->kind = kinds[i].kind;
    out->seq = gw_json_long(m, "sequenceNumber", -1);
    out->stream_id = gw_json_str(m, "streamId");
    switch (out->kind) {
    case GW_MM_START: {
        const cJSON *start = cJSON_GetObjectItemCaseSensitive(m, "start");
        out->call_id = gw_json_str(start, "callId");
        if (out->stream_id == NULL)
            out->stream_id = gw_json_str(start, "streamId");
        const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(start, "mediaFormat");
        const char *enc = gw_json_str(fmt, "encoding");
        /* Plivo's default is L16 (audio/x-l16;rate=8000). */
        out->codec = enc != NULL && strstr(enc, "mulaw") != NULL ? GW_AUDIO_ULAW : GW_AUDIO_L16;
        out->rate = (int)gw_json_long(fmt, "sampleRate", 0);
        break;
    }
    case GW_MM_MEDIA:
        out->payload = gw_json_str(cJSON_GetObjectItemCaseSensitive(m, "media"), "payload");
        break;
    case GW_MM_MARK:
        out->name = gw_json_str(m, "name");
        break;
    case GW_MM_DTMF: {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(m, "dtmf");
        out->digit = cJSON_IsString(d) ? d->valuestring : gw_json_str(d, "digit");
        break;
    }
    default:
        break;
    }
}

/* Plivo plays linear PCM at the rate we name (the stream's: 16 kHz in our answer XML);
 * sampleRate is a number, as pipecat sends it (Plivo's docs quote it as a string; both work). */
static long plivo_media_out(gw_out_kind kind, const char *stream_id, int rate, const int16_t *pcm,
                            size_t samples, const char *name, char *buf, size_t cap)
{
    gw_jbuf b;
    gw_jbuf_init(&b, buf, cap);
    switch (kind) {
    case GW_OUT_MEDIA:
        gw_jbuf_raw(&b, "{\"event\":\"playAudio\",\"media\":{\"contentType\":\"audio/x-l16\","
                        "\"sampleRate\":");
        gw_jbuf_int(&b, rate);
        gw_jbuf_raw(&b, ",\"payload\":\"");
        gw_jbuf_pcm16_b64(&b, pcm, samples);
        gw_jbuf_raw(&b, "\"}}");
        break;
    case GW_OUT_MARK:
        gw_jbuf_raw(&b, "{\"event\":\"checkpoint\",\"streamId\":");
        gw_jbuf_str(&b, stream_id);
        gw_jbuf_raw(&b, ",\"name\":");
        gw_jbuf_str(&b, name);
        gw_jbuf_raw(&b, "}");
        break;
    case GW_OUT_CLEAR:
        gw_jbuf_raw(&b, "{\"event\":\"clearAudio\",\"streamId\":");
        gw_jbuf_str(&b, stream_id);
        gw_jbuf_raw(&b, "}");
        break;
    }
    return gw_jbuf_end(&b);
}

const gw_carrier gw_plivo = {
    .name = "plivo",
    .id = GW_PLIVO,
    .dial = plivo_dial,
    .hangup = plivo_hangup,
    .fetch = plivo_fetch,
    .verify = plivo_verify,
    .parse = plivo_parse,
    .answer = plivo_answer,
    .answer_ctype = "application/xml",
    .inbound_parse = plivo_inbound_parse,
    .inbound_answer = plivo_inbound_answer,
    .inbound_ctype = "application/xml",
    .inbound_reject_status = 200,
    .media_parse = plivo_media_parse,
    .media_out = plivo_media_out,
    .media_out_min = 0,
};
