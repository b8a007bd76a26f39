/* call: one call's turn loop (docs/media.md, call.h).
 *
 * Life: LOADING (the agent and execution are read on the job pool) -> LIVE (welcome, then turn
 * after turn) -> HANGING (the agent decided to end: its hangup message plays, then HANGUP goes
 * to the gateway) -> ENDED (media stopped; engines closed; figures stored by a job). The loop
 * frees the call once ENDED and no STT/TTS pump still holds it.
 *
 * A turn: caller frames -> endpoint (VAD) and transcriber; at the end of the caller's speech the
 * transcriber is finalized; its final text is the user turn; the LLM streams the reply, which is
 * cut at sentence/clause ends into chunks for the synthesizer; audio goes out paced at real time
 * with a small lead, and a mark after each chunk tells, when the carrier echoes it, that the
 * caller heard that chunk. A barge-in cancels the LLM and the synthesizer, clears the carrier's
 * queue and cuts the assistant turn to the chunks heard.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "agent.h"
#include "call.h"
#include "endpoint.h"
#include "error.h"
#include "log.h"
#include "outq.h"
#include "speech.h"
#include "store.h"
#include "wav.h"

#define MAX_FRAME      960 /* 20 ms at 48 kHz */
#define MAX_CHUNKS     128
#define MAX_TURNS      64 /* turns with latency figures */
#define HANGUP_WAIT_MS 15000
#define STOP_WAIT_MS   10000
#define FIRST_CLAUSE   24 /* bytes: a reply's first chunk may end at a clause this early */
#define FALLBACK_TEXT  "Sorry, something went wrong on our side. Please call again later. Goodbye."

enum { LOADING, LIVE, HANGING, ENDED };
enum { CH_LAST = 1, CH_HANGUP = 2, CH_ONLINE = 4 };

typedef struct {
    uint32_t id;
    int turn;        /* history index of the assistant turn it belongs to */
    size_t end_byte; /* that turn's length once this chunk is said */
    int flags;
    int marked; /* its audio was all sent and its mark queued */
} chunk;

typedef struct {
    long transcriber, llm, synthesizer, first_audio; /* ms, -1 unknown */
} turn_latency;

typedef struct {
    int16_t *s;
    size_t n, cap;
} track;

struct mp_call {
    mp_loop *loop;
    mp *app;
    uint64_t serial;
    uint8_t uuid[16];
    char id[37];
    uint16_t attempt;
    char reply[256];
    char carrier[16], call_sid[128];
    int rate;
    size_t fs; /* samples per frame */
    int phase;
    int64_t t0, now;
    uint32_t seq_out;

    mp_agent agent;
    mp_call_ctx ctx;
    int have_ctx;
    prompt_vars vars;
    prompt_history hist;

    mp_endpoint ep;
    int have_ep;
    mp_stt_stream *stt, *stt_pump;
    mp_tts_stream *tts, *tts_pump;
    llm_client *llm;
    llm_stream *ls;
    mp_job stt_job, tts_job;
    atomic_int pumps; /* STT/TTS pumps queued or running */

    mp_outq outq;
    int64_t played_until; /* when the audio sent so far will have played */
    int16_t frame[MAX_FRAME];

    /* the agent's speech */
    chunk chunks[MAX_CHUNKS];
    unsigned ch_head, ch_tail; /* said but not yet heard */
    uint32_t next_chunk_id;
    int reply_turn; /* history index of the assistant turn being streamed/said, -1 none */
    int reply_seq;  /* its transcript seq */
    int reply_done; /* the LLM finished it */
    size_t heard;   /* bytes of reply_turn the caller heard */
    char *pending;  /* reply text not yet cut into chunks */
    size_t pend_len, pend_cap;
    int64_t reply_start_ms, speak_since;
    int hangup_after_reply;

    /* the caller */
    int caller_speaking;
    int64_t speech_start;
    int awaiting_final;
    int seg_words, seg_interim_words;
    char *user_text;
    size_t user_len, user_cap;
    int64_t last_activity;
    int online_asked;

    /* ending */
    int hangup_sent;
    int64_t deadline;
    char hangup_reason[64];
    char *error_message;

    /* what the call leaves */
    int next_seq;
    turn_latency lat[MAX_TURNS];
    int nlat;
    long welcome_first_audio;
    int64_t turn_end_at, llm_start_at, first_chunk_at;
    int turn_audio_seen;
    double stt_seconds;
    long synth_chars;
    cJSON *llm_usage; /* {"<model>": {"input","output"}} */
    track rec_caller, rec_agent;
};

/* ---- small helpers ---- */

static int64_t since(const mp_call *c, int64_t t)
{
    return t - c->t0;
}

static void track_put(track *t, size_t at, const int16_t *pcm, size_t n)
{
    if (at + n > t->cap) {
        size_t cap = t->cap > 0 ? t->cap : 16000;
        while (cap < at + n)
            cap *= 2;
        int16_t *s = realloc(t->s, cap * sizeof(int16_t));
        if (s == NULL)
            return;
        t->s = s;
        t->cap = cap;
    }
    if (at > t->n)
        memset(t->s + t->n, 0, (at - t->n) * sizeof(int16_t));
    memcpy(t->s + at, pcm, n * sizeof(int16_t));
    if (at + n > t->n)
        t->n = at + n;
}

/* Extends t with silence to n samples. */
static void track_pad(track *t, size_t n)
{
    int16_t zero = 0;
    if (t->n < n)
        track_put(t, n - 1, &zero, 1);
}

