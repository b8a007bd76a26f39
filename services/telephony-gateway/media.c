/* The media WebSocket server: carriers connect to us (reference/providers.md §0) at
 *   /media/twilio            token in start.customParameters.token
 *   /media/plivo/{token}     token in the path
 *   /media/exotel?token=...  token in the query (echoed in start.custom_parameters)
 *
 * A session is accepted only for a known media token whose attempt is live, and only once: the
 * first WebSocket takes the token with SET NX in Redis (a replay, even on another replica, is
 * refused). Its `start` moves the execution to in-progress and picks a media-pipeline worker;
 * with none live the call is ended cleanly (error "no media-pipeline capacity", then the
 * carrier's REST hang-up, or — Exotel — the socket's close). Inbound audio is decoded (base64,
 * μ-law or PCM16 LE) and re-cut into 20 ms frames for the session's sink (sink.h).
 *
 * This server is its own civetweb context on PL_GATEWAY_MEDIA_PORT: a WebSocket holds a civetweb
 * thread for the whole call, and a separate pool keeps live calls from starving the callbacks.
 * Threading: each session lives on its connection's civetweb thread; the session list (for a
 * hang-up by closing the socket) is guarded by a mutex that close_ws also takes, so a session is
 * never freed while another thread writes to it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <civetweb.h>
#include <cjson/cJSON.h>

#include "codec.h"
#include "error.h"
#include "gateway.h"
#include "log.h"
#include "queue.h"
#include "sink.h"

#define MAX_FRAME_SAMPLES 960 /* 20 ms at 48 kHz */
#define NO_CAPACITY       "no media-pipeline capacity"
#define HANGUP_GRACE_MS   2000 /* a carrier asked to hang up closes the stream within this */

typedef struct session {
    gw_media *m;
    const gw_carrier *car;
    struct mg_connection *conn; /* set once the handshake completed */
    char token[80];             /* the media token, once taken */
    int started;
    int closing;
    int64_t close_at;   /* after our REST hang-up: close if the carrier still streams then */
    gw_attempt attempt; /* valid once the token is taken */
    int have_attempt;
    /* message assembly (fragmented frames) */
    char *msg;
    size_t msg_len, msg_cap;
    /* audio */
    gw_audio_codec codec;
    int rate;
    size_t frame_samples;
    int16_t frame[MAX_FRAME_SAMPLES];
    size_t have;
    uint8_t carry; /* odd byte of PCM16 split across messages */
    int has_carry;
    uint8_t *raw;
    size_t raw_cap;
    int16_t *pcm;
    size_t pcm_cap;
    /* sink */
    const gw_sink_ops *sink;
    void *sink_self;
    struct session *next;
} session;

struct gw_media {
    gw *g;
    struct mg_context *ctx;
    pthread_mutex_t mu;
    session *sessions;
};

/* Takes a media token for this socket: the attempt must exist, be live, and the token unused. */
static int take_token(gw *g, const char *token, gw_attempt *a, char *why, size_t cap)
{
    pl_dbconn *c = pl_db_acquire(g->db);
    int rc = gw_attempt_by_media_token(g, c, token, a);
    pl_db_release(g->db, c);
    if (rc == PL_ERR_NOTFOUND || rc == PL_ERR_INVALID) {
        snprintf(why, cap, "unknown media token");
        return -1;
    }
    if (rc != PL_OK) {
        snprintf(why, cap, "database unavailable");
        return -1;
    }
    if (a->ended || (a->status != PL_ST_INITIATED && a->status != PL_ST_RINGING &&
                     a->status != PL_ST_IN_PROGRESS)) {
        snprintf(why, cap, "attempt is over (execution %s)", pl_status_name(a->status));
        gw_attempt_clear(a);
        return -1;
    }
    char key[200], name[120];
    snprintf(name, sizeof(name), "%s%s", GW_MEDIA_CLAIMS, token);
    pl_redis_key(g->redis, key, sizeof(key), name);
    pl_rconn *rc2 = pl_redis_acquire(g->redis);
    redisReply *rep = pl_redis_cmd(rc2, "SET %s %s NX PX 86400000", key, g->svc.id);
    pl_redis_release(g->redis, rc2);
    int ok = pl_redis_ok(rep, "SET media claim") && rep->type == REDIS_REPLY_STATUS;
    if (rep != NULL)
        freeReplyObject(rep);
    if (!ok) {
        snprintf(why, cap, "media token already used");
        gw_attempt_clear(a);
        return -1;
    }
    return 0;
}

