/* Text-to-speech: one interface for every synthesizer; one file per provider behind it
 * (tts_local.c: flite and espeak-ng, embedded). A provider fills a struct mp_tts_ops with
 * designated initializers; callers use the mp_tts_* wrappers below.
 *
 * A stream belongs to one call: it has one voice and one output rate (the call's), and says a
 * queue of texts in order. Audio comes back as PCM16 mono at that rate, in chunks of at most
 * MP_TTS_CHUNK_MS (whole 20 ms frames but for an utterance's last chunk); the caller re-chunks to
 * its 20 ms clock.
 *
 * Threads (the same rules as stt.h). The audio loop calls open, speak, cancel and close, never
 * concurrently for one stream; none of them synthesizes or blocks. A provider that needs CPU
 * (local synthesis) asks for it with cb->wake(user, s), from speak on the loop's thread, at most
 * once until a pump returns 0; the caller then runs mp_tts_pump(s) on a worker of a pool shared by
 * all calls (never a thread per call). mp_tts_pump synthesizes about one sentence and returns >0
 * when it wants to be called again (re-enqueue s), 0 when the queue is empty. A woken stream must
 * be pumped even after close: that pump frees it without calling back. Providers doing their I/O
 * on the loop have no pump.
 *
 * Callbacks run on the producing thread (the pumping worker for local TTS); they must not block
 * nor call into this stream; pcm is valid during the call only (copy it to the call's outbound
 * queue and signal the loop). After mp_tts_cancel returns, no audio of a text spoken before it is
 * delivered and no on_done for those texts comes; after mp_tts_close returns, no callback starts.
 */
#ifndef MP_TTS_H
#define MP_TTS_H

#include <stddef.h>
#include <stdint.h>

#define MP_TTS_CHUNK_MS  200
#define MP_TTS_TEXT_MAX  4096 /* bytes of one mp_tts_speak text */
#define MP_TTS_QUEUE_MAX 32   /* texts waiting in one stream */

typedef struct mp_tts_engine mp_tts_engine;
typedef struct mp_tts_stream mp_tts_stream;

typedef struct mp_tts_callbacks {
    /* Audio of text `id`, in order. */
    void (*on_audio)(void *user, uint32_t id, const int16_t *pcm, size_t samples);
    /* Text `id` is fully said (err 0) or failed (a pl_err; the stream goes on with the next). */
    void (*on_done)(void *user, uint32_t id, int err);
    void (*wake)(void *user, mp_tts_stream *s); /* may be NULL only for providers without pump */
    void *user;
} mp_tts_callbacks;

typedef struct mp_tts_config {
    int sample_rate; /* of the audio delivered: the call's rate (8000, 16000, ...) */
    /* Provider-specific voice name; local: NULL or "" (flite kal16), "kal16", "slt", "awb", "rms",
     * "kal" (also as "flite:<name>"), "espeak" (espeak-ng en-us) or "espeak:<voice>" (any
     * espeak-ng voice name, e.g. "espeak:en-gb"). */
    const char *voice;
} mp_tts_config;

struct mp_tts_ops {
    const char *name;
    int (*open)(mp_tts_engine *e, const mp_tts_config *cfg, const mp_tts_callbacks *cb,
                mp_tts_stream **out);
    int (*speak)(mp_tts_stream *s, uint32_t id, const char *text);
    int (*cancel)(mp_tts_stream *s);
    int (*pump)(mp_tts_stream *s);
    void (*close)(mp_tts_stream *s);
    void (*engine_free)(mp_tts_engine *e);
};

/* Every provider's engine and stream begin with these headers. */
struct mp_tts_engine {
    const struct mp_tts_ops *ops;
};
struct mp_tts_stream {
    const struct mp_tts_ops *ops;
};

/* Opens a stream for one call; cb is copied. Returns 0, PL_ERR_INVALID (unknown voice, bad rate)
 * or PL_ERR_NOMEM. */
static inline int mp_tts_open(mp_tts_engine *e, const mp_tts_config *cfg,
                              const mp_tts_callbacks *cb, mp_tts_stream **out)
{
    return e->ops->open(e, cfg, cb, out);
}

/* Queues text (UTF-8, copied) to be said after what is already queued; id comes back in its
 * callbacks. Returns 0, PL_ERR_INVALID (empty), PL_ERR_TOOBIG (text over MP_TTS_TEXT_MAX or
 * MP_TTS_QUEUE_MAX texts waiting) or PL_ERR_NOMEM. */
static inline int mp_tts_speak(mp_tts_stream *s, uint32_t id, const char *text)
{
    return s->ops->speak(s, id, text);
}

/* Barge-in: drops every queued text and the one being said. */
static inline int mp_tts_cancel(mp_tts_stream *s)
{
    return s->ops->cancel(s);
}

/* Worker side; see the thread rules above. */
static inline int mp_tts_pump(mp_tts_stream *s)
{
    return s->ops->pump != NULL ? s->ops->pump(s) : 0;
}

/* Ends the stream (cancelling what is queued); s is gone for the caller. Never blocks on
 * synthesis. */
static inline void mp_tts_close(mp_tts_stream *s)
{
    s->ops->close(s);
}

/* Every stream must be closed and every woken stream pumped first. */
static inline void mp_tts_engine_free(mp_tts_engine *e)
{
    if (e != NULL)
        e->ops->engine_free(e);
}

/* ---- local provider (tts_local.c) ---- */

/* Creates the flite + espeak-ng engine: registers the flite voices and initialises espeak-ng
 * (process-wide libraries: create one local engine per process). Blocking, at start-up. espeak
 * voices are unavailable (open fails with PL_ERR_INVALID) when espeak-ng-data is missing.
 *
 * Both libraries keep global state and are not reentrant: all flite synthesis of the process is
 * serialised by one lock, all espeak-ng synthesis by another, so a pool of N workers says at most
 * two sentences at once (one per engine). Measured cost is far below real time (see
 * tests/unit/media-pipeline/test_tts_local.c), which is what makes this acceptable. */
int mp_tts_local_new(mp_tts_engine **out);

/* Counters of the local engine, for metrics and tests. */
typedef struct mp_tts_local_stats {
    uint64_t samples_out; /* delivered, at the streams' rates */
    uint64_t audio_ms;    /* delivered audio, all streams */
    uint64_t synth_ns;    /* time spent synthesising and resampling */
} mp_tts_local_stats;

void mp_tts_local_stats_get(mp_tts_engine *e, mp_tts_local_stats *out);

#endif