static int grow_text(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap > 0 ? *cap : 256;
    while (nc < need)
        nc *= 2;
    char *b = realloc(*buf, nc);
    if (b == NULL)
        return -1;
    *buf = b;
    *cap = nc;
    return 0;
}

static void send_rec(mp_call *c, pl_relay_kind kind, const void *payload, size_t len)
{
    mp_loop_send(c->loop, c->reply, c->uuid, c->attempt, kind, c->seq_out++, payload, len);
}

static const char *agent_side(const mp_call *c)
{
    /* hangup_by names the party: for an outbound call the agent placed it (Caller). */
    return c->agent.inbound ? "Callee" : "Caller";
}

/* ---- jobs: transcript turns and the final store ---- */

typedef struct {
    mp_job j;
    mp *app;
    mp_turn t;
    char id[37];
    char role[16];
    char *text;
} turn_job;

static void run_turn_job(mp_job *j)
{
    turn_job *tj = (turn_job *)j;
    tj->t.execution_id = tj->id;
    tj->t.role = tj->role;
    tj->t.text = tj->text;
    mp_store_turn(&tj->app->svc, &tj->t);
    free(tj->text);
    free(tj);
}

static void store_turn(mp_call *c, int seq, const char *role, const char *text, size_t len,
                       int64_t start, int64_t end, int interrupted)
{
    turn_job *tj = calloc(1, sizeof(*tj));
    if (tj == NULL)
        return;
    tj->text = malloc(len + 1);
    if (tj->text == NULL) {
        free(tj);
        return;
    }
    memcpy(tj->text, text, len);
    tj->text[len] = '\0';
    tj->j.fn = run_turn_job;
    tj->app = c->app;
    memcpy(tj->id, c->id, sizeof(tj->id));
    snprintf(tj->role, sizeof(tj->role), "%s", role);
    tj->t = (mp_turn){.attempt = c->attempt,
                      .seq = seq,
                      .start_ms = (long)since(c, start),
                      .end_ms = (long)since(c, end),
                      .interrupted = interrupted};
    mp_jobs_post(c->app->jobs, &tj->j);
    PL_INFO("%s %s: %.*s%s", c->id, role, (int)len, text, interrupted ? " [interrupted]" : "");
}

/* The assistant turn being said is over (heard whole, cut, or the call ended). */
static void close_reply(mp_call *c, int interrupted)
{
    if (c->reply_turn < 0)
        return;
    const prompt_msg *m = &c->hist.msgs[c->reply_turn];
    if (m->len > 0)
        store_turn(c, c->reply_seq, "assistant", m->content, m->len, c->reply_start_ms, c->now,
                   interrupted);
    c->reply_turn = -1;
    c->pend_len = 0;
}

/* ---- the agent's speech ---- */

static int speaking(const mp_call *c)
{
    return c->ch_head != c->ch_tail || c->ls != NULL;
}

static int new_reply_turn(mp_call *c)
{
    if (prompt_history_add(&c->hist, PROMPT_ASSISTANT, "", 0) != PL_OK)
        return -1;
    c->reply_turn = (int)c->hist.n - 1;
    c->reply_seq = c->next_seq++;
    c->reply_done = 0;
    c->heard = 0;
    c->reply_start_ms = c->now;
    return 0;
}

static void fail(mp_call *c, const char *reason, const char *detail);
/* The media is over: close the engines, store what the call leaves. */
static void end_call(mp_call *c, const char *why);

/* Says text as one chunk of the current reply turn. */
static void say(mp_call *c, const char *text, size_t len, int flags)
{
    if (len == 0 || c->tts == NULL)
        return;
    if (c->ch_tail - c->ch_head == MAX_CHUNKS) {
        PL_WARN("%s: more than %d chunks unheard; text dropped", c->id, MAX_CHUNKS);
        return;
    }
    char *t = malloc(len + 1);
    if (t == NULL)
        return;
    memcpy(t, text, len);
    t[len] = '\0';
    uint32_t id = ++c->next_chunk_id;
    int rc = mp_tts_speak(c->tts, id, t);
    free(t);
    if (rc != PL_OK) {
        pl_metric_add(c->app->stats.tts_errors, 1);
        fail(c, "synthesizer_error", "the synthesizer refused a text");
        return;
    }
    if (c->ch_head == c->ch_tail)
        c->speak_since = c->now;
    if (c->first_chunk_at == 0)
        c->first_chunk_at = c->now;
    c->synth_chars += (long)len;
    chunk *ch = &c->chunks[c->ch_tail++ % MAX_CHUNKS];
    *ch = (chunk){.id = id,
                  .turn = c->reply_turn,
                  .end_byte = c->reply_turn >= 0 ? c->hist.msgs[c->reply_turn].len : 0,
                  .flags = flags};
}

/* A whole text spoken as its own assistant turn (welcome, online check, hangup message). */
static void say_turn(mp_call *c, const char *text, int flags)
{
    close_reply(c, 0);
    if (new_reply_turn(c) != 0)
        return;
    size_t len = strlen(text), off = 0;
    while (off < len) { /* sentence by sentence: a barge-in keeps what was heard */
        size_t cut = mp_speech_cut(text + off, len - off, 1 << 30);
        size_t n = cut > 0 ? cut : len - off;
        prompt_history_append(&c->hist, text + off, n);
        off += n;
        say(c, text + off - n, n, off == len ? flags | CH_LAST : 0);
    }
    c->reply_done = 1;
}

