/* The carrier interface: everything that differs between Twilio, Plivo and Exotel sits behind
 * one table of operations per carrier (twilio.c, plivo.c, exotel.c), filled with designated
 * initializers. The rest of the gateway speaks only in the normalized types below.
 *
 * Threading: every operation is reentrant; REST operations block on the carrier for at most
 * gw_carrier_conf.timeout_ms. None touches Postgres or Redis.
 */
#ifndef GW_CARRIER_H
#define GW_CARRIER_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "form.h"
#include "httpc.h"

typedef enum { GW_TWILIO, GW_PLIVO, GW_EXOTEL, GW_NCARRIERS } gw_carrier_id;

/* What a carrier's operations need to know: REST endpoint and credentials, the numbers we call
 * from, and where carriers reach us. Strings are owned by the gateway's config. */
typedef struct {
    const char *base_url;   /* e.g. https://api.twilio.com (no trailing slash) */
    const char *account;    /* Twilio AccountSid, Plivo auth id, Exotel account sid */
    const char *user;       /* Basic auth user (Exotel: API key; others: the account) */
    const char *secret;     /* Basic auth password = the token that signs callbacks (not Exotel) */
    const char *from;       /* default caller id when the execution names none */
    const char *public_url; /* PL_GATEWAY_PUBLIC_URL, no trailing slash */
    const char *media_url;  /* PL_GATEWAY_MEDIA_URL, no trailing slash */
    long timeout_ms;        /* REST deadline */
    int ring_timeout_s;
} gw_carrier_conf;

/* One dial request of one attempt. */
typedef struct {
    const char *execution_id;
    int attempt;
    const char *to;
    const char *from;
    const char *media_token;
    const char *callback_token;
} gw_dial_req;

typedef enum {
    GW_DIAL_OK,          /* accepted: call_id is set */
    GW_DIAL_REJECTED,    /* the carrier refused the request (4xx): permanent */
    GW_DIAL_UNAVAILABLE, /* no usable answer (5xx, timeout, refused connection, garbage) */
} gw_dial_status;

typedef struct {
    gw_dial_status status;
    char call_id[128]; /* Twilio CallSid, Plivo request_uuid, Exotel Sid */
    int http_status;   /* 0 when no response arrived */
    int code;          /* carrier error code when numeric (Twilio 21211), else -1 */
    char message[256]; /* carrier or transport error text */
} gw_dial_result;

/* A carrier status, normalized. */
typedef enum {
    GW_EV_NONE,      /* nothing to apply (unknown or informational status) */
    GW_EV_INITIATED, /* queued / initiated: the execution stays initiated */
    GW_EV_RINGING,
    GW_EV_ANSWERED,
    GW_EV_COMPLETED, /* ended; answered or not is decided with the attempt's history */
    GW_EV_BUSY,
    GW_EV_NO_ANSWER,
    GW_EV_FAILED,
    GW_EV_CANCELED,
} gw_event_kind;

typedef struct {
    gw_event_kind kind;
    char call_id[128];       /* the carrier's id of the call, "" when absent */
    char carrier_status[32]; /* the carrier's own word, for call_attempts.status and logs */
    long duration_s;         /* talk time when known, else -1 */
    int provider_code;       /* SIP response / hangup cause code when numeric, else -1 */
    char hangup_by[24];      /* Callee, Caller, Carrier, Error, API Request; "" unknown */
    char hangup_reason[160]; /* "" unknown */
    int machine;             /* answered by an answering machine */
} gw_event;

/* A callback request as received: which endpoint, the URL the carrier used, its form params and
 * the headers that may authenticate it. */
typedef struct {
    const char *kind;           /* "status", "answer", "ring", "hangup" */
    const char *url;            /* PL_GATEWAY_PUBLIC_URL + path (+ "?" + query) */
    const pl_form *params;      /* decoded body */
    const char *signature;      /* X-Twilio-Signature or X-Plivo-Signature-V3 */
    const char *nonce;          /* X-Plivo-Signature-V3-Nonce */
    const char *path_token;     /* token segment of the path (Exotel), else NULL */
    const char *expected_token; /* the attempt's callback_token; NULL when the attempt is unknown */
} gw_callback;

/* An inbound call as its voice webhook describes it (docs/inbound.md); numbers in E.164. */
typedef struct {
    char call_id[128]; /* CallSid / CallUUID / Exotel CallSid */
    char from[40];     /* the caller */
    char to[40];       /* our number */
} gw_inbound_call;

/* Media WebSocket message, normalized. Strings point into the parsed JSON (valid while it is). */
typedef enum {
    GW_MM_IGNORE, /* unknown or uninteresting event */
    GW_MM_CONNECTED,
    GW_MM_START,
    GW_MM_MEDIA,
    GW_MM_MARK, /* a mark / checkpoint we sent has played */
    GW_MM_DTMF,
    GW_MM_CLEARED, /* queued audio was cleared */
    GW_MM_STOP,
} gw_mm_kind;

