/* The carrier registry and the small helpers every carrier file shares. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carrier.h"
#include "codec.h"
#include "log.h"

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

int gw_e164(const char *in, const char *national_cc, char *out, size_t cap)
{
    char digits[32];
    size_t n = 0;
    int plus = 0;
    for (const char *p = in != NULL ? in : ""; *p != '\0'; p++) {
        if (*p >= '0' && *p <= '9') {
            if (n + 1 >= sizeof(digits))
                return -1;
            digits[n++] = *p;
        } else if (*p == '+' && n == 0 && !plus) {
            plus = 1;
        } else if (*p != ' ' && *p != '-' && *p != '.' && *p != '(' && *p != ')') {
            return -1;
        }
    }
    digits[n] = '\0';
    const char *d = digits, *cc = "";
    if (!plus && n > 2 && digits[0] == '0' && digits[1] == '0') {
        d = digits + 2; /* international prefix */
    } else if (!plus && n > 1 && digits[0] == '0' && national_cc != NULL) {
        d = digits + 1; /* national trunk prefix */
        cc = national_cc;
    }
    size_t total = strlen(cc) + strlen(d);
    if (total < 7 || total > 15 || d[0] == '0' || cap < total + 2)
        return -1;
    snprintf(out, cap, "+%s%s", cc, d);
    return 0;
}

/* A caller that is not a phone number — a withheld number ("anonymous", "Restricted", empty),
 * a Twilio client ("client:alice"), a SIP URI — still calls: its identity is kept as written
 * when it is short and plain, else "anonymous". */
static void caller_identity(const char *from, char *out, size_t cap)
{
    size_t n = from != NULL ? strlen(from) : 0;
    int plain = n > 0 && n < cap;
    for (size_t i = 0; plain && i < n; i++)
        plain = isalnum((unsigned char)from[i]) || strchr("+:._-@", from[i]) != NULL;
    snprintf(out, cap, "%s", plain ? from : "anonymous");
}

int gw_inbound_fields(const pl_form *params, const char *id_key, const char *from_key,
                      const char *to_key, const char *national_cc, gw_inbound_call *out, char *why,
                      size_t cap)
{
    memset(out, 0, sizeof(*out));
    const char *id = pl_form_get(params, id_key);
    const char *from = pl_form_get(params, from_key), *to = pl_form_get(params, to_key);
    if (id == NULL || id[0] == '\0' || strlen(id) >= sizeof(out->call_id)) {
        snprintf(why, cap, "no usable %s", id_key);
        return -1;
    }
    if (gw_e164(from, national_cc, out->from, sizeof(out->from)) != 0)
        caller_identity(from, out->from, sizeof(out->from));
    if (gw_e164(to, national_cc, out->to, sizeof(out->to)) != 0) {
        snprintf(why, cap, "%s '%s' is not a phone number", to_key, to != NULL ? to : "");
        return -1;
    }
    gw_copy(out->call_id, sizeof(out->call_id), id);
    return 0;
}

