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
 * The media-pipeline worker's replies (relay.c) come back on another thread: gw_media_get finds
 * a started session by execution id bytes and attempt in a hash, and the playout (playout.h)
 * turns them into the carrier's outbound messages.
 *
 * Threading: each session lives on its connection's civetweb thread. The session list and hash
 * (m->mu) let other threads reach a session: gw_media_close (a hang-up by closing the socket)
 * writes under m->mu; the relay takes a reference under m->mu and writes under the session's
 * out_mu. on_close unlinks the session and then waits until no reference is left, so a session
 * is never freed while another thread writes to it. Lock order: m->mu before out_mu, and
 * gw_media_put (m->mu) only after out_mu is released.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <civetweb.h>
#include <cjson/cJSON.h>

#include "codec.h"
#include "error.h"
#include "gateway.h"
#include "log.h"
#include "playout.h"
#include "queue.h"
#include "sink.h"

#define MAX_FRAME_SAMPLES 960 /* 20 ms at 48 kHz */
#define NO_CAPACITY       "no media-pipeline capacity"
#define HANGUP_GRACE_MS   2000 /* a carrier asked to hang up closes the stream within this */
#define NBUCKETS          1024 /* of the started-session hash (chains beyond) */

typedef struct gw_session {
    gw_media *m;
    const gw_carrier *car;
    struct mg_connection *conn; /* set once the handshake completed */
    char token[80];             /* the media token, once taken */
    int started;
    atomic_int closing;       /* gw_media_close sent the close frame */
    _Atomic int64_t close_at; /* after our REST hang-up: close if the carrier still streams */
    gw_attempt attempt;       /* valid once the token is taken */
    atomic_int have_attempt;  /* set once attempt is filled: then other threads read its id */
    /* the relay's side, once started */
    uint8_t call[16];         /* execution id bytes: the hash key, with attempt.attempt */
    struct gw_session *hnext; /* hash chain (m->mu) */
    int hashed;               /* reachable by gw_media_get (m->mu) */
    int refs;                 /* gw_media_get references (m->mu) */
    pthread_mutex_t out_mu;   /* the relay's writes: playout and the socket */
    gw_playout out;
    char worker[256];
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
    void *sink_self;
    struct gw_session *next;
} session;

struct gw_media {
    gw *g;
    struct mg_context *ctx;
    const gw_sink_ops *sink;
    void *sink_ctx;
    pthread_mutex_t mu;
    pthread_cond_t unref; /* a session left the hash lost its last reference */
    session *sessions;
    session *hash[NBUCKETS];
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

/* ---- the started-session hash: the relay's way to a session ---- */

static size_t bucket(const uint8_t call[16], int attempt)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < 16; i++)
        h = (h ^ call[i]) * 16777619u;
    h = (h ^ (uint32_t)attempt) * 16777619u;
    return h % NBUCKETS;
}

static void hash_add(gw_media *m, session *s)
{
    size_t b = bucket(s->call, s->attempt.attempt);
    pthread_mutex_lock(&m->mu);
    s->hnext = m->hash[b];
    m->hash[b] = s;
    s->hashed = 1;
    pthread_mutex_unlock(&m->mu);
}

/* Makes s unreachable, then waits until the references taken before are returned. m->mu is
 * held (and released while waiting). */
static void hash_remove_locked(gw_media *m, session *s)
{
    if (!s->hashed)
        return;
    for (session **p = &m->hash[bucket(s->call, s->attempt.attempt)]; *p != NULL; p = &(*p)->hnext)
        if (*p == s) {
            *p = s->hnext;
            break;
        }
    s->hashed = 0;
    while (s->refs > 0)
        pthread_cond_wait(&m->unref, &m->mu);
}

gw_session *gw_media_get(gw_media *m, const uint8_t call[16], int attempt)
{
    if (m == NULL)
        return NULL;
    pthread_mutex_lock(&m->mu);
    session *s = m->hash[bucket(call, attempt)];
    while (s != NULL && (s->attempt.attempt != attempt || memcmp(s->call, call, 16) != 0))
        s = s->hnext;
    if (s != NULL)
        s->refs++;
    pthread_mutex_unlock(&m->mu);
    return s;
}

void gw_media_put(gw_session *s)
{
    gw_media *m = s->m;
    pthread_mutex_lock(&m->mu);
    if (--s->refs == 0 && !s->hashed)
        pthread_cond_broadcast(&m->unref);
    pthread_mutex_unlock(&m->mu);
}

/* ---- the worker's replies, out to the carrier ---- */

