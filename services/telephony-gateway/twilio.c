/* Twilio Programmable Voice + Media Streams (reference/providers.md §1). */
#include <stdio.h>
#include <string.h>

#include "carrier.h"
#include "error.h"
#include "sign.h"

static void twilio_dial(const gw_carrier_conf *c, const gw_dial_req *r, gw_dial_result *out)
{
    char url[512], answer[512], status[512], timeout[16];
    memset(out, 0, sizeof(*out));
    out->code = -1;
    snprintf(url, sizeof(url), "%s/2010-04-01/Accounts/%s/Calls.json", c->base_url, c->account);
    snprintf(answer, sizeof(answer), "%s/twilio/answer/%s/%d", c->public_url, r->execution_id,
             r->attempt);
    snprintf(status, sizeof(status), "%s/twilio/status/%s/%d", c->public_url, r->execution_id,
             r->attempt);
    snprintf(timeout, sizeof(timeout), "%d", c->ring_timeout_s);
    pl_form f;
    pl_form_init(&f);
    pl_form_add(&f, "To", r->to);
    pl_form_add(&f, "From", r->from);
    pl_form_add(&f, "Url", answer);
    pl_form_add(&f, "Method", "POST");
    pl_form_add(&f, "StatusCallback", status);
    pl_form_add(&f, "StatusCallbackMethod", "POST");
    static const char *const events[] = {"initiated", "ringing", "answered", "completed"};
    for (int i = 0; i < 4; i++)
        pl_form_add(&f, "StatusCallbackEvent", events[i]);
    pl_form_add(&f, "Timeout", timeout);

    pl_httpc_opts o;
    pl_httpc_resp resp;
    gw_rest_opts(c, &o);
    int rc = pl_httpc_post_form(url, &f, &o, &resp);
    pl_form_free(&f);
    cJSON *j = rc == PL_OK ? cJSON_ParseWithLength(resp.body, resp.len) : NULL;
    const char *sid = gw_json_str(j, "sid");
    if (rc == PL_OK && resp.status >= 200 && resp.status < 300 && sid != NULL && sid[0] != '\0') {
        out->status = GW_DIAL_OK;
        out->http_status = (int)resp.status;
        gw_copy(out->call_id, sizeof(out->call_id), sid);
    } else {
        gw_dial_fail(out, rc, &resp, (int)gw_json_long(j, "code", -1), gw_json_str(j, "message"));
    }
    cJSON_Delete(j);
    pl_httpc_resp_free(&resp);
}

static int twilio_hangup(const gw_carrier_conf *c, const char *call_id, char *err, size_t cap)
{
    char url[512];
    snprintf(url, sizeof(url), "%s/2010-04-01/Accounts/%s/Calls/%s.json", c->base_url, c->account,
             call_id);
    pl_form f;
    pl_form_init(&f);
    pl_form_add(&f, "Status", "completed");
    pl_httpc_opts o;
    pl_httpc_resp resp;
    gw_rest_opts(c, &o);
    int rc = pl_httpc_post_form(url, &f, &o, &resp);
    pl_form_free(&f);
    /* 404 (code 20404): the call had already ended, which is what we wanted. */
    if (rc == PL_OK && ((resp.status >= 200 && resp.status < 300) || resp.status == 404))
        rc = PL_OK;
    else if (rc == PL_OK)
        rc = PL_ERR_IO;
    if (rc != PL_OK)
        snprintf(err, cap, "twilio hang-up of %s: %s", call_id,
                 resp.status != 0 ? resp.body : resp.error);
    pl_httpc_resp_free(&resp);
    return rc;
}

static int twilio_fetch(const gw_carrier_conf *c, const char *call_id, gw_event *ev, char *err,
                        size_t cap)
{
    char url[512];
    gw_event_init(ev);
    snprintf(url, sizeof(url), "%s/2010-04-01/Accounts/%s/Calls/%s.json", c->base_url, c->account,
             call_id);
    pl_httpc_opts o;
    pl_httpc_resp resp;
    gw_rest_opts(c, &o);
    int rc = pl_httpc_get(url, &o, &resp);
    cJSON *j = NULL;
    if (rc == PL_OK && resp.status == 404) {
        rc = PL_ERR_NOTFOUND;
    } else if (rc != PL_OK || resp.status != 200 ||
               (j = cJSON_ParseWithLength(resp.body, resp.len)) == NULL) {
        snprintf(err, cap, "twilio fetch of %s: %s", call_id,
                 rc != PL_OK ? resp.error : "unexpected answer");
        rc = rc != PL_OK ? rc : PL_ERR_IO;
    } else {
        const char *st = gw_json_str(j, "status");
        ev->kind = gw_status_kind(st);
        gw_copy(ev->carrier_status, sizeof(ev->carrier_status), st);
        gw_copy(ev->call_id, sizeof(ev->call_id), call_id);
        ev->duration_s = gw_json_long(j, "duration", -1);
        const char *by = gw_json_str(j, "answered_by");
        ev->machine = by != NULL && strncmp(by, "machine", 7) == 0;
    }
    cJSON_Delete(j);
    pl_httpc_resp_free(&resp);
    return rc;
}

static int twilio_verify(const gw_carrier_conf *c, const gw_callback *cb, char *why, size_t cap)
{
    if (cb->signature == NULL || cb->signature[0] == '\0') {
        snprintf(why, cap, "no X-Twilio-Signature header");
        return -1;
    }
    if (!pl_verify_twilio(c->secret, cb->url, cb->params, cb->signature)) {
        snprintf(why, cap, "X-Twilio-Signature does not match %s", cb->url);
        return -1;
    }
    return 0;
}

