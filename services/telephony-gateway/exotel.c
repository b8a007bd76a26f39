/* Exotel: the direct "calls/connect" form with a Voicebot stream (reference/providers.md §3).
 * Exotel signs nothing: its status callback URL carries the attempt's random callback_token,
 * and it has no REST hang-up (the call ends when we close the media WebSocket). */
#include <stdio.h>
#include <string.h>

#include "carrier.h"
#include "crypto.h"
#include "error.h"

/* Our media WebSocket for Exotel: 16 kHz (what the local recogniser wants), the token in the
 * query (echoed in start.custom_parameters). */
static void stream_url(const gw_carrier_conf *c, const char *media_token, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/media/exotel?sample-rate=16000&token=%s", c->media_url, media_token);
}

static void exotel_dial(const gw_carrier_conf *c, const gw_dial_req *r, gw_dial_result *out)
{
    char url[512], stream[512], cb[512], timeout[16];
    memset(out, 0, sizeof(*out));
    out->code = -1;
    snprintf(url, sizeof(url), "%s/v1/accounts/%s/calls/connect", c->base_url, c->account);
    stream_url(c, r->media_token, stream, sizeof(stream));
    snprintf(cb, sizeof(cb), "%s/exotel/status/%s/%d/%s", c->public_url, r->execution_id,
             r->attempt, r->callback_token);
    snprintf(timeout, sizeof(timeout), "%d", c->ring_timeout_s);
    pl_form f;
    pl_form_init(&f);
    /* Exotel dials `from` (the customer) first and shows `callerid` (our ExoPhone). */
    pl_form_add(&f, "from", r->to);
    pl_form_add(&f, "callerid", r->from);
    pl_form_add(&f, "streamurl", stream);
    pl_form_add(&f, "streamtype", "bidirectional");
    pl_form_add(&f, "statuscallback", cb);
    pl_form_add(&f, "statuscallbackevents[]", "terminal");
    pl_form_add(&f, "statuscallbackevents[]", "answered");
    pl_form_add(&f, "timeout", timeout);

    pl_httpc_opts o;
    pl_httpc_resp resp;
    gw_rest_opts(c, &o);
    int rc = pl_httpc_post_form(url, &f, &o, &resp);
    pl_form_free(&f);
    cJSON *j = rc == PL_OK ? cJSON_ParseWithLength(resp.body, resp.len) : NULL;
    const cJSON *call = cJSON_GetObjectItemCaseSensitive(j, "call");
    const char *sid = gw_json_str(call, "sid");
    if (sid == NULL) /* the classic shape */
        sid = gw_json_str(cJSON_GetObjectItemCaseSensitive(j, "Call"), "Sid");
    if (rc == PL_OK && resp.status >= 200 && resp.status < 300 && sid != NULL && sid[0] != '\0') {
        out->status = GW_DIAL_OK;
        out->http_status = (int)resp.status;
        gw_copy(out->call_id, sizeof(out->call_id), sid);
    } else {
        const cJSON *ex = cJSON_GetObjectItemCaseSensitive(j, "RestException");
        gw_dial_fail(out, rc, &resp, (int)gw_json_long(ex, "Code", -1), gw_json_str(ex, "Message"));
    }
    cJSON_Delete(j);
    pl_httpc_resp_free(&resp);
}

static int exotel_hangup(const gw_carrier_conf *c, const char *call_id, char *err, size_t cap)
{
    (void)c;
    snprintf(err, cap, "exotel has no REST hang-up for %s: close the media WebSocket", call_id);
    return PL_ERR_INVALID;
}

static int exotel_fetch(const gw_carrier_conf *c, const char *call_id, gw_event *ev, char *err,
                        size_t cap)
{
    char url[512];
    gw_event_init(ev);
    snprintf(url, sizeof(url), "%s/v1/accounts/%s/calls/%s", c->base_url, c->account, call_id);
    pl_httpc_opts o;
    pl_httpc_resp resp;
    gw_rest_opts(c, &o);
    int rc = pl_httpc_get(url, &o, &resp);
    cJSON *j = NULL;
    if (rc == PL_OK && resp.status == 404) {
        rc = PL_ERR_NOTFOUND;
    } else if (rc != PL_OK || resp.status != 200 ||
               (j = cJSON_ParseWithLength(resp.body, resp.len)) == NULL) {
        snprintf(err, cap, "exotel fetch of %s: %s", call_id,
                 rc != PL_OK ? resp.error : "unexpected answer");
        rc = rc != PL_OK ? rc : PL_ERR_IO;
    } else {
        const cJSON *call = cJSON_GetObjectItemCaseSensitive(j, "call");
        const char *st = gw_json_str(call, "status");
        /* Exotel reports a call that still rings as in-progress too: all we learn is that it
         * lives, so it counts as ringing (refused harmlessly once it is answered). */
        ev->kind = gw_status_kind(st);
        if (ev->kind == GW_EV_ANSWERED)
            ev->kind = GW_EV_RINGING;
        gw_copy(ev->carrier_status, sizeof(ev->carrier_status), st);
        gw_copy(ev->call_id, sizeof(ev->call_id), call_id);
        ev->duration_s = gw_json_long(call, "duration", -1);
    }
    cJSON_Delete(j);
    pl_httpc_resp_free(&resp);
    return rc;
}

static int exotel_verify(const gw_carrier_conf *c, const gw_callback *cb, char *why, size_t cap)
{
    (void)c;
    if (cb->expected_token == NULL) {
        snprintf(why, cap, "no such call attempt");
        return -1;
    }
    if (cb->path_token == NULL || !pl_secure_equal(cb->path_token, cb->expected_token)) {
        snprintf(why, cap, "callback token does not match the attempt's");
        return -1;
    }
    return 0;
}