typedef enum { GW_AUDIO_L16, GW_AUDIO_ULAW } gw_audio_codec;

typedef struct {
    gw_mm_kind kind;
    long seq;              /* sequence number (string or number on the wire), -1 absent */
    const char *stream_id; /* streamSid / streamId / stream_sid */
    const char *call_id;   /* start: the carrier's call id */
    const char *token;     /* start: our media token when the carrier carries it (Twilio) */
    gw_audio_codec codec;  /* start: inbound audio encoding */
    int rate;              /* start: sample rate, 0 when absent */
    const char *payload;   /* media: base64 audio */
    const char *name;      /* mark name */
    const char *digit;     /* dtmf digit */
} gw_media_msg;

/* What the gateway sends a carrier's media WebSocket (reference/providers.md §1-3). */
typedef enum {
    GW_OUT_MEDIA, /* audio to play: pcm/samples at the stream's rate */
    GW_OUT_MARK,  /* "tell me when the audio before this has played": name */
    GW_OUT_CLEAR, /* drop the audio queued so far (barge-in) */
} gw_out_kind;

#define GW_MARK_MAX 256 /* longest mark name we relay, in bytes */

typedef struct gw_carrier {
    const char *name; /* "twilio": the executions.provider value */
    gw_carrier_id id;

    /* Places the call. Always fills out (status, message). */
    void (*dial)(const gw_carrier_conf *c, const gw_dial_req *req, gw_dial_result *out);

    /* Ends a live call. 0 when the carrier ended it or it had already ended; PL_ERR_INVALID when
     * the carrier has no REST hang-up (Exotel: close the media WebSocket instead); another error
     * (with err filled) when the request failed. */
    int (*hangup)(const gw_carrier_conf *c, const char *call_id, char *err, size_t cap);

    /* Reads the call's current status from the carrier into ev (reconcile). 0, PL_ERR_NOTFOUND
     * (the carrier does not know the call), or another error with err filled. */
    int (*fetch)(const gw_carrier_conf *c, const char *call_id, gw_event *ev, char *err,
                 size_t cap);

    /* 0 when the callback is authentic; otherwise -1 with the reason in why. */
    int (*verify)(const gw_carrier_conf *c, const gw_callback *cb, char *why, size_t cap);

    /* Normalizes a verified callback. */
    void (*parse)(const gw_callback *cb, gw_event *ev);

    /* Renders the answer document into buf (cap bytes): the media stream when media_token is set,
     * a hang-up document when it is NULL. Returns the length, or -1 when it does not fit. NULL
     * for carriers without an answer document (Exotel). */
    long (*answer)(const gw_carrier_conf *c, const char *media_token, char *buf, size_t cap);
    const char *answer_ctype;

    /* Inbound calls (docs/inbound.md). Reads the call id, caller and our number from an inbound
     * webhook's params (numbers normalized to E.164). 0, or -1 with the reason in why. */
    int (*inbound_parse)(const pl_form *params, gw_inbound_call *out, char *why, size_t cap);
    /* Renders the answer to an inbound webhook: the media stream to media_token, or the
     * carrier's reject answer when it is NULL. Returns the length, or -1 when it does not fit. */
    long (*inbound_answer)(const gw_carrier_conf *c, const char *media_token, char *buf,
                           size_t cap);
    const char *inbound_ctype;
    int inbound_reject_status; /* HTTP status of the reject answer (Exotel has no document) */

    /* Normalizes one media WebSocket text message. */
    void (*media_parse)(const cJSON *msg, gw_media_msg *out);

    /* Renders one outbound media WebSocket message of `kind` into buf (cap bytes, NUL-terminated):
     * MEDIA uses pcm (samples at `rate`, host order), MARK uses name; stream_id is the carrier's
     * stream id. Returns the length, or -1 when it does not fit (gw_media_out_cap sizes buf). */
    long (*media_out)(gw_out_kind kind, const char *stream_id, int rate, const int16_t *pcm,
                      size_t samples, const char *name, char *buf, size_t cap);
    /* Fewest PCM16 bytes one outbound media message may carry (Exotel: 3200), 0 for no minimum.
     * Every carrier takes any whole number of 20 ms frames at 8, 16 and 24 kHz above it. */
    size_t media_out_min;
} gw_carrier;

extern const gw_carrier gw_twilio;
extern const gw_carrier gw_plivo;
extern const gw_carrier gw_exotel;

/* The carrier named `name` (executions.provider), or NULL. */
const gw_carrier *gw_carrier_find(const char *name);
const gw_carrier *gw_carrier_by_id(gw_carrier_id id);