static void twilio_parse(const gw_callback *cb, gw_event *ev)
{
    gw_event_init(ev);
    const char *st = pl_form_get(cb->params, "CallStatus");
    ev->kind = gw_status_kind(st);
    gw_copy(ev->carrier_status, sizeof(ev->carrier_status), st);
    gw_copy(ev->call_id, sizeof(ev->call_id), pl_form_get(cb->params, "CallSid"));
    ev->duration_s = gw_str_long(pl_form_get(cb->params, "CallDuration"), -1);
    ev->provider_code = (int)gw_str_long(pl_form_get(cb->params, "SipResponseCode"), -1);
    const char *by = pl_form_get(cb->params, "AnsweredBy");
    ev->machine = by != NULL && strncmp(by, "machine", 7) == 0;
}

static long twilio_answer(const gw_carrier_conf *c, const char *media_token, char *buf, size_t cap)
{
    if (media_token == NULL)
        return gw_xml_response(buf, cap, "<Hangup/>");
    size_t len = 0;
    int rc = gw_xml_append(buf, cap, &len, GW_XML_HEAD, 0);
    /* The Stream URL takes no query string: the token travels as a <Parameter> and arrives in
     * start.customParameters. */
    rc |= gw_xml_append(buf, cap, &len, "<Connect><Stream url=\"", 0);
    rc |= gw_xml_append(buf, cap, &len, c->media_url, 1);
    rc |= gw_xml_append(buf, cap, &len, "/media/twilio\"><Parameter name=\"token\" value=\"", 0);
    rc |= gw_xml_append(buf, cap, &len, media_token, 1);
    rc |= gw_xml_append(buf, cap, &len, "\"/></Stream></Connect></Response>", 0);
    return rc == 0 ? (long)len : -1;
}

static int twilio_inbound_parse(const pl_form *params, gw_inbound_call *out, char *why, size_t cap)
{
    return gw_inbound_fields(params, "CallSid", "From", "To", NULL, out, why, cap);
}

/* <Reject> refuses the call before it is answered: the caller hears the carrier's busy or
 * "cannot be completed" tone and nothing is billed. */
static long twilio_inbound_answer(const gw_carrier_conf *c, const char *media_token, char *buf,
                                  size_t cap)
{
    if (media_token != NULL)
        return twilio_answer(c, media_token, buf, cap);
    return gw_xml_response(buf, cap, "<Reject reason=\"rejected\"/>");
}

static void twilio_media_parse(const cJSON *m, gw_media_msg *out)
{
    static const struct {
        const char *event;
        gw_mm_kind kind;
    } kinds[] = {{"connected", GW_MM_CONNECTED}, {"start", GW_MM_START}, {"media", GW_MM_MEDIA},
                 {"mark", GW_MM_MARK},           {"dtmf", GW_MM_DTMF},   {"stop", GW_MM_STOP}};
    memset(out, 0, sizeof(*out));
    const char *event = gw_json_str(m, "event");
    for (size_t i = 0; event != NULL && i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(kinds[i].event, event) == 0)
            out->kind = kinds[i].kind;
    out->seq = gw_json_long(m, "sequenceNumber", -1);
    out->stream_id = gw_json_str(m, "streamSid");
    const cJSON *start = cJSON_GetObjectItemCaseSensitive(m, "start");
    switch (out->kind) {
    case GW_MM_START: {
        out->call_id = gw_json_str(start, "callSid");
        if (out->stream_id == NULL)
            out->stream_id = gw_json_str(start, "streamSid");
        out->token =
            gw_json_str(cJSON_GetObjectItemCaseSensitive(start, "customParameters"), "token");
        const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(start, "mediaFormat");
        const char *enc = gw_json_str(fmt, "encoding");
        out->codec = enc == NULL || strstr(enc, "mulaw") != NULL ? GW_AUDIO_ULAW : GW_AUDIO_L16;
        out->rate = (int)gw_json_long(fmt, "sampleRate", 8000);
        break;
    }
    case GW_MM_MEDIA:
        out->payload = gw_json_str(cJSON_GetObjectItemCaseSensitive(m, "media"), "payload");
        break;
    case GW_MM_MARK:
        out->name = gw_json_str(cJSON_GetObjectItemCaseSensitive(m, "mark"), "name");
        break;
    case GW_MM_DTMF:
        out->digit = gw_json_str(cJSON_GetObjectItemCaseSensitive(m, "dtmf"), "digit");
        break;
    default:
        break;
    }
}

/* Twilio plays raw μ-law at 8 kHz; the call's rate is 8000 (its start's mediaFormat). */
static long twilio_media_out(gw_out_kind kind, const char *stream_id, int rate, const int16_t *pcm,
                             size_t samples, const char *name, char *buf, size_t cap)
{
    (void)rate;
    return gw_media_out_stream(kind, "streamSid", stream_id, GW_AUDIO_ULAW, pcm, samples, name, buf,
                               cap);
}

const gw_carrier gw_twilio = {
    .name = "twilio",
    .id = GW_TWILIO,
    .dial = twilio_dial,
    .hangup = twilio_hangup,
    .fetch = twilio_fetch,
    .verify = twilio_verify,
    .parse = twilio_parse,
    .answer = twilio_answer,
    .answer_ctype = "text/xml",
    .inbound_parse = twilio_inbound_parse,
    .inbound_answer = twilio_inbound_answer,
    .inbound_ctype = "text/xml",
    .inbound_reject_status = 200,
    .media_parse = twilio_media_parse,
    .media_out = twilio_media_out,
    .media_out_min = 0,
};
