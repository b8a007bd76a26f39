/* call_turns: the caller's turn and the agent's reply (call_internal.h). Caller frames go to the
 * endpointer (VAD) and the transcriber; at the end of the caller's speech the transcriber is
 * finalized and its final text is the user turn; the LLM streams the reply, which is cut at
 * sentence/clause ends into chunks for the synthesizer. Each turn is stored by a job as it
 * completes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call_internal.h"
#include "error.h"
#include "log.h"
#include "speech.h"
#include "store.h"

#define FIRST_CLAUSE 24 /* bytes: a reply's first chunk may end at a clause this early */

static int64_t since(const mp_call *c, int64_t t)
{
    return t - c->t0;
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

/* ---- jobs: transcript turns ---- */

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
void call_close_reply(mp_call *c, int interrupted)
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

int call_new_reply_turn(mp_call *c)
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
        call_say(c, c->pending, cut, last ? CH_LAST : 0);
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
    if (c->reply_turn < 0 && call_new_reply_turn(c) != 0)
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
        call_new_reply_turn(c);
    unsigned before = c->ch_tail;
    reply_text(c, "", 0, 1);
    c->reply_done = 1;
    if (c->ch_tail == before && c->ch_head != c->ch_tail) { /* the last chunk ends the turn */
        chunk *last = &c->chunks[(c->ch_tail - 1) % MAX_CHUNKS];
        if (last->turn == c->reply_turn)
            last->flags |= CH_LAST;
    }
    if (c->ch_head == c->ch_tail) /* nothing to say: the turn is over */
        call_close_reply(c, 0);
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
    call_fail(c, "llm_error", reason);
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
        call_fail(c, "llm_error", "the LLM request could not be started");
    }
}

/* ---- the caller ---- */

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
    if (call_speaking(c)) { /* not enough words to interrupt, or a backchannel: not a turn */
        PL_INFO("%s: \"%s\" while the agent speaks: not an interruption", c->id, text);
        free(text);
        return;
    }
    call_close_reply(c, 0);
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
        call_fail(c, "transcriber_error", sp->text);
    } else if (sp->kind == MP_STT_INTERIM) {
        c->seg_interim_words = mp_speech_words(sp->text);
        if (c->seg_words + c->seg_interim_words >= c->agent.interrupt_words &&
            c->agent.interrupt_words > 0 && call_may_interrupt(c))
            call_barge_in(c, "words");
    } else {
        size_t n = strlen(sp->text);
        if (n > 0 && grow_text(&c->user_text, &c->user_cap, c->user_len + n + 2) == 0) {
            if (c->user_len > 0)
                c->user_text[c->user_len++] = ' ';
            memcpy(c->user_text + c->user_len, sp->text, n + 1);
            c->user_len += n;
            c->seg_words += mp_speech_words(sp->text);
            c->seg_interim_words = 0;
            if (c->seg_words >= c->agent.interrupt_words && call_may_interrupt(c))
                call_barge_in(c, "words");
        }
        if (sp->finalize_reply)
            end_user_turn(c);
    }
    free(sp);
}

void call_stt_event(void *user, const mp_stt_event *ev)
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

void call_caller_audio(mp_call *c, const int16_t *pcm, size_t n)
{
    pl_metric_add(c->app->stats.frames_in, 1);
    call_track_put(&c->rec_caller, c->rec_caller.n, pcm, n);
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
    /* Speech the transcriber has not decoded yet is not speech without words: under load it
     * falls behind, and a backchannel ("okay") would barge in before its words are known. The
     * first length test spares the transcriber's lock while the speech is too short anyway. */
    if (c->caller_speaking && c->seg_words + c->seg_interim_words == 0 && call_may_interrupt(c) &&
        c->now - c->speech_start >= c->app->cfg.bargein_vad_ms &&
        c->now - c->speech_start - (c->stt != NULL ? mp_stt_lag_ms(c->stt) : 0) >=
            c->app->cfg.bargein_vad_ms)
        call_barge_in(c, "speech without words yet");
}
