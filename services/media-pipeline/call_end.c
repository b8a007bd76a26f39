/* call_end: what a call leaves (call_internal.h). Both parties' audio is recorded as the call
 * goes; once the media is over the engines are closed, the last assistant turn is stored as
 * heard, and a job on the pool stores the figures (usage, latency in Bolna's shape) and writes
 * the stereo recording (caller left, agent right). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "call_internal.h"
#include "error.h"
#include "log.h"
#include "store.h"
#include "wav.h"

void call_track_put(track *t, size_t at, const int16_t *pcm, size_t n)
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
        call_track_put(t, n - 1, &zero, 1);
}

/* ---- the final store (job pool) ---- */

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

/* ---- the figures ---- */

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

/* ---- the end ---- */

/* The media is over: close the engines, store what the call leaves. */
void call_end(mp_call *c, const char *why)
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
        call_close_reply(c, c->hist.msgs[c->reply_turn].interrupted);
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