/* ---- connection callbacks ---- */

static int on_connect(const struct mg_connection *conn, void *cbdata)
{
    gw_media *m = mg_get_user_data(mg_get_context(conn));
    const gw_carrier *car = cbdata;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    char token[80] = "";
    if (car->id == GW_PLIVO) {
        const char *prefix = "/media/plivo/";
        if (strncmp(ri->local_uri, prefix, strlen(prefix)) == 0)
            gw_copy(token, sizeof(token), ri->local_uri + strlen(prefix));
    } else if (car->id == GW_EXOTEL && ri->query_string != NULL) {
        if (mg_get_var(ri->query_string, strlen(ri->query_string), "token", token, sizeof(token)) <
            0)
            token[0] = '\0';
    } else if (car->id == GW_TWILIO && strcmp(ri->local_uri, "/media/twilio") != 0) {
        return 1;
    }
    session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return 1;
    s->m = m;
    s->car = car;
    s->sink = &gw_count_sink;
    if (car->id != GW_TWILIO) {
        char why[160];
        if (token[0] == '\0' || take_token(m->g, token, &s->attempt, why, sizeof(why)) != 0) {
            pl_metric_add(m->g->stats.media_rejected[car->id], 1);
            PL_WARN("%s media WebSocket refused: %s", car->name,
                    token[0] == '\0' ? "no media token" : why);
            free(s);
            return 1;
        }
        s->have_attempt = 1;
        gw_copy(s->token, sizeof(s->token), token);
    }
    mg_set_user_connection_data(conn, s);
    return 0;
}

static void on_ready(struct mg_connection *conn, void *cbdata)
{
    (void)cbdata;
    session *s = mg_get_user_connection_data(conn);
    if (s == NULL)
        return;
    s->conn = conn;
    pthread_mutex_lock(&s->m->mu);
    s->next = s->m->sessions;
    s->m->sessions = s;
    pthread_mutex_unlock(&s->m->mu);
    pl_metric_add(s->m->g->stats.media_live, 1);
}

static void on_close(const struct mg_connection *conn, void *cbdata)
{
    (void)cbdata;
    session *s = mg_get_user_connection_data(conn);
    if (s == NULL)
        return;
    gw_media *m = s->m;
    pthread_mutex_lock(&m->mu);
    for (session **p = &m->sessions; *p != NULL; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            pl_metric_add(m->g->stats.media_live, -1);
            break;
        }
    pthread_mutex_unlock(&m->mu);
    if (s->sink_self != NULL)
        s->sink->close(s->sink_self);
    if (s->have_attempt) {
        PL_INFO("%s media stream of %s closed", s->car->name, s->attempt.execution_id);
        gw_attempt_clear(&s->attempt);
    }
    mg_set_user_connection_data(conn, NULL);
    free(s->msg);
    free(s->raw);
    free(s->pcm);
    free(s);
}

/* ---- the call's start ---- */

/* No pipeline worker can take the call: end it cleanly. The execution moves to error first
 * (so the carrier's final callback changes nothing), then the carrier is asked to hang up and
 * ends the stream itself; should it still stream HANGUP_GRACE_MS later, or have no REST hang-up
 * (Exotel), or refuse it, the socket's close ends the call. Returns 1 to keep the socket for
 * now, 0 to close it. */