/* gw_playout_write_fn: after gw_media_close's close frame nothing more may be sent. */
static int ws_write(void *ctx, const char *text, size_t len)
{
    session *s = ctx;
    if (atomic_load(&s->closing))
        return -1;
    return mg_websocket_write(s->conn, MG_WEBSOCKET_OPCODE_TEXT, text, len) > 0 ? 0 : -1;
}

void gw_media_play(gw_session *s, const uint8_t *pcm16le, size_t bytes)
{
    pthread_mutex_lock(&s->out_mu);
    gw_playout_audio(&s->out, pcm16le, bytes, pl_now_ms());
    pthread_mutex_unlock(&s->out_mu);
}

void gw_media_flush(gw_session *s, int pad)
{
    pthread_mutex_lock(&s->out_mu);
    gw_playout_flush(&s->out, pad);
    pthread_mutex_unlock(&s->out_mu);
}

int gw_media_mark(gw_session *s, const char *name, size_t len)
{
    pthread_mutex_lock(&s->out_mu);
    int rc = gw_playout_mark(&s->out, name, len);
    pthread_mutex_unlock(&s->out_mu);
    return rc;
}

void gw_media_clear(gw_session *s)
{
    pthread_mutex_lock(&s->out_mu);
    gw_playout_clear(&s->out);
    pthread_mutex_unlock(&s->out_mu);
}

