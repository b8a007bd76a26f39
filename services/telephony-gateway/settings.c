/* The gateway's configuration table. Every default points at the local stack and the carrier
 * fake (tests/fakes/carrier, http://127.0.0.1:8099, its default credentials). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

#define FAKE "http://127.0.0.1:8099"

const pl_cfg_opt gw_config_opts[] = {
    PL_CFG_COMMON_OPTS(gw_config),
    {"PL_GATEWAY_PORT", PL_CFG_STR, offsetof(gw_config, http_port), "8090", 0, 0,
     "HTTP listen port (carrier callbacks, answer documents, /healthz /readyz /metrics)"},
    {"PL_GATEWAY_THREADS", PL_CFG_INT, offsetof(gw_config, http_threads), "64", 2, 4096,
     "HTTP worker threads = concurrent keep-alive callback connections"},
    {"PL_GATEWAY_KEEPALIVE_MS", PL_CFG_INT, offsetof(gw_config, keepalive_ms), "5000", 0, 600000,
     "idle keep-alive connections are closed after this"},
    {"PL_GATEWAY_MAX_BODY", PL_CFG_INT, offsetof(gw_config, max_body), "65536", 1024, 1048576,
     "largest callback body accepted, in bytes (413 beyond)"},
    {"PL_GATEWAY_PUBLIC_URL", PL_CFG_STR, offsetof(gw_config, public_url), "http://127.0.0.1:8090",
     0, 0, "where carriers reach the gateway's HTTP endpoints (also the URL signatures cover)"},
    {"PL_GATEWAY_MEDIA_PORT", PL_CFG_STR, offsetof(gw_config, media_port), "8091", 0, 0,
     "media WebSocket listen port (its own thread pool: one thread per live stream)"},
    {"PL_GATEWAY_MEDIA_URL", PL_CFG_STR, offsetof(gw_config, media_url), "ws://127.0.0.1:8091", 0,
     0, "where carriers open media WebSockets (ws:// or wss://, no trailing slash)"},
    {"PL_GATEWAY_MEDIA_THREADS", PL_CFG_INT, offsetof(gw_config, media_threads), "256", 2, 65536,
     "media worker threads = most simultaneous media streams"},
    {"PL_GATEWAY_MEDIA_IDLE_MS", PL_CFG_INT, offsetof(gw_config, media_idle_ms), "30000", 1000,
     3600000, "a media WebSocket silent this long is closed"},
    {"PL_GATEWAY_MEDIA_MAX_MESSAGE", PL_CFG_INT, offsetof(gw_config, media_max_message), "262144",
     4096, 16777216, "largest media WebSocket message accepted, in bytes (the socket is closed)"},
    {"PL_TWILIO_BASE_URL", PL_CFG_STR, offsetof(gw_config, twilio_base_url), FAKE, 0, 0,
     "Twilio REST base (https://api.twilio.com in production)"},
    {"PL_TWILIO_ACCOUNT_SID", PL_CFG_STR, offsetof(gw_config, twilio_sid),
     "AC00000000000000000000000000000001", 0, 0, "Twilio AccountSid"},
    {"PL_TWILIO_AUTH_TOKEN", PL_CFG_STR, offsetof(gw_config, twilio_token), "twilio-fake-token", 0,
     0, "Twilio auth token (REST auth and X-Twilio-Signature)"},
    {"PL_TWILIO_FROM_NUMBER", PL_CFG_STR, offsetof(gw_config, twilio_from), "+15005550006", 0, 0,
     "caller id for Twilio calls whose execution names no from number"},
    {"PL_PLIVO_BASE_URL", PL_CFG_STR, offsetof(gw_config, plivo_base_url), FAKE, 0, 0,
     "Plivo REST base (https://api.plivo.com in production)"},
    {"PL_PLIVO_AUTH_ID", PL_CFG_STR, offsetof(gw_config, plivo_id), "MAFAKEAUTHID0000000", 0, 0,
     "Plivo auth id"},
    {"PL_PLIVO_AUTH_TOKEN", PL_CFG_STR, offsetof(gw_config, plivo_token), "plivo-fake-token", 0, 0,
     "Plivo auth token (REST auth and X-Plivo-Signature-V3)"},
    {"PL_PLIVO_FROM_NUMBER", PL_CFG_STR, offsetof(gw_config, plivo_from), "+14155550100", 0, 0,
     "caller id for Plivo calls whose execution names no from number"},
    {"PL_EXOTEL_BASE_URL", PL_CFG_STR, offsetof(gw_config, exotel_base_url), FAKE, 0, 0,
     "Exotel REST base (https://api.exotel.com or https://api.in.exotel.com)"},
    {"PL_EXOTEL_SID", PL_CFG_STR, offsetof(gw_config, exotel_sid), "parleyfake", 0, 0,
     "Exotel account sid"},
    {"PL_EXOTEL_API_KEY", PL_CFG_STR, offsetof(gw_config, exotel_key), "exotel-key", 0, 0,
     "Exotel API key (Basic auth user)"},
    {"PL_EXOTEL_API_TOKEN", PL_CFG_STR, offsetof(gw_config, exotel_token), "exotel-token", 0, 0,
     "Exotel API token (Basic auth password)"},
    {"PL_EXOTEL_CALLER_ID", PL_CFG_STR, offsetof(gw_config, exotel_caller_id), "+911234567890", 0,
     0, "ExoPhone shown to callees of Exotel calls whose execution names no from number"},
    {"PL_CARRIER_TIMEOUT_MS", PL_CFG_INT, offsetof(gw_config, carrier_timeout_ms), "10000", 100,
     120000, "deadline of one carrier REST request"},
    {"PL_RING_TIMEOUT_S", PL_CFG_INT, offsetof(gw_config, ring_timeout_s), "30", 1, 600,
     "seconds a dialled phone may ring before no-answer"},
    {"PL_GATEWAY_WORKERS", PL_CFG_INT, offsetof(gw_config, workers), "8", 1, 256,
     "dial workers = carrier requests in flight"},
    {"PL_GATEWAY_CLAIM_IDLE_MS", PL_CFG_INT, offsetof(gw_config, claim_idle_ms), "30000", 1000,
     3600000, "telephony jobs a consumer left unacknowledged this long are taken over"},
    {"PL_LEASE_TTL_MS", PL_CFG_INT, offsetof(gw_config, lease_ttl_ms), "30000", 1000, 3600000,
     "concurrency lease lifetime; renewed while the call lives"},
    {"PL_LEASE_RENEW_MS", PL_CFG_INT, offsetof(gw_config, lease_renew_ms), "10000", 100, 3600000,
     "how often the leases of live calls are renewed"},
    {"PL_RETRY_MINUTE_MS", PL_CFG_INT, offsetof(gw_config, retry_minute_ms), "60000", 1, 3600000,
     "length of a retry_config minute (tests and demos compress time)"},
    {"PL_GATEWAY_DB_POOL", PL_CFG_INT, offsetof(gw_config, db_pool), "16", 1, 256,
     "Postgres connections"},
    {"PL_GATEWAY_DRAIN_MS", PL_CFG_INT, offsetof(gw_config, drain_ms), "20000", 0, 600000,
     "on SIGTERM, longest wait for dials in flight"},
    {"PL_GATEWAY_RELAY_LISTEN", PL_CFG_STR, offsetof(gw_config, relay_listen), "tcp://0.0.0.0:8093",
     0, 0,
     "nng address of the media relay endpoint pipeline workers answer to (port 0: any free one)"},
    {"PL_GATEWAY_RELAY_HOST", PL_CFG_STR, offsetof(gw_config, relay_host), "", 0, 0,
     "host workers reach the relay endpoint at (empty: its listen host, 127.0.0.1 for 0.0.0.0)"},
    {"PL_INBOUND_BUSY_MESSAGE", PL_CFG_STR, offsetof(gw_config, busy_message),
     "Sorry, all our lines are busy right now. Please call again later.", 0, 0,
     "what an inbound caller hears when the account's concurrency cap is reached"},
    {"PL_INBOUND_INGEST_TIMEOUT_MS", PL_CFG_INT, offsetof(gw_config, ingest_timeout_ms), "2000",
     100, 10000, "deadline of the agent's ingest source request, per inbound call"},
    {"PL_INBOUND_INGEST_MAX", PL_CFG_INT, offsetof(gw_config, ingest_max), "16", 1, 4096,
     "ingest source requests in flight at most; calls beyond go on without caller data (each "
     "request holds an HTTP worker, which carrier callbacks need too)"},
    {"PL_INBOUND_INGEST_ALLOW_PRIVATE", PL_CFG_BOOL, offsetof(gw_config, ingest_allow_private), "0",
     0, 0,
     "1 lets the ingest source be on a loopback, private or other non-public address (tests, "
     "make run); never in production"},
};
const size_t gw_config_nopts = sizeof(gw_config_opts) / sizeof(gw_config_opts[0]);

/* A copy of url without trailing slashes, kept for the process's life. */
static const char *trimmed(const char *url, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", url);
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '/')
        buf[--n] = '\0';
    return buf;
}