static int no_capacity(session *s, const char *detail)
{
    gw *g = s->m->g;
    gw_attempt *a = &s->attempt;
    pl_metric_add(g->stats.media_no_capacity[s->car->id], 1);
    PL_WARN("%s call of %s cannot be served: %s (%s)", s->car->name, a->execution_id, NO_CAPACITY,
            detail);
    pl_dbconn *c = pl_db_acquire(g->db);
    gw_end_attempt(g, c, a, PL_ST_ERROR, "Error", NO_CAPACITY, -1, NO_CAPACITY, 0);
    pl_db_release(g->db, c);
    if (s->car->id == GW_EXOTEL || a->call_id[0] == '\0')
        return 0;
    char err[512];
    pl_metric_add(g->stats.hangups, 1);
    if (s->car->hangup(&g->conf[s->car->id], a->call_id, err, sizeof(err)) != PL_OK) {
        PL_WARN("hang-up of %s after %s failed: %s; closing its stream", a->execution_id,
                NO_CAPACITY, err);
        return 0;
    }
    PL_INFO("hang-up of %s (%s %s) requested: %s", a->execution_id, s->car->name, a->call_id,
            NO_CAPACITY);
    s->close_at = pl_now_ms() + HANGUP_GRACE_MS;
    return 1;
}

/* Returns 1 to keep the socket, 0 to close it. */
static int on_start(session *s, const gw_media_msg *mm)
{
    gw *g = s->m->g;
    if (s->started || s->close_at != 0)
        return 1;
    if (!s->have_attempt) { /* Twilio: the token arrives only now */
        char why[160];
        if (mm->token == NULL || take_token(g, mm->token, &s->attempt, why, sizeof(why)) != 0) {
            pl_metric_add(g->stats.media_rejected[s->car->id], 1);
            PL_WARN("%s media stream refused: %s", s->car->name,
                    mm->token == NULL ? "start without customParameters.token" : why);
            return 0;
        }
        s->have_attempt = 1;
        gw_copy(s->token, sizeof(s->token), mm->token);
    }
    gw_attempt *a = &s->attempt;
    /* The media start is an answer (docs/dialing.md): initiated|ringing -> in-progress. */
    gw_event ev;
    gw_event_init(&ev);
    ev.kind = GW_EV_ANSWERED;
    gw_copy(ev.call_id, sizeof(ev.call_id), mm->call_id);
    gw_copy(ev.carrier_status, sizeof(ev.carrier_status), "in-progress");
    pl_dbconn *c = pl_db_acquire(g->db);
    int rc = gw_apply_event(g, c, a, &ev, NULL);
    pl_db_release(g->db, c);
    if (mm->call_id != NULL && mm->call_id[0] != '\0')
        gw_copy(a->call_id, sizeof(a->call_id), mm->call_id);
    if (rc != PL_OK || a->status != PL_ST_IN_PROGRESS) {
        pl_metric_add(g->stats.media_rejected[s->car->id], 1);
        PL_WARN("%s media stream of %s refused: execution is %s", s->car->name, a->execution_id,
                pl_status_name(a->status));
        return 0;
    }
    char addr[256];
    rc = gw_pipeline_pick(g, addr, sizeof(addr));
    if (rc != PL_OK)
        return no_capacity(s, rc == PL_ERR_NOTFOUND ? "no live worker with room"
                                                    : "worker registry unreadable");
    static const int default_rate[GW_NCARRIERS] = {8000, 16000, 16000};
    s->codec = mm->codec;
    s->rate = mm->rate > 0 ? mm->rate : default_rate[s->car->id];
    if (s->rate < 8000 || s->rate > 48000 || s->rate % 50 != 0)
        s->rate = default_rate[s->car->id];
    s->frame_samples = (size_t)s->rate / 50;
    gw_media_info info = {a->execution_id, a->attempt, s->car->name, a->call_id,
                          mm->stream_id,   s->rate,    addr};
    if (s->sink->open(&info, &s->sink_self) != 0) {
        s->sink_self = NULL;
        return no_capacity(s, "the pipeline sink refused the call");
    }
    s->started = 1;
    pl_metric_add(g->stats.media_accepted[s->car->id], 1);
    PL_INFO("%s media stream of %s started (%s %d Hz) for worker %s", s->car->name, a->execution_id,
            s->codec == GW_AUDIO_ULAW ? "mu-law" : "PCM16", s->rate, addr);
    return 1;
}