static void clear_speech(mp_call *c)
{
    if (c->ls != NULL) {
        llm_cancel(c->ls);
        c->ls = NULL;
    }
    if (c->tts != NULL)
        mp_tts_cancel(c->tts);
    mp_outq_clear(&c->outq);
    c->ch_head = c->ch_tail = 0;
    c->played_until = 0;
}

static void send_hangup(mp_call *c)
{
    if (c->hangup_sent)
        return;
    char payload[256];
    snprintf(payload, sizeof(payload), "{\"by\":\"%s\",\"reason\":\"%s\"}", agent_side(c),
             c->hangup_reason);
    send_rec(c, PL_RELAY_HANGUP, payload, strlen(payload));
    c->hangup_sent = 1;
    c->deadline = c->now + STOP_WAIT_MS;
    pl_metric_add(c->app->stats.hangups, 1);
    PL_INFO("%s: hanging up (%s)", c->id, c->hangup_reason);
}

/* The agent ends the call: says message (if any) and hangs up once it was heard. */
static void begin_hangup(mp_call *c, const char *reason, const char *message)
{
    if (c->phase != LIVE)
        return;
    c->phase = HANGING;
    snprintf(c->hangup_reason, sizeof(c->hangup_reason), "%s", reason);
    if (c->ls != NULL) {
        llm_cancel(c->ls);
        c->ls = NULL;
    }
    if (message != NULL && message[0] != '\0' && c->tts != NULL) {
        say_turn(c, message, CH_HANGUP);
        c->deadline = c->now + HANGUP_WAIT_MS;
        return;
    }
    send_hangup(c);
}

/* A provider failed: never silent, never stuck. */
static void fail(mp_call *c, const char *reason, const char *detail)
{
    PL_WARN("%s: %s: %s", c->id, reason, detail);
    if (c->error_message == NULL) {
        char buf[512];
        snprintf(buf, sizeof(buf), "%s: %s", reason, detail);
        c->error_message = strdup(buf);
    }
    if (c->phase == LOADING) {
        char payload[600];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "reason", c->error_message ? c->error_message : reason);
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        snprintf(payload, sizeof(payload), "%s", s != NULL ? s : "{}");
        cJSON_free(s);
        send_rec(c, PL_RELAY_STOP, payload, strlen(payload));
        end_call(c, reason);
        return;
    }
    if (strcmp(reason, "synthesizer_error") == 0 || c->tts == NULL) {
        if (c->phase == LIVE || c->phase == HANGING) {
            c->phase = HANGING;
            snprintf(c->hangup_reason, sizeof(c->hangup_reason), "%s", reason);
            clear_speech(c);
            send_hangup(c);
        }
        return;
    }
    if (c->phase == HANGING) { /* already ending: just make sure it ends */
        snprintf(c->hangup_reason, sizeof(c->hangup_reason), "%s", reason);
        return;
    }
    clear_speech(c);
    close_reply(c, 1);
    begin_hangup(c, reason, FALLBACK_TEXT);
}

/* ---- LLM ---- */

static void reply_text(mp_call *c, const char *text, size_t len, int final)
{
    if (grow_text(&c->pending, &c->pend_cap, c->pend_len + len + 1) != 0)
        return;
    memcpy(c->pending + c->pend_len, text, len);
    c->pend_len += len;
    for (;;) {
        int first = c->ch_head == c->ch_tail && c->hist.msgs[c->reply_turn].len == 0;
        size_t cut = mp_speech_cut(c->pending, c->pend_len, first ? FIRST_CLAUSE : 1 << 30);
        if (cut == 0 && final)
            cut = c->pend_len;
        if (cut == 0)
            break;
        prompt_history_append(&c->hist, c->pending, cut);
        int last = final && cut == c->pend_len;
        say(c, c->pending, cut, last ? CH_LAST : 0);
        memmove(c->pending, c->pending + cut, c->pend_len - cut);
        c->pend_len -= cut;
        if (c->pend_len == 0)
            break;
    }
}

static void on_token(void *user, const char *text, size_t len)
{
    mp_call *c = user;
    c->now = mp_loop_now(c->loop);
    if (c->reply_turn < 0 && new_reply_turn(c) != 0)
        return;
    if (c->nlat > 0 && c->lat[c->nlat - 1].llm < 0)
        c->lat[c->nlat - 1].llm = (long)(c->now - c->llm_start_at);
    reply_text(c, text, len, 0);
}

static void on_llm_done(void *user, const llm_done *d)
{
    mp_call *c = user;
    c->now = mp_loop_now(c->loop);
    c->ls = NULL;
    if (c->reply_turn < 0)
        new_reply_turn(c);
    unsigned before = c->ch_tail;
    reply_text(c, "", 0, 1);
    c->reply_done = 1;
    if (c->ch_tail == before && c->ch_head != c->ch_tail) { /* the last chunk ends the turn */
        chunk *last = &c->chunks[(c->ch_tail - 1) % MAX_CHUNKS];
        if (last->turn == c->reply_turn)
            last->flags |= CH_LAST;
    }
    if (c->ch_head == c->ch_tail) /* nothing to say: the turn is over */
        close_reply(c, 0);
    const char *model = d->model != NULL && d->model[0] ? d->model : "unknown";
    cJSON *m = cJSON_GetObjectItemCaseSensitive(c->llm_usage, model);
    if (m == NULL) {
        m = cJSON_AddObjectToObject(c->llm_usage, model);
        cJSON_AddNumberToObject(m, "input", 0);
        cJSON_AddNumberToObject(m, "output", 0);
    }
    cJSON *in = cJSON_GetObjectItemCaseSensitive(m, "input");
    cJSON *out = cJSON_GetObjectItemCaseSensitive(m, "output");
    cJSON_SetNumberValue(in, in->valuedouble + (double)d->prompt_tokens);
    cJSON_SetNumberValue(out, out->valuedouble + (double)d->completion_tokens);
    if (d->hangup)
        c->hangup_after_reply = 1;
}