int gw_config_carriers(gw *g, char *err, size_t cap)
{
    static char urls[5][512];
    gw_config *c = &g->cfg;
    if (strncmp(c->public_url, "http://", 7) != 0 && strncmp(c->public_url, "https://", 8) != 0) {
        snprintf(err, cap, "PL_GATEWAY_PUBLIC_URL: '%s' is not an http(s) URL", c->public_url);
        return -1;
    }
    if (strncmp(c->media_url, "ws://", 5) != 0 && strncmp(c->media_url, "wss://", 6) != 0) {
        snprintf(err, cap, "PL_GATEWAY_MEDIA_URL: '%s' is not a ws(s) URL", c->media_url);
        return -1;
    }
    const char *pub = trimmed(c->public_url, urls[0], sizeof(urls[0]));
    const char *media = trimmed(c->media_url, urls[1], sizeof(urls[1]));
    gw_carrier_conf *t = &g->conf[GW_TWILIO], *p = &g->conf[GW_PLIVO], *e = &g->conf[GW_EXOTEL];
    *t = (gw_carrier_conf){.base_url = trimmed(c->twilio_base_url, urls[2], sizeof(urls[2])),
                           .account = c->twilio_sid,
                           .user = c->twilio_sid,
                           .secret = c->twilio_token,
                           .from = c->twilio_from};
    *p = (gw_carrier_conf){.base_url = trimmed(c->plivo_base_url, urls[3], sizeof(urls[3])),
                           .account = c->plivo_id,
                           .user = c->plivo_id,
                           .secret = c->plivo_token,
                           .from = c->plivo_from};
    *e = (gw_carrier_conf){.base_url = trimmed(c->exotel_base_url, urls[4], sizeof(urls[4])),
                           .account = c->exotel_sid,
                           .user = c->exotel_key,
                           .secret = c->exotel_token,
                           .from = c->exotel_caller_id};
    for (int i = 0; i < GW_NCARRIERS; i++) {
        g->conf[i].public_url = pub;
        g->conf[i].media_url = media;
        g->conf[i].timeout_ms = c->carrier_timeout_ms;
        g->conf[i].ring_timeout_s = (int)c->ring_timeout_s;
    }
    return 0;
}