const char *gw_media_worker(const gw_session *s)
{
    return s->worker;
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
    pthread_mutex_init(&s->out_mu, NULL);
    if (car->id != GW_TWILIO) {
        char why[160];
        if (token[0] == '\0' || take_token(m->g, token, &s->attempt, why, sizeof(why)) != 0) {
            pl_metric_add(m->g->stats.media_rejected[car->id], 1);
            PL_WARN("%s media WebSocket refused: %s", car->name,
                    token[0] == '\0' ? "no media token" : why);
            pthread_mutex_destroy(&s->out_mu);
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
    hash_remove_locked(m, s);
    pthread_mutex_unlock(&m->mu);
    if (s->sink_self != NULL)
        m->sink->close(s->sink_self);
    if (s->have_attempt && s->attempt.inbound) /* no carrier callback will say it is over */
        gw_inbound_ended(m->g, s->attempt.execution_id, s->attempt.attempt);
    if (s->have_attempt) {
        PL_INFO("%s media stream of %s closed (%llu messages played out, %llu refused)",
                s->car->name, s->attempt.execution_id, (unsigned long long)s->out.sent,
                (unsigned long long)s->out.lost);
        gw_attempt_clear(&s->attempt);
    }
    mg_set_user_connection_data(conn, NULL);
    gw_playout_free(&s->out);
    pthread_mutex_destroy(&s->out_mu);
    free(s->msg);
    free(s->raw);
    free(s->pcm);
    free(s);
}

/* ---- the call's start ---- */

/* Ends an answered call the gateway cannot serve: the execution moves to error first
 * (hangup_by "Error", hangup_reason and error_message `reason`), so the carrier's final callback
 * changes nothing; then the carrier is asked to hang up and ends the stream itself. Returns 1
 * when it took the request (the caller closes the stream should it still stream
 * HANGUP_GRACE_MS later), 0 when the caller must close the socket now: Exotel has no REST
 * hang-up, the call id is unknown, or the request failed. Blocks on Postgres and the carrier. */
static int end_unserved(gw *g, const gw_carrier *car, gw_attempt *a, const char *reason)
{
    pl_dbconn *c = pl_db_acquire(g->db);
    gw_end_attempt(g, c, a, PL_ST_ERROR, "Error", reason, -1, reason, 0);
    pl_db_release(g->db, c);
    if (car->id == GW_EXOTEL || a->call_id[0] == '\0')
        return 0;
    char err[512];
    pl_metric_add(g->stats.hangups, 1);
    if (gw_carrier_hangup(g, car, a, err, sizeof(err)) != PL_OK) {
        PL_WARN("hang-up of %s after '%s' failed: %s; closing its stream", a->execution_id, reason,
                err);
        return 0;
    }
    PL_INFO("hang-up of %s (%s %s) requested: %s", a->execution_id, car->name, a->call_id, reason);
    return 1;
}

/* No pipeline worker can take the call. Returns 1 to keep the socket for now, 0 to close it. */
static int no_capacity(session *s, const char *detail)
{
    gw *g = s->m->g;
    pl_metric_add(g->stats.media_no_capacity[s->car->id], 1);
    PL_WARN("%s call of %s cannot be served: %s (%s)", s->car->name, s->attempt.execution_id,
            NO_CAPACITY, detail);
    if (!end_unserved(g, s->car, &s->attempt, NO_CAPACITY))
        return 0;
    s->close_at = pl_now_ms() + HANGUP_GRACE_MS;
    return 1;
}

/* Sets the grace deadline of the execution's sessions (after a REST hang-up). */
static void close_after(gw_media *m, const char *execution_id, int64_t at)
{
    pthread_mutex_lock(&m->mu);
    for (session *s = m->sessions; s != NULL; s = s->next)
        if (s->have_attempt && strcmp(s->attempt.execution_id, execution_id) == 0)
            s->close_at = at;
    pthread_mutex_unlock(&m->mu);
}

void gw_media_unserved(gw_media *m, const char *execution_id, int n, const char *reason)
{
    gw *g = m->g;
    gw_attempt a;
    pl_dbconn *c = pl_db_acquire(g->db);
    int rc = gw_attempt_load(g, c, execution_id, n, &a);
    pl_db_release(g->db, c);
    if (rc != PL_OK) {
        PL_WARN("worker STOP for %s/%d: attempt not loaded (%s)", execution_id, n, pl_strerror(rc));
        return;
    }
    const gw_carrier *car = gw_carrier_find(a.provider);
    if (car == NULL || a.status != PL_ST_IN_PROGRESS) {
        PL_INFO("worker STOP for %s ignored: it is %s", execution_id, pl_status_name(a.status));
    } else {
        PL_WARN("%s call of %s cannot be served: its media-pipeline worker stopped it (%s)",
                car->name, execution_id, reason);
        if (end_unserved(g, car, &a, reason))
            close_after(m, execution_id, pl_now_ms() + HANGUP_GRACE_MS);
        else
            gw_media_close(m, execution_id);
    }
    gw_attempt_clear(&a);
}

/* Readies the session for the worker's replies (playout, hash), then opens the sink, which tells
 * the worker: the session is reachable before the worker can answer. 0, or -1 with the session
 * as it was. */
static int start_relay(session *s, const char *stream_id, const char *addr)
{
    gw_media *m = s->m;
    gw_attempt *a = &s->attempt;
    if (pl_relay_uuid_parse(a->execution_id, s->call) != PL_OK ||
        gw_playout_init(&s->out, s->car, stream_id, s->rate, ws_write, s) != PL_OK)
        return -1;
    gw_copy(s->worker, sizeof(s->worker), addr);
    hash_add(m, s);
    gw_media_info info = {a->execution_id, a->attempt, s->car->name, a->call_id,
                          stream_id,       s->rate,    addr};
    if (m->sink->open(m->sink_ctx, &info, &s->sink_self) == 0)
        return 0;
    s->sink_self = NULL;
    pthread_mutex_lock(&m->mu);
    hash_remove_locked(m, s);
    pthread_mutex_unlock(&m->mu);
    gw_playout_free(&s->out);
    return -1;
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
    if (start_relay(s, mm->stream_id, addr) != 0)
        return no_capacity(s, "the pipeline relay refused the call");
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
            s->m->sink->frame(s->sink_self, s->frame, s->frame_samples);
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
    if (s->out.min > 0) { /* a tail kept for the carrier's minimum chunk must not linger */
        pthread_mutex_lock(&s->out_mu);
        gw_playout_idle(&s->out, pl_now_ms());
        pthread_mutex_unlock(&s->out_mu);
    }
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
            s->m->sink->event(s->sink_self, mm.kind, mm.kind == GW_MM_MARK ? mm.name : mm.digit);
        break;
    case GW_MM_STOP:
        if (s->started)
            s->m->sink->event(s->sink_self, GW_MM_STOP, NULL);
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

gw_media *gw_media_start(gw *g, const gw_sink_ops *sink, void *sink_ctx)
{
    if (!mg_check_feature(MG_FEATURES_WEBSOCKET)) {
        PL_ERROR("media: this civetweb has no WebSocket support");
        return NULL;
    }
    gw_media *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->g = g;
    m->sink = sink;
    m->sink_ctx = sink_ctx;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->unref, NULL);
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
        gw_media_free(m);
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
    if (m == NULL || m->ctx == NULL)
        return;
    mg_stop(m->ctx); /* closes the live streams; their close handlers run before it returns */
    m->ctx = NULL;
}

void gw_media_free(gw_media *m)
{
    if (m == NULL)
        return;
    gw_media_stop(m);
    pthread_cond_destroy(&m->unref);
    pthread_mutex_destroy(&m->mu);
    free(m);
}