static void on_llm_error(void *user, long http_status, const char *reason)
{
    mp_call *c = user;
    (void)http_status;
    c->now = mp_loop_now(c->loop);
    c->ls = NULL;
    pl_metric_add(c->app->stats.llm_errors, 1);
    fail(c, "llm_error", reason);
}

static const llm_callbacks llm_cb = {
    .on_token = on_token, .on_done = on_llm_done, .on_error = on_llm_error};

static void start_llm(mp_call *c)
{
    llm_request req = {.system = c->agent.system_prompt, .history = &c->hist, .vars = &c->vars};
    c->llm_start_at = c->now;
    c->first_chunk_at = 0;
    c->turn_audio_seen = 0;
    c->pend_len = 0;
    int rc = llm_start(c->llm, &req, &llm_cb, c, &c->ls);
    if (rc != PL_OK) {
        c->ls = NULL;
        fail(c, "llm_error", "the LLM request could not be started");
    }
}

/* ---- the caller ---- */

static void barge_in(mp_call *c, const char *why)
{
    PL_INFO("%s: barge-in (%s); the caller heard %zu bytes of the reply", c->id, why, c->heard);
    pl_metric_add(c->app->stats.bargeins, 1);
    clear_speech(c);
    send_rec(c, PL_RELAY_CLEAR, NULL, 0);
    if (c->reply_turn >= 0) {
        prompt_msg *m = &c->hist.msgs[c->reply_turn];
        prompt_history_cut(&c->hist, (size_t)c->reply_turn, c->heard);
        if (!c->reply_done) /* the model had more to say */
            m->interrupted = 1;
        close_reply(c, m->interrupted);
    }
    c->hangup_after_reply = 0;
}

static int may_interrupt(const mp_call *c)
{
    return c->phase == LIVE && speaking(c) &&
           c->now - c->speak_since >= c->agent.interrupt_backoff_ms;
}

static void end_user_turn(mp_call *c)
{
    c->awaiting_final = 0;
    c->last_activity = c->now;
    char *text = mp_speech_trim(c->user_text != NULL ? c->user_text : "");
    c->user_len = 0;
    if (text == NULL)
        return;
    if (text[0] == '\0' || c->phase != LIVE) {
        free(text);
        return;
    }
    if (speaking(c)) { /* not enough words to interrupt, or a backchannel: not a turn */
        PL_INFO("%s: \"%s\" while the agent speaks: not an interruption", c->id, text);
        free(text);
        return;
    }
    close_reply(c, 0);
    store_turn(c, c->next_seq++, "user", text, strlen(text), c->speech_start, c->now, 0);
    prompt_history_add(&c->hist, PROMPT_USER, text, strlen(text));
    free(text);
    pl_metric_add(c->app->stats.turns, 1);
    if (c->nlat < MAX_TURNS) {
        c->lat[c->nlat++] = (turn_latency){.transcriber = (long)(c->now - c->turn_end_at),
                                           .llm = -1,
                                           .synthesizer = -1,
                                           .first_audio = -1};
    }
    start_llm(c);
}

typedef struct {
    mp_post p;
    uint64_t serial;
    mp_stt_event_kind kind;
    int finalize_reply, err;
    char text[];
} stt_post;

static void on_stt_post(mp_loop *l, mp_post *p)
{
    stt_post *sp = (stt_post *)p;
    mp_call *c = mp_loop_find(l, sp->serial);
    if (c == NULL || c->phase == ENDED) {
        free(sp);
        return;
    }
    c->now = mp_loop_now(l);
    if (sp->kind == MP_STT_ERROR) {
        pl_metric_add(c->app->stats.stt_errors, 1);
        fail(c, "transcriber_error", sp->text);
    } else if (sp->kind == MP_STT_INTERIM) {
        c->seg_interim_words = mp_speech_words(sp->text);
        if (c->seg_words + c->seg_interim_words >= c->agent.interrupt_words &&
            c->agent.interrupt_words > 0 && may_interrupt(c))
            barge_in(c, "words");
    } else {
        size_t n = strlen(sp->text);
        if (n > 0 && grow_text(&c->user_text, &c->user_cap, c->user_len + n + 2) == 0) {
            if (c->user_len > 0)
                c->user_text[c->user_len++] = ' ';
            memcpy(c->user_text + c->user_len, sp->text, n + 1);
            c->user_len += n;
            c->seg_words += mp_speech_words(sp->text);
            c->seg_interim_words = 0;
            if (c->seg_words >= c->agent.interrupt_words && may_interrupt(c))
                barge_in(c, "words");
        }
        if (sp->finalize_reply)
            end_user_turn(c);
    }
    free(sp);
}

static void stt_event(void *user, const mp_stt_event *ev)
{
    mp_call *c = user;
    size_t n = strlen(ev->text != NULL ? ev->text : "");
    stt_post *sp = malloc(sizeof(*sp) + n + 1);
    if (sp == NULL)
        return;
    sp->p.fn = on_stt_post;
    sp->serial = c->serial;
    sp->kind = ev->kind;
    sp->finalize_reply = ev->finalize_reply;
    sp->err = ev->err;
    memcpy(sp->text, ev->text != NULL ? ev->text : "", n + 1);
    mp_loop_post(c->loop, &sp->p);
}