long gw_xml_response(char *buf, size_t cap, const char *verbs)
{
    size_t len = 0;
    int rc = gw_xml_append(buf, cap, &len, GW_XML_HEAD, 0);
    rc |= gw_xml_append(buf, cap, &len, verbs, 0);
    rc |= gw_xml_append(buf, cap, &len, "</Response>", 0);
    return rc == 0 ? (long)len : -1;
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

/* ---- outbound media messages ---- */

#define JSON_OVERHEAD 192 /* the fixed JSON around a payload or a name, with room to spare */
#define B64_CHUNK     768 /* bytes base64-encoded at a time: a multiple of 3, so chunks join */

size_t gw_media_out_cap(size_t samples, size_t id_len)
{
    size_t payload = PL_BASE64_LEN(2 * samples), name = 6 * GW_MARK_MAX;
    return JSON_OVERHEAD + 6 * id_len + (payload > name ? payload : name) + 1;
}

void gw_jbuf_init(gw_jbuf *b, char *buf, size_t cap)
{
    b->buf = buf;
    b->cap = cap;
    b->len = 0;
    b->full = cap == 0;
    if (cap > 0)
        buf[0] = '\0';
}

static void append(gw_jbuf *b, const char *s, size_t n)
{
    if (b->full || b->len + n + 1 > b->cap) {
        b->full = 1;
        return;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

void gw_jbuf_raw(gw_jbuf *b, const char *s)
{
    append(b, s, strlen(s));
}

void gw_jbuf_str(gw_jbuf *b, const char *s)
{
    append(b, "\"", 1);
    if (b->full)
        return;
    /* pl_json_escape stops short of a character that does not fit, leaving < 7 bytes: demand
     * that headroom, so a truncated string is never mistaken for a whole one. */
    size_t len = pl_json_escape(b->buf, b->cap, b->len, s != NULL ? s : "");
    if (len + 7 > b->cap) {
        b->full = 1;
        return;
    }
    b->len = len;
    append(b, "\"", 1);
}

void gw_jbuf_int(gw_jbuf *b, long v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%ld", v);
    append(b, num, (size_t)n);
}

/* Appends the base64 of n bytes produced chunk by chunk by enc (no buffer the size of the
 * whole payload: chunks of B64_CHUNK bytes, a multiple of 3, encode to text that joins). */
static void b64(gw_jbuf *b, const int16_t *pcm, size_t n, size_t bytes_per_sample,
                void (*enc)(const int16_t *in, size_t n, uint8_t *out))
{
    uint8_t raw[B64_CHUNK];
    size_t per = B64_CHUNK / bytes_per_sample;
    while (n > 0 && !b->full) {
        size_t take = n < per ? n : per;
        enc(pcm, take, raw);
        long w = pl_base64_encode(raw, take * bytes_per_sample, b->buf + b->len, b->cap - b->len);
        if (w < 0) {
            b->full = 1;
            return;
        }
        b->len += (size_t)w;
        pcm += take;
        n -= take;
    }
}

void gw_jbuf_pcm16_b64(gw_jbuf *b, const int16_t *pcm, size_t n)
{
    b64(b, pcm, n, 2, pl_pcm16le_encode);
}

void gw_jbuf_ulaw_b64(gw_jbuf *b, const int16_t *pcm, size_t n)
{
    b64(b, pcm, n, 1, pl_ulaw_encode);
}

long gw_jbuf_end(const gw_jbuf *b)
{
    return b->full ? -1 : (long)b->len;
}

long gw_media_out_stream(gw_out_kind kind, const char *id_key, const char *stream_id,
                         gw_audio_codec codec, const int16_t *pcm, size_t samples, const char *name,
                         char *buf, size_t cap)
{
    static const char *const event[] = {[GW_OUT_MEDIA] = "{\"event\":\"media\",",
                                        [GW_OUT_MARK] = "{\"event\":\"mark\",",
                                        [GW_OUT_CLEAR] = "{\"event\":\"clear\","};
    gw_jbuf b;
    gw_jbuf_init(&b, buf, cap);
    gw_jbuf_raw(&b, event[kind]);
    gw_jbuf_str(&b, id_key);
    gw_jbuf_raw(&b, ":");
    gw_jbuf_str(&b, stream_id);
    if (kind == GW_OUT_MEDIA) {
        gw_jbuf_raw(&b, ",\"media\":{\"payload\":\"");
        if (codec == GW_AUDIO_ULAW)
            gw_jbuf_ulaw_b64(&b, pcm, samples);
        else
            gw_jbuf_pcm16_b64(&b, pcm, samples);
        gw_jbuf_raw(&b, "\"}");
    } else if (kind == GW_OUT_MARK) {
        gw_jbuf_raw(&b, ",\"mark\":{\"name\":");
        gw_jbuf_str(&b, name);
        gw_jbuf_raw(&b, "}");
    }
    gw_jbuf_raw(&b, "}");
    return gw_jbuf_end(&b);
}