/* Helpers shared by the carrier files (carrier.c). */

/* A JSON member as an integer whether sent as a number or a numeric string; def otherwise. */
long gw_json_long(const cJSON *obj, const char *key, long def);
/* A JSON member as a string (NULL when absent or not a string). */
const char *gw_json_str(const cJSON *obj, const char *key);
/* A decimal string as an integer; def when absent or not all digits. */
long gw_str_long(const char *s, long def);
/* Appends s XML-escaped to buf (cap) at *len; returns 0, -1 when it does not fit. */
int gw_xml_append(char *buf, size_t cap, size_t *len, const char *s, int escape);
/* The head every TwiML / Plivo XML answer starts with. */
#define GW_XML_HEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>"
/* A fixed answer document: GW_XML_HEAD, verbs (our own markup, not escaped), </Response>.
 * Returns the length, or -1 when it does not fit. */
long gw_xml_response(char *buf, size_t cap, const char *verbs);
/* A carrier's way of writing a number, as E.164 into out (cap ≥ 17): "+<digits>", "00<digits>",
 * bare international digits (Plivo writes no '+'), or — when national_cc is given — a national
 * number with one leading 0 ("0" + 10 digits with "91": Exotel India). Spaces, dashes, dots and
 * parentheses are ignored. 0, or -1 when the result is not "+" and 7 to 15 digits (pl_is_e164). */
int gw_e164(const char *in, const char *national_cc, char *out, size_t cap);
/* The inbound_parse every carrier shares: the call id, caller and our number from the params
 * named id_key, from_key and to_key (numbers through gw_e164 with national_cc). A caller that is
 * no phone number (withheld, a client, a SIP URI) is kept as its plain identity or "anonymous";
 * our number must be one. */
int gw_inbound_fields(const pl_form *params, const char *id_key, const char *from_key,
                      const char *to_key, const char *national_cc, gw_inbound_call *out, char *why,
                      size_t cap);
/* Copies s (may be NULL) into dst of cap bytes. */
void gw_copy(char *dst, size_t cap, const char *s);
/* The normalized kind of a carrier status word ("in-progress", "no-answer", "timeout"...). */
gw_event_kind gw_status_kind(const char *s);
/* An empty event: kind NONE, durations and codes unknown. */
void gw_event_init(gw_event *ev);
/* Fills a failed dial result from a REST outcome (rc from pl_httpc_*): rejected for a 4xx,
 * unavailable otherwise; message is the carrier's text when it sent one. */
void gw_dial_fail(gw_dial_result *out, int rc, const pl_httpc_resp *resp, int code,
                  const char *message);
/* Basic auth, deadline and response cap for a carrier's REST calls. */
void gw_rest_opts(const gw_carrier_conf *c, pl_httpc_opts *o);

/* Bytes a media_out buffer needs for any message of up to `samples` samples or a mark name of
 * up to GW_MARK_MAX bytes, with a stream id of id_len bytes. */
size_t gw_media_out_cap(size_t samples, size_t id_len);

/* A JSON text written into a caller's buffer, for the media_out builders: every append is
 * bounded; once one does not fit, the rest are ignored and gw_jbuf_end returns -1. */
typedef struct {
    char *buf;
    size_t cap, len;
    int full;
} gw_jbuf;

void gw_jbuf_init(gw_jbuf *b, char *buf, size_t cap);
/* Appends s as it is (JSON syntax we write ourselves). */
void gw_jbuf_raw(gw_jbuf *b, const char *s);
/* Appends s as a quoted, escaped JSON string ("" for NULL). */
void gw_jbuf_str(gw_jbuf *b, const char *s);
void gw_jbuf_int(gw_jbuf *b, long v);
/* Appends the base64 of n samples as PCM16 little-endian / as G.711 μ-law bytes. */
void gw_jbuf_pcm16_b64(gw_jbuf *b, const int16_t *pcm, size_t n);
void gw_jbuf_ulaw_b64(gw_jbuf *b, const int16_t *pcm, size_t n);
/* The text's length, or -1 when some append did not fit. */
long gw_jbuf_end(const gw_jbuf *b);

/* The message shape Twilio and Exotel share, differing in the stream id's key and the codec:
 *   {"event":"media","<id_key>":id,"media":{"payload":<base64 audio>}}
 *   {"event":"mark","<id_key>":id,"mark":{"name":name}}
 *   {"event":"clear","<id_key>":id}
 * Arguments and result as gw_carrier.media_out. */
long gw_media_out_stream(gw_out_kind kind, const char *id_key, const char *stream_id,
                         gw_audio_codec codec, const int16_t *pcm, size_t samples, const char *name,
                         char *buf, size_t cap);

#endif