/* ---- audio ---- */

static int grow(void **buf, size_t *cap, size_t need, size_t unit)
{
    if (need <= *cap)
        return 0;
    void *b = realloc(*buf, need * unit);
    if (b == NULL)
        return -1;
    *buf = b;
    *cap = need;
    return 0;
}

static void push_samples(session *s, const int16_t *pcm, size_t n)
{
    gw *g = s->m->g;
    while (n > 0) {
        size_t take = s->frame_samples - s->have;
        if (take > n)
            take = n;
        memcpy(s->frame + s->have, pcm, take * sizeof(int16_t));
        s->have += take;
        pcm += take;
        n -= take;
        if (s->have == s->frame_samples) {
            s->sink->frame(s->sink_self, s->frame, s->frame_samples);
            pl_metric_add(g->stats.media_frames[s->car->id], 1);
            s->have = 0;
        }
    }
}

/* Returns 1 to keep the socket, 0 to close it (undecodable audio). */
static int on_media(session *s, const char *payload)
{
    size_t len = strlen(payload);
    if (grow((void **)&s->raw, &s->raw_cap, PL_BASE64_MAXDEC(len) + 1, 1) != 0)
        return 0;
    uint8_t *bytes = s->raw;
    size_t start = 0;
    if (s->has_carry) { /* keep PCM16 byte pairs aligned across messages */
        bytes[0] = s->carry;
        start = 1;
    }
    long n = pl_base64_decode(payload, len, bytes + start, s->raw_cap - start);
    if (n < 0) {
        PL_WARN("%s media of %s: payload is not base64; closing", s->car->name,
                s->attempt.execution_id);
        return 0;
    }
    size_t nbytes = (size_t)n + start;
    size_t samples = s->codec == GW_AUDIO_ULAW ? nbytes : nbytes / 2;
    if (grow((void **)&s->pcm, &s->pcm_cap, samples + 1, sizeof(int16_t)) != 0)
        return 0;
    if (s->codec == GW_AUDIO_ULAW) {
        pl_ulaw_decode(bytes, nbytes, s->pcm);
        s->has_carry = 0;
    } else {
        pl_pcm16le_decode(bytes, nbytes, s->pcm);
        s->has_carry = (int)(nbytes & 1);
        if (s->has_carry)
            s->carry = bytes[nbytes - 1];
    }
    push_samples(s, s->pcm, samples);
    return 1;
}

static int on_message(session *s, const char *text, size_t len)
{
    cJSON *j = cJSON_ParseWithLength(text, len);
    if (j == NULL) {
        PL_DEBUG("%s media: a message that is not JSON ignored", s->car->name);
        return 1;
    }
    gw_media_msg mm;
    s->car->media_parse(j, &mm);
    int keep = 1;
    switch (mm.kind) {
    case GW_MM_START:
        keep = on_start(s, &mm);
        break;
    case GW_MM_MEDIA:
        if (s->started && mm.payload != NULL)
            keep = on_media(s, mm.payload);
        break;
    case GW_MM_MARK:
    case GW_MM_DTMF:
    case GW_MM_CLEARED:
        if (s->started)
            s->sink->event(s->sink_self, mm.kind, mm.kind == GW_MM_MARK ? mm.name : mm.digit);
        break;
    case GW_MM_STOP:
        if (s->started)
            s->sink->event(s->sink_self, GW_MM_STOP, NULL);
        keep = 0;
        break;
    default:
        break;
    }
    cJSON_Delete(j);
    return keep;
}