static void exotel_parse(const gw_callback *cb, gw_event *ev)
{
    gw_event_init(ev);
    const pl_form *p = cb->params;
    const char *st = pl_form_get(p, "Status");
    if (st == NULL)
        st = pl_form_get(p, "CallStatus");
    const char *type = pl_form_get(p, "EventType");
    ev->kind = gw_status_kind(st);
    if (type != NULL && strcmp(type, "answered") == 0)
        ev->kind = GW_EV_ANSWERED;
    else if (type != NULL && strcmp(type, "terminal") == 0 &&
             (ev->kind == GW_EV_ANSWERED || ev->kind == GW_EV_NONE))
        ev->kind = GW_EV_COMPLETED;
    gw_copy(ev->carrier_status, sizeof(ev->carrier_status), st);
    gw_copy(ev->call_id, sizeof(ev->call_id), pl_form_get(p, "CallSid"));
    ev->duration_s = gw_str_long(pl_form_get(p, "ConversationDuration"), -1);
    if (ev->duration_s < 0)
        ev->duration_s = gw_str_long(pl_form_get(p, "Duration"), -1);
}

/* The Voicebot applet's dynamic URL request: CallFrom/CallTo, national numbers with a leading 0
 * in India (Exotel's home network). */
static int exotel_inbound_parse(const pl_form *params, gw_inbound_call *out, char *why, size_t cap)
{
    /* Exotel's applets name the numbers CallFrom/CallTo; some of its URL requests From/To. */
    int call_keys =
        pl_form_get(params, "CallFrom") != NULL || pl_form_get(params, "CallTo") != NULL;
    return gw_inbound_fields(params, "CallSid", call_keys ? "CallFrom" : "From",
                             call_keys ? "CallTo" : "To", "91", out, why, cap);
}

/* The applet asked for the WebSocket URL: {"url": ...}. Exotel has no reject document; the
 * gateway answers inbound_reject_status with a JSON error and the flow ends the call. */
static long exotel_inbound_answer(const gw_carrier_conf *c, const char *media_token, char *buf,
                                  size_t cap)
{
    gw_jbuf b;
    gw_jbuf_init(&b, buf, cap);
    if (media_token == NULL) {
        gw_jbuf_raw(&b, "{\"error\":\"call rejected\"}");
        return gw_jbuf_end(&b);
    }
    char url[512];
    stream_url(c, media_token, url, sizeof(url));
    gw_jbuf_raw(&b, "{\"url\":");
    gw_jbuf_str(&b, url);
    gw_jbuf_raw(&b, "}");
    return gw_jbuf_end(&b);
}

static void exotel_media_parse(const cJSON *m, gw_media_msg *out)
{
    static const struct {
        const char *event;
        gw_mm_kind kind;
    } kinds[] = {{"connected", GW_MM_CONNECTED}, {"start", GW_MM_START}, {"media", GW_MM_MEDIA},
                 {"mark", GW_MM_MARK},           {"dtmf", GW_MM_DTMF},   {"stop", GW_MM_STOP},
                 {"clear", GW_MM_CLEARED}};
    memset(out, 0, sizeof(*out));
    const char *event = gw_json_str(m, "event");
    for (size_t i = 0; event != NULL && i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(kinds[i].event, event) == 0)
            out->kind = kinds[i].kind;
    out->seq = gw_json_long(m, "sequence_number", -1);
    out->stream_id = gw_json_str(m, "stream_sid");
    switch (out->kind) {
    case GW_MM_START: {
        const cJSON *start = cJSON_GetObjectItemCaseSensitive(m, "start");
        out->call_id = gw_json_str(start, "call_sid");
        if (out->stream_id == NULL)
            out->stream_id = gw_json_str(start, "stream_sid");
        out->token =
            gw_json_str(cJSON_GetObjectItemCaseSensitive(start, "custom_parameters"), "token");
        const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(start, "media_format");
        const char *enc = gw_json_str(fmt, "encoding");
        out->codec = enc != NULL && strstr(enc, "mulaw") != NULL ? GW_AUDIO_ULAW : GW_AUDIO_L16;
        out->rate = (int)gw_json_long(fmt, "sample_rate", 0);
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

/* Exotel plays PCM16 LE at the stream's sample-rate, in chunks of at least 3.2 KB and a
 * multiple of 320 B (media_out_min; whole 20 ms frames at 8/16/24 kHz are such multiples). */
static long exotel_media_out(gw_out_kind kind, const char *stream_id, int rate, const int16_t *pcm,
                             size_t samples, const char *name, char *buf, size_t cap)
{
    (void)rate;
    return gw_media_out_stream(kind, "stream_sid", stream_id, GW_AUDIO_L16, pcm, samples, name, buf,
                               cap);
}

const gw_carrier gw_exotel = {
    .name = "exotel",
    .id = GW_EXOTEL,
    .dial = exotel_dial,
    .hangup = exotel_hangup,
    .fetch = exotel_fetch,
    .verify = exotel_verify,
    .parse = exotel_parse,
    .answer = NULL,
    .answer_ctype = NULL,
    .inbound_parse = exotel_inbound_parse,
    .inbound_answer = exotel_inbound_answer,
    .inbound_ctype = "application/json",
    .inbound_reject_status = 403,
    .media_parse = exotel_media_parse,
    .media_out = exotel_media_out,
    .media_out_min = 3200,
};