static void run_stt_pump(mp_job *j)
{
    mp_call *c = (mp_call *)((char *)j - offsetof(mp_call, stt_job));
    if (mp_stt_pump(c->stt_pump) > 0)
        mp_jobs_post(c->app->jobs, j);
    else
        atomic_fetch_sub(&c->pumps, 1);
}

static void stt_wake(void *user, mp_stt_stream *s)
{
    (void)s;
    mp_call *c = user;
    atomic_fetch_add(&c->pumps, 1);
    mp_jobs_post(c->app->jobs, &c->stt_job);
}

static void caller_audio(mp_call *c, const int16_t *pcm, size_t n)
{
    pl_metric_add(c->app->stats.frames_in, 1);
    track_put(&c->rec_caller, c->rec_caller.n, pcm, n);
    if (c->phase != LIVE && c->phase != HANGING)
        return;
    if (n != c->fs) {
        PL_DEBUG("%s: a %zu-sample frame (expected %zu) ignored", c->id, n, c->fs);
        return;
    }
    if (c->stt != NULL) {
        if (mp_stt_feed(c->stt, pcm, n) == PL_ERR_TOOBIG)
            pl_metric_add(c->app->stats.stt_dropped, 1);
        c->stt_seconds += 0.02;
    }
    int ev = mp_endpoint_process(&c->ep, pcm, n);
    if (ev == MP_EP_SPEECH_START) {
        c->caller_speaking = 1;
        c->speech_start = c->now;
        c->seg_words = c->seg_interim_words = 0;
        c->online_asked = 0;
        c->last_activity = c->now;
    } else if (ev == MP_EP_SPEECH_END) {
        c->caller_speaking = 0;
        c->last_activity = c->now;
        c->turn_end_at = c->now;
        c->awaiting_final = 1;
        if (c->stt != NULL)
            mp_stt_finalize(c->stt);
    }
    if (c->caller_speaking && c->seg_words + c->seg_interim_words == 0 && may_interrupt(c) &&
        c->now - c->speech_start >= c->app->cfg.bargein_vad_ms)
        barge_in(c, "speech without words yet");
}

/* ---- TTS callbacks (pool threads) ---- */

static void tts_audio(void *user, uint32_t id, const int16_t *pcm, size_t samples)
{
    (void)id;
    mp_outq_audio(&((mp_call *)user)->outq, pcm, samples);
}

static void tts_done(void *user, uint32_t id, int err)
{
    mp_outq_done(&((mp_call *)user)->outq, id, err);
}

static void run_tts_pump(mp_job *j)
{
    mp_call *c = (mp_call *)((char *)j - offsetof(mp_call, tts_job));
    if (mp_tts_pump(c->tts_pump) > 0)
        mp_jobs_post(c->app->jobs, j);
    else
        atomic_fetch_sub(&c->pumps, 1);
}

static void tts_wake(void *user, mp_tts_stream *s)
{
    (void)s;
    mp_call *c = user;
    atomic_fetch_add(&c->pumps, 1);
    mp_jobs_post(c->app->jobs, &c->tts_job);
}

/* ---- loading ---- */

typedef struct {
    mp_job j;
    mp_post p;
    mp *app;
    mp_loop *loop;
    uint64_t serial;
    char id[37];
    int rc;
    mp_call_ctx ctx;
    char why[256];
} load_job;

static int open_engines(mp_call *c, char *why, size_t cap)
{
    mp_agent *a = &c->agent;
    if (strcmp(a->stt_provider, "local") != 0) {
        snprintf(why, cap, "transcriber provider '%s' is not available on this worker",
                 a->stt_provider);
        return -1;
    }
    if (strcmp(a->tts_provider, "local") != 0) {
        snprintf(why, cap, "synthesizer provider '%s' is not available on this worker",
                 a->tts_provider);
        return -1;
    }
    if (llm_client_create(a->llm_config, mp_loop_llm(c->loop), &c->llm, why, cap) != PL_OK)
        return -1;
    mp_endpoint_config ec = {
        .frame_ms = 20, .hangover_ms = (int)a->turn_silence_ms, .vad_mode = -1};
    if (ec.hangover_ms < 200)
        ec.hangover_ms = 200;
    if (mp_endpoint_init(&c->ep, c->rate, &ec) != PL_OK) {
        snprintf(why, cap, "no voice activity detection at %d Hz", c->rate);
        return -1;
    }
    c->have_ep = 1;
    mp_stt_config sc = {.sample_rate = c->rate,
                        .language = "en",
                        .phrases = (const char *const *)a->keywords,
                        .n_phrases = (size_t)a->nkeywords};
    mp_stt_callbacks scb = {.on_event = stt_event, .wake = stt_wake, .user = c};
    int rc = mp_stt_open(c->app->stt, &sc, &scb, &c->stt);
    if (rc != PL_OK) {
        snprintf(why, cap, "transcriber: %s",
                 rc == PL_ERR_TOOBIG ? "every decoder is busy" : "cannot open a stream");
        c->stt = NULL;
        return -1;
    }
    c->stt_pump = c->stt;
    mp_tts_config tc = {.sample_rate = c->rate, .voice = a->voice};
    mp_tts_callbacks tcb = {
        .on_audio = tts_audio, .on_done = tts_done, .wake = tts_wake, .user = c};
    if (mp_tts_open(c->app->tts, &tc, &tcb, &c->tts) != PL_OK) {
        snprintf(why, cap, "synthesizer: unknown voice '%s'", a->voice);
        c->tts = NULL;
        return -1;
    }
    c->tts_pump = c->tts;
    return 0;
}

