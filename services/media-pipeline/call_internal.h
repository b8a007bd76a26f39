/* What the parts of one call share (call.c has the overview). Not the call's interface: the loop
 * sees only call.h.
 *
 *   call.c         the call's life: creation, loading, its engines' pumps, records and the tick
 *   call_speech.c  what the agent says: chunks, paced audio, marks, barge-in
 *   call_turns.c   the caller's turn and the reply: transcriber events, LLM stream, stored turns
 *   call_rules.c   how the agent ends a call: hangup rules, HANGUP, provider failures
 *   call_end.c     what a call leaves: engines closed, figures and recording stored by a job
 *
 * Everything here runs on the owning loop's thread unless it says otherwise. */
#ifndef MP_CALL_INTERNAL_H
#define MP_CALL_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "agent.h"
#include "call.h"
#include "endpoint.h"
#include "outq.h"

#define MAX_FRAME      960 /* 20 ms at 48 kHz */
#define MAX_CHUNKS     128
#define MAX_TURNS      64 /* turns with latency figures */
#define HANGUP_WAIT_MS 15000

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

/* ---- call.c ---- */

/* Queues one record of this call for its gateway, with the call's next outbound seq. */
void call_send_rec(mp_call *c, pl_relay_kind kind, const void *payload, size_t len);

/* ---- call_speech.c: what the agent says ---- */

/* 1 while the agent has said chunks the caller has not yet heard, or a reply still streams. */
int call_speaking(const mp_call *c);
/* Says text as one chunk of the current reply turn. The text must already be appended to that
 * turn: the chunk is heard once the turn's current length is. A synthesizer that refuses the
 * text fails the call (call_fail); more than MAX_CHUNKS unheard chunks drop the text. */
void call_say(mp_call *c, const char *text, size_t len, int flags);
/* A whole text spoken as its own assistant turn (welcome, online check, hangup message). Closes
 * the reply turn before it; flags go on the text's last chunk (with CH_LAST). */
void call_say_turn(mp_call *c, const char *text, int flags);
/* Stops the agent's speech: cancels the LLM stream and the synthesizer, drops the audio not yet
 * sent and the chunks not yet heard. Neither the carrier (see call_barge_in) nor the reply turn
 * (closed by whoever calls this) is touched. */
void call_clear_speech(mp_call *c);
/* 1 when the caller may cut the agent now: LIVE, speaking, for at least interrupt_backoff_ms. */
int call_may_interrupt(const mp_call *c);
/* The caller cut in: the agent's speech stops, the carrier's queue is cleared, the reply turn is
 * cut to the bytes the caller heard and stored, and a hangup asked by the reply is dropped. */
void call_barge_in(mp_call *c, const char *why);
/* Each tick (LIVE, HANGING): sends queued audio until it is cfg.lead_ms ahead of real time
 * (recording it on the agent's track), then a mark per chunk whose audio is all sent. A failed
 * synthesis fails the call (call_fail) and sends nothing more this tick. */
void call_send_audio(mp_call *c);
/* The carrier echoed a mark (its name, len bytes, not terminated): every chunk up to it was
 * heard; a CH_HANGUP chunk heard sends HANGUP, a CH_LAST one closes its turn. Once all is heard,
 * the silence counts from now. */
void call_marked(mp_call *c, const void *mark, size_t len);

/* ---- call_turns.c: the caller's turn and the reply ---- */

/* Opens an empty assistant turn in the history as the reply being said: 0, or -1 when the
 * history refuses it (no reply turn then). */
int call_new_reply_turn(mp_call *c);
/* The assistant turn being said is over (heard whole, cut, or the call ended): stores it unless
 * empty and drops reply text not yet cut into chunks. Nothing without a reply turn. */
void call_close_reply(mp_call *c, int interrupted);
/* One frame of the caller's audio: always recorded; while LIVE or HANGING, fed to the
 * transcriber and the endpointer, whose start/end of speech drive the user turn (and barge-in).
 * Frames of another size than fs are ignored. */
void call_caller_audio(mp_call *c, const int16_t *pcm, size_t n);
/* The transcriber's event callback (user: the call). Runs on a pool thread: it only copies the
 * event and posts it to the call's loop, where it is applied if the call is still there. */
void call_stt_event(void *user, const mp_stt_event *ev);

/* ---- call_rules.c: how the agent ends a call ---- */

/* Sends HANGUP (once) with the agent's side and hangup_reason; the gateway then has
 * STOP_WAIT_MS to end the call before the tick ends it. */
void call_send_hangup(mp_call *c);
/* The agent ends the call: says message (if any) and hangs up once it was heard. Only from LIVE
 * (then HANGING); HANGUP goes at the latest HANGUP_WAIT_MS after. */
void call_begin_hangup(mp_call *c, const char *reason, const char *message);
/* A provider failed: never silent, never stuck. The first failure is the execution's
 * error_message. While LOADING: STOP to the gateway, and the call ends. Otherwise the call hangs
 * up with reason: at once after a synthesizer failure (or without a synthesizer), else after a
 * short fallback message; a call already hanging up only takes the reason. */
void call_fail(mp_call *c, const char *reason, const char *detail);
/* Each tick while LIVE: call_terminate, a reply marked hangup, the user-online check and the
 * silence hangup. */
void call_apply_rules(mp_call *c);

/* ---- call_end.c: what a call leaves ---- */

/* Writes n samples at sample index at of t, silence before them if t was shorter. Best effort:
 * the samples are lost when memory is short. */
void call_track_put(track *t, size_t at, const int16_t *pcm, size_t n);
/* The media is over: close the engines, store what the call leaves. The call is ENDED after it;
 * calling it again does nothing. A call that never went live stores no figures nor recording. */
void call_end(mp_call *c, const char *why);

#endif