static int on_data(struct mg_connection *conn, int bits, char *data, size_t len, void *cbdata)
{
    (void)cbdata;
    session *s = mg_get_user_connection_data(conn);
    if (s == NULL || s->closing || (s->close_at != 0 && pl_now_ms() >= s->close_at))
        return 0;
    int opcode = bits & 0x0F, fin = (bits & 0x80) != 0;
    if (opcode == MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE)
        return 0;
    if (opcode != MG_WEBSOCKET_OPCODE_TEXT && opcode != MG_WEBSOCKET_OPCODE_CONTINUATION)
        return 1; /* pings are answered by civetweb; carriers send no binary frames */
    size_t max = (size_t)s->m->g->cfg.media_max_message;
    if (s->msg_len + len > max) {
        PL_WARN("%s media: message over %zu bytes; closing", s->car->name, max);
        return 0;
    }
    if (fin && s->msg_len == 0) /* the usual case: one frame, one message */
        return on_message(s, data, len);
    if (grow((void **)&s->msg, &s->msg_cap, s->msg_len + len + 1, 1) != 0)
        return 0;
    memcpy(s->msg + s->msg_len, data, len);
    s->msg_len += len;
    if (!fin)
        return 1;
    int keep = on_message(s, s->msg, s->msg_len);
    s->msg_len = 0;
    return keep;
}

int gw_media_close(gw_media *m, const char *execution_id)
{
    int found = 0;
    pthread_mutex_lock(&m->mu);
    for (session *s = m->sessions; s != NULL; s = s->next)
        if (s->have_attempt && strcmp(s->attempt.execution_id, execution_id) == 0) {
            s->closing = 1;
            mg_websocket_write(s->conn, MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE, "\x03\xe8", 2);
            found = 1;
        }
    pthread_mutex_unlock(&m->mu);
    return found;
}

gw_media *gw_media_start(gw *g)
{
    if (!mg_check_feature(MG_FEATURES_WEBSOCKET)) {
        PL_ERROR("media: this civetweb has no WebSocket support");
        return NULL;
    }
    gw_media *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->g = g;
    pthread_mutex_init(&m->mu, NULL);
    char threads[16], idle[16];
    snprintf(threads, sizeof(threads), "%ld", g->cfg.media_threads);
    snprintf(idle, sizeof(idle), "%ld", g->cfg.media_idle_ms);
    const char *options[] = {"listening_ports",
                             g->cfg.media_port,
                             "num_threads",
                             threads,
                             "tcp_nodelay",
                             "1",
                             "websocket_timeout_ms",
                             idle,
                             "request_timeout_ms",
                             "10000",
                             "listen_backlog",
                             "1024",
                             NULL};
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof(cb));
    m->ctx = mg_start(&cb, m, options);
    if (m->ctx == NULL) {
        PL_ERROR("media: cannot listen on %s", g->cfg.media_port);
        pthread_mutex_destroy(&m->mu);
        free(m);
        return NULL;
    }
    mg_set_websocket_handler(m->ctx, "/media/twilio", on_connect, on_ready, on_data, on_close,
                             (void *)&gw_twilio);
    mg_set_websocket_handler(m->ctx, "/media/plivo", on_connect, on_ready, on_data, on_close,
                             (void *)&gw_plivo);
    mg_set_websocket_handler(m->ctx, "/media/exotel", on_connect, on_ready, on_data, on_close,
                             (void *)&gw_exotel);
    PL_INFO("media: WebSockets on %s with %ld threads (%s)", g->cfg.media_port,
            g->cfg.media_threads, g->cfg.media_url);
    return m;
}

void gw_media_stop(gw_media *m)
{
    if (m == NULL)
        return;
    mg_stop(m->ctx); /* closes the live streams; their close handlers run before it returns */
    pthread_mutex_destroy(&m->mu);
    free(m);
}