static void on_loaded(mp_loop *l, mp_post *p)
{
    load_job *lj = (load_job *)((char *)p - offsetof(load_job, p));
    mp_call *c = mp_loop_find(l, lj->serial);
    if (c == NULL || c->phase != LOADING) {
        if (lj->rc == PL_OK)
            mp_call_ctx_free(&lj->ctx);
        free(lj);
        return;
    }
    c->now = mp_loop_now(l);
    if (lj->rc != PL_OK) {
        fail(c, "error", lj->why);
        free(lj);
        return;
    }
    c->ctx = lj->ctx;
    c->have_ctx = 1;
    free(lj);
    char why[300];
    if (mp_agent_read(&c->agent, &c->ctx, c->id, c->call_sid, &c->vars, why, sizeof(why)) !=
            PL_OK ||
        open_engines(c, why, sizeof(why)) != 0) {
        fail(c, "error", why);
        return;
    }
    c->phase = LIVE;
    c->last_activity = c->now;
    if (c->ctx.busy_message != NULL) { /* over the account's cap: a message, no conversation */
        PL_INFO("%s: over the account's concurrency cap: busy message, then hang-up", c->id);
        begin_hangup(c, "concurrency_limit", c->ctx.busy_message);
        return;
    }
    PL_INFO("%s: live (%s, %d Hz, voice '%s', %zu-byte prompt)", c->id, c->carrier, c->rate,
            c->agent.voice, strlen(c->agent.system_prompt));
    if (c->agent.welcome[0] != '\0') {
        c->turn_end_at = c->now;
        say_turn(c, c->agent.welcome, 0);
    }
}

static void run_load(mp_job *j)
{
    load_job *lj = (load_job *)j;
    lj->rc = mp_store_load(lj->app->svc.db, lj->id, &lj->ctx, lj->why, sizeof(lj->why));
    lj->p.fn = on_loaded;
    mp_loop_post(lj->loop, &lj->p);
}

/* ---- the call's records and clock ---- */

mp_call *mp_call_new(mp_loop *l, uint64_t serial, const pl_relay_rec *start)
{
    cJSON *s = cJSON_ParseWithLength((const char *)start->payload, start->len);
    const cJSON *reply = cJSON_GetObjectItemCaseSensitive(s, "reply");
    const cJSON *rate = cJSON_GetObjectItemCaseSensitive(s, "rate");
    char id[37];
    pl_relay_uuid_format(start->call, id);
    if (!cJSON_IsString(reply) || !cJSON_IsNumber(rate) || rate->valueint < 8000 ||
        rate->valueint > 48000 || rate->valueint % 50 != 0) {
        PL_WARN("START of %s without a usable reply address or rate: refused", id);
        cJSON_Delete(s);
        return NULL;
    }
    mp_call *c = calloc(1, sizeof(*c));
    load_job *lj = calloc(1, sizeof(*lj));
    if (c == NULL || lj == NULL) {
        free(c);
        free(lj);
        cJSON_Delete(s);
        return NULL;
    }
    c->loop = l;
    c->app = mp_loop_app(l);
    c->serial = serial;
    memcpy(c->uuid, start->call, 16);
    memcpy(c->id, id, sizeof(c->id));
    c->attempt = start->attempt;
    snprintf(c->reply, sizeof(c->reply), "%s", reply->valuestring);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, "carrier");
    snprintf(c->carrier, sizeof(c->carrier), "%s", cJSON_IsString(v) ? v->valuestring : "");
    v = cJSON_GetObjectItemCaseSensitive(s, "call_id");
    snprintf(c->call_sid, sizeof(c->call_sid), "%s", cJSON_IsString(v) ? v->valuestring : "");
    c->rate = rate->valueint;
    c->fs = (size_t)c->rate / 50;
    cJSON_Delete(s);
    c->now = c->t0 = mp_loop_now(l);
    c->phase = LOADING;
    c->reply_turn = -1;
    c->welcome_first_audio = -1;
    c->stt_job.fn = run_stt_pump;
    c->tts_job.fn = run_tts_pump;
    prompt_vars_init(&c->vars);
    prompt_history_init(&c->hist, 1 << 20);
    mp_outq_init(&c->outq, c->fs);
    c->llm_usage = cJSON_CreateObject();
    c->deadline = c->now + HANGUP_WAIT_MS; /* loading must not take longer than this */

    lj->j.fn = run_load;
    lj->app = c->app;
    lj->loop = l;
    lj->serial = serial;
    memcpy(lj->id, c->id, sizeof(lj->id));
    mp_jobs_post(c->app->jobs, &lj->j);
    PL_INFO("%s: media started (%s call %s, %d Hz)", c->id, c->carrier, c->call_sid, c->rate);
    return c;
}

