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
 *
 * The parts share call_internal.h: this file is the call's life (creation, loading, its engines'
 * pumps, the records and the tick); call_speech.c what the agent says; call_turns.c the caller's
 * turn and the reply; call_rules.c how the agent ends a call; call_end.c what a call leaves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call_internal.h"
#include "error.h"
#include "log.h"
#include "store.h"

void call_send_rec(mp_call *c, pl_relay_kind kind, const void *payload, size_t len)
{
    mp_loop_send(c->loop, c->reply, c->uuid, c->attempt, kind, c->seq_out++, payload, len);
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

/* ---- the transcriber's pump (woken on the loop, run on the pool) ---- */

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
    mp_stt_callbacks scb = {.on_event = call_stt_event, .wake = stt_wake, .user = c};
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
        call_fail(c, "error", lj->why);
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
        call_fail(c, "error", why);
        return;
    }
    c->phase = LIVE;
    c->last_activity = c->now;
    if (c->ctx.busy_message != NULL) { /* over the account's cap: a message, no conversation */
        PL_INFO("%s: over the account's concurrency cap: busy message, then hang-up", c->id);
        call_begin_hangup(c, "concurrency_limit", c->ctx.busy_message);
        return;
    }
    PL_INFO("%s: live (%s, %d Hz, voice '%s', %zu-byte prompt)", c->id, c->carrier, c->rate,
            c->agent.voice, strlen(c->agent.system_prompt));
    if (c->agent.welcome[0] != '\0') {
        c->turn_end_at = c->now;
        call_say_turn(c, c->agent.welcome, 0);
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
            call_caller_audio(c, c->frame, r->len / 2);
        }
        break;
    case PL_RELAY_MARK:
        call_marked(c, r->payload, r->len);
        break;
    case PL_RELAY_DTMF:
        PL_INFO("%s: DTMF %.*s", c->id, (int)r->len, (const char *)r->payload);
        break;
    case PL_RELAY_STOP:
        call_end(c, "the call's media ended");
        break;
    default:
        break;
    }
}

void mp_call_tick(mp_call *c, int64_t now)
{
    c->now = now;
    switch (c->phase) {
    case LOADING:
        if (now >= c->deadline)
            call_fail(c, "error", "the call's agent could not be loaded in time");
        break;
    case LIVE:
        call_send_audio(c);
        if (c->phase == LIVE)
            call_apply_rules(c);
        break;
    case HANGING:
        call_send_audio(c);
        if (now >= c->deadline) {
            if (!c->hangup_sent)
                call_send_hangup(c);
            else
                call_end(c, "the gateway did not end the call in time");
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
        call_send_hangup(c);
    } else if (c->phase == LOADING) {
        call_fail(c, "error", reason);
    }
    call_end(c, reason);
}

/* ---- the end ---- */

int mp_call_finished(mp_call *c)
{
    return c->phase == ENDED && atomic_load(&c->pumps) == 0;
}

void mp_call_free(mp_call *c)
{
    if (c->phase != ENDED)
        call_end(c, "freed");
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
