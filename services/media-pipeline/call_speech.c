/* call_speech: what the agent says (call_internal.h). Text goes to the synthesizer one chunk at a
 * time; its audio goes out paced at real time with a small lead, and a mark after each chunk
 * tells, when the carrier echoes it, that the caller heard that chunk. A barge-in cancels the
 * LLM and the synthesizer, clears the carrier's queue and cuts the assistant turn to the chunks
 * heard. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call_internal.h"
#include "error.h"
#include "log.h"
#include "speech.h"

int call_speaking(const mp_call *c)
{
    return c->ch_head != c->ch_tail || c->ls != NULL;
}

/* Says text as one chunk of the current reply turn. */
void call_say(mp_call *c, const char *text, size_t len, int flags)
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
        call_fail(c, "synthesizer_error", "the synthesizer refused a text");
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
void call_say_turn(mp_call *c, const char *text, int flags)
{
    call_close_reply(c, 0);
    if (call_new_reply_turn(c) != 0)
        return;
    size_t len = strlen(text), off = 0;
    while (off < len) { /* sentence by sentence: a barge-in keeps what was heard */
        size_t cut = mp_speech_cut(text + off, len - off, 1 << 30);
        size_t n = cut > 0 ? cut : len - off;
        prompt_history_append(&c->hist, text + off, n);
        off += n;
        call_say(c, text + off - n, n, off == len ? flags | CH_LAST : 0);
    }
    c->reply_done = 1;
}

void call_clear_speech(mp_call *c)
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

/* ---- barge-in ---- */

void call_barge_in(mp_call *c, const char *why)
{
    PL_INFO("%s: barge-in (%s); the caller heard %zu bytes of the reply", c->id, why, c->heard);
    pl_metric_add(c->app->stats.bargeins, 1);
    call_clear_speech(c);
    call_send_rec(c, PL_RELAY_CLEAR, NULL, 0);
    if (c->reply_turn >= 0) {
        prompt_msg *m = &c->hist.msgs[c->reply_turn];
        prompt_history_cut(&c->hist, (size_t)c->reply_turn, c->heard);
        if (!c->reply_done) /* the model had more to say */
            m->interrupted = 1;
        call_close_reply(c, m->interrupted);
    }
    c->hangup_after_reply = 0;
}

int call_may_interrupt(const mp_call *c)
{
    return c->phase == LIVE && call_speaking(c) &&
           c->now - c->speak_since >= c->agent.interrupt_backoff_ms;
}

/* ---- audio out and marks ---- */

void call_send_audio(mp_call *c)
{
    while (c->played_until - c->now < c->app->cfg.lead_ms) {
        if (!mp_outq_take(&c->outq, c->frame))
            break;
        call_send_rec(c, PL_RELAY_AUDIO, c->frame, c->fs * sizeof(int16_t));
        pl_metric_add(c->app->stats.frames_out, 1);
        int64_t start = c->played_until > c->now ? c->played_until : c->now;
        size_t at = (size_t)((start - c->t0) * c->rate / 1000);
        if (at < c->rec_agent.n)
            at = c->rec_agent.n;
        call_track_put(&c->rec_agent, at, c->frame, c->fs);
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
            call_fail(c, "synthesizer_error", "the synthesizer failed a text");
            return;
        }
        char name[24];
        int n = snprintf(name, sizeof(name), "c%u", m.id);
        call_send_rec(c, PL_RELAY_MARK, name, (size_t)n);
    }
}

void call_marked(mp_call *c, const void *mark, size_t len)
{
    char name[32];
    snprintf(name, sizeof(name), "%.*s", (int)(len < 31 ? len : 31), (const char *)mark);
    uint32_t id = (uint32_t)strtoul(name + (name[0] == 'c'), NULL, 10);
    while (c->ch_head != c->ch_tail) {
        chunk *ch = &c->chunks[c->ch_head % MAX_CHUNKS];
        if (ch->id > id)
            break;
        c->ch_head++;
        if (ch->turn == c->reply_turn)
            c->heard = ch->end_byte;
        if (ch->flags & CH_HANGUP)
            call_send_hangup(c);
        if ((ch->flags & CH_LAST) && ch->turn == c->reply_turn)
            call_close_reply(c, 0);
    }
    if (c->ch_head == c->ch_tail)
        c->last_activity = c->now;
}