void mp_call_record(mp_call *c, const pl_relay_rec *r)
{
    c->now = mp_loop_now(c->loop);
    switch (r->kind) {
    case PL_RELAY_AUDIO:
        if (c->phase != ENDED && r->len / 2 <= MAX_FRAME) {
            memcpy(c->frame, r->payload, r->len & ~1u); /* aligned copy of PCM16 LE */
            caller_audio(c, c->frame, r->len / 2);
        }
        break;
    case PL_RELAY_MARK: {
        char name[32];
        snprintf(name, sizeof(name), "%.*s", (int)(r->len < 31 ? r->len : 31),
                 (const char *)r->payload);
        uint32_t id = (uint32_t)strtoul(name + (name[0] == 'c'), NULL, 10);
        while (c->ch_head != c->ch_tail) {
            chunk *ch = &c->chunks[c->ch_head % MAX_CHUNKS];
            if (ch->id > id)
                break;
            c->ch_head++;
            if (ch->turn == c->reply_turn)
                c->heard = ch->end_byte;
            if (ch->flags & CH_HANGUP)
                send_hangup(c);
            if ((ch->flags & CH_LAST) && ch->turn == c->reply_turn)
                close_reply(c, 0);
        }
        if (c->ch_head == c->ch_tail)
            c->last_activity = c->now;
        break;
    }
    case PL_RELAY_DTMF:
        PL_INFO("%s: DTMF %.*s", c->id, (int)r->len, (const char *)r->payload);
        break;
    case PL_RELAY_STOP:
        end_call(c, "the call's media ended");
        break;
    default:
        break;
    }
}

static void send_audio(mp_call *c)
{
    while (c->played_until - c->now < c->app->cfg.lead_ms) {
        if (!mp_outq_take(&c->outq, c->frame))
            break;
        send_rec(c, PL_RELAY_AUDIO, c->frame, c->fs * sizeof(int16_t));
        pl_metric_add(c->app->stats.frames_out, 1);
        int64_t start = c->played_until > c->now ? c->played_until : c->now;
        size_t at = (size_t)((start - c->t0) * c->rate / 1000);
        if (at < c->rec_agent.n)
            at = c->rec_agent.n;
        track_put(&c->rec_agent, at, c->frame, c->fs);
        c->played_until = start + 20;
        if (!c->turn_audio_seen) {
            c->turn_audio_seen = 1;
            if (c->nlat > 0 && c->lat[c->nlat - 1].first_audio < 0) {
                turn_latency *t = &c->lat[c->nlat - 1];
                t->first_audio = (long)(c->now - c->turn_end_at);
                t->synthesizer = c->first_chunk_at ? (long)(c->now - c->first_chunk_at) : -1;
            } else if (c->welcome_first_audio < 0) {
                c->welcome_first_audio = (long)(c->now - c->t0);
            }
        }
    }
    mp_outq_marker m;
    while (mp_outq_marker_pop(&c->outq, &m)) {
        if (m.err != 0) {
            pl_metric_add(c->app->stats.tts_errors, 1);
            fail(c, "synthesizer_error", "the synthesizer failed a text");
            return;
        }
        char name[24];
        int n = snprintf(name, sizeof(name), "c%u", m.id);
        send_rec(c, PL_RELAY_MARK, name, (size_t)n);
    }
}

static void apply_rules(mp_call *c)
{
    mp_agent *a = &c->agent;
    if (c->now - c->t0 >= a->call_terminate_ms) {
        begin_hangup(c, "call_terminate", a->hangup_message);
        return;
    }
    if (c->hangup_after_reply && !speaking(c)) {
        begin_hangup(c, "llm_prompted_hangup", a->hangup_message);
        return;
    }
    if (speaking(c) || c->caller_speaking || c->awaiting_final)
        return;
    int64_t silent = c->now - c->last_activity;
    if (a->check_online && !c->online_asked && silent >= a->online_after_ms &&
        a->online_after_ms < a->silence_hangup_ms) {
        c->online_asked = 1;
        say_turn(c, a->online_message, CH_ONLINE);
        return;
    }
    if (silent >= a->silence_hangup_ms)
        begin_hangup(c, "inactivity_timeout", a->hangup_message);
}

void mp_call_tick(mp_call *c, int64_t now)
{
    c->now = now;
    switch (c->phase) {
    case LOADING:
        if (now >= c->deadline)
            fail(c, "error", "the call's agent could not be loaded in time");
        break;
    case LIVE:
        send_audio(c);
        if (c->phase == LIVE)
            apply_rules(c);
        break;
    case HANGING:
        send_audio(c);
        if (now >= c->deadline) {
            if (!c->hangup_sent)
                send_hangup(c);
            else
                end_call(c, "the gateway did not end the call in time");
        }
        break;
    default:
        break;
    }
}

void mp_call_abort(mp_call *c, const char *reason)
{
    if (c->phase == ENDED)
        return;
    c->now = mp_loop_now(c->loop);
    if (c->phase != LOADING && !c->hangup_sent) {
        snprintf(c->hangup_reason, sizeof(c->hangup_reason), "%s", reason);
        send_hangup(c);
    } else if (c->phase == LOADING) {
        fail(c, "error", reason);
    }
    end_call(c, reason);
}

/* ---- the end ---- */

typedef struct {
    mp_job j;
    mp *app;
    char id[37];
    char *usage, *latency, *error;
    track left, right;
    int rate;
} finish_job;

static int write_recording(finish_job *f, char *path, size_t cap)
{
    const char *dir = f->app->cfg.recordings_dir;
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        PL_WARN("recording of %s not written: cannot create %s", f->id, dir);
        return -1;
    }
    snprintf(path, cap, "%s/%s.wav", dir, f->id);
    size_t n = f->left.n > f->right.n ? f->left.n : f->right.n;
    if (n == 0)
        return -1;
    track_pad(&f->left, n);
    track_pad(&f->right, n);
    mp_wav_writer w;
    if (mp_wav_writer_open(&w, path, f->rate, 2) != PL_OK) {
        PL_WARN("recording of %s not written: cannot create %s", f->id, path);
        return -1;
    }
    mp_wav_writer_write_stereo(&w, f->left.s, f->right.s, n);
    if (mp_wav_writer_close(&w) != 0) {
        PL_WARN("recording of %s: write error on %s", f->id, path);
        return -1;
    }
    return 0;
}