const gw_carrier_conf *gw_credentials(const gw *g, const gw_carrier *car, const char *ref,
                                      gw_cred_buf *buf)
{
    if (ref == NULL || ref[0] == '\0' || strcmp(ref, "default") == 0)
        return &g->conf[car->id];
    char name[96];
    int n = snprintf(name, sizeof(name), "PL_%s_CREDENTIALS_%s", car->name, ref);
    if (n < 0 || n >= (int)sizeof(name))
        return NULL;
    for (char *p = name; *p != '\0'; p++)
        *p = (char)toupper((unsigned char)*p);
    const char *v = getenv(name);
    if (v == NULL || strlen(v) >= sizeof(buf->text))
        return NULL;
    snprintf(buf->text, sizeof(buf->text), "%s", v);
    /* account:token, or for Exotel sid:key:token (Basic auth is key:token there) */
    char *account = buf->text, *second = strchr(account, ':');
    if (second == NULL)
        return NULL;
    *second++ = '\0';
    char *third = car->id == GW_EXOTEL ? strchr(second, ':') : NULL;
    if (car->id == GW_EXOTEL && third == NULL)
        return NULL;
    if (third != NULL)
        *third++ = '\0';
    buf->conf = g->conf[car->id];
    buf->conf.account = account;
    buf->conf.user = third != NULL ? second : account;
    buf->conf.secret = third != NULL ? third : second;
    if (account[0] == '\0' || buf->conf.secret[0] == '\0')
        return NULL;
    return &buf->conf;
}