static void run_finish(mp_job *j)
{
    finish_job *f = (finish_job *)j;
    char path[600];
    int have = write_recording(f, path, sizeof(path)) == 0;
    mp_store_finish(f->app->svc.db, f->id, f->usage, f->latency, have ? path : NULL, f->error);
    free(f->usage);
    free(f->latency);
    free(f->error);
    free(f->left.s);
    free(f->right.s);
    free(f);
}

static cJSON *latency_kind(const mp_call *c, int which)
{
    cJSON *k = cJSON_CreateObject();
    cJSON_AddNumberToObject(k, "time_to_connect", 0);
    cJSON *turns = cJSON_AddArrayToObject(k, "turns");
    for (int i = 0; i < c->nlat; i++) {
        const turn_latency *t = &c->lat[i];
        long v = which == 0 ? t->transcriber : which == 1 ? t->llm : t->synthesizer;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "turn", i + 1);
        cJSON *arr = cJSON_AddArrayToObject(o, "turn_latency");
        if (v >= 0)
            cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)v));
        cJSON_AddItemToArray(turns, o);
    }
    return k;
}

static char *latency_json(const mp_call *c)
{
    cJSON *o = cJSON_CreateObject();
    if (c->welcome_first_audio >= 0)
        cJSON_AddNumberToObject(o, "time_to_first_audio", (double)c->welcome_first_audio);
    else
        cJSON_AddNullToObject(o, "time_to_first_audio");
    cJSON_AddItemToObject(o, "transcriber", latency_kind(c, 0));
    cJSON_AddItemToObject(o, "llm", latency_kind(c, 1));
    cJSON_AddItemToObject(o, "synthesizer", latency_kind(c, 2));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static char *usage_json(const mp_call *c)
{
    cJSON *o = cJSON_CreateObject();
    long tokens = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, c->llm_usage)
    {
        tokens += (long)cJSON_GetObjectItemCaseSensitive(m, "input")->valuedouble;
        tokens += (long)cJSON_GetObjectItemCaseSensitive(m, "output")->valuedouble;
    }
    cJSON_AddNumberToObject(o, "synthesizer_characters", (double)c->synth_chars);
    cJSON_AddStringToObject(o, "synthesizer_model", c->agent.voice[0] ? c->agent.voice : "kal16");
    cJSON_AddNumberToObject(o, "transcriber_duration", c->stt_seconds);
    cJSON_AddStringToObject(o, "transcriber_model", "pocketsphinx-en-us");
    cJSON_AddNumberToObject(o, "llm_tokens", (double)tokens);
    cJSON_AddItemReferenceToObject(o, "llm_model", c->llm_usage);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void end_call(mp_call *c, const char *why)
{
    if (c->phase == ENDED && c->stt == NULL && c->tts == NULL && c->llm == NULL && !c->have_ctx)
        return;
    int was_live = c->phase != LOADING && c->have_ctx;
    c->phase = ENDED;
    if (c->ls != NULL) {
        llm_cancel(c->ls);
        c->ls = NULL;
    }
    llm_client_destroy(c->llm);
    c->llm = NULL;
    if (c->stt != NULL)
        mp_stt_close(c->stt);
    if (c->tts != NULL)
        mp_tts_close(c->tts);
    c->stt = NULL;
    c->tts = NULL;
    if (c->reply_turn >= 0) {
        if (c->heard < c->hist.msgs[c->reply_turn].len)
            prompt_history_cut(&c->hist, (size_t)c->reply_turn, c->heard);
        close_reply(c, c->hist.msgs[c->reply_turn].interrupted);
    }
    PL_INFO("%s: media over (%s)", c->id, why);
    if (!was_live) {
        if (c->have_ctx)
            mp_call_ctx_free(&c->ctx);
        c->have_ctx = 0;
        return;
    }
    finish_job *f = calloc(1, sizeof(*f));
    if (f != NULL) {
        f->j.fn = run_finish;
        f->app = c->app;
        memcpy(f->id, c->id, sizeof(f->id));
        f->usage = usage_json(c);
        f->latency = latency_json(c);
        f->error = c->error_message != NULL ? strdup(c->error_message) : NULL;
        f->left = c->rec_caller;
        f->right = c->rec_agent;
        f->rate = c->rate;
        c->rec_caller = (track){0};
        c->rec_agent = (track){0};
        mp_jobs_post(c->app->jobs, &f->j);
    }
    mp_call_ctx_free(&c->ctx);
    c->have_ctx = 0;
}

int mp_call_finished(mp_call *c)
{
    return c->phase == ENDED && atomic_load(&c->pumps) == 0;
}

void mp_call_free(mp_call *c)
{
    if (c->phase != ENDED)
        end_call(c, "freed");
    if (c->have_ctx)
        mp_call_ctx_free(&c->ctx);
    mp_agent_free(&c->agent);
    prompt_vars_free(&c->vars);
    prompt_history_free(&c->hist);
    if (c->have_ep)
        mp_endpoint_free(&c->ep);
    mp_outq_free(&c->outq);
    cJSON_Delete(c->llm_usage);
    free(c->pending);
    free(c->user_text);
    free(c->error_message);
    free(c->rec_caller.s);
    free(c->rec_agent.s);
    free(c);
}

int mp_call_matches(const mp_call *c, const uint8_t call[16], uint16_t attempt)
{
    return c->attempt == attempt && memcmp(c->uuid, call, 16) == 0;
}

uint64_t mp_call_serial(const mp_call *c)
{
    return c->serial;
}
